package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/guest/contract"
)

// Talking to kiln's boot-signal device (guest/contract): events and the
// exit status go out with OUT, the job comes in four bytes per IN. (Plain
// port reads, not a string instruction: each is a VM exit, a few dozen for
// a job, but the simplest thing a hypervisor emulates, on every kind of
// KVM.) ioperm(2) grants the calling thread access to the device's ports:
// main locks its goroutine to the thread that asked.

var haveIO bool

// ioperm grants this thread access to the signal device's ports.
func ioperm() bool {
	if !haveIO {
		_, _, errno := unix.Syscall(unix.SYS_IOPERM, contract.SignalPort, contract.SignalSize, 1)
		if errno != 0 {
			fmt.Fprintf(os.Stderr, "kiln init: ioperm: %v\n", errno)
			return false
		}
		haveIO = true
	}
	return true
}

// signal tells kiln of an event.
func signal(e contract.Event) {
	if ioperm() {
		outb(contract.SignalPort+contract.EventOffset, uint8(e))
	}
}

// signalStatus reports the command's exit status to kiln.
func signalStatus(status int) {
	if ioperm() {
		outb(contract.SignalPort+contract.StatusOffset, uint8(status))
	}
}

// readJob says init is ready and reads its job from the device. Under a
// VMM without the device the header reads as all ones: ErrNoJob.
func readJob() (*contract.Job, error) { return readJobAt(contract.EventReady) }

// readJobAt writes e (EventReady, or EventAppReady) and reads the job.
func readJobAt(e contract.Event) (*contract.Job, error) {
	if !ioperm() {
		return nil, contract.ErrNoJob
	}
	signal(e)
	began := time.Now() // after the signal: a snapshot is taken at it
	defer func() { timings.job = time.Since(began) }()
	hdr := readPort(contract.JobHeaderSize)
	n, err := contract.JobLength(hdr)
	if err != nil {
		return nil, err
	}
	return contract.UnmarshalJob(readPort(n))
}

// timings are how long init's steps before a container's took, for
// kiln's phase marks (cmd/kiln/oci/phases.go).
var timings struct {
	job   time.Duration // reading the job from the signal device
	apply time.Duration // applying it: entropy, clock, network, shares
}

// readPort reads n bytes of the job, four at a time. (One rep insl,
// which KVM would batch into an exit per page, ended the VM under
// kvm-pvm when tried: each inl is an exit.)
func readPort(n int) []byte {
	b := make([]byte, (n+3)&^3)
	for i := 0; i < len(b); i += 4 {
		binary.LittleEndian.PutUint32(b[i:], inl(contract.SignalPort+contract.JobOffset))
	}
	return b[:n]
}

// outb writes one byte to an I/O port (outb_amd64.s).
func outb(port uint16, val uint8)

// inl reads four bytes from an I/O port (outb_amd64.s).
func inl(port uint16) uint32
