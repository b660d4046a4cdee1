package main

import (
	"encoding/binary"
	"fmt"
	"net"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/guest/contract"
)

// setupNetwork brings up lo, and eth0 as the parameter says. It uses the
// same interfaces as ip(8), but from PID 1 without starting a process:
// SIOCSIFADDR/SIOCSIFNETMASK/SIOCSIFFLAGS ioctls for the address and link,
// and one rtnetlink RTM_NEWROUTE message for the default route.
func setupNetwork(param string) error {
	if err := linkUp("lo"); err != nil {
		return err
	}
	if param == "" {
		return nil
	}
	spec, gw, _ := strings.Cut(param, ",")
	ip, ipnet, err := net.ParseCIDR(spec)
	if err != nil || ip.To4() == nil {
		return fmt.Errorf("%s=%s: want IPv4 ADDR/PREFIX[,GATEWAY]", contract.ParamNet, param)
	}
	if err := setAddr("eth0", ip.To4(), net.IP(ipnet.Mask).To4()); err != nil {
		return err
	}
	if err := linkUp("eth0"); err != nil {
		return err
	}
	if gw != "" {
		g := net.ParseIP(gw).To4()
		if g == nil {
			return fmt.Errorf("%s: bad gateway %q", contract.ParamNet, gw)
		}
		return defaultRoute("eth0", g)
	}
	return nil
}

func ioctlSocket() (int, error) {
	return unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
}

func setAddr(dev string, ip, mask net.IP) error {
	s, err := ioctlSocket()
	if err != nil {
		return err
	}
	defer unix.Close(s)
	for _, c := range []struct {
		req  uint
		addr net.IP
	}{{unix.SIOCSIFADDR, ip}, {unix.SIOCSIFNETMASK, mask}} {
		ifr, err := unix.NewIfreq(dev)
		if err != nil {
			return err
		}
		if err := ifr.SetInet4Addr(c.addr); err != nil {
			return err
		}
		if err := unix.IoctlIfreq(s, c.req, ifr); err != nil {
			return fmt.Errorf("set %s address %v: %w", dev, c.addr, err)
		}
	}
	return nil
}

func linkUp(dev string) error {
	s, err := ioctlSocket()
	if err != nil {
		return err
	}
	defer unix.Close(s)
	ifr, err := unix.NewIfreq(dev)
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(s, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("%s: %w", dev, err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(s, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring %s up: %w", dev, err)
	}
	return nil
}

// defaultRoute adds "default via gw dev dev" with one rtnetlink message:
// struct nlmsghdr, struct rtmsg, then RTA_GATEWAY and RTA_OIF attributes.
func defaultRoute(dev string, gw net.IP) error {
	ifi, err := net.InterfaceByName(dev)
	if err != nil {
		return err
	}
	s, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	defer unix.Close(s)
	le := binary.LittleEndian
	msg := make([]byte, 16+12+8+8)
	le.PutUint32(msg[0:], uint32(len(msg)))
	le.PutUint16(msg[4:], unix.RTM_NEWROUTE)
	le.PutUint16(msg[6:], unix.NLM_F_REQUEST|unix.NLM_F_ACK|unix.NLM_F_CREATE|unix.NLM_F_EXCL)
	le.PutUint32(msg[8:], 1) // sequence
	rt := msg[16:]
	rt[0] = unix.AF_INET
	rt[4] = unix.RT_TABLE_MAIN
	rt[5] = unix.RTPROT_BOOT
	rt[6] = unix.RT_SCOPE_UNIVERSE
	rt[7] = unix.RTN_UNICAST
	a := msg[28:]
	le.PutUint16(a[0:], 8)
	le.PutUint16(a[2:], unix.RTA_GATEWAY)
	copy(a[4:], gw)
	le.PutUint16(a[8:], 8)
	le.PutUint16(a[10:], unix.RTA_OIF)
	le.PutUint32(a[12:], uint32(ifi.Index))
	if err := unix.Sendto(s, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("add default route: %w", err)
	}
	ack := make([]byte, 256)
	n, _, err := unix.Recvfrom(s, ack, 0)
	if err != nil {
		return fmt.Errorf("add default route: %w", err)
	}
	if n >= 20 && le.Uint16(ack[4:]) == unix.NLMSG_ERROR {
		if code := int32(le.Uint32(ack[16:])); code != 0 {
			return fmt.Errorf("add default route via %v: %w", gw, unix.Errno(-code))
		}
	}
	return nil
}
