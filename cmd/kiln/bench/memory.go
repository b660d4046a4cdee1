package bench

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

// A VMM's memory has two parts: the guest's RAM, one big anonymous mapping
// that the host fills page by page as the guest touches it, and the VMM's
// own code, heap, stacks and device buffers. The second is the VMM's
// overhead, the number to compare between VMMs: guest memory costs the
// same whoever maps it. /proc/PID/smaps lists every mapping with its
// resident size (Rss) and proportional share (Pss, shared pages divided
// among the processes that map them).

// mapping is one entry of /proc/PID/smaps.
type mapping struct {
	name string // path or [heap] etc.; "" for anonymous memory
	size uint64 // KiB
	rss  uint64
	pss  uint64
}

// parseSmaps reads the mappings of a /proc/PID/smaps file.
func parseSmaps(r io.Reader) ([]mapping, error) {
	var maps []mapping
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if isMappingHeader(f[0]) {
			m := mapping{}
			if len(f) >= 6 {
				m.name = strings.Join(f[5:], " ")
			}
			maps = append(maps, m)
			continue
		}
		if len(maps) == 0 || len(f) < 2 {
			continue
		}
		m := &maps[len(maps)-1]
		var dst *uint64
		switch f[0] {
		case "Size:":
			dst = &m.size
		case "Rss:":
			dst = &m.rss
		case "Pss:":
			dst = &m.pss
		default:
			continue
		}
		v, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("smaps: bad %s line %q", f[0], sc.Text())
		}
		*dst = v
	}
	return maps, sc.Err()
}

// isMappingHeader reports whether a smaps field is an address range
// ("7f12a000-7f12b000"), which starts a new mapping.
func isMappingHeader(s string) bool {
	lo, hi, ok := strings.Cut(s, "-")
	if !ok || lo == "" || hi == "" {
		return false
	}
	_, e1 := strconv.ParseUint(lo, 16, 64)
	_, e2 := strconv.ParseUint(hi, 16, 64)
	return e1 == nil && e2 == nil
}

// vmmMemory splits a VMM's mappings into guest RAM and the rest. Guest RAM
// is the anonymous mapping whose size is the guest's memory (QEMU maps a
// little more, for alignment, so up to 4 MiB more is accepted), or for a
// VM restored from a kiln snapshot, the private mapping of the snapshot's
// memory file; if several match, the one with most resident pages is
// taken.
func vmmMemory(maps []mapping, guestKiB uint64) (Memory, error) {
	var mem Memory
	guest := -1
	for i, m := range maps {
		mem.RSS += m.rss
		mem.PSS += m.pss
		guestLike := m.name == "" || strings.HasSuffix(m.name, "/"+snapshotMemoryFile)
		if guestLike && m.size >= guestKiB && m.size <= guestKiB+4<<10 {
			if guest < 0 || m.rss > maps[guest].rss {
				guest = i
			}
		}
	}
	if guest < 0 {
		return mem, fmt.Errorf("no anonymous mapping of %d MiB (the guest RAM) in smaps", guestKiB>>10)
	}
	mem.Guest = maps[guest].rss
	mem.Overhead = mem.RSS - mem.Guest
	return mem, nil
}

// snapshotMemoryFile is the name of a kiln snapshot's guest RAM file
// (vmm/machine.MemoryFile).
const snapshotMemoryFile = "memory"

// readVMMMemory samples a running VMM's memory from /proc/PID/smaps.
func readVMMMemory(pid int, guestKiB uint64) (Memory, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return Memory{}, err
	}
	defer f.Close()
	maps, err := parseSmaps(f)
	if err != nil {
		return Memory{}, err
	}
	return vmmMemory(maps, guestKiB)
}

// memSample is one sample of a VMM's memory while it ran, and whether
// the guest's command was running then (kiln's "running" event).
type memSample struct {
	Memory
	running bool
}

// steadyMemory is the memory reported for one VMM, sampled every settle
// from user space to its exit: the running VM's, once start-up is over.
// With samples taken while the guest's command ran, it is the one of
// median overhead among those: kiln drops its start-up pages when the
// command starts (vmm/machine/trim.go), and its teardown, in the last
// few milliseconds, faults some of its code back in. A VMM that reports
// no such moment (QEMU) gets its last sample. nil if there is none.
func steadyMemory(samples []memSample) *Memory {
	var run []Memory
	for _, s := range samples {
		if s.running {
			run = append(run, s.Memory)
		}
	}
	if len(run) == 0 {
		if len(samples) == 0 {
			return nil
		}
		m := samples[len(samples)-1].Memory
		return &m
	}
	slices.SortStableFunc(run, func(a, b Memory) int { return cmp.Compare(a.Overhead, b.Overhead) })
	m := run[(len(run)-1)/2]
	return &m
}
