package oci

import (
	"sort"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
)

// Features is what kiln features prints: the parts of the runtime
// specification kiln recognizes (runtime-spec's features.md).
func Features() features.Features {
	f, t := false, true
	caps := make([]string, 0, len(capabilities))
	for name := range capabilities {
		caps = append(caps, name)
	}
	sort.Slice(caps, func(i, j int) bool { return capabilities[caps[i]] < capabilities[caps[j]] })
	return features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: specs.Version,
		Hooks:         []string{"prestart", "createRuntime", "poststart", "poststop"}, // on the host (hooks.go)
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
			// The VMM's host cgroup (cgroup.go), v1 or v2. With
			// --systemd-cgroup a slice:prefix:name path is made in the
			// cgroup file system, not as a systemd unit: no systemd
			// cgroup manager.
			Cgroup:   &features.Cgroup{V1: &t, V2: &t, Systemd: &f, SystemdUser: &f},
			Seccomp:  &features.Seccomp{Enabled: &f},
			Apparmor: &features.Apparmor{Enabled: &f},
			Selinux:  &features.Selinux{Enabled: &f},
		},
		Annotations: map[string]string{
			"org.kiln-vmm.isolation": "microvm",
		},
	}
}
