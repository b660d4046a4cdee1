package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/guest/contract"
)

// A process's privileges, as config.json's process gives them: the five
// capability sets, no_new_privs and the OOM score adjustment.
//
// Capabilities and no_new_privs belong to a thread, not to a process
// (capabilities(7): "capability sets are per-thread"), and a child gets
// those of the thread that forked it. So the process is forked from an
// OS thread of its own, locked to one goroutine: that thread drops the
// bounding set, takes the inheritable set, sets no_new_privs, forks, and
// ends with its goroutine (a goroutine that ends locked takes its thread
// with it), so init's other threads keep all of root's capabilities.
//
// What the process holds after its exec is the kernel's rule for an exec
// (capabilities(7), "Transformation of capabilities during execve()"),
// which runc's process meets too: runc sets the sets the same way just
// before its exec.
//
//   - bounding: as given (dropped before the fork);
//   - inheritable: as given;
//   - ambient: those given that are also permitted and inheritable (the
//     kernel raises no other: runc warns and goes on);
//   - for root: permitted = effective = bounding | inheritable | ambient
//     (a root process's file is treated as having every capability);
//   - for another user: permitted = effective = ambient (the user change
//     clears the rest; Go's ForkExec keeps the permitted set across it
//     with PR_SET_KEEPCAPS and raises the ambient set after it).
//
// config.json's permitted and effective sets so shape the result only
// through those rules, for runc as for kiln.

// forkProcess starts the container's process (ForkExec with attr) from a
// thread of its own, with the privileges c gives it, and returns its pid.
func forkProcess(c *contract.Container, exe string, attr *syscall.ProcAttr) (int, error) {
	type result struct {
		pid int
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: the thread ends with this goroutine.
		if err := privileges(c, attr.Sys); err != nil {
			done <- result{err: err}
			return
		}
		restore, err := oomScoreAdj(c.OOMScoreAdj)
		if err != nil {
			done <- result{err: err}
			return
		}
		pid, err := syscall.ForkExec(exe, c.Args, attr)
		restore()
		done <- result{pid, err}
	}()
	r := <-done
	return r.pid, r.err
}

// privileges applies, to the calling (locked) thread, what its child
// inherits: no_new_privs, the bounding and the inheritable sets; and
// tells ForkExec the ambient set to raise after the user change.
func privileges(c *contract.Container, sys *syscall.SysProcAttr) error {
	if c.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("no_new_privs: %w", err)
		}
	}
	caps := c.Capabilities
	if caps == nil {
		return nil // config.json gives none: the process keeps root's
	}
	last := lastCap()
	bounding := capSet(caps.Bounding, last)
	for n := 0; n <= last; n++ {
		if bounding&(1<<n) != 0 {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(n), 0, 0, 0); err != nil {
			return fmt.Errorf("drop capability %d from the bounding set: %w", n, err)
		}
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("read the capability sets: %w", err)
	}
	inh := capSet(caps.Inheritable, last)
	data[0].Inheritable, data[1].Inheritable = uint32(inh), uint32(inh>>32)
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("set the inheritable capabilities %v (they must be in the bounding set): %w", caps.Inheritable, err)
	}
	ambient := capSet(caps.Ambient, last) & inh & capSet(caps.Permitted, last)
	sys.AmbientCaps = nil
	for n := 0; n <= last; n++ {
		if ambient&(1<<n) != 0 {
			sys.AmbientCaps = append(sys.AmbientCaps, uintptr(n))
		}
	}
	return nil
}

// capSet is the mask of the capabilities listed that the guest kernel
// knows (those above its last are left out, as runc leaves out the
// names it does not know).
func capSet(list []int, last int) uint64 {
	var m uint64
	for _, n := range list {
		if n >= 0 && n <= last && n < 64 {
			m |= 1 << n
		}
	}
	return m
}

// lastCap is the guest kernel's highest capability number.
func lastCap() int {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n >= 0 && n < 64 {
			return n
		}
	}
	return unix.CAP_LAST_CAP
}

// oomScoreAdj gives init the process's OOM score adjustment for the
// fork (a child inherits it), and returns what puts init's back.
func oomScoreAdj(adj *int) (restore func(), err error) {
	if adj == nil {
		return func() {}, nil
	}
	const file = "/proc/self/oom_score_adj"
	old, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("oomScoreAdj: %w", err)
	}
	if err := os.WriteFile(file, []byte(strconv.Itoa(*adj)), 0); err != nil {
		return nil, fmt.Errorf("oomScoreAdj %d: %w", *adj, err)
	}
	return func() { os.WriteFile(file, old, 0) }, nil
}
