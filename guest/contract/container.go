package contract

import (
	"encoding/json"
	"fmt"
)

// A container job: kiln as an OCI runtime (docs/oci.md) runs one
// container's process in a microVM. The Job then carries a Container
// instead of Argv, and the conversation of the package doc goes on
// differently after step 4:
//
//  5. init mounts the shares the container uses (its root file system
//     and the directories behind its bind mounts), builds the container's
//     file system tree from Container.Mounts under the root, applies the
//     hostname and sysctls, and finds the executable. It connects to the
//     host's control port (ControlPort) and the stdio ports beside it,
//     and sends ControlReady, or ControlError with what failed.
//  6. init waits on the control connection for ControlStart: the VM was
//     built by `kiln create`, and the process runs only at `kiln start`.
//     Then it starts the process, chrooted into the container's root, as
//     the container's user, with the container's environment and limits,
//     and once the exec has succeeded sends ControlStarted with its pid,
//     which acknowledges the start: the process exists. The host holds
//     every signal for the process until then (cmd/kiln/oci's Process).
//  7. While the process runs, the host sends ControlSignal (kiln kill, or
//     a signal the VMM process received) and ControlWinsize (the
//     terminal's size); init signals the process or resizes its terminal.
//  8. When the process exits, init sends ControlExited with its status
//     (from then on the host answers a kill with "not running"), closes
//     the stdio streams, waits for the host to have read them to their
//     end, and writes the exit status as after a command (128+N for a
//     death by signal N).
//
// A checkpoint (kiln checkpoint) of a running container: the host sends
// ControlCheckpoint; init holds its copies of the process's output
// (guest/init/stdio.go) and answers ControlQuiesced (Error set if it
// could not). The host pauses the VM, which ends every vsock connection,
// and saves it. In the VM that goes on (--leave-running) or is restored
// from the checkpoint (kiln restore), init sees its control connection
// reset: it connects the control and stdio streams again and sends
// ControlRestored with the process's pid. The host may send
// ControlNetwork (a restored container's interfaces), then ControlResume
// with its wall clock (Time) and fresh Entropy; init sets them and lets
// the output go on.

// Container is what init needs to run an OCI container's process. Every
// field is written by kiln's OCI runtime (package oci, from the bundle's
// config.json) and read by the guest's init (guest/init/container.go).
// Host paths never appear: what the container sees of the host comes
// through virtio-9p shares named by their mount tags.
type Container struct {
	// Root is the share holding the container's root file system.
	Root ContainerRoot `json:"root"`
	// Mounts are set up under the root, in order, as config.json lists
	// them; a destination is always resolved inside the root.
	Mounts []ContainerMount `json:"mounts,omitempty"`
	// Devices are device nodes init creates in the container's /dev when
	// it is a fresh tmpfs (runc's defaults and config.json's own).
	Devices []ContainerDevice `json:"devices,omitempty"`
	// RootPropagation is the propagation type of the container's root
	// mount, one of Propagations ("" leaves the guest's: private).
	RootPropagation string `json:"root_prop,omitempty"`
	// Hostname is the guest's host name ("" leaves it).
	Hostname string `json:"hostname,omitempty"`
	// Sysctl are kernel parameters init writes under /proc/sys
	// ("net.ipv4.ping_group_range" -> net/ipv4/ping_group_range).
	Sysctl map[string]string `json:"sysctl,omitempty"`
	// MaskedPaths are hidden from the container (an empty read-only
	// tmpfs over a directory, /dev/null over a file); ReadonlyPaths are
	// made read-only. Paths that do not exist are skipped, as runc does.
	MaskedPaths   []string `json:"masked,omitempty"`
	ReadonlyPaths []string `json:"readonly,omitempty"`

	// Args is the process's command; Args[0] without a slash is looked
	// up in Env's PATH inside the container's root.
	Args []string `json:"args"`
	// Env is the process's whole environment: it replaces init's own.
	Env []string `json:"env,omitempty"`
	// Cwd is the process's working directory in the container (created
	// if missing, as runc does).
	Cwd string `json:"cwd"`
	// User is who the process runs as.
	User ContainerUser `json:"user"`
	// Rlimits are set for the process, by Linux resource number.
	Rlimits []Rlimit `json:"rlimits,omitempty"`
	// NoNewPrivileges sets PR_SET_NO_NEW_PRIVS for the process.
	NoNewPrivileges bool `json:"no_new_privs,omitempty"`
	// Capabilities, if not nil, are the process's capability sets (nil:
	// it keeps all of root's). init applies them as runc does; what the
	// process then holds is the kernel's rule for an exec
	// (guest/init/caps.go).
	Capabilities *Capabilities `json:"caps,omitempty"`
	// OOMScoreAdj, if not nil, is the process's /proc/PID/oom_score_adj.
	OOMScoreAdj *int `json:"oom_score_adj,omitempty"`
	// Terminal gives the process a pseudo-terminal of the container's
	// devpts as its stdio, carried to the host on the stdin port both
	// ways; without it the process's stdio are the three stdio streams.
	Terminal bool `json:"terminal,omitempty"`

	// ControlPort is the vsock port on the host (CID 2) init connects
	// to for the control messages; the stdio streams are the ports
	// ControlPort+PortStdin, +PortStdout and +PortStderr.
	ControlPort uint32 `json:"control_port"`
}

