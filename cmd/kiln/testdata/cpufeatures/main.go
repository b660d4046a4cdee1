// Command cpufeatures prints which vector extensions a Go program finds
// usable, as the runtime decides it: CPUID and XGETBV, then GODEBUG's
// cpu.* settings. TestGuestPVMVectorState runs it in a guest.
package main

import (
	"fmt"

	"golang.org/x/sys/cpu"
)

func main() {
	fmt.Printf("avx=%v avx2=%v avx512f=%v avx512vl=%v\n",
		cpu.X86.HasAVX, cpu.X86.HasAVX2, cpu.X86.HasAVX512F, cpu.X86.HasAVX512VL)
}
