// Command attack is a guest that attacks kiln: for a fixed time it drives
// kiln's devices with hostile input from inside the VM, then checks that
// they still serve, and leaves each one it attacked asking for a reset.
//
//	attack [-seed N] [-budget 20s] [-take LIST] [-blk-sectors N] [-vsock-port P]
//
// It needs root: it unbinds devices from the guest kernel's drivers
// (sysfs), reaches their registers and guest RAM through /dev/mem, and
// kiln's I/O ports through ioperm(2). -take names the devices to take from
// the kernel and attack (devices.go): "all", a type (block, 9p, vsock,
// rng, net), a disk (vda) or a share (9p:TAG). The others keep their
// drivers, and a test checks that they still work.
//
// What it does, in a loop until the budget is spent, each step chosen by
// a random generator seeded with -seed (printed first: "attack: seed N"),
// so that a run can be repeated:
//
//   - virtqueues (hostile.go): descriptor loops, chains longer than the
//     queue, buffers outside RAM or straddling its end, zero and 4 GiB
//     lengths, indices that jump, malformed indirect tables, rings outside
//     RAM and queue sizes the device does not take, notifications before
//     DRIVER_OK, features never offered, configuration-space writes past
//     its end, status games on a running device, resets with requests in
//     flight;
//   - device requests (requests.go, vsock.go, p9.go): block reads, writes
//     and discards past the end of the disk or by the hundred megabytes,
//     entropy by the gigabyte, vsock packets of nonsense, floods of
//     connection requests, data packets of many times guest RAM, 9P
//     messages whose fields and sizes lie;
//   - I/O ports and device memory (ports.go): kiln's serial port, i8042
//     and signal device, and ports and MMIO addresses where nothing is.
//
// Its own checks: a device never accepts features it did not offer,
// never serves a queue before DRIVER_OK, never writes the used ring after
// a reset, and serves a good request after a reset (checked every few
// steps and at the end). Each problem prints "attack: PROBLEM ..." and
// makes the exit status 1. Finally each attacked device is left in
// DEVICE_NEEDS_RESET ("attack: left ... needing a reset"), for kiln's
// report to show.
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"time"
)

// attacker is the state of one run.
type attacker struct {
	rnd        *rand.Rand
	verbose    bool
	ram        []span
	ramEnd     uint64
	arena      *arena
	ws         []*window
	devs       []*dev
	holeMaps   []mmioHole
	cid        uint64 // the guest's vsock CID
	listenPort uint32 // a host port with a listener (-vsock-port)
	vsockFlood int    // most connection requests in one flood
	vsockPort  uint32 // source ports handed out so far
	blkSectors uint64 // sectors [0, N) of a taken disk may be written
	problems   []string
	steps      map[string]int
	ports      bool // the I/O ports were granted
}

func main() {
	// ioperm(2) is per thread: the whole attack runs on this one.
	runtime.LockOSThread()
	seed := flag.Uint64("seed", 0, "random seed (0: pick one and print it)")
	budget := flag.Duration("budget", 20*time.Second, "how long to attack")
	maxSteps := flag.Int("steps", 0, "stop after this many steps (0: when the budget is spent)")
	take := flag.String("take", "all", "devices to take from the guest kernel and attack: all, block, 9p, vsock, rng, net, vdX, 9p:TAG (comma-separated)")
	blkSectors := flag.Uint64("blk-sectors", 0, "a taken disk's sectors [0, N) may be written (0: none)")
	listenPort := flag.Uint("vsock-port", 5000, "a vsock port with a host listener, for connection floods")
	flood := flag.Int("vsock-flood", 1200, "most vsock connection requests in one flood")
	noPorts := flag.Bool("no-ports", false, "leave the I/O ports alone")
	verbose := flag.Bool("v", false, "print every step")
	flag.Parse()

	if *seed == 0 {
		*seed = uint64(time.Now().UnixNano())&(1<<53-1) | 1
	}
	fmt.Printf("attack: seed %d (repeat with: attack -seed %d -budget %v -take %s)\n", *seed, *seed, *budget, *take)
	at := &attacker{
		rnd:        rand.New(rand.NewPCG(*seed, *seed^0x6b696c6e)),
		verbose:    *verbose,
		listenPort: uint32(*listenPort),
		vsockFlood: max(*flood, 1),
		blkSectors: *blkSectors,
		steps:      map[string]int{},
	}
	if err := at.prepare(strings.Split(*take, ","), !*noPorts); err != nil {
		fmt.Fprintf(os.Stderr, "attack: %v\n", err)
		os.Exit(2)
	}
	deadline := time.Now().Add(*budget)
	steps := at.run(deadline, *maxSteps)
	at.finish(steps)
	if len(at.problems) > 0 {
		fmt.Printf("attack: %d problems\n", len(at.problems))
		os.Exit(1)
	}
	fmt.Println("attack: no problems")
}