// RootMountOptions are the 9p mount options of a container's root file
// system: as ShareMountOptions, but with the guest's page cache for all
// reads and metadata (cache=loose), so that a binary run twice, or a
// library many programs map, is read from the host once. A container's
// root is its own: the engine does not change it under a running
// container, so the guest need not see host changes at once.
const RootMountOptions = "trans=virtio,version=9p2000.L,msize=512000,cache=loose"

// Stdio ports, as offsets from Container.ControlPort. init connects to
// each (the host listens on the vsock device's PATH_port sockets) and
// hands the connection to the process as that stream, so the process
// writes straight to the host and reads end of file when the host's
// stdin ends.
const (
	PortStdin  = 1 // stdin; with a terminal, the terminal in both directions
	PortStdout = 2 // stdout (not used with a terminal)
	PortStderr = 3 // stderr (not used with a terminal)
)

// ContainerRoot is the container's root file system.
type ContainerRoot struct {
	Tag string `json:"tag"` // the share's mount tag
	// ReadOnly makes the root mount read-only once the mount points the
	// container needs are made (as runc remounts a read-only root).
	ReadOnly bool `json:"ro,omitempty"`
}

// ContainerMount is one mount of config.json, translated: a bind mount's
// host source became a path inside a share, options became flags and
// file system data.
type ContainerMount struct {
	Destination string `json:"dst"`  // absolute, inside the container
	Type        string `json:"type"` // "bind", or a file system: tmpfs, proc, sysfs, devpts, mqueue
	// Source is a file system's source name (for tmpfs, "tmpfs").
	Source string `json:"src,omitempty"`
	// Tag and Path name a bind mount's source: the share, and the file
	// or directory in it ("" for the share's root; a single name for a
	// file, whose directory is the share).
	Tag  string `json:"tag,omitempty"`
	Path string `json:"path,omitempty"`
	// Mount flags.
	ReadOnly bool `json:"ro,omitempty"`
	NoSuid   bool `json:"nosuid,omitempty"`
	NoDev    bool `json:"nodev,omitempty"`
	NoExec   bool `json:"noexec,omitempty"`
	// Data are the file system's own options: "mode=755", "newinstance".
	Data []string `json:"data,omitempty"`
	// CopyUp fills a new tmpfs with what the directory it covers held
	// (the tmpcopyup extension podman uses with --read-only).
	CopyUp bool `json:"copyup,omitempty"`
	// Recursive binds the source with the mounts under it (rbind); a
	// plain bind takes the source's mount alone.
	Recursive bool `json:"rec,omitempty"`
	// Propagation are the propagation changes made on the mount once it
	// is in place, in order: shared, slave, private, unbindable, and
	// their recursive forms rshared, rslave, rprivate, runbindable.
	Propagation []string `json:"prop,omitempty"`
}

// Propagations are the propagation types a mount or the root can be
// given, as config.json names them.
var Propagations = map[string]bool{
	"shared": true, "slave": true, "private": true, "unbindable": true,
	"rshared": true, "rslave": true, "rprivate": true, "runbindable": true,
}

// ContainerDevice is a device node: Type "c" (character), "b" (block) or
// "p" (FIFO).
type ContainerDevice struct {
	Path  string `json:"path"`
	Type  string `json:"type"`
	Major int64  `json:"major,omitempty"`
	Minor int64  `json:"minor,omitempty"`
	Mode  uint32 `json:"mode"` // permission bits
	UID   uint32 `json:"uid,omitempty"`
	GID   uint32 `json:"gid,omitempty"`
}

