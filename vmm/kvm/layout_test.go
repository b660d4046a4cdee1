package kvm

// Layout tests, after rust-vmm's kvm-bindings: the kernel copies the
// argument of an ioctl as raw bytes, as many as the ioctl number says, so
// every Go mirror of a C structure must have the C size and the C field
// offsets. The C facts below were read from the x86-64 uapi headers named
// beside each one (include/uapi/linux/kvm.h, arch/x86/include/uapi/asm/kvm.h,
// include/uapi/asm-generic/ioctl.h) and checked with offsetof/sizeof.

import (
	"fmt"
	"go/ast"
	"go/constant"
	"go/parser"
	"go/token"
	"go/types"
	"os"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
)

// The fields of an ioctl number (include/uapi/asm-generic/ioctl.h, which
// x86 uses unchanged): nr in bits 0-7, type in bits 8-15, the argument's
// size in bits 16-29 (_IOC_SIZEBITS 14), the direction in bits 30-31.
const (
	iocNone  = 0 // _IOC_NONE: no argument copied
	iocWrite = 1 // _IOC_WRITE: user space writes, the kernel reads the argument
	iocRead  = 2 // _IOC_READ: the kernel writes the argument back

	iocSizeMask = 1<<14 - 1
)

func iocDir(req uintptr) uintptr  { return req >> 30 & 3 }
func iocSize(req uintptr) uintptr { return req >> 16 & iocSizeMask }
func iocType(req uintptr) uintptr { return req >> 8 & 0xff }

// sizedIoctl is one ioctl whose number encodes the size of its argument:
// the Go type kiln passes a pointer to, and what the kernel copies.
type sizedIoctl struct {
	req  uintptr
	dir  uintptr      // iocWrite, iocRead, or both
	arg  reflect.Type // the pointee of ioctlPtr's argument in this package
	size uintptr      // the bytes the kernel copies: unsafe.Sizeof(arg), or the header of a flexible array
	c    string       // the C argument, as the header names it
}

