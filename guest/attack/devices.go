package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Finding kiln's devices from inside the guest, and taking some of them
// away from the guest kernel's drivers.
//
// Virtio-mmio devices cannot be probed: kiln announces each on the kernel
// command line as virtio_mmio.device=4K@0xd0000000:5 (size, base, IRQ).
// The kernel makes a platform device virtio-mmio.N of the N-th one, binds
// the virtio-mmio transport driver to it, and under it a virtio device
// (virtioM) that the device type's driver (virtio_blk, 9pnet_virtio, ...)
// binds. To drive a device's registers and queues itself, the attacker
// unbinds the platform device from the virtio-mmio driver: the type's
// driver is removed first (it resets the device), the transport frees its
// interrupt, and from then on no kernel code touches the window. (A
// mounted 9P share would keep its driver waiting forever in remove, so
// the attacker unmounts it first.) Devices it does not take keep their
// drivers and must go on working: that is half of what the attack tests.

// virtio device IDs (VIRTIO 1.2, 5).
const (
	idNet   = 1
	idBlock = 2
	idRNG   = 4
	id9P    = 9
	idVsock = 19
)

// window is one virtio-mmio device as the guest sees it.
type window struct {
	index int    // N of the platform device virtio-mmio.N
	base  uint64 // guest-physical base of its register window
	size  uint64
	irq   int
	id    uint32 // device ID, from sysfs
	name  string // "block vda", "9p kiln0", "vsock", "rng"
	taken bool
	regs  []byte // the register window through /dev/mem, once taken
}

func (w *window) String() string {
	return fmt.Sprintf("virtio-mmio.%d (%s) at %#x", w.index, w.name, w.base)
}

// where is how kiln's reports name the window.
func (w *window) where() string {
	return fmt.Sprintf("mmio %#x-%#x", w.base, w.base+w.size-1)
}

// findWindows reads the virtio-mmio devices off the kernel command line
// and names each from sysfs.
func findWindows() ([]*window, error) {
	b, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return nil, err
	}
	var ws []*window
	for _, f := range strings.Fields(string(b)) {
		v, ok := strings.CutPrefix(f, "virtio_mmio.device=")
		if !ok {
			continue
		}
		w, err := parseWindow(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		w.index = len(ws)
		w.id, w.name = describe(w.index)
		ws = append(ws, w)
	}
	return ws, nil
}

// parseWindow parses SIZE@BASE:IRQ (size with K or M).
func parseWindow(v string) (*window, error) {
	size, rest, ok := strings.Cut(v, "@")
	base, irq, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 {
		return nil, fmt.Errorf("want SIZE@BASE:IRQ")
	}
	mult := uint64(1)
	switch {
	case strings.HasSuffix(size, "K"):
		mult, size = 1<<10, strings.TrimSuffix(size, "K")
	case strings.HasSuffix(size, "M"):
		mult, size = 1<<20, strings.TrimSuffix(size, "M")
	}
	n, err := strconv.ParseUint(size, 0, 64)
	if err != nil {
		return nil, err
	}
	a, err := strconv.ParseUint(base, 0, 64)
	if err != nil {
		return nil, err
	}
	i, err := strconv.Atoi(irq)
	if err != nil {
		return nil, err
	}
	return &window{base: a, size: n * mult, irq: i}, nil
}

// platformDir is the sysfs directory of virtio-mmio.N.
func platformDir(n int) string {
	return fmt.Sprintf("/sys/bus/platform/devices/virtio-mmio.%d", n)
}

// virtioDir is the virtio device under virtio-mmio.N, or "" if the
// transport is not bound.
func virtioDir(n int) string {
	m, _ := filepath.Glob(filepath.Join(platformDir(n), "virtio[0-9]*"))
	if len(m) == 0 {
		return ""
	}
	return m[0]
}

// describe reads the device ID and a name for virtio-mmio.N from sysfs.
func describe(n int) (uint32, string) {
	dir := virtioDir(n)
	if dir == "" {
		return 0, "unbound"
	}
	b, _ := os.ReadFile(filepath.Join(dir, "device"))
	id, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 0, 32)
	switch id {
	case idBlock:
		if m, _ := filepath.Glob(filepath.Join(dir, "block", "*")); len(m) > 0 {
			return idBlock, "block " + filepath.Base(m[0])
		}
		return idBlock, "block"
	case id9P:
		tag, _ := os.ReadFile(filepath.Join(dir, "mount_tag"))
		return id9P, "9p " + strings.TrimRight(string(tag), "\x00\n")
	case idVsock:
		return idVsock, "vsock"
	case idRNG:
		return idRNG, "rng"
	case idNet:
		return idNet, "net"
	}
	return uint32(id), fmt.Sprintf("type %d", id)
}

// wanted reports whether the -take list names w: "all", a type ("block",
// "9p", "vsock", "rng", "net"), a disk ("vda") or a share ("9p:TAG").
func (w *window) wanted(take []string) bool {
	kind, detail, _ := strings.Cut(w.name, " ")
	for _, t := range take {
		switch {
		case t == "all", t == kind, detail != "" && t == detail,
			kind == "9p" && t == "9p:"+detail:
			return true
		}
	}
	return false
}

// take unbinds w from the guest kernel (unmounting a 9P share first) and
// maps its registers.
func (w *window) take() error {
	if w.id == id9P {
		_, tag, _ := strings.Cut(w.name, " ")
		if err := unmount9P(tag); err != nil {
			return err
		}
	}
	if virtioDir(w.index) != "" {
		dev := fmt.Sprintf("virtio-mmio.%d", w.index)
		if err := os.WriteFile("/sys/bus/platform/drivers/virtio-mmio/unbind", []byte(dev), 0); err != nil {
			return fmt.Errorf("unbind %s: %w", dev, err)
		}
	}
	regs, err := mapPhys(w.base, w.size, true)
	if err != nil {
		return err
	}
	w.regs, w.taken = regs, true
	return nil
}

// unmount9P unmounts every 9P mount of tag.
func unmount9P(tag string) error {
	b, err := os.ReadFile("/proc/mounts")
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[2] == "9p" && f[0] == tag {
			if err := unix.Unmount(f[1], 0); err != nil {
				return fmt.Errorf("unmount share %s at %s: %w", tag, f[1], err)
			}
		}
	}
	return nil
}