// ContainerUser is the process's identity.
type ContainerUser struct {
	UID            uint32   `json:"uid"`
	GID            uint32   `json:"gid"`
	AdditionalGIDs []uint32 `json:"groups,omitempty"`
	Umask          *uint32  `json:"umask,omitempty"` // nil: 022
}

// Rlimit is a resource limit, by Linux's number for it (RLIMIT_NOFILE is
// 7).
type Rlimit struct {
	Resource int    `json:"resource"`
	Soft     uint64 `json:"soft"`
	Hard     uint64 `json:"hard"`
}

// Capabilities are the five capability sets, as capability numbers
// (CAP_CHOWN is 0).
type Capabilities struct {
	Bounding    []int `json:"bounding"`
	Effective   []int `json:"effective,omitempty"`
	Permitted   []int `json:"permitted,omitempty"`
	Inheritable []int `json:"inheritable,omitempty"`
	Ambient     []int `json:"ambient,omitempty"`
}

// Control is one message on the control connection: a line of JSON each
// way.
type Control struct {
	Op ControlOp `json:"op"`
	// Signal is the signal number for ControlSignal; All sends it to
	// every process of the container, not only its first.
	Signal int  `json:"signal,omitempty"`
	All    bool `json:"all,omitempty"`
	// Pid is the process's pid in the guest, for ControlStarted.
	Pid int `json:"pid,omitempty"`
	// Status is the exit status for ControlExited (128+N for a death
	// by signal N).
	Status int `json:"status,omitempty"`
	// Net, for ControlNetwork, are the interfaces init configures, as
	// Job.Net's.
	Net []Interface `json:"net,omitempty"`
	// Rows and Cols are the terminal's size for ControlWinsize.
	Rows uint16 `json:"rows,omitempty"`
	Cols uint16 `json:"cols,omitempty"`
	// Error says what failed, for ControlError and ControlExecExited.
	Error string `json:"error,omitempty"`
	// ID names an exec (exec.go): ControlSignal and ControlWinsize with
	// an ID are for that exec's process, not the container's.
	ID string `json:"id,omitempty"`
	// Exec is the process to run, for ControlExec.
	Exec *Exec `json:"exec,omitempty"`
	// Time is the host's wall clock (Unix nanoseconds) and Entropy
	// random bytes for the guest's pool, for ControlResume.
	Time    int64  `json:"time,omitempty"`
	Entropy []byte `json:"entropy,omitempty"`
	// Took are durations init measured, in nanoseconds of its own clock,
	// for kiln's phase marks (cmd/kiln/oci/phases.go): "mounts" with
	// ControlReady, "exec" with ControlStarted.
	Took map[string]int64 `json:"took,omitempty"`
}

// ControlOp names a control message.
type ControlOp string

// Control messages. Written by init, read by kiln: ControlReady,
// ControlError, ControlStarted, ControlExited. Written by kiln, read by
// init: the others.
const (
	ControlReady   ControlOp = "ready"   // the container is set up; init waits for ControlStart
	ControlError   ControlOp = "error"   // setting the container up failed; init ends the VM
	ControlStarted ControlOp = "started" // the process exists (its exec succeeded): Pid
	ControlExited  ControlOp = "exited"  // the process ended: Status
	ControlStart   ControlOp = "start"   // run the process (kiln start)
	ControlSignal  ControlOp = "signal"  // send Signal to the process (All: to all of the container)
	ControlWinsize ControlOp = "winsize" // the terminal is Rows x Cols
	// ControlNetwork: configure Net, before a ControlStart (a network an
	// engine set up after kiln create: ctr run --cni).
	ControlNetwork ControlOp = "network"
	// A checkpoint's messages (the package comment).
	ControlCheckpoint ControlOp = "checkpoint" // host: hold the output, answer ControlQuiesced
	ControlQuiesced   ControlOp = "quiesced"   // guest: the output is held (or Error)
	ControlRestored   ControlOp = "restored"   // guest: connected again after the pause; Pid
	ControlResume     ControlOp = "resume"     // host: set Time and Entropy, let the output go on
)

// MarshalControl encodes c as one line.
func MarshalControl(c Control) []byte {
	b, _ := json.Marshal(c) // plain fields: cannot fail
	return append(b, '\n')
}

// UnmarshalControl decodes one line.
func UnmarshalControl(line []byte) (Control, error) {
	var c Control
	if err := json.Unmarshal(line, &c); err != nil {
		return c, fmt.Errorf("decode control message: %w", err)
	}
	return c, nil
}
