package hostnet

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/devices/tap"
)

// TapName is the name of the tap Plumb makes when given none. One VM
// joins a namespace (a second would find the engine's interface taken).
const TapName = "kilntap0"

// FilterPriority is the priority of kiln's TC filters: Teardown removes
// the filters of this priority, and only those, from the engine's
// interface.
const FilterPriority = 0x4b4c // "KL"

// Plumbing describes what Plumb set up in a namespace, for Teardown: a
// VMM's state file keeps it, so that another process (kiln delete) can
// undo it after the VMM is gone.
type Plumbing struct {
	// Namespace is the namespace's path.
	Namespace string `json:"netns"`
	// Interface is the engine's interface there, Tap the VM's.
	Interface string `json:"interface"`
	Tap       string `json:"tap"`
	// Priority is the TC filters' priority on both (FilterPriority).
	Priority uint16 `json:"tc_priority"`
	// AddedQdisc says the ingress qdisc on Interface is Plumb's, not
	// the engine's, so Teardown removes it too.
	AddedQdisc bool `json:"added_qdisc,omitempty"`
}

// ErrPlumbed says the engine's interface already redirects its frames
// to a VM's tap.
var ErrPlumbed = errors.New("already connected to a VM")

// Plumb connects the engine's interface ifName in the namespace at
// nsPath to a new tap called tapName ("" for TapName) made there, and
// returns the tap, open, and what Teardown needs to undo the rest. In
// the namespace it
//
//  1. makes the tap (devices/tap Create; it lives as long as the
//     returned Tap is open) with ifName's MTU, its IPv6 link-local
//     address generation off (the namespace's own stack has nothing to
//     say to the guest), and brings it up;
//  2. adds an ingress qdisc to ifName (unless it has one) and to the
//     tap: `tc qdisc add dev IF ingress`;
//  3. adds a filter to each that redirects every frame to the other:
//     `tc filter add dev IF parent ffff: protocol all prio P u32 match
//     u8 0 0 action mirred egress redirect dev TAP`, and the same from
//     the tap to IF.
//
// On an error, what was done is undone. Nothing outside the namespace
// changes.
func Plumb(nsPath, ifName, tapName string) (*tap.Tap, *Plumbing, error) {
	if tapName == "" {
		tapName = TapName
	}
	p := &Plumbing{Namespace: nsPath, Interface: ifName, Tap: tapName, Priority: FilterPriority}
	var t *tap.Tap
	err := InNamespace(nsPath, func() (err error) {
		link, err := netlink.LinkByName(ifName)
		if err != nil {
			return fmt.Errorf("find interface %s: %w", ifName, err)
		}
		if err := checkFree(link, p.Priority); err != nil {
			return err
		}
		if t, err = tap.Create(tapName); err != nil {
			return err
		}
		defer func() {
			if err != nil {
				undo(link, p)
				t.Close() // the tap, its qdisc and its filter go with it
				t = nil
			}
		}()
		return join(link, tapName, p)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("connect %s in network namespace %s to a tap: %w", ifName, nsPath, err)
	}
	return t, p, nil
}

// Join connects the engine's interface ifName in the namespace at nsPath
// to the tap tapName that is there already (a VMM made it when it made
// the namespace, before the engine put its interface there: ctr run
// --cni does so between kiln create and kiln start), as Plumb does from
// its step 1's MTU on. The tap stays its maker's: Join does not open it.
func Join(nsPath, ifName, tapName string) (*Plumbing, error) {
	p := &Plumbing{Namespace: nsPath, Interface: ifName, Tap: tapName, Priority: FilterPriority}
	err := InNamespace(nsPath, func() error {
		link, err := netlink.LinkByName(ifName)
		if err != nil {
			return fmt.Errorf("find interface %s: %w", ifName, err)
		}
		if err := checkFree(link, p.Priority); err != nil {
			return err
		}
		if err := join(link, tapName, p); err != nil {
			undo(link, p)
			return err
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("connect %s in network namespace %s to tap %s: %w", ifName, nsPath, tapName, err)
	}
	return p, nil
}

// join gives the tap tapName link's MTU, brings it up and redirects each
// one's frames to the other (Plumb's steps 1 to 3 but the tap's making),
// in the namespace the calling thread is in.
func join(link netlink.Link, tapName string, p *Plumbing) error {
	tl, err := netlink.LinkByName(tapName)
	if err != nil {
		return fmt.Errorf("find the tap %s: %w", tapName, err)
	}
	if err := netlink.LinkSetMTU(tl, link.Attrs().MTU); err != nil {
		return fmt.Errorf("set tap %s's MTU to %d: %w", tapName, link.Attrs().MTU, err)
	}
	// Best effort: a namespace without IPv6 has nothing to turn off.
	_ = netlink.LinkSetIP6AddrGenMode(tl, addrGenModeNone)
	if err := netlink.LinkSetUp(tl); err != nil {
		return fmt.Errorf("bring tap %s up: %w", tapName, err)
	}
	if p.AddedQdisc, err = addIngress(link); err != nil {
		return err
	}
	if _, err := addIngress(tl); err != nil {
		return err
	}
	if err := addRedirect(link, tl, p.Priority); err != nil {
		return err
	}
	return addRedirect(tl, link, p.Priority)
}

// addrGenModeNone is IN6_ADDR_GEN_MODE_NONE (linux/if_link.h): the
// kernel gives the interface no IPv6 link-local address.
const addrGenModeNone = 1

// ingressParent is the ingress qdisc's handle, ffff:, the parent of its
// filters.
var ingressParent = netlink.MakeHandle(0xffff, 0)

// checkFree refuses an interface that has kiln's filters already: it is
// another VM's.
func checkFree(link netlink.Link, prio uint16) error {
	fs, err := netlink.FilterList(link, ingressParent)
	if err != nil {
		return nil // no ingress qdisc: no filters
	}
	for _, f := range fs {
		if f.Attrs().Priority == prio {
			return fmt.Errorf("%s: %w (a TC filter of priority %#x is on its ingress; kiln delete of that container removes it)", link.Attrs().Name, ErrPlumbed, prio)
		}
	}
	return nil
}

// addIngress adds an ingress qdisc to link, and says whether it did (it
// did not if link had one).
func addIngress(link netlink.Link) (bool, error) {
	q := &netlink.Ingress{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: link.Attrs().Index, Parent: netlink.HANDLE_INGRESS}}
	err := netlink.QdiscAdd(q)
	if errors.Is(err, unix.EEXIST) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("add an ingress qdisc to %s: %w", link.Attrs().Name, err)
	}
	return true, nil
}

// redirect is the filter on from's ingress that sends every frame out
// of the device with index to.
func redirect(from netlink.Link, to int, prio uint16) *netlink.U32 {
	return &netlink.U32{
		FilterAttrs: netlink.FilterAttrs{
			LinkIndex: from.Attrs().Index,
			Parent:    ingressParent,
			Priority:  prio,
			Protocol:  unix.ETH_P_ALL,
		},
		// No selector: netlink's default matches every frame (one key,
		// mask 0).
		Actions: []netlink.Action{netlink.NewMirredAction(to)},
	}
}

func addRedirect(from, to netlink.Link, prio uint16) error {
	if err := netlink.FilterAdd(redirect(from, to.Attrs().Index, prio)); err != nil {
		return fmt.Errorf("add a TC filter redirecting %s to %s: %w", from.Attrs().Name, to.Attrs().Name, err)
	}
	return nil
}

// undo removes kiln's filter from link, and the ingress qdisc if p
// added it and nothing else uses it.
func undo(link netlink.Link, p *Plumbing) error {
	f := &netlink.U32{FilterAttrs: netlink.FilterAttrs{
		LinkIndex: link.Attrs().Index, Parent: ingressParent,
		Priority: p.Priority, Protocol: unix.ETH_P_ALL,
	}}
	// Without a handle, the delete takes every filter of the priority.
	err := netlink.FilterDel(f)
	if err != nil && !gone(err) {
		return fmt.Errorf("remove kiln's TC filter from %s: %w", link.Attrs().Name, err)
	}
	if !p.AddedQdisc {
		return nil
	}
	if fs, err := netlink.FilterList(link, ingressParent); err == nil && len(fs) > 0 {
		return nil // the engine's, or another program's: they keep it
	}
	q := &netlink.Ingress{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: link.Attrs().Index, Parent: netlink.HANDLE_INGRESS}}
	if err := netlink.QdiscDel(q); err != nil && !gone(err) {
		return fmt.Errorf("remove the ingress qdisc from %s: %w", link.Attrs().Name, err)
	}
	return nil
}

// gone says a netlink error means what was to be removed is not there.
func gone(err error) bool {
	return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.EINVAL)
}
