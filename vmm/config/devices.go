package config

import (
	"fmt"
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
