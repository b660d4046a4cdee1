package oci

import (
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/kiln-vmm/kiln/devices/tap"
	"github.com/kiln-vmm/kiln/guest/contract"
	"github.com/kiln-vmm/kiln/vmm/config"
	"github.com/kiln-vmm/kiln/vmm/hostnet"
)

// A container's network. The engine makes a network namespace for the
// container with an interface in it (podman's netavark: a veth, eth0,
// with an address, routes and port forwards on the host; containerd's
// CRI with the CNI plugins: the same), and names it in config.json. Its
// VM takes that interface over, in three steps, each in the process that
// can do it:
//
//  1. kiln create reads the interface (hostnet.Inspect: its MAC address,
//     MTU, addresses and routes) into the plan: the guest's eth0 is to
//     be that interface. A namespace with only a loopback (podman
//     --network none) gives the VM no network device; a namespace that
//     does not exist is create's error.
//  2. The VMM, before it builds the VM and its seccomp filters go on,
//     makes a tap in the namespace joined to the interface by TC
//     redirects both ways (hostnet.Plumb), saves what it did in the
//     state directory (net.json), and gives the tap to the VM's network
//     device; the guest's init configures eth0 from the job.
//  3. kiln delete undoes the rest once the VMM is gone, however it
//     ended (hostnet.Teardown): the tap went with the VMM's descriptor,
//     the filter on the engine's interface goes now.
//
// The VM shape thus has two forms, with and without a network device,
// and a warm snapshot each (the warm key counts the devices); the
// device's tap, MAC address and addresses are each VM's own
// (config.Net), so every container on the engine's network restores
// from one snapshot. docs/network.md draws it.

// Network is the container's network device, as kiln create found it.
type Network struct {
	// Namespace is the engine's network namespace, Interface the
	// interface the VM takes over there.
	Namespace string `json:"netns"`
	Interface string `json:"interface"`
	// Guest is what the guest's eth0 becomes: the interface's MAC
	// address, MTU, IPv4 addresses and routes.
	Guest contract.Interface `json:"guest"`
}

// ErrNoNetns says config.json names a network namespace that does not
// exist.
var ErrNoNetns = errors.New("the container's network namespace does not exist")

// ReadNetwork reads the engine's interface in the network namespace at
// nsPath into the container's network device; nil for a namespace with
// no interface but the loopback.
func ReadNetwork(nsPath string) (*Network, error) {
	ifc, err := hostnet.Inspect(nsPath)
	switch {
	case errors.Is(err, hostnet.ErrNoInterface):
		return nil, nil
	case errors.Is(err, hostnet.ErrNoNamespace):
		return nil, fmt.Errorf("%w: %s (linux.namespaces in config.json)", ErrNoNetns, nsPath)
	case err != nil:
		return nil, fmt.Errorf("the container's network: %w", err)
	}
	return &Network{Namespace: nsPath, Interface: ifc.Name, Guest: guestInterface(ifc)}, nil
}

// guestInterface is the guest's eth0 as the engine's interface: its MAC
// address, MTU, and IPv4 addresses and routes. IPv6 is left out: the
// guest kernel is built without it (it would cost about a second more
// of every cold boot on this project's kvm-pvm hosts), and init would
// only report each IPv6 address as refused.
func guestInterface(ifc *hostnet.Interface) contract.Interface {
	g := ifc.Guest("eth0")
	g.Addrs, g.Routes = nil, nil
	for _, a := range ifc.Addrs {
		if a.Addr().Is4() {
			g.Addrs = append(g.Addrs, a)
		}
	}
	for _, r := range ifc.Routes {
		if r.Dst.Addr().Is4() {
			g.Routes = append(g.Routes, r)
		}
	}
	return g
}

// resolveNetwork reads the container's network into the plan, for kiln
// create.
func (p *Plan) resolveNetwork() error {
	if p.Netns == "" {
		return nil
	}
	n, err := ReadNetwork(p.Netns)
	if err != nil {
		return err
	}
	p.Network = n
	return nil
}

