// Package contract is everything a kiln guest and the kiln VMM agree on,
// in one place: the kernel parameters kiln writes for the guest's init, the
// boot-signal device through which init reports to kiln, and the job that
// tells init what to run. Both sides import this package and nothing else
// does the agreeing; it links no host-only code, so the guest's init can
// use it as it is.
//
// The conversation, from the guest kernel's first instruction to the end:
//
//  1. kiln boots the kernel with a command line. Besides the kernel's own
//     parameters it may carry ParamNet (how init configures eth0),
//     ParamMark (a line init prints when user space starts) and, for a VMM
//     that has no signal device, ParamJob (the job itself).
//  2. init mounts the pseudo file systems, configures the network, and
//     writes EventUserspace to the signal device: the boot is over.
//  3. init writes EventReady: it waits for its job. This is the moment a
//     snapshot is taken (kiln snapshot), so every VM restored from it
//     resumes here, as if it had just booted.
//  4. init reads the job from JobOffset: a JobHeader, then the JSON of a
//     Job, in four-byte reads. kiln hands every VM its job this way, cold
//     booted or restored.
//  5. init does what the job says: mixes the job's entropy into the
//     kernel's pool, sets the wall clock, sets the console's mode,
//     configures the network interfaces, mounts shares; then writes
//     EventRunning and runs the command or the shell.
//     With a Ready condition (ready.go, kiln snapshot --ready-port), init
//     waits until the command is ready, writes EventAppReady (the
//     snapshot's moment) and reads a job again, whose entropy, time and
//     network it applies, then writes EventRunning again.
//  6. init writes the command's exit status to StatusOffset, flushes the
//     file systems and resets the machine through the i8042 (the kernel
//     parameter reboot=k), which ends the VM.
package contract

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
)

// Kernel parameters. kiln writes them on the guest kernel's command line;
// the guest's init reads them from /proc/cmdline.
const (
	// ParamNet configures eth0: ADDR/PREFIX with an optional ,GATEWAY.
	// Written by kiln from --net ...,ip=,gw=; read by init at boot.
	ParamNet = "kiln.net"
	// ParamMark is a line init prints on the console the moment it
	// reports user space. Written by kiln bench for VMMs without the
	// signal device (QEMU), which learn of user space from the console.
	ParamMark = "kiln.mark"
	// ParamJob carries the job (EncodeJobParam) for a VMM without the
	// signal device: kiln run --print-cmdline writes it for other VMMs;
	// init prefers it to reading the device. kiln's own VMs never get it.
	ParamJob = "kiln.job"
)

// The boot-signal device: a window of SignalSize I/O ports at SignalPort
// (devices/bootsignal implements it; vmm/layout places it). init gains access
// with ioperm(2) as root.
const (
	SignalPort = 0x440
	SignalSize = 8

	// EventOffset: init writes an Event (one byte).
	EventOffset = 0
	// StatusOffset: init writes its command's exit status (one byte).
	StatusOffset = 1
	// JobOffset: init reads the job, as many bytes per read as the read
	// is wide (init reads four: the port is four-aligned, and the window
	// holds all four ports a four-byte read touches, which ioperm must
	// grant), from its start after each EventReady. Reads past its end
	// return zero.
	JobOffset = 4
)

// Event is what init writes to EventOffset.
type Event byte

// The events, in the order init sends them.
const (
	// EventUserspace: init is running, the kernel's boot is over. kiln
	// takes the boot time here.
	EventUserspace Event = 1
	// EventReady: init waits for its job. kiln snapshot pauses the VM
	// here; kiln run starts feeding the job.
	EventReady Event = 2
	// EventRunning: init has applied the job (console mode, entropy,
	// clock, mounts) and starts the command or shell. kiln holds console
	// input back until now, so nothing typed or piped is echoed or lost.
	// After EventAppReady, init sends it again once it has applied the
	// restored VM's job: the app goes on.
	EventRunning Event = 3
	// EventAppReady: the command of a job with a Ready condition is
	// running and ready (ready.go), and init reads a job again, as after
	// EventReady. kiln snapshot pauses a ready-app snapshot's VM here.
	EventAppReady Event = 4
)

func (e Event) String() string {
	switch e {
	case EventUserspace:
		return "guest user space started"
	case EventReady:
		return "guest init ready for its job"
	case EventRunning:
		return "guest command started"
	case EventAppReady:
		return "guest app ready"
	}
	return "unknown event"
}

