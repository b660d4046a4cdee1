package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/guest/contract"
)

// setupNetwork brings up lo at boot, and eth0 as ParamNet says (kiln
// run --net ...,ip=,gw=), the same way as a job's interfaces. It turns
// arp_notify on for every interface (conf/all), so that an interface
// announces its addresses with gratuitous ARP whenever it comes up: the
// network learns where they are now, as after VIRTIO_NET_S_ANNOUNCE.
// Set once here, it is in every snapshot, not written with each job.
func setupNetwork(param string) error {
	// Best effort: without IPv4 there is nothing to announce.
	os.WriteFile("/proc/sys/net/ipv4/conf/all/arp_notify", []byte("1"), 0)
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("open rtnetlink: %w", err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("lo: %w", err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("bring lo up: %w", err)
	}
	if param == "" {
		return nil
	}
	ifc, err := contract.ParseNetParam(param)
	if err != nil {
		return err
	}
	return configure(h, ifc)
}

// applyNetwork configures the interfaces a job names (contract.Job.Net),
// all through one rtnetlink socket. A failure is reported and the rest
// goes on: a guest with part of its network still runs its command.
func applyNetwork(ifcs []contract.Interface) {
	if len(ifcs) == 0 {
		return
	}
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kiln init: network: open rtnetlink: %v\n", err)
		return
	}
	defer h.Close()
	for _, ifc := range ifcs {
		if err := configure(h, ifc); err != nil {
			fmt.Fprintf(os.Stderr, "kiln init: network: %v\n", err)
		}
	}
}

// configure makes an interface what ifc says, whatever it had before (a
// VM restored from a snapshot may have had the snapshot's addresses),
// through rtnetlink as ip(8) would, from PID 1 without starting a
// process:
//
//  1. take it down (which drops the routes through it) and remove its
//     addresses;
//  2. set its MAC address (virtio-net lets the guest choose it: Linux's
//     virtnet_set_mac_address changes it locally when the device offers
//     no control queue) and its MTU;
//  3. add the addresses; an IPv6 one without duplicate address
//     detection, since the engine checked it and the guest should not
//     wait a second before using it;
//  4. bring it up (arp_notify, set at boot, announces its addresses);
//  5. add the routes.
//
// Every request is a system call into a guest kernel whose every
// instruction is emulated on kvm-pvm: a large part of a second each,
// more than the work it asks for. So the requests go through one socket (h),
// and a step that would change nothing is left out: taking down an
// interface that is down, setting the MAC address or MTU it has.
//
// Steps 3 to 5 go on past a failure (an IPv6 address in a guest kernel
// without IPv6), and the errors are returned together.
func configure(h *netlink.Handle, ifc contract.Interface) error {
	if err := ifc.Validate(); err != nil {
		return err
	}
	link, err := h.LinkByName(ifc.Name)
	if err != nil {
		return fmt.Errorf("%s: %w", ifc.Name, err)
	}
	attrs := link.Attrs()
	if attrs.Flags&net.FlagUp != 0 {
		if err := h.LinkSetDown(link); err != nil {
			return fmt.Errorf("take %s down: %w", ifc.Name, err)
		}
	}
	old, err := h.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("list %s's addresses: %w", ifc.Name, err)
	}
	for _, a := range old {
		// Removing an IPv4 primary address removes its secondaries.
		if err := h.AddrDel(link, &a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			return fmt.Errorf("remove %v from %s: %w", a.IPNet, ifc.Name, err)
		}
	}
	if ifc.MAC != "" {
		mac, _ := net.ParseMAC(ifc.MAC) // Validate parsed it
		if !bytes.Equal(mac, attrs.HardwareAddr) {
			if err := h.LinkSetHardwareAddr(link, mac); err != nil {
				return fmt.Errorf("set %s's MAC address to %s: %w", ifc.Name, ifc.MAC, err)
			}
		}
	}
	if ifc.MTU != 0 && ifc.MTU != attrs.MTU {
		if err := h.LinkSetMTU(link, ifc.MTU); err != nil {
			return fmt.Errorf("set %s's MTU to %d: %w", ifc.Name, ifc.MTU, err)
		}
	}
	if ifc.Down {
		return nil // no network yet: a later configure brings it up
	}

	var errs []error
	for _, p := range ifc.Addrs {
		a := &netlink.Addr{IPNet: ipNet(p)}
		if p.Addr().Is6() {
			a.Flags = unix.IFA_F_NODAD
		}
		if err := h.AddrAdd(link, a); err != nil {
			errs = append(errs, fmt.Errorf("add %v to %s: %w%s", p, ifc.Name, err, noIPv6(p.Addr(), err)))
		}
	}
	if err := h.LinkSetUp(link); err != nil {
		return errors.Join(append(errs, fmt.Errorf("bring %s up: %w", ifc.Name, err))...)
	}
	for _, r := range ifc.Routes {
		nr := &netlink.Route{LinkIndex: attrs.Index, Dst: ipNet(r.Dst.Masked()), Scope: netlink.SCOPE_UNIVERSE}
		if r.Via.IsValid() {
			nr.Gw = r.Via.AsSlice()
		} else {
			nr.Scope = netlink.SCOPE_LINK
		}
		if err := h.RouteReplace(nr); err != nil {
			errs = append(errs, fmt.Errorf("add route %v on %s: %w%s", r, ifc.Name, err, noIPv6(r.Dst.Addr(), err)))
		}
	}
	return errors.Join(errs...)
}

// noIPv6 explains the error rtnetlink gives for an IPv6 address or
// route when the guest kernel is built without IPv6 (it is, for now:
// guest/kernel/kiln.config): no handler for the family.
func noIPv6(a netip.Addr, err error) string {
	if a.Is6() && (errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EAFNOSUPPORT)) {
		return " (the guest kernel has no IPv6)"
	}
	return ""
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
