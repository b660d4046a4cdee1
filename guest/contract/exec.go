package contract

// Another process in a running container (kiln exec, podman exec, ctr task
// exec). The host sends ControlExec on the control connection with an
// Exec; the conversation for it goes on beside the container's own, every
// message naming the exec by its ID:
//
//  1. init connects to the host's ports Exec.Port+PortStdin, +PortStdout
//     and +PortStderr (with a terminal, to Exec.Port+PortStdin alone,
//     which carries a new terminal of the container's devpts both ways),
//     where the host's exec process listens.
//  2. It starts the process as it starts the container's, chrooted into
//     the container's root, with the Exec's environment, user, working
//     directory and capability bounding set, and once the exec succeeded
//     sends ControlExecStarted with ID and Pid; if it cannot, it sends
//     ControlExecExited with Status 126 (or 127: no such command) and
//     Error.
//  3. ControlSignal and ControlWinsize with ID go to that process.
//  4. When it exits, init sends ControlExecExited with ID and Status
//     (128+N for a death by signal N), ends its stdio streams and waits
//     for the host to have read them.
//
// An exec lives no longer than the container: when the container's
// process exits the VM ends, and with it every exec.

// Exec is a process to run in the running container. Written by kiln's
// OCI runtime (package oci, from config.json's process and kiln exec's
// flags), read by the guest's init (guest/init/exec.go).
type Exec struct {
	// ID names the exec in every message about it (chosen by the host,
	// unique among the container's execs).
	ID string `json:"id"`
	// Args, Env, Cwd, User, NoNewPrivileges, Capabilities and Terminal
	// are as in Container.
	Args            []string      `json:"args"`
	Env             []string      `json:"env,omitempty"`
	Cwd             string        `json:"cwd"`
	User            ContainerUser `json:"user"`
	NoNewPrivileges bool          `json:"no_new_privs,omitempty"`
	Capabilities    *Capabilities `json:"caps,omitempty"`
	Terminal        bool          `json:"terminal,omitempty"`
	// Port is the first of the host vsock ports of the exec's stdio:
	// Port+PortStdin, +PortStdout, +PortStderr.
	Port uint32 `json:"port"`
}

// MaxExecID bounds an exec's ID.
const MaxExecID = 128

// Exec messages on the control connection. Written by kiln, read by init:
// ControlExec. Written by init, read by kiln: the others.
const (
	ControlExec        ControlOp = "exec"         // run Exec
	ControlExecStarted ControlOp = "exec-started" // the exec ID exists: Pid
	ControlExecExited  ControlOp = "exec-exited"  // the exec ID ended: Status (and Error if it never started)
)