// Job is what the guest's init is to do once it is ready: written by kiln
// (the signal device's JobOffset, or ParamJob), read by init.
type Job struct {
	// Argv is the command to run; empty for an interactive shell.
	Argv []string `json:"argv,omitempty"`
	// Env is added to init's environment (PATH, HOME, TERM), KEY=VALUE.
	Env []string `json:"env,omitempty"`
	// Raw says the host's console is not a terminal: the guest's tty
	// passes bytes through (no echo, no "\r\n"), and the shell reads a
	// script from it instead of drawing a line editor.
	Raw bool `json:"raw,omitempty"`
	// Quiet lowers the kernel's console log level, so that the command's
	// output is all there is on the console.
	Quiet bool `json:"quiet,omitempty"`
	// Seed is entropy from the host, mixed into the guest kernel's random
	// pool before anything runs, which then reseeds: every VM restored
	// from one snapshot draws different random numbers.
	Seed []byte `json:"seed,omitempty"`
	// Time is the host's wall clock (Unix nanoseconds) when the job was
	// written; init sets the guest's clock to it. A restored guest's clock
	// would otherwise read the moment its snapshot was taken.
	Time int64 `json:"time,omitempty"`
	// Mounts are host directories shared over virtio-9p, mounted by init
	// before the command runs.
	Mounts []Mount `json:"mounts,omitempty"`
	// Container, if set, is an OCI container to run instead of Argv
	// (container.go): written by kiln's OCI runtime, read by init.
	Container *Container `json:"container,omitempty"`
	// Net configures network interfaces (net.go) before the command or
	// container runs: for a container VM, eth0 becomes the interface
	// the engine made for the container. Each replaces what the
	// interface had, so a VM restored from a snapshot takes the
	// addresses of its own job.
	Net []Interface `json:"net,omitempty"`
	// Ready, if set, makes Argv an app to snapshot once it is ready
	// (ready.go): init waits for the condition, then writes
	// EventAppReady and reads the job of the VM restored from it.
	Ready *Ready `json:"ready,omitempty"`
}

// ShareMountOptions are the 9p mount options init uses for a share:
// 9P2000.L over virtio; messages of 512000 bytes, the most Linux's virtio
// transport takes (PAGE_SIZE * (VIRTQUEUE_NUM - 3)); and the page cache
// used only for mmap(2) (cache=mmap): reads and writes go to the host at
// once, so the guest sees the host's changes and the host the guest's,
// and shared writable mappings still work.
const ShareMountOptions = "trans=virtio,version=9p2000.L,msize=512000,cache=mmap"

// Mount is a virtio-9p share as init mounts it.
type Mount struct {
	Tag      string `json:"tag"`          // the device's mount tag
	Dir      string `json:"dir"`          // where in the guest
	ReadOnly bool   `json:"ro,omitempty"` // mount read-only (kiln enforces it too)
}

// JobHeader precedes a job's JSON on the signal device: the magic, then
// the JSON's length, little-endian. A VMM without the device reads as all
// ones, which is not the magic.
const (
	JobMagic      = "KJOB"
	JobHeaderSize = 8
	// MaxJobSize bounds a job's JSON: init allocates no more.
	MaxJobSize = 1 << 20
)

// ErrNoJob says the bytes read are not a job: no kiln signal device.
var ErrNoJob = errors.New("no job: not a kiln signal device")

// Marshal encodes j as the signal device serves it: header and JSON.
func (j *Job) Marshal() ([]byte, error) {
	body, err := json.Marshal(j)
	if err != nil {
		return nil, fmt.Errorf("encode job: %w", err)
	}
	if len(body) > MaxJobSize {
		return nil, fmt.Errorf("encode job: %d bytes, at most %d", len(body), MaxJobSize)
	}
	out := make([]byte, JobHeaderSize, JobHeaderSize+len(body))
	copy(out, JobMagic)
	binary.LittleEndian.PutUint32(out[4:], uint32(len(body)))
	return append(out, body...), nil
}

// JobLength checks a header read from the device and returns the length
// of the JSON that follows.
func JobLength(hdr []byte) (int, error) {
	if len(hdr) < JobHeaderSize || string(hdr[:4]) != JobMagic {
		return 0, ErrNoJob
	}
	n := binary.LittleEndian.Uint32(hdr[4:])
	if n > MaxJobSize {
		return 0, fmt.Errorf("job of %d bytes, at most %d", n, MaxJobSize)
	}
	return int(n), nil
}

// UnmarshalJob decodes a job's JSON.
func UnmarshalJob(body []byte) (*Job, error) {
	var j Job
	if err := json.Unmarshal(body, &j); err != nil {
		return nil, fmt.Errorf("decode job: %w", err)
	}
	return &j, nil
}

// EncodeJobParam encodes j for ParamJob: base64 of its JSON, which the
// kernel's command-line parser passes through whatever the command holds
// (spaces, quotes).
func EncodeJobParam(j *Job) (string, error) {
	body, err := json.Marshal(j)
	if err != nil {
		return "", fmt.Errorf("encode job: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(body), nil
}

// DecodeJobParam reverses EncodeJobParam.
func DecodeJobParam(s string) (*Job, error) {
	body, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("bad %s: %w", ParamJob, err)
	}
	return UnmarshalJob(body)
}