// sizedIoctls must list every ioctl in ioctlNames whose number has a size
// (TestEverySizedIoctlIsChecked fails otherwise).
var sizedIoctls = []sizedIoctl{
	// kvm_cpuid2 ends in a flexible array, entries[]: sizeof is the 8-byte
	// header (nent, padding), and nent says how many entries follow.
	{kvmGetSupportedCPUID, iocRead | iocWrite, reflect.TypeFor[cpuid2](), unsafe.Offsetof(cpuid2{}.Entries), "struct kvm_cpuid2"},
	{kvmSetCPUID2, iocWrite, reflect.TypeFor[cpuid2](), unsafe.Offsetof(cpuid2{}.Entries), "struct kvm_cpuid2"},
	// kvm_msrs likewise: nmsrs, pad, entries[].
	{kvmSetMSRs, iocWrite, reflect.TypeFor[msrs](), unsafe.Offsetof(msrs{}.Entries), "struct kvm_msrs"},

	{kvmSetUserMemoryRegion, iocWrite, reflect.TypeFor[userspaceMemoryRegion](), unsafe.Sizeof(userspaceMemoryRegion{}), "struct kvm_userspace_memory_region"},
	{kvmSetIdentityMapAddr, iocWrite, reflect.TypeFor[uint64](), unsafe.Sizeof(uint64(0)), "__u64"},
	{kvmIRQLine, iocWrite, reflect.TypeFor[irqLevel](), unsafe.Sizeof(irqLevel{}), "struct kvm_irq_level"},
	{kvmIRQFD, iocWrite, reflect.TypeFor[irqfd](), unsafe.Sizeof(irqfd{}), "struct kvm_irqfd"},
	{kvmCreatePIT2, iocWrite, reflect.TypeFor[pitConfig](), unsafe.Sizeof(pitConfig{}), "struct kvm_pit_config"},
	{kvmIOEventFD, iocWrite, reflect.TypeFor[ioeventfd](), unsafe.Sizeof(ioeventfd{}), "struct kvm_ioeventfd"},
	{kvmGetRegs, iocRead, reflect.TypeFor[Regs](), unsafe.Sizeof(Regs{}), "struct kvm_regs"},
	{kvmSetRegs, iocWrite, reflect.TypeFor[Regs](), unsafe.Sizeof(Regs{}), "struct kvm_regs"},
	{kvmGetSregs, iocRead, reflect.TypeFor[Sregs](), unsafe.Sizeof(Sregs{}), "struct kvm_sregs"},
	{kvmSetSregs, iocWrite, reflect.TypeFor[Sregs](), unsafe.Sizeof(Sregs{}), "struct kvm_sregs"},
	{kvmSetFPU, iocWrite, reflect.TypeFor[FPU](), unsafe.Sizeof(FPU{}), "struct kvm_fpu"},
	{kvmGetLAPIC, iocRead, reflect.TypeFor[LAPICState](), unsafe.Sizeof(LAPICState{}), "struct kvm_lapic_state"},
	{kvmSetLAPIC, iocWrite, reflect.TypeFor[LAPICState](), unsafe.Sizeof(LAPICState{}), "struct kvm_lapic_state"},

	// The state a snapshot saves and restores.
	// kvm_msr_list is { __u32 nmsrs; __u32 indices[]; }: a 4-byte header.
	{kvmGetMSRIndexList, iocRead | iocWrite, reflect.TypeFor[msrList](), unsafe.Offsetof(msrList{}.Indices), "struct kvm_msr_list"},
	{kvmGetMSRs, iocRead | iocWrite, reflect.TypeFor[msrs](), unsafe.Offsetof(msrs{}.Entries), "struct kvm_msrs"},
	{kvmGetIRQChip, iocRead | iocWrite, reflect.TypeFor[IRQChip](), unsafe.Sizeof(IRQChip{}), "struct kvm_irqchip"},
	// Declared _IOR in include/uapi/linux/kvm.h although the kernel reads
	// the argument: the direction bits are the header's, not the use's.
	{kvmSetIRQChip, iocRead, reflect.TypeFor[IRQChip](), unsafe.Sizeof(IRQChip{}), "struct kvm_irqchip"},
	{kvmGetClock, iocRead, reflect.TypeFor[ClockData](), unsafe.Sizeof(ClockData{}), "struct kvm_clock_data"},
	{kvmSetClock, iocWrite, reflect.TypeFor[ClockData](), unsafe.Sizeof(ClockData{}), "struct kvm_clock_data"},
	{kvmGetMPState, iocRead, reflect.TypeFor[MPState](), unsafe.Sizeof(MPState{}), "struct kvm_mp_state"},
	{kvmSetMPState, iocWrite, reflect.TypeFor[MPState](), unsafe.Sizeof(MPState{}), "struct kvm_mp_state"},
	{kvmGetPIT2, iocRead, reflect.TypeFor[PITState2](), unsafe.Sizeof(PITState2{}), "struct kvm_pit_state2"},
	{kvmSetPIT2, iocWrite, reflect.TypeFor[PITState2](), unsafe.Sizeof(PITState2{}), "struct kvm_pit_state2"},
	{kvmGetVCPUEvents, iocRead, reflect.TypeFor[VCPUEvents](), unsafe.Sizeof(VCPUEvents{}), "struct kvm_vcpu_events"},
	{kvmSetVCPUEvents, iocWrite, reflect.TypeFor[VCPUEvents](), unsafe.Sizeof(VCPUEvents{}), "struct kvm_vcpu_events"},
	{kvmGetDebugRegs, iocRead, reflect.TypeFor[DebugRegs](), unsafe.Sizeof(DebugRegs{}), "struct kvm_debugregs"},
	{kvmSetDebugRegs, iocWrite, reflect.TypeFor[DebugRegs](), unsafe.Sizeof(DebugRegs{}), "struct kvm_debugregs"},
	{kvmGetXSave, iocRead, reflect.TypeFor[XSave](), unsafe.Sizeof(XSave{}), "struct kvm_xsave"},
	{kvmSetXSave, iocWrite, reflect.TypeFor[XSave](), unsafe.Sizeof(XSave{}), "struct kvm_xsave"},
	{kvmGetXCRs, iocRead, reflect.TypeFor[XCRs](), unsafe.Sizeof(XCRs{}), "struct kvm_xcrs"},
	{kvmSetXCRs, iocWrite, reflect.TypeFor[XCRs](), unsafe.Sizeof(XCRs{}), "struct kvm_xcrs"},
}

// directionAgainstName lists the ioctls whose header direction contradicts
// their name (see sizedIoctls).
var directionAgainstName = map[string]bool{"KVM_SET_IRQCHIP": true}

