package cpu

import "github.com/kiln-vmm/kiln/vmm/kvm"

// Model-specific registers set at boot, as PC firmware leaves them.
const (
	msrIA32TSC         = 0x10
	msrIA32SysenterCS  = 0x174
	msrIA32SysenterESP = 0x175
	msrIA32SysenterEIP = 0x176
	msrIA32MiscEnable  = 0x1a0
	msrMTRRDefType     = 0x2ff
	msrSTAR            = 0xc0000081
	msrLSTAR           = 0xc0000082
	msrCSTAR           = 0xc0000083
	msrSyscallMask     = 0xc0000084
	msrKernelGSBase    = 0xc0000102
	miscEnableFastStr  = 1 << 0
	mtrrEnable         = 1 << 11
	mtrrTypeWriteBack  = 6
)

// BootMSRs are the MSR values a vCPU starts with: system-call entry points
// cleared (the kernel sets its own), fast string operations on, and memory
// write-back cacheable by default.
func BootMSRs() []kvm.MSR {
	return []kvm.MSR{
		{Index: msrIA32SysenterCS},
		{Index: msrIA32SysenterESP},
		{Index: msrIA32SysenterEIP},
		{Index: msrSTAR},
		{Index: msrCSTAR},
		{Index: msrKernelGSBase},
		{Index: msrSyscallMask},
		{Index: msrLSTAR},
		{Index: msrIA32TSC},
		{Index: msrIA32MiscEnable, Data: miscEnableFastStr},
		{Index: msrMTRRDefType, Data: mtrrEnable | mtrrTypeWriteBack},
	}
}
