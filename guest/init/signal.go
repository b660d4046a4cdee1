package main

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/guest/contract"
)

// Talking to kiln's boot-signal device (guest/contract): events and the
// exit status go out with OUT, the job comes in with REP INSB. ioperm(2)
// grants the calling thread access to the device's ports: main locks its
// goroutine to the thread that asked.

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
func readJob() (*contract.Job, error) {
	if !ioperm() {
		return nil, contract.ErrNoJob
	}
	signal(contract.EventReady)
	const port = contract.SignalPort + contract.JobOffset
	hdr := make([]byte, contract.JobHeaderSize)
	insb(port, hdr)
	n, err := contract.JobLength(hdr)
	if err != nil {
		return nil, err
	}
	body := make([]byte, n)
	if n > 0 {
		insb(port, body)
	}
	return contract.UnmarshalJob(body)
}

// outb writes one byte to an I/O port (outb_amd64.s).
func outb(port uint16, val uint8)

// insb reads len(buf) bytes from an I/O port (outb_amd64.s).
func insb(port uint16, buf []byte)