func findSized(req uintptr) (sizedIoctl, bool) {
	for _, s := range sizedIoctls {
		if s.req == req {
			return s, true
		}
	}
	return sizedIoctl{}, false
}

// TestIoctlArgumentSizes: the size and direction each number encodes are
// those of the Go argument and of its use.
func TestIoctlArgumentSizes(t *testing.T) {
	for _, s := range sizedIoctls {
		name, ok := ioctlNames[s.req]
		require.True(t, ok, "%#x is not in ioctlNames", s.req)
		t.Run(name, func(t *testing.T) {
			require.EqualValues(t, kvmio, iocType(s.req), "type byte")
			require.Equal(t, s.size, iocSize(s.req),
				"%s encodes %d bytes of %s; the Go %v is %d", name, iocSize(s.req), s.c, s.arg, s.size)
			require.Equal(t, s.dir, iocDir(s.req), "direction bits of %s", name)
			if s.size == s.arg.Size() {
				return
			}
			// A flexible array: the Go type is the header and room for
			// its entries, an array that ends the struct; the kernel reads
			// the header first.
			last := s.arg.Field(s.arg.NumField() - 1)
			require.Equal(t, reflect.Array, last.Type.Kind(), "%v is bigger than %s but does not end in an array", s.arg, s.c)
			require.Equal(t, s.size, last.Offset, "%v.%s starts where %s ends", s.arg, last.Name, s.c)
			require.Equal(t, s.arg.Size(), last.Offset+last.Type.Size(), "%v.%s ends the struct", s.arg, last.Name)
		})
	}
}

// TestEverySizedIoctlIsChecked: a new ioctl number with an argument size
// needs an entry in sizedIoctls; one without a size encodes no direction
// either (_IO). Names say the direction: KVM_GET_* reads, KVM_SET_* writes.
func TestEverySizedIoctlIsChecked(t *testing.T) {
	seen := map[string]bool{}
	for req, name := range ioctlNames {
		require.False(t, seen[name], "%s named twice", name)
		seen[name] = true
		require.Equal(t, name, IoctlName(req))
		require.EqualValues(t, kvmio, iocType(req), "%s (%#x): type byte is not KVMIO", name, req)
		s, listed := findSized(req)
		if iocSize(req) == 0 {
			require.EqualValues(t, iocNone, iocDir(req), "%s (%#x): a direction but no size", name, req)
			require.False(t, listed, "%s has no argument size but is in sizedIoctls", name)
			continue
		}
		require.True(t, listed, "%s (%#x) encodes a %d-byte argument: add it to sizedIoctls with the Go type vmm/kvm passes",
			name, req, iocSize(req))
		if directionAgainstName[name] {
			continue
		}
		if strings.HasPrefix(name, "KVM_GET_") {
			require.NotZero(t, s.dir&iocRead, "%s gets, but the kernel writes nothing back", name)
		}
		if strings.HasPrefix(name, "KVM_SET_") {
			require.NotZero(t, s.dir&iocWrite, "%s sets, but the kernel reads nothing", name)
		}
	}
	require.Equal(t, "KVM ioctl", IoctlName(0xdead))
}

