package machine

import (
	"fmt"

	"github.com/kiln-vmm/kiln/boot"
	"github.com/kiln-vmm/kiln/vmm/config"
	"github.com/kiln-vmm/kiln/vmm/cpu"
	"github.com/kiln-vmm/kiln/vmm/layout"
)

// loadKernel writes the kernel, its initrd and command line into guest
// RAM, with the MP table that tells the kernel about the vCPUs and the
// boot tables (GDT, page tables) for the entry protocol.
func (m *Machine) loadKernel() (err error) {
	m.cmdline = config.KernelCmdline(m.cfg, m.host, m.dev.kernelParams())
	spec := boot.Spec{Kernel: m.cfg.Kernel, Initrd: m.cfg.Initrd, Cmdline: m.cmdline}
	if m.entry, err = boot.Load(m.mem, spec); err != nil {
		return err
	}
	mp, err := boot.MPTable(m.cfg.CPUs)
	if err != nil {
		return err
	}
	if _, err = m.mem.WriteAt(mp, layout.MPTableAddr); err != nil {
		return fmt.Errorf("write MP table: %w", err)
	}
	return cpu.WriteTables(m.mem, m.entry.Protocol)
}

// setupVCPUs gives each vCPU its CPUID, MSRs and local APIC, and puts
// vCPU 0 at the kernel's entry point; the others wait for the kernel to
// start them.
func (m *Machine) setupVCPUs() error {
	supported, err := m.sys.SupportedCPUID()
	if err != nil {
		return err
	}
	for i, v := range m.vcpus {
		cpuid := cpu.GuestCPUID(supported, i, m.cfg.CPUs, m.host.PVM)
		if err := cpu.Setup(v, cpuid, m.entry); err != nil {
			return err
		}
		m.cpuids = append(m.cpuids, cpuid)
	}
	return nil
}
