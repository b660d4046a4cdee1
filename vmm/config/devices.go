package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Disk is a virtio block device backed by a raw image file.
type Disk struct {
	Path     string
	ReadOnly bool
}

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

// DiskName is what the guest calls the i-th disk: vda, vdb, ...
func DiskName(i int) string {
	if i < 26 {
		return "vd" + string(rune('a'+i))
	}
	return fmt.Sprintf("vd%c%c", 'a'+i/26-1, 'a'+i%26)
}

// Vsock is a virtio socket device: the guest's CID and the unix socket
// through which host programs reach it (docs/virtio.md).
type Vsock struct {
	CID  uint64
	Path string
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

// Net is a virtio network device on a host tap, and how the guest's init
// configures it.
type Net struct {
	Tap     string
	MAC     net.HardwareAddr // nil: one derived from the tap name
	IP      string           // ADDR/PREFIX for eth0, or "" to leave it down
	Gateway string
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
		// A locally administered unicast address derived from the tap name,
		// stable across runs.
		h := uint32(2166136261)
		for _, c := range []byte(n.Tap) {
			h = (h ^ uint32(c)) * 16777619
		}
		n.MAC = net.HardwareAddr{0x02, 0x4b, byte(h >> 24), byte(h >> 16), byte(h >> 8), byte(h)}
	}
	return n, nil
}