// plumb connects the VM to the engine's interface: a tap in the
// namespace, joined to it, which the VM's network device is to use. What
// it sets up is in the state directory before and after (net.json), so
// that kiln delete can undo it even if this process is killed halfway.
func (c *Container) plumb(n *Network) (*tap.Tap, error) {
	intent := hostnet.Plumbing{Namespace: n.Namespace, Interface: n.Interface, Tap: hostnet.TapName, Priority: hostnet.FilterPriority}
	if err := c.SavePlumbing(intent); err != nil {
		return nil, err
	}
	t, p, err := hostnet.Plumb(n.Namespace, n.Interface, hostnet.TapName)
	if err != nil {
		return nil, fmt.Errorf("the container's network: %w", err)
	}
	if err := c.SavePlumbing(*p); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

// withNetwork gives the VM of cfg the network device n, on the tap t.
func withNetwork(cfg *config.Config, n *Network, t *tap.Tap) error {
	mac, err := net.ParseMAC(n.Guest.MAC)
	if err != nil {
		return fmt.Errorf("the container's network: MAC %q: %w", n.Guest.MAC, err)
	}
	cfg.Nets = []config.Net{{Tap: t.Name, MAC: mac}}
	cfg.Interfaces = []contract.Interface{n.Guest}
	return nil
}

// TeardownNetwork undoes what the container's VMM plumbed (net.json), if
// anything, whether the VMM ended or was killed; the VMM must be gone.
func (c *Container) TeardownNetwork() error {
	p, err := c.LoadPlumbing()
	if err != nil || p == nil {
		return err
	}
	if err := hostnet.Teardown(*p); err != nil {
		return fmt.Errorf("the container's network: %w", err)
	}
	return os.Remove(c.NetworkPath())
}

// A network set up after create. A container whose config.json asks for
// a new network namespace (no path) has a VMM in a network namespace of
// its own (Spawn), as runc's container would have one; an engine may set
// the network up there after kiln create and before kiln start: ctr run
// --cni runs the CNI plugins on /proc/PID/ns/net in between, as runc's
// model allows. So that VM always has a network device, on a tap the VMM
// made in its namespace before its filters went on (newNetnsTap); at
// start, if an interface appeared, kiln start joins it to that tap
// (hostnet.Join) and the guest's init configures eth0 as that interface
// before the process runs (contract.ControlNetwork); if none did, eth0
// stays down, as a new namespace's only loopback leaves runc's process
// without a network.

// newNetnsTap makes the tap of a VMM in a network namespace of its own,
// and gives it to cfg's VM.
func newNetnsTap(cfg *config.Config) (*tap.Tap, error) {
	t, err := tap.Create(hostnet.TapName)
	if err != nil {
		return nil, fmt.Errorf("the container's network: %w", err)
	}
	cfg.Nets = []config.Net{{Tap: t.Name, MAC: config.DefaultMAC(t.Name)}}
	// Down until kiln start brings a network, if the engine made one
	// (contract.Interface's Down says why).
	cfg.Interfaces = []contract.Interface{{Name: config.NetName(0), MAC: cfg.Nets[0].Address().String(), Down: true}}
	return t, nil
}

// lateNetwork joins the interface an engine put in the VMM's namespace
// after create to the VM's tap, and returns what the guest's eth0 is to
// become; nil if no interface appeared.
func (c *Container) lateNetwork() ([]contract.Interface, error) {
	nsPath := fmt.Sprintf("/proc/%d/ns/net", c.Pid)
	n, err := ReadNetwork(nsPath)
	if err != nil || n == nil {
		return nil, err
	}
	intent := hostnet.Plumbing{Namespace: nsPath, Interface: n.Interface, Tap: hostnet.TapName, Priority: hostnet.FilterPriority}
	if err := c.SavePlumbing(intent); err != nil {
		return nil, err
	}
	p, err := hostnet.Join(nsPath, n.Interface, hostnet.TapName)
	if err != nil {
		return nil, fmt.Errorf("the container's network: %w", err)
	}
	if err := c.SavePlumbing(*p); err != nil {
		return nil, err
	}
	return []contract.Interface{n.Guest}, nil
}
