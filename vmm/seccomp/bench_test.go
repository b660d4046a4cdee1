package seccomp

import "testing"

// BenchmarkPrograms assembles the filters a VM with one vCPU installs,
// work on the path from kiln's start to the first KVM_RUN.
func BenchmarkPrograms(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if _, err := Process(Needs{}).Program(On); err != nil {
			b.Fatal(err)
		}
		if _, err := VCPU(Needs{}, 0).Program(On); err != nil {
			b.Fatal(err)
		}
	}
}
