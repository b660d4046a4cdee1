package main

// Parsers of the values of kiln run's device flags. The grammar of a flag
// value (PATH[,ro], CID,PATH, tap=NAME,...) belongs to the command line:
// the VMM core (vmm/config) only sees the parsed settings.

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kiln-vmm/kiln/vmm/config"
)

// parseDisk parses a --disk value: PATH[,ro].
func parseDisk(s string) (config.Disk, error) {
	parts := strings.Split(s, ",")
	d := config.Disk{Path: parts[0]}
	if d.Path == "" {
		return config.Disk{}, fmt.Errorf("%w: --disk %q: no path", config.ErrUsage, s)
	}
	for _, opt := range parts[1:] {
		switch opt {
		case "ro":
			d.ReadOnly = true
		case "rw":
			d.ReadOnly = false
		default:
			return config.Disk{}, fmt.Errorf("%w: --disk %q: unknown option %q (want PATH[,ro])", config.ErrUsage, s, opt)
		}
	}
	return d, nil
}

// parseVsock parses a --vsock value: CID,PATH.
func parseVsock(s string) (config.Vsock, error) {
	cid, path, ok := strings.Cut(s, ",")
	n, err := strconv.ParseUint(cid, 10, 32)
	if !ok || err != nil || path == "" {
		return config.Vsock{}, fmt.Errorf("%w: --vsock %q: want CID,PATH (e.g. 3,/tmp/kiln.vsock)", config.ErrUsage, s)
	}
	if n < 3 || n >= 0xffffffff {
		return config.Vsock{}, fmt.Errorf("%w: --vsock %q: CID %d is reserved (want 3 to 4294967294)", config.ErrUsage, s, n)
	}
	return config.Vsock{CID: n, Path: path}, nil
}

// parseNet parses a --net value: tap=NAME[,mac=MAC][,ip=ADDR/PREFIX][,gw=ADDR].
func parseNet(s string) (config.Net, error) {
	var n config.Net
	for _, kv := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "tap":
			n.Tap = v
		case "mac":
			mac, err := net.ParseMAC(v)
			if err != nil || len(mac) != 6 {
				return config.Net{}, fmt.Errorf("%w: --net %q: bad MAC %q", config.ErrUsage, s, v)
			}
			n.MAC = mac
		case "ip":
			if ip, _, err := net.ParseCIDR(v); err != nil || ip.To4() == nil {
				return config.Net{}, fmt.Errorf("%w: --net %q: ip=%q is not an IPv4 ADDR/PREFIX", config.ErrUsage, s, v)
			}
			n.IP = v
		case "gw":
			if ip := net.ParseIP(v); ip == nil || ip.To4() == nil {
				return config.Net{}, fmt.Errorf("%w: --net %q: gw=%q is not an IPv4 address", config.ErrUsage, s, v)
			}
			n.Gateway = v
		default:
			return config.Net{}, fmt.Errorf("%w: --net %q: unknown option %q (want tap=NAME[,mac=MAC][,ip=ADDR/PREFIX][,gw=ADDR])", config.ErrUsage, s, k)
		}
	}
	if n.Tap == "" {
		return config.Net{}, fmt.Errorf("%w: --net %q: no tap=NAME", config.ErrUsage, s)
	}
	if n.Gateway != "" && n.IP == "" {
		return config.Net{}, fmt.Errorf("%w: --net %q: gw= needs ip=", config.ErrUsage, s)
	}
	if n.MAC == nil {
		n.MAC = config.DefaultMAC(n.Tap)
	}
	return n, nil
}

// parseShare parses the i-th --share value:
// HOSTDIR[:GUESTDIR][,ro][,tag=TAG]. GUESTDIR defaults to /mnt/ and
// HOSTDIR's last element, TAG to kiln<i>.
func parseShare(s string, i int) (config.Share, error) {
	parts := strings.Split(s, ",")
	host, guest, _ := strings.Cut(parts[0], ":")
	if host == "" {
		return config.Share{}, fmt.Errorf("%w: --share %q: no host directory", config.ErrUsage, s)
	}
	abs, err := filepath.Abs(host)
	if err != nil {
		return config.Share{}, fmt.Errorf("%w: --share %q: %v", config.ErrUsage, s, err)
	}
	sh := config.Share{HostDir: abs, GuestDir: guest, Tag: config.ShareTag(i)}
	if sh.GuestDir == "" {
		base := filepath.Base(abs)
		if base == "/" {
			base = "root"
		}
		sh.GuestDir = "/mnt/" + base
	}
	if !filepath.IsAbs(sh.GuestDir) || filepath.Clean(sh.GuestDir) == "/" {
		return config.Share{}, fmt.Errorf("%w: --share %q: the guest directory must be an absolute path other than /", config.ErrUsage, s)
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
			return config.Share{}, fmt.Errorf("%w: --share %q: unknown option %q (want HOSTDIR[:GUESTDIR][,ro][,tag=TAG])", config.ErrUsage, s, opt)
		}
	}
	return sh, nil
}