// prepare finds and takes the devices, locates the arena and grants the
// ports.
func (at *attacker) prepare(take []string, ports bool) error {
	var err error
	if at.ram, err = systemRAM(); err != nil {
		return err
	}
	at.ramEnd = at.ram[len(at.ram)-1].end
	if at.ws, err = findWindows(); err != nil {
		return err
	}
	if len(at.ws) == 0 {
		return fmt.Errorf("no virtio-mmio devices on the kernel command line")
	}
	// The arena: 4 MiB, of which at most half is the contiguous run.
	if at.arena, err = newArena(1024, at.ram); err != nil {
		return err
	}
	a := at.arena
	if a.bigPages > 512 {
		a.bigFirst, a.bigPages = a.bigFirst+a.bigPages-512, 512
	}
	var small []int
	for i := range a.phys {
		if i < a.bigFirst || i >= a.bigFirst+a.bigPages {
			small = append(small, i)
		}
	}
	fmt.Printf("attack: RAM ends at %#x; arena of %d pages, a run of %d contiguous at %#x\n",
		at.ramEnd, len(a.phys), a.bigPages, a.phys[a.bigFirst])
	for _, w := range at.ws {
		if !w.wanted(take) {
			fmt.Printf("attack: kept %v\n", w)
			continue
		}
		if err := w.take(); err != nil {
			return fmt.Errorf("take %v: %w", w, err)
		}
		d := newDev(w, a, small)
		if len(d.qs) == 0 {
			return fmt.Errorf("%v: no queues", w)
		}
		if w.id == idVsock {
			at.cid = uint64(d.config32(0)) | uint64(d.config32(4))<<32
		}
		at.devs = append(at.devs, d)
		fmt.Printf("attack: took %v (%s)\n", w, w.where())
	}
	if ports {
		if err := grantPorts(); err != nil {
			return err
		}
		at.ports = true
	}
	at.holeMaps = at.holes()
	return nil
}

// action is one kind of step.
type action struct {
	name   string
	weight int
	on     func(*dev) bool // which devices it applies to; nil: none needed
	run    func(*attacker, *dev) string
}

func isType(id uint32) func(*dev) bool { return func(d *dev) bool { return d.w.id == id } }
func anyDev(*dev) bool                 { return true }

var actions = []action{
	{"malformed chain", 12, anyDev, (*attacker).vqMalformed},
	{"rings", 4, anyDev, (*attacker).vqRings},
	{"features", 3, anyDev, (*attacker).vqFeatures},
	{"early notify", 2, anyDev, (*attacker).vqEarly},
	{"registers", 4, anyDev, (*attacker).vqRegs},
	{"config space", 2, anyDev, (*attacker).vqConfig},
	{"status games", 3, anyDev, (*attacker).vqStatusGames},
	{"reset race", 2, anyDev, (*attacker).vqResetRace},
	{"block requests", 8, isType(idBlock), (*attacker).blkAttack},
	{"entropy requests", 4, isType(idRNG), (*attacker).rngAttack},
	{"vsock packets", 10, isType(idVsock), (*attacker).vsockAttack},
	{"9P messages", 10, isType(id9P), (*attacker).p9Attack},
	{"net frames", 4, isType(idNet), (*attacker).netAttack},
	{"ports", 6, nil, func(at *attacker, _ *dev) string { return at.portAttack() }},
	{"device memory", 3, nil, func(at *attacker, _ *dev) string { return at.mmioAttack() }},
}

// run takes steps until the deadline (or maxSteps) and returns how many.
func (at *attacker) run(deadline time.Time, maxSteps int) int {
	total := 0
	for _, a := range actions {
		total += a.weight
	}
	step := 0
	lastNote := time.Now()
	for ; maxSteps == 0 || step < maxSteps; step++ {
		if time.Now().After(deadline) {
			break
		}
		// Draw the step whatever the devices are: the sequence of steps
		// depends on the seed alone.
		k := at.rnd.IntN(total)
		var a action
		for _, a = range actions {
			if k < a.weight {
				break
			}
			k -= a.weight
		}
		di := at.rnd.IntN(max(len(at.devs), 1))
		var d *dev
		if a.on != nil {
			var fit []*dev
			for _, c := range at.devs {
				if a.on(c) {
					fit = append(fit, c)
				}
			}
			if len(fit) == 0 {
				continue
			}
			d = fit[di%len(fit)]
		} else if a.name == "ports" && !at.ports {
			continue
		}
		began := time.Now()
		what := a.run(at, d)
		at.steps[a.name]++
		if at.verbose {
			where := ""
			if d != nil {
				where = d.w.name + ": "
			}
			fmt.Printf("attack: #%d %s: %s%s (%v)\n", step, a.name, where, what, time.Since(began).Round(time.Millisecond))
		} else if time.Since(lastNote) > 5*time.Second {
			fmt.Printf("attack: %d steps, %v left\n", step, time.Until(deadline).Round(time.Second))
			lastNote = time.Now()
		}
		if step%50 == 49 {
			for _, d := range at.devs {
				at.serves(d)
			}
		}
	}
	return step
}

// finish checks that every attacked device still serves after a reset,
// then leaves each asking for one.
func (at *attacker) finish(steps int) {
	var names []string
	for _, a := range actions {
		if n := at.steps[a.name]; n > 0 {
			names = append(names, fmt.Sprintf("%s %d", a.name, n))
		}
	}
	fmt.Printf("attack: %d steps: %s\n", steps, strings.Join(names, ", "))
	for _, d := range at.devs {
		if at.serves(d) {
			fmt.Printf("attack: %v serves after a reset\n", d.w)
		}
	}
	for _, d := range at.devs {
		if at.breakForGood(d) {
			fmt.Printf("attack: left %v (%s) needing a reset: status %#x\n", d.w, d.w.where(), d.status())
		}
	}
}

// problem records something kiln must not do.
func (at *attacker) problem(d *dev, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if d != nil {
		msg = d.w.String() + ": " + msg
	}
	at.problems = append(at.problems, msg)
	fmt.Printf("attack: PROBLEM %s\n", msg)
}

func (at *attacker) logf(format string, args ...any) {
	fmt.Printf("attack: "+format+"\n", args...)
}
