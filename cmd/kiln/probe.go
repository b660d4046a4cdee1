package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/kiln-vmm/kiln/vmm/config"
	"github.com/kiln-vmm/kiln/vmm/cpu"
	"github.com/kiln-vmm/kiln/vmm/kvm"
)

// cmdProbe is `kiln probe`: what this host's KVM offers, and what kiln
// changes for it. It opens /dev/kvm (or $KILN_KVM) and asks, without
// booting anything.
func cmdProbe(args []string) int {
	sub := newSubcommand("probe", "Usage: kiln probe\n\n"+
		"Shows what this host's KVM offers: the API version, the capabilities kiln\n"+
		"uses, the most vCPUs a VM may have, the CPUID leaves KVM can give a guest,\n"+
		"whether it is hardware KVM or kvm-pvm, and what kiln adapts for it.")
	if helped, err := sub.parse(args); helped || err != nil {
		if helped {
			return 0
		}
		return sub.fail(err)
	}
	if sub.fs.NArg() > 0 {
		return sub.fail(fmt.Errorf("%w: probe takes no arguments, not %q", config.ErrUsage, sub.fs.Arg(0)))
	}

	path := os.Getenv("KILN_KVM")
	if path == "" {
		path = kvm.DevicePath
	}
	sys, err := kvm.OpenPath(path)
	if err != nil {
		return fail(err)
	}
	defer sys.Close()
	if err := probe(os.Stdout, sys, path); err != nil {
		return fail(err)
	}
	return 0
}

// probe writes the report on sys, opened from path, to w.
func probe(w io.Writer, sys *kvm.System, path string) error {
	pvm := kvm.IsPVM()
	fmt.Fprintf(w, "%s: KVM API version %d (KVM_GET_API_VERSION)\n", path, kvm.APIVersion)
	if pvm {
		fmt.Fprintln(w, "kind: kvm-pvm, software nested virtualization (/sys/module/kvm_pvm); see docs/pvm.md")
	} else {
		fmt.Fprintln(w, "kind: hardware KVM (Intel VT-x or AMD-V)")
	}
	fmt.Fprintf(w, "vCPUs per VM: at most %d\n", sys.MaxVCPUs())
	tsc, err := sys.TSCKHz()
	if err != nil {
		fmt.Fprintf(w, "TSC frequency: unknown (%v)\n", err)
	} else {
		fmt.Fprintf(w, "TSC frequency: %d kHz\n", tsc)
	}

	fmt.Fprintln(w, "\ncapabilities kiln uses (KVM_CHECK_EXTENSION):")
	for _, c := range kvm.CapUses {
		n, _ := sys.CheckExtension(c.Cap)
		need := "optional"
		if slices.Contains(kvm.RequiredCaps, c.Cap) {
			need = "required"
		}
		fmt.Fprintf(w, "  %-30v %-8s %-8s %s\n", c.Cap, capValue(c.Cap, n), need, c.Use)
	}

	supported, err := sys.SupportedCPUID()
	if err != nil {
		return fmt.Errorf("probe supported CPUID: %w", err)
	}
	fmt.Fprintf(w, "\nCPUID leaves KVM supports (KVM_GET_SUPPORTED_CPUID), %d entries; all-zero ones not shown:\n", len(supported))
	fmt.Fprintln(w, "  leaf.subleaf   eax       ebx       ecx       edx")
	for _, e := range supported {
		if e.EAX|e.EBX|e.ECX|e.EDX == 0 {
			continue
		}
		fmt.Fprintf(w, "  %#08x.%-3d %08x  %08x  %08x  %08x%s\n", e.Function, e.Index, e.EAX, e.EBX, e.ECX, e.EDX, cpu.Signature(e))
	}

	fmt.Fprintln(w, "\nwhat kiln changes in a guest's CPUID (vCPU 0 of 1, cpu.GuestCPUID):")
	guest := cpu.GuestCPUID(supported, 0, 1, pvm)
	for i := range supported {
		for _, d := range cpu.DescribeChanges(supported[i], guest[i]) {
			fmt.Fprintf(w, "  %s\n", d)
		}
	}
	host := config.Host{PVM: pvm, TSCKHz: tsc}
	if added := config.HostParams(host); len(added) > 0 {
		fmt.Fprintf(w, "\nkernel parameters kiln adds on this host (config.KernelCmdline):\n  %s\n", strings.Join(added, " "))
	} else {
		fmt.Fprintln(w, "\nkernel parameters kiln adds on this host: none, the guest keeps standard settings")
	}
	return nil
}

// capValue prints KVM_CHECK_EXTENSION's answer: yes or no for a feature,
// the number itself for a count.
func capValue(c kvm.Cap, n int) string {
	switch {
	case c == kvm.CapNrVCPUs || c == kvm.CapMaxVCPUs:
		return fmt.Sprint(n)
	case n > 0:
		return "yes"
	}
	return "NO"
}
