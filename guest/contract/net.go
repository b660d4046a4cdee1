package contract

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// Interface is how the guest's init configures one of its network
// interfaces. Written by kiln: for a container VM, from the interface
// the engine put in the container's network namespace (vmm/hostnet
// reads it), so that the guest's eth0 is that interface; for kiln run
// --net ...,ip=,gw=, from the flag (ParamNet, ParseNetParam). Read by
// init (guest/init/net.go), at boot for ParamNet and with every job for
// Job.Net, so a VM restored from a snapshot takes the addresses given
// to it, not the snapshot's.
//
// An Interface replaces what the interface had: init takes it down,
// removes its addresses (and with them its routes), sets the MAC
// address and the MTU, adds the addresses, brings it up and adds the
// routes.
type Interface struct {
	// Name is the interface in the guest: eth0 for the first virtio
	// network device.
	Name string `json:"name"`
	// MAC is the address the interface takes ("02:42:0a:58:00:05");
	// "" keeps the device's own. A virtio-net device without
	// VIRTIO_NET_F_CTRL_MAC_ADDR lets the guest set any address.
	MAC string `json:"mac,omitempty"`
	// MTU is the interface's MTU; 0 keeps the device's (1500).
	MTU int `json:"mtu,omitempty"`
	// Addrs are the interface's IPv4 and IPv6 addresses, each with its
	// prefix length (10.88.0.5/16, fd00::5/64), which also gives the
	// route to its subnet.
	Addrs []netip.Prefix `json:"addrs,omitempty"`
	// Routes are the routes through the interface beyond its subnets,
	// in order: default routes and any others.
	Routes []Route `json:"routes,omitempty"`
	// Down leaves the interface down, its MAC address and MTU set: a
	// network device with no network yet (an OCI container's in a new
	// namespace, which an engine may give a network before kiln start:
	// ControlNetwork then brings it up). Bringing a virtio-net interface
	// up fills its receive ring, seconds of guest kernel work on kvm-pvm
	// (2.8 s measured), paid only once there is a network. Addrs and
	// Routes are then empty.
	Down bool `json:"down,omitempty"`
}

// Route is a route through an interface.
type Route struct {
	// Dst is where the route leads: 0.0.0.0/0 or ::/0 for a default
	// route.
	Dst netip.Prefix `json:"dst"`
	// Via is the gateway; none for a destination on the link itself.
	Via netip.Addr `json:"via,omitzero"`
}

// IsDefault says whether r is a default route.
func (r Route) IsDefault() bool { return r.Dst.Bits() == 0 }

func (r Route) String() string {
	dst := r.Dst.String()
	if r.IsDefault() {
		dst = "default"
	}
	if r.Via.IsValid() {
		return dst + " via " + r.Via.String()
	}
	return dst
}

// Validate checks that init can apply i: a name Linux takes, a unicast
// MAC address, an MTU an Ethernet device takes, addresses and routes
// that are whole.
func (i Interface) Validate() error {
	if i.Name == "" || len(i.Name) >= 16 || strings.ContainsAny(i.Name, "/ \t\n") {
		return fmt.Errorf("interface %q: not a Linux interface name", i.Name)
	}
	if i.MAC != "" {
		mac, err := net.ParseMAC(i.MAC)
		if err != nil || len(mac) != 6 {
			return fmt.Errorf("interface %s: MAC %q is not an Ethernet address", i.Name, i.MAC)
		}
		if mac[0]&1 != 0 {
			return fmt.Errorf("interface %s: MAC %s is a multicast address", i.Name, i.MAC)
		}
	}
	if i.MTU != 0 && (i.MTU < 68 || i.MTU > 65535) {
		return fmt.Errorf("interface %s: MTU %d is not between 68 and 65535", i.Name, i.MTU)
	}
	if i.Down && (len(i.Addrs) > 0 || len(i.Routes) > 0) {
		return fmt.Errorf("interface %s: left down, it can have no addresses or routes", i.Name)
	}
	for _, a := range i.Addrs {
		if !a.IsValid() || a.Addr().Zone() != "" {
			return fmt.Errorf("interface %s: address %v is not ADDR/PREFIX", i.Name, a)
		}
	}
	for _, r := range i.Routes {
		if !r.Dst.IsValid() {
			return fmt.Errorf("interface %s: route %v has no destination", i.Name, r)
		}
		if r.Via.IsValid() && r.Via.Is4() != r.Dst.Addr().Is4() {
			return fmt.Errorf("interface %s: route %v: the gateway is of another family than the destination", i.Name, r)
		}
	}
	return nil
}

// ParseNetParam turns ParamNet's value, ADDR/PREFIX[,GATEWAY], into the
// Interface it stands for: eth0 with that address and, with a gateway,
// a default route through it. So the guest's init configures eth0 one
// way, whether the configuration came on the command line or in a job.
func ParseNetParam(v string) (Interface, error) {
	spec, gw, hasGW := strings.Cut(v, ",")
	addr, err := netip.ParsePrefix(spec)
	if err != nil || addr.Addr().Zone() != "" {
		return Interface{}, fmt.Errorf("%s=%s: want ADDR/PREFIX[,GATEWAY]", ParamNet, v)
	}
	ifc := Interface{Name: "eth0", Addrs: []netip.Prefix{addr}}
	if hasGW {
		via, err := netip.ParseAddr(gw)
		if err != nil || via.Is4() != addr.Addr().Is4() || via.Zone() != "" {
			return Interface{}, fmt.Errorf("%s=%s: bad gateway %q", ParamNet, v, gw)
		}
		def := netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		if !via.Is4() {
			def = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
		}
		ifc.Routes = []Route{{Dst: def, Via: via}}
	}
	return ifc, nil
}