// TestIoctlCallSites type-checks this package's own source and looks at
// every ioctl it issues: ioctlPtr must pass a pointer to the type that
// sizedIoctls names for that number, and ioctl (an integer argument) only
// numbers without a size. So the table cannot drift from the code.
func TestIoctlCallSites(t *testing.T) {
	fset := token.NewFileSet()
	var files []*ast.File
	ents, err := os.ReadDir(".")
	require.NoError(t, err)
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, e.Name(), nil, 0)
		require.NoError(t, err)
		files = append(files, f)
	}
	// Imports resolve to empty packages: only this package's own types
	// matter here, and errors about the others are ignored.
	conf := types.Config{Importer: emptyImporter{}, Error: func(error) {}}
	info := &types.Info{Types: map[ast.Expr]types.TypeAndValue{}}
	conf.Check("github.com/kiln-vmm/kiln/vmm/kvm", fset, files, info)

	issued := map[uintptr]bool{}
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			fn := call.Fun
			if ix, ok := fn.(*ast.IndexExpr); ok { // ioctlPtr[T](...)
				fn = ix.X
			}
			id, ok := fn.(*ast.Ident)
			if !ok || (id.Name != "ioctl" && id.Name != "ioctlPtr") || len(call.Args) != 3 {
				return true
			}
			where := fset.Position(call.Pos())
			tv := info.Types[call.Args[1]]
			if tv.Value == nil {
				// Only the helpers themselves pass a variable request.
				require.Contains(t, where.Filename, "_unsafe.go", "%v: %s with a request that is not a constant", where, id.Name)
				return true
			}
			v, _ := constant.Uint64Val(tv.Value)
			req := uintptr(v)
			name := IoctlName(req)
			if id.Name == "ioctl" {
				require.Zero(t, iocSize(req), "%v: %s has a %d-byte argument but is issued with an integer", where, name, iocSize(req))
				issued[req] = true
				return true
			}
			s, ok := findSized(req)
			require.True(t, ok, "%v: %s is passed a pointer but has no argument size", where, name)
			ptr, ok := info.Types[call.Args[2]].Type.(*types.Pointer)
			require.True(t, ok, "%v: %s argument is not a pointer", where, name)
			unqualified := func(*types.Package) string { return "" }
			require.Equal(t, s.arg.Name(), types.TypeString(ptr.Elem(), unqualified),
				"%v: %s is passed a %v; sizedIoctls says %v", where, name, ptr.Elem(), s.arg)
			issued[req] = true
			return true
		})
	}
	for req, name := range ioctlNames {
		require.True(t, issued[req], "%s is never issued, so its argument type is unchecked", name)
	}
}

type emptyImporter struct{}

func (emptyImporter) Import(path string) (*types.Package, error) {
	p := types.NewPackage(path, path[strings.LastIndex(path, "/")+1:])
	p.MarkComplete()
	return p, nil
}

