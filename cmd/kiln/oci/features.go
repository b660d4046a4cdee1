package oci

import (
	"sort"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
)

// Features is what kiln features prints: the parts of the runtime
// specification kiln recognizes (runtime-spec's features.md).
func Features() features.Features {
	f := false
	caps := make([]string, 0, len(capabilities))
	for name := range capabilities {
		caps = append(caps, name)
	}
	sort.Slice(caps, func(i, j int) bool { return capabilities[caps[i]] < capabilities[caps[j]] })
	return features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: specs.Version,
		Hooks:         []string{}, // refused: see docs/oci.md
		MountOptions: []string{
			"bind", "rbind", "ro", "rw", "nosuid", "suid", "nodev", "dev", "noexec", "exec", "tmpcopyup",
			"private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable", "runbindable",
			"relatime", "norelatime", "strictatime", "noatime", "atime", "nodiratime", "diratime",
		},
		Linux: &features.Linux{
			// Each is the VM's own; joining another's (a path) is refused,
			// except the network's: the VM takes the interface there.
			Namespaces:   []string{"pid", "network", "ipc", "uts", "mount", "cgroup", "time"},
			Capabilities: caps,
			Cgroup:       &features.Cgroup{V1: &f, V2: &f, Systemd: &f, SystemdUser: &f},
			Seccomp:      &features.Seccomp{Enabled: &f},
			Apparmor:     &features.Apparmor{Enabled: &f},
			Selinux:      &features.Selinux{Enabled: &f},
		},
		Annotations: map[string]string{
			"org.kiln-vmm.isolation": "microvm",
		},
	}
}
