// Package ipc is everything kiln's own processes tell each other, in one
// place, as guest/contract is for the guest and kiln. kiln runs as more
// than one process: a VM's filters (vmm/seccomp) stay on the process that
// ran it, so a snapshot that must be taken before a VM is restored is
// taken by a child, and a container is a VMM process of its own that
// outlives the command that created it. Every message between them is a
// type here, written by one function and read by one function, and sent
// as one line of JSON:
//
//	parent ──SnapshotRequest──> kiln _snapshot (stdin)
//	parent <──SnapshotReply──── kiln _snapshot (fd 3)
//	   kiln run --warm and a container's VMM take a warm snapshot so
//	   (vmm/warm); the child says what went wrong in its reply, with the
//	   exit code kiln would have given, never only on stderr.
//
//	kiln create <──Created──── kiln _oci-vmm (fd 3, a socket pair)
//	kiln create ──Adopted────> kiln _oci-vmm
//	   the VMM reports the container created, or why not; create records
//	   it and answers; a VMM whose create dies before that answer ends
//	   its VM (it sees the socket close), so a create that fails or is
//	   killed leaves no process behind.
//
//	kiln start|kill|... ──Request──> the VMM's control socket (ctl)
//	                    <──Reply────
//	   one request a connection.
//
//	kiln exec ──Request{OpExec}──> the VMM's control socket
//	          <──ExecEvent───────  (started, then exited; signals and
//	          ──Request{OpSignal}─> sizes the other way, one connection
//	                                as long as the process runs)
//	kiln exec ──ExecJob──> kiln _oci-exec (fd 3, with --detach)
//	          <──ExecReport──
//	   exec.go.
//
// Who writes and who reads each type is said at the type.
package ipc