// TestStructLayout checks sizes and the offsets the kernel and kiln rely
// on against the C layout (x86-64, from offsetof/sizeof on the headers).
func TestStructLayout(t *testing.T) {
	var (
		r   Regs
		seg Segment
		dt  DTable
		s   Sregs
		f   FPU
		e   CPUIDEntry
		m   MSR
		u   userspaceMemoryRegion
		l   irqLevel
		q   irqfd
		io  ioeventfd
	)
	for _, c := range []struct {
		what      string
		got, want uintptr
	}{
		// arch/x86/include/uapi/asm/kvm.h: struct kvm_regs, 18 __u64.
		{"sizeof(struct kvm_regs)", unsafe.Sizeof(r), 144},
		{"kvm_regs.r8", unsafe.Offsetof(r.R8), 64},
		{"kvm_regs.rip", unsafe.Offsetof(r.RIP), 128},
		{"kvm_regs.rflags", unsafe.Offsetof(r.RFLAGS), 136},

		// arch/x86/include/uapi/asm/kvm.h: struct kvm_segment.
		{"sizeof(struct kvm_segment)", unsafe.Sizeof(seg), 24},
		{"kvm_segment.limit", unsafe.Offsetof(seg.Limit), 8},
		{"kvm_segment.selector", unsafe.Offsetof(seg.Selector), 12},
		{"kvm_segment.type", unsafe.Offsetof(seg.Type), 14},
		{"kvm_segment.present", unsafe.Offsetof(seg.Present), 15},
		{"kvm_segment.dpl", unsafe.Offsetof(seg.DPL), 16},
		{"kvm_segment.db", unsafe.Offsetof(seg.DB), 17},
		{"kvm_segment.s", unsafe.Offsetof(seg.S), 18},
		{"kvm_segment.l", unsafe.Offsetof(seg.L), 19},
		{"kvm_segment.g", unsafe.Offsetof(seg.G), 20},
		{"kvm_segment.avl", unsafe.Offsetof(seg.AVL), 21},
		{"kvm_segment.unusable", unsafe.Offsetof(seg.Unusable), 22},

		// arch/x86/include/uapi/asm/kvm.h: struct kvm_dtable.
		{"sizeof(struct kvm_dtable)", unsafe.Sizeof(dt), 16},
		{"kvm_dtable.limit", unsafe.Offsetof(dt.Limit), 8},

		// arch/x86/include/uapi/asm/kvm.h: struct kvm_sregs.
		{"sizeof(struct kvm_sregs)", unsafe.Sizeof(s), 312},
		{"kvm_sregs.cs", unsafe.Offsetof(s.CS), 0},
		{"kvm_sregs.ss", unsafe.Offsetof(s.SS), 120},
		{"kvm_sregs.tr", unsafe.Offsetof(s.TR), 144},
		{"kvm_sregs.ldt", unsafe.Offsetof(s.LDT), 168},
		{"kvm_sregs.gdt", unsafe.Offsetof(s.GDT), 192},
		{"kvm_sregs.idt", unsafe.Offsetof(s.IDT), 208},
		{"kvm_sregs.cr0", unsafe.Offsetof(s.CR0), 224},
		{"kvm_sregs.cr3", unsafe.Offsetof(s.CR3), 240},
		{"kvm_sregs.cr4", unsafe.Offsetof(s.CR4), 248},
		{"kvm_sregs.cr8", unsafe.Offsetof(s.CR8), 256},
		{"kvm_sregs.efer", unsafe.Offsetof(s.EFER), 264},
		{"kvm_sregs.apic_base", unsafe.Offsetof(s.APICBase), 272},
		{"kvm_sregs.interrupt_bitmap", unsafe.Offsetof(s.InterruptBitmap), 280},

		// arch/x86/include/uapi/asm/kvm.h: struct kvm_fpu.
		{"sizeof(struct kvm_fpu)", unsafe.Sizeof(f), 416},
		{"kvm_fpu.fcw", unsafe.Offsetof(f.FCW), 128},
		{"kvm_fpu.fsw", unsafe.Offsetof(f.FSW), 130},
		{"kvm_fpu.ftwx", unsafe.Offsetof(f.FTWX), 132},
		{"kvm_fpu.last_opcode", unsafe.Offsetof(f.LastOpcode), 134},
		{"kvm_fpu.last_ip", unsafe.Offsetof(f.LastIP), 136},
		{"kvm_fpu.last_dp", unsafe.Offsetof(f.LastDP), 144},
		{"kvm_fpu.xmm", unsafe.Offsetof(f.XMM), 152},
		{"kvm_fpu.mxcsr", unsafe.Offsetof(f.MXCSR), 408},

		// arch/x86/include/uapi/asm/kvm.h: struct kvm_cpuid_entry2 and
		// struct kvm_cpuid2 { __u32 nent; __u32 padding; entries[] }.
		{"sizeof(struct kvm_cpuid_entry2)", unsafe.Sizeof(e), 40},
		{"kvm_cpuid_entry2.index", unsafe.Offsetof(e.Index), 4},
		{"kvm_cpuid_entry2.flags", unsafe.Offsetof(e.Flags), 8},
		{"kvm_cpuid_entry2.eax", unsafe.Offsetof(e.EAX), 12},
		{"kvm_cpuid_entry2.edx", unsafe.Offsetof(e.EDX), 24},
		{"kvm_cpuid2.entries", unsafe.Offsetof(cpuid2{}.Entries), 8},

		// arch/x86/include/uapi/asm/kvm.h: struct kvm_msr_entry, and
		// struct kvm_msrs { __u32 nmsrs; __u32 pad; entries[] }.
		{"sizeof(struct kvm_msr_entry)", unsafe.Sizeof(m), 16},
		{"kvm_msr_entry.data", unsafe.Offsetof(m.Data), 8},
		{"kvm_msrs.entries", unsafe.Offsetof(msrs{}.Entries), 8},

		// arch/x86/include/uapi/asm/kvm.h: KVM_APIC_REG_SIZE 0x400.
		{"sizeof(struct kvm_lapic_state)", unsafe.Sizeof(LAPICState{}), 1024},

		// include/uapi/linux/kvm.h.
		{"sizeof(struct kvm_userspace_memory_region)", unsafe.Sizeof(u), 32},
		{"kvm_userspace_memory_region.flags", unsafe.Offsetof(u.Flags), 4},
		{"kvm_userspace_memory_region.guest_phys_addr", unsafe.Offsetof(u.GuestPhysAddr), 8},
		{"kvm_userspace_memory_region.memory_size", unsafe.Offsetof(u.MemorySize), 16},
		{"kvm_userspace_memory_region.userspace_addr", unsafe.Offsetof(u.UserspaceAddr), 24},
		{"sizeof(struct kvm_irq_level)", unsafe.Sizeof(l), 8},
		{"kvm_irq_level.level", unsafe.Offsetof(l.Level), 4},
		{"sizeof(struct kvm_pit_config)", unsafe.Sizeof(pitConfig{}), 64},
		{"sizeof(struct kvm_irqfd)", unsafe.Sizeof(q), 32},
		{"kvm_irqfd.gsi", unsafe.Offsetof(q.GSI), 4},
		{"kvm_irqfd.flags", unsafe.Offsetof(q.Flags), 8},
		{"kvm_irqfd.resamplefd", unsafe.Offsetof(q.ResampleFD), 12},
		{"sizeof(struct kvm_ioeventfd)", unsafe.Sizeof(io), 64},
		{"kvm_ioeventfd.addr", unsafe.Offsetof(io.Addr), 8},
		{"kvm_ioeventfd.len", unsafe.Offsetof(io.Len), 16},
		{"kvm_ioeventfd.fd", unsafe.Offsetof(io.FD), 20},
		{"kvm_ioeventfd.flags", unsafe.Offsetof(io.Flags), 24},

		// The snapshot state. include/uapi/linux/kvm.h: struct kvm_mp_state,
		// kvm_clock_data, kvm_irqchip; arch/x86/include/uapi/asm/kvm.h:
		// kvm_pit_state2, kvm_vcpu_events, kvm_debugregs, kvm_xsave,
		// kvm_xcr(s), kvm_msr_list.
		{"sizeof(struct kvm_mp_state)", unsafe.Sizeof(MPState{}), 4},
		{"sizeof(struct kvm_clock_data)", unsafe.Sizeof(ClockData{}), 48},
		{"kvm_clock_data.flags", unsafe.Offsetof(ClockData{}.Flags), 8},
		{"kvm_clock_data.realtime", unsafe.Offsetof(ClockData{}.Realtime), 16},
		{"kvm_clock_data.host_tsc", unsafe.Offsetof(ClockData{}.HostTSC), 24},
		{"sizeof(struct kvm_irqchip)", unsafe.Sizeof(IRQChip{}), 520},
		{"kvm_irqchip.chip", unsafe.Offsetof(IRQChip{}.State), 8},
		{"sizeof(struct kvm_pit_state2)", unsafe.Sizeof(PITState2{}), 112},
		{"sizeof(struct kvm_vcpu_events)", unsafe.Sizeof(VCPUEvents{}), 64},
		{"sizeof(struct kvm_debugregs)", unsafe.Sizeof(DebugRegs{}), 128},
		{"kvm_debugregs.dr6", unsafe.Offsetof(DebugRegs{}.DR6), 32},
		{"kvm_debugregs.dr7", unsafe.Offsetof(DebugRegs{}.DR7), 40},
		{"kvm_debugregs.flags", unsafe.Offsetof(DebugRegs{}.Flags), 48},
		{"sizeof(struct kvm_xsave) (region[1024])", unsafe.Sizeof(XSave{}), 4096},
		{"sizeof(struct kvm_xcr)", unsafe.Sizeof(XCR{}), 16},
		{"kvm_xcr.value", unsafe.Offsetof(XCR{}.Value), 8},
		{"sizeof(struct kvm_xcrs)", unsafe.Sizeof(XCRs{}), 392},
		{"kvm_xcrs.flags", unsafe.Offsetof(XCRs{}.Flags), 4},
		{"kvm_xcrs.xcrs", unsafe.Offsetof(XCRs{}.XCRs), 8},
		{"kvm_msr_list.indices", unsafe.Offsetof(msrList{}.Indices), 4},

		// include/uapi/linux/kvm.h: struct kvm_run, the fields run.go names.
		{"kvm_run.immediate_exit", runImmediateExit, 1},
		{"kvm_run.exit_reason", runExitReason, 8},
		{"kvm_run union (after cr8, apic_base)", runUnion, 32},
	} {
		require.Equal(t, c.want, c.got, c.what)
	}
	// Constants passed to the kernel as they are.
	require.EqualValues(t, 1, CPUIDFlagSignificantIndex, "KVM_CPUID_FLAG_SIGNIFCANT_INDEX (sic), asm/kvm.h")
	require.EqualValues(t, 1, pitSpeakerDummy, "KVM_PIT_SPEAKER_DUMMY, linux/kvm.h")
	require.EqualValues(t, 12, APIVersion, "KVM_API_VERSION, linux/kvm.h")
	require.Equal(t, [3]int{0, 1, 2}, [3]int{IRQChipPICMaster, IRQChipPICSlave, IRQChipIOAPIC},
		"KVM_IRQCHIP_PIC_MASTER, _PIC_SLAVE, _IOAPIC, asm/kvm.h")
}

