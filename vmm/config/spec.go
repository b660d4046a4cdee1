package config

// The textual form of a device, as kiln run's device flags take it
// (--disk PATH[,ro], --vsock CID,PATH, --net tap=NAME,..., --share
// HOSTDIR[:GUESTDIR][,ro][,tag=TAG]). Errors name the flag, and are
// usage errors.

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
)

// ParseDisk parses a --disk value: PATH[,ro].
func ParseDisk(s string) (Disk, error) {
	parts := strings.Split(s, ",")
	d := Disk{Path: parts[0]}
	if d.Path == "" {
		return Disk{}, fmt.Errorf("%w: --disk %q: no path", ErrUsage, s)
	}
	for _, opt := range parts[1:] {
		switch opt {
		case "ro":
			d.ReadOnly = true
		case "rw":
			d.ReadOnly = false
		default:
			return Disk{}, fmt.Errorf("%w: --disk %q: unknown option %q (want PATH[,ro])", ErrUsage, s, opt)
		}
	}
	return d, nil
}

// ParseVsock parses a --vsock value: CID,PATH.
func ParseVsock(s string) (Vsock, error) {
	cid, path, ok := strings.Cut(s, ",")
	n, err := strconv.ParseUint(cid, 10, 32)
	if !ok || err != nil || path == "" {
		return Vsock{}, fmt.Errorf("%w: --vsock %q: want CID,PATH (e.g. 3,/tmp/kiln.vsock)", ErrUsage, s)
	}
	if n < 3 || n >= 0xffffffff {
		return Vsock{}, fmt.Errorf("%w: --vsock %q: CID %d is reserved (want 3 to 4294967294)", ErrUsage, s, n)
	}
	return Vsock{CID: n, Path: path}, nil
}

// ParseNet parses a --net value: tap=NAME[,mac=MAC][,ip=ADDR/PREFIX][,gw=ADDR].
func ParseNet(s string) (Net, error) {
	var n Net
	for _, kv := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "tap":
			n.Tap = v
		case "mac":
			mac, err := net.ParseMAC(v)
			if err != nil || len(mac) != 6 {
				return Net{}, fmt.Errorf("%w: --net %q: bad MAC %q", ErrUsage, s, v)
			}
			n.MAC = mac
		case "ip":
			if ip, _, err := net.ParseCIDR(v); err != nil || ip.To4() == nil {
				return Net{}, fmt.Errorf("%w: --net %q: ip=%q is not an IPv4 ADDR/PREFIX", ErrUsage, s, v)
			}
			n.IP = v
		case "gw":
			if ip := net.ParseIP(v); ip == nil || ip.To4() == nil {
				return Net{}, fmt.Errorf("%w: --net %q: gw=%q is not an IPv4 address", ErrUsage, s, v)
			}
			n.Gateway = v
		default:
			return Net{}, fmt.Errorf("%w: --net %q: unknown option %q (want tap=NAME[,mac=MAC][,ip=ADDR/PREFIX][,gw=ADDR])", ErrUsage, s, k)
		}
	}
	if n.Tap == "" {
		return Net{}, fmt.Errorf("%w: --net %q: no tap=NAME", ErrUsage, s)
	}
	if n.Gateway != "" && n.IP == "" {
		return Net{}, fmt.Errorf("%w: --net %q: gw= needs ip=", ErrUsage, s)
	}
	if n.MAC == nil {
		n.MAC = DefaultMAC(n.Tap)
	}
	return n, nil
}

// ParseShare parses the i-th --share value:
// HOSTDIR[:GUESTDIR][,ro][,tag=TAG]. GUESTDIR defaults to /mnt/ and
// HOSTDIR's last element, TAG to kiln<i>.
func ParseShare(s string, i int) (Share, error) {
	parts := strings.Split(s, ",")
	host, guest, _ := strings.Cut(parts[0], ":")
	if host == "" {
		return Share{}, fmt.Errorf("%w: --share %q: no host directory", ErrUsage, s)
	}
	abs, err := filepath.Abs(host)
	if err != nil {
		return Share{}, fmt.Errorf("%w: --share %q: %v", ErrUsage, s, err)
	}
	sh := Share{HostDir: abs, GuestDir: guest, Tag: ShareTag(i)}
	if sh.GuestDir == "" {
		base := filepath.Base(abs)
		if base == "/" {
			base = "root"
		}
		sh.GuestDir = "/mnt/" + base
	}
	if !filepath.IsAbs(sh.GuestDir) || filepath.Clean(sh.GuestDir) == "/" {
		return Share{}, fmt.Errorf("%w: --share %q: the guest directory must be an absolute path other than /", ErrUsage, s)
	}
	sh.GuestDir = filepath.Clean(sh.GuestDir)
	for _, opt := range parts[1:] {
		k, v, _ := strings.Cut(opt, "=")
		switch {
		case opt == "ro":
			sh.ReadOnly = true
		case opt == "rw":
			sh.ReadOnly = false
		case k == "tag" && v != "" && len(v) <= 255:
			sh.Tag = v
		default:
			return Share{}, fmt.Errorf("%w: --share %q: unknown option %q (want HOSTDIR[:GUESTDIR][,ro][,tag=TAG])", ErrUsage, s, opt)
		}
	}
	return sh, nil
}
