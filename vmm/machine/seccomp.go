package machine

import (
	"fmt"
	"io"

	"github.com/kiln-vmm/kiln/vmm/seccomp"
)

// Seccomp filters go on when the machine is built and before the guest
// runs (Options.Seccomp; vmm/seccomp explains them): Run puts the
// process's filter on every thread of kiln, then each vCPU's goroutine,
// locked to its thread, puts its own on top before it first enters the
// guest. From then on a system call outside its thread's list ends kiln
// with one line naming it.

// seccompNeeds is what this VM's threads do after setup: the devices it
// has, whether stdin is a raw terminal, whether it pauses for a snapshot.
func (m *Machine) seccompNeeds() seccomp.Needs {
	n := seccomp.Needs{
		VMFD:      m.vm.FD(),
		Disks:     len(m.cfg.Disks) > 0,
		Nets:      len(m.cfg.Nets) > 0,
		Vsock:     m.cfg.Vsock != nil,
		RNG:       !m.cfg.NoRNG,
		Terminal:  m.cfg.Interactive,
		Snapshot:  m.saveable, // a pause saves it (with filters: SnapshotAtReady, Checkpointable)
		Container: m.cfg.Container != nil,
	}
	for _, s := range m.cfg.Shares {
		n.Shares = true
		n.WritableShares = n.WritableShares || !s.ReadOnly
	}
	for _, v := range m.vcpus {
		n.VCPUFDs = append(n.VCPUFDs, v.FD())
	}
	return n
}

// installProcessFilter puts the process's filter on every thread: the
// first step of Run.
func (m *Machine) installProcessFilter() error {
	if m.seccomp == seccomp.Off {
		return nil
	}
	return seccomp.InstallProcess(seccomp.Process(m.seccompNeeds()), m.seccomp)
}

// installVCPUFilter names the calling thread after vCPU id (kiln-vcpuN,
// as top -H and the kernel's log show it) and puts on its filter. The
// caller has locked its goroutine to the thread for good.
func (m *Machine) installVCPUFilter(id int) error {
	nameThread(fmt.Sprintf("kiln-vcpu%d", id))
	if m.seccomp == seccomp.Off {
		return nil
	}
	return seccomp.InstallThread(seccomp.VCPU(m.seccompNeeds(), id), m.seccomp)
}

// reportSeccomp says, once every filter is on, what they allow.
func (m *Machine) reportSeccomp(w io.Writer) {
	switch {
	case m.seccomp == seccomp.Off:
		return
	case m.seccomp == seccomp.Log:
		// Log mode is for finding missing calls: say so even without -v.
		w = m.stderr
	case w == nil:
		return
	}
	n := m.seccompNeeds()
	p, v := seccomp.Process(n), seccomp.VCPU(n, 0)
	mode := "on"
	if m.seccomp == seccomp.Log {
		mode = "in log mode (nothing is refused; calls outside the lists go to the kernel's log: dmesg)"
	}
	line := fmt.Sprintf("kiln: seccomp: filters %s: the process's on every thread (%d system calls), each vCPU's on its thread (%d)\n",
		mode, len(p.Syscalls()), len(v.Syscalls()))
	if m.cfg.Interactive {
		line = line[:len(line)-1] + "\r\n"
	}
	io.WriteString(w, line)
}
