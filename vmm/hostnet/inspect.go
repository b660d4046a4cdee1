package hostnet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/guest/contract"
)

// Interface is the engine's interface in a network namespace, as
// Inspect reads it: what the guest's eth0 is to become.
type Interface struct {
	// Name is the interface's name in the namespace (eth0 for netavark
	// and the CNI plugins).
	Name string
	MAC  net.HardwareAddr
	MTU  int
	// Addrs are its global IPv4 and IPv6 addresses, each with its
	// prefix length; link-local ones are left out (the guest makes its
	// own).
	Addrs []netip.Prefix
	// Routes are the routes through it other than those its addresses
	// imply: default routes first, then the others, as the kernel lists
	// them.
	Routes []contract.Route
}

// Guest is the configuration that makes the guest's interface name
// this interface: its MAC address, MTU, addresses and routes.
func (i *Interface) Guest(name string) contract.Interface {
	return contract.Interface{
		Name: name, MAC: i.MAC.String(), MTU: i.MTU,
		Addrs: slices.Clone(i.Addrs), Routes: slices.Clone(i.Routes),
	}
}

// ErrNoInterface says a network namespace holds no interface but the
// loopback: the engine gave the container no network (podman's
// --network none), and the VM gets none either.
var ErrNoInterface = errors.New("no network interface but the loopback")

// DefaultInterface is the interface the VM takes when a namespace holds
// more than one: the name netavark and the CNI plugins give the first.
const DefaultInterface = "eth0"

// Inspect reads the engine's interface in the network namespace at
// nsPath: the one Ethernet interface there other than a tap (a tap is a
// VM's, made by Plumb), or if there are several, the one called
// DefaultInterface. A VM has one network device for now; a namespace
// with several interfaces and no eth0 is an error that names them.
func Inspect(nsPath string) (*Interface, error) {
	var ifc *Interface
	err := InNamespace(nsPath, func() error {
		link, err := engineLink()
		if err != nil {
			return err
		}
		ifc, err = readInterface(link)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("network namespace %s: %w", nsPath, err)
	}
	return ifc, nil
}

// engineLink finds the engine's interface in the thread's namespace.
func engineLink() (netlink.Link, error) {
	links, err := retry(netlink.LinkList)
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	var found []netlink.Link
	var names []string
	for _, l := range links {
		a := l.Attrs()
		// Not the loopback; not a tunnel device (sit0, tunl0: the kernel
		// puts them in every namespace once their module is loaded); not
		// a tap, the other end of which is a VM.
		if a.Flags&net.FlagLoopback != 0 || a.EncapType != "ether" || l.Type() == "tuntap" {
			continue
		}
		found = append(found, l)
		names = append(names, a.Name)
	}
	switch {
	case len(found) == 0:
		return nil, ErrNoInterface
	case len(found) == 1:
		return found[0], nil
	}
	for _, l := range found {
		if l.Attrs().Name == DefaultInterface {
			return l, nil
		}
	}
	slices.Sort(names)
	return nil, fmt.Errorf("%d interfaces (%s) and none called %s: kiln gives a VM one", len(found), strings.Join(names, ", "), DefaultInterface)
}

// readInterface reads link's MAC address, MTU, addresses and routes.
func readInterface(link netlink.Link) (*Interface, error) {
	a := link.Attrs()
	if len(a.HardwareAddr) != 6 {
		return nil, fmt.Errorf("%s: MAC address %v is not an Ethernet address", a.Name, a.HardwareAddr)
	}
	ifc := &Interface{Name: a.Name, MAC: slices.Clone(a.HardwareAddr), MTU: a.MTU}

	addrs, err := retry(func() ([]netlink.Addr, error) { return netlink.AddrList(link, netlink.FAMILY_ALL) })
	if err != nil {
		return nil, fmt.Errorf("%s: list addresses: %w", a.Name, err)
	}
	for _, ad := range addrs {
		if ad.Scope != unix.RT_SCOPE_UNIVERSE {
			continue // link-local and host addresses
		}
		if p, ok := prefixOf(ad.IPNet); ok {
			ifc.Addrs = append(ifc.Addrs, p)
		}
	}

	routes, err := retry(func() ([]netlink.Route, error) { return netlink.RouteList(link, netlink.FAMILY_ALL) })
	if err != nil {
		return nil, fmt.Errorf("%s: list routes: %w", a.Name, err)
	}
	var defaults, others []contract.Route
	for _, r := range routes {
		// The kernel's own routes follow from the addresses (the subnet
		// of each, fe80::/64), and the guest's kernel makes them as well.
		// Multipath routes would need a route through another interface.
		if r.Protocol == unix.RTPROT_KERNEL || r.Type != unix.RTN_UNICAST || len(r.MultiPath) > 0 {
			continue
		}
		cr, ok := routeOf(r)
		if !ok {
			continue
		}
		if cr.IsDefault() {
			defaults = append(defaults, cr)
		} else {
			others = append(others, cr)
		}
	}
	ifc.Routes = append(defaults, others...)
	return ifc, nil
}

// routeOf turns a netlink route into the contract's.
func routeOf(r netlink.Route) (contract.Route, bool) {
	var cr contract.Route
	if r.Dst == nil {
		// A default route: the kernel lists it without a destination.
		cr.Dst = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		if r.Family == unix.AF_INET6 {
			cr.Dst = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
		}
	} else {
		p, ok := prefixOf(r.Dst)
		if !ok {
			return cr, false
		}
		cr.Dst = p.Masked()
	}
	if r.Gw != nil {
		via, ok := addrOf(r.Gw)
		if !ok || via.Is4() != cr.Dst.Addr().Is4() {
			return cr, false // an IPv4 route via IPv6 (RFC 5549): not for the guest
		}
		cr.Via = via
	}
	return cr, true
}

func addrOf(ip net.IP) (netip.Addr, bool) {
	a, ok := netip.AddrFromSlice(ip)
	return a.Unmap(), ok
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	a, ok := addrOf(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	bits, _ := n.Mask.Size()
	p := netip.PrefixFrom(a, bits)
	return p, p.IsValid()
}

// retry runs a netlink dump again when the kernel says the list changed
// while it was read (ErrDumpInterrupted), a few times.
func retry[T any](f func() ([]T, error)) ([]T, error) {
	for i := 0; ; i++ {
		v, err := f()
		if !errors.Is(err, netlink.ErrDumpInterrupted) || i == 4 {
			return v, err
		}
	}
}