// runPage is a fake struct kvm_run: the kernel's page, filled in at the
// offsets offsetof gives for the x86-64 headers (include/uapi/linux/kvm.h).
func runPage() (*VCPU, []byte) {
	p := make([]byte, 4096)
	return &VCPU{run: p}, p
}

// TestRunDecoders fills kvm_run as the kernel would, at the C offsets, and
// checks each decoder in run.go reads the same fields.
func TestRunDecoders(t *testing.T) {
	v, p := runPage()

	le.PutUint32(p[8:], uint32(ExitIO)) // exit_reason at 8
	require.Equal(t, ExitIO, v.ExitReason())

	// io: __u8 direction @32, __u8 size @33, __u16 port @34,
	// __u32 count @36, __u64 data_offset @40 (from the start of kvm_run).
	p[32], p[33] = 1, 2
	le.PutUint16(p[34:], 0x3f8)
	le.PutUint32(p[36:], 3)
	le.PutUint64(p[40:], 0x1000-6)
	copy(p[0x1000-6:], "abcdef")
	io := v.IO()
	require.Equal(t, IOExit{Port: 0x3f8, Write: true, Size: 2, Count: 3, Data: p[0x1000-6 : 0x1000]}, io)
	// A data_offset past the page, or a count running past it, is refused.
	le.PutUint64(p[40:], 0x1000-5)
	require.Nil(t, v.IO().Data)
	le.PutUint64(p[40:], 1<<63)
	require.Nil(t, v.IO().Data)

	// mmio: __u64 phys_addr @32, __u8 data[8] @40, __u32 len @48,
	// __u8 is_write @52.
	clear(p)
	le.PutUint64(p[32:], 0xd0000000)
	copy(p[40:], "12345678")
	le.PutUint32(p[48:], 4)
	p[52] = 1
	require.Equal(t, MMIOExit{Addr: 0xd0000000, Write: true, Data: []byte("1234")}, v.MMIO())
	le.PutUint32(p[48:], 1000) // more than data[8]
	require.Len(t, v.MMIO().Data, 8)

	// internal: __u32 suberror @32, __u32 ndata @36, __u64 data[16] @40.
	clear(p)
	le.PutUint32(p[32:], 1)
	le.PutUint32(p[36:], 2)
	le.PutUint64(p[40:], 7)
	le.PutUint64(p[48:], 9)
	require.Equal(t, InternalExit{Suberror: 1, Data: []uint64{7, 9}}, v.Internal())
	require.Equal(t, "emulation failure", v.Internal().Suberror.String())
	le.PutUint32(p[36:], 1000)
	require.Len(t, v.Internal().Data, 16)

	// system_event: __u32 type @32; fail_entry:
	// __u64 hardware_entry_failure_reason @32.
	clear(p)
	le.PutUint32(p[32:], 2)
	require.Equal(t, "reset", v.SystemEventType().String())
	le.PutUint64(p[32:], 0x80000021)
	require.EqualValues(t, 0x80000021, v.FailEntryReason())

	// immediate_exit: __u8 @1.
	v.SetImmediateExit(true)
	require.EqualValues(t, 1, p[1])
	v.SetImmediateExit(false)
	require.EqualValues(t, 0, p[1])
}

// FuzzRunDecoders: whatever the kvm_run page holds, the decoders never
// panic and never hand out bytes outside the page.
func FuzzRunDecoders(f *testing.F) {
	seed := make([]byte, 64)
	seed[32], seed[33], seed[36], seed[40] = 1, 4, 1, 0x80
	f.Add(seed)
	f.Fuzz(func(t *testing.T, data []byte) {
		v, p := runPage()
		copy(p, data)
		_ = v.ExitReason().String()
		io := v.IO()
		if io.Data != nil && len(io.Data) != io.Size*io.Count {
			t.Fatalf("IO data of %d bytes for %d x %d", len(io.Data), io.Count, io.Size)
		}
		if n := len(v.MMIO().Data); n > 8 {
			t.Fatalf("MMIO data of %d bytes", n)
		}
		ie := v.Internal()
		_ = ie.Suberror.String() + v.SystemEventType().String() + fmt.Sprint(v.FailEntryReason())
		if len(ie.Data) > 16 {
			t.Fatalf("%d internal data words", len(ie.Data))
		}
	})
}
