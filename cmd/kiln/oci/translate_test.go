package oci

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/require"

	"github.com/kiln-vmm/kiln/guest/contract"
	"github.com/kiln-vmm/kiln/vmm/config"
)

// podmanBundle writes a bundle with the config.json podman 4.3 wrote for
// `podman run -e A=B -w /tmp -u 1000:1000 -v /tmp/x:/data --read-only
// --hostname kh` (testdata, captured), its host paths moved under a
// temporary directory, and returns it with that directory.
func podmanBundle(t *testing.T, edit func(*specs.Spec)) (bundle, tmp string) {
	t.Helper()
	tmp = t.TempDir()
	data, err := os.ReadFile("testdata/podman-config.json")
	require.NoError(t, err)
	s := string(data)
	// The userdata directories podman binds files from, the volume and
	// the overlay root, all moved.
	const id = "9f17ccb81cc80a4fab2d4988043a76b6ec4b6e3ba048972229d6a5331891a9e1"
	s = strings.ReplaceAll(s, "/var/lib/containers/storage/overlay-containers/"+id+"/userdata", tmp+"/B")
	s = strings.ReplaceAll(s, "/run/containers/storage/overlay-containers/"+id+"/userdata", tmp+"/R")
	s = strings.ReplaceAll(s, `"/tmp/x"`, `"`+tmp+`/x"`)
	var spec specs.Spec
	require.NoError(t, json.Unmarshal([]byte(s), &spec))
	spec.Root.Path = filepath.Join(tmp, "merged")
	if edit != nil {
		edit(&spec)
	}
	for _, d := range []string{"B/shm", "R", "x", "merged", "bundle"} {
		require.NoError(t, os.MkdirAll(filepath.Join(tmp, d), 0o755))
	}
	for _, f := range []string{"B/group", "B/passwd", "R/hostname", "R/hosts", "R/resolv.conf"} {
		require.NoError(t, os.WriteFile(filepath.Join(tmp, f), []byte("x\n"), 0o644))
	}
	out, err := json.Marshal(spec)
	require.NoError(t, err)
	bundle = filepath.Join(tmp, "bundle")
	require.NoError(t, os.WriteFile(filepath.Join(bundle, "config.json"), out, 0o644))
	return bundle, tmp
}

func translateBundle(t *testing.T, bundle string) (*Plan, error) {
	t.Helper()
	b, err := LoadBundle(bundle)
	require.NoError(t, err)
	return Translate(b, "/empty")
}

func TestTranslatePodman(t *testing.T) {
	bundle, tmp := podmanBundle(t, nil)
	p, err := translateBundle(t, bundle)
	require.NoError(t, err)

	// Slots: the root, the volume, podman's two userdata directories
	// (each shared once, read-only: every bind from them is), then empty.
	require.Len(t, p.Shares, Slots)
	want := []struct {
		dir string
		ro  bool
	}{{tmp + "/merged", false}, {tmp + "/x", false}, {tmp + "/B", true}, {tmp + "/R", true}}
	for i, w := range want {
		require.Equal(t, w.dir, p.Shares[i].HostDir, "slot %d", i)
		require.Equal(t, w.ro, p.Shares[i].ReadOnly, "slot %d", i)
		require.Equal(t, SlotTag(i), p.Shares[i].Tag)
	}
	for _, s := range p.Shares[len(want):] {
		require.Equal(t, "/empty", s.HostDir)
		require.True(t, s.ReadOnly)
	}

	c := p.Container
	require.Equal(t, contract.ContainerRoot{Tag: "kiln0", ReadOnly: true}, c.Root)
	require.Equal(t, "kh", c.Hostname)
	require.Equal(t, "/tmp", c.Cwd)
	require.Equal(t, uint32(1000), c.User.UID)
	require.Equal(t, uint32(1000), c.User.GID)
	require.Equal(t, []uint32{1000}, c.User.AdditionalGIDs)
	require.NotNil(t, c.User.Umask)
	require.Equal(t, uint32(0o22), *c.User.Umask)
	require.Contains(t, c.Env, "A=B")
	require.Equal(t, []contract.Rlimit{{Resource: 7, Soft: 1024, Hard: 1024}, {Resource: 6, Soft: 4096, Hard: 4096}}, c.Rlimits)
	require.Equal(t, ControlPort, int(c.ControlPort))
	require.False(t, c.Terminal)
	require.NotNil(t, c.Capabilities)
	require.Contains(t, c.Capabilities.Bounding, capabilities["CAP_CHOWN"])
	require.NotContains(t, c.Capabilities.Bounding, capabilities["CAP_SYS_ADMIN"])
	require.Empty(t, c.Capabilities.Ambient, "podman gives a user no ambient set")
	require.Equal(t, map[string]string{"net.ipv4.ping_group_range": "0 0"}, c.Sysctl)
	require.Contains(t, c.MaskedPaths, "/proc/kcore")
	require.Contains(t, c.ReadonlyPaths, "/proc/sys")
	require.Len(t, c.Devices, 6, "runc's default devices in the tmpfs /dev")

	mounts := map[string]contract.ContainerMount{}
	for _, m := range c.Mounts {
		mounts[m.Destination] = m
	}
	require.NotContains(t, mounts, "/sys/fs/cgroup", "no cgroups in the guest")
	require.Equal(t, contract.ContainerMount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", NoSuid: true, NoDev: true, CopyUp: true, Propagation: []string{"rprivate"}}, mounts["/tmp"])
	require.Equal(t, contract.ContainerMount{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", NoSuid: true, NoExec: true, Data: []string{"mode=755", "size=65536k"}}, mounts["/dev"])
	require.Equal(t, []string{"newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}, mounts["/dev/pts"].Data)
	// A bound directory is the one entry of its share's view; bound files
	// are the only ones of theirs.
	require.Equal(t, contract.ContainerMount{Destination: "/data", Type: "bind", Tag: "kiln1", Path: "x", Recursive: true, Propagation: []string{"rprivate"}}, mounts["/data"])
	require.Equal(t, &config.ShareView{Name: "x"}, p.Shares[1].View)
	require.Nil(t, p.Shares[0].View, "the root is shared whole")
	require.Equal(t, contract.ContainerMount{Destination: "/etc/group", Type: "bind", Tag: "kiln2", Path: "group", ReadOnly: true, NoSuid: true, NoDev: true, NoExec: true, Propagation: []string{"rprivate"}}, mounts["/etc/group"])
	require.Equal(t, "kiln3", mounts["/etc/hosts"].Tag)
	require.Equal(t, "hosts", mounts["/etc/hosts"].Path)
	require.NotNil(t, p.Shares[3].View)
	require.Empty(t, p.Shares[3].View.Name)
	require.Contains(t, p.Shares[3].View.Files, "hosts")
	require.NotContains(t, p.Shares[3].View.Files, "group", "group is another directory's")
	require.Equal(t, "tmpfs", mounts["/dev/shm"].Type, "podman's /dev/shm becomes a tmpfs in the guest")
	require.True(t, mounts["/sys"].ReadOnly)

	joined := strings.Join(p.Ignored, "\n")
	require.NotContains(t, joined, "network", "the network namespace is taken, not ignored")
	require.Equal(t, "/run/netns/netns-2b7cda91-77c0-18f4-4c1b-fd4f671afb17", p.Netns, "podman's namespace, for create to read")
	require.False(t, p.NewNetns)
	require.Nil(t, p.Network, "Translate reads config.json only; create reads the namespace")
	require.Contains(t, joined, "seccomp")
	require.Contains(t, joined, "cgroup")
}

func TestTranslateContainerd(t *testing.T) {
	dir := t.TempDir()
	data, err := os.ReadFile("testdata/containerd-config.json")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "rootfs"), 0o755))
	b, err := LoadBundle(dir)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, "rootfs"), b.Rootfs, "a relative root.path is the bundle's")
	p, err := Translate(b, "/empty")
	require.NoError(t, err)
	require.Equal(t, b.Rootfs, p.Shares[0].HostDir)
	require.Equal(t, "/empty", p.Shares[1].HostDir, "ctr binds nothing from the host")
	require.True(t, p.Container.NoNewPrivileges)
	require.False(t, p.Container.Root.ReadOnly)
	require.True(t, p.NewNetns, "a network namespace without a path: a new one, as runc makes")
	require.Empty(t, p.Netns)
}

func TestTranslateRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*specs.Spec)
		want string
	}{
		{"user namespace", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		}, "user namespace"},
		{"joined namespace", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.IPCNamespace, Path: "/proc/1/ns/ipc"})
		}, "joining the ipc namespace"},
		{"the host's network", func(s *specs.Spec) {
			var ns []specs.LinuxNamespace
			for _, n := range s.Linux.Namespaces {
				if n.Type != specs.NetworkNamespace {
					ns = append(ns, n)
				}
			}
			s.Linux.Namespaces = ns // podman --network host
		}, "a VM cannot share the host's network stack"},
		{"no linux section", func(s *specs.Spec) { s.Linux = nil }, "a VM cannot share the host's network stack"},
		{"hooks in the container's namespaces", func(s *specs.Spec) {
			s.Hooks = &specs.Hooks{CreateContainer: []specs.Hook{{Path: "/bin/true"}}}
		}, "hooks.createContainer"},
		{"a host device bound", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/dev/x", Type: "bind", Source: "/dev/null", Options: []string{"bind"}})
		}, "only directories and regular files"},
		{"another file system", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt", Type: "ext4", Source: "/dev/vda"})
		}, `"ext4" mount`},
		{"relative cwd", func(s *specs.Spec) { s.Process.Cwd = "tmp" }, "not an absolute path"},
		{"unknown rlimit", func(s *specs.Spec) {
			s.Process.Rlimits = append(s.Process.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_BOGUS"})
		}, "RLIMIT_BOGUS"},
		{"bad sysctl", func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"../../x": "1"} }, "sysctl"},
		{"too many shares", func(s *specs.Spec) {
			for i := 0; i < Slots; i++ {
				d := t.TempDir()
				s.Mounts = append(s.Mounts, specs.Mount{Destination: filepath.Join("/v", d), Type: "bind", Source: d})
			}
		}, "shared directories"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bundle, _ := podmanBundle(t, tc.edit)
			_, err := translateBundle(t, bundle)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestLoadBundleErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := LoadBundle(dir)
	require.ErrorIs(t, err, ErrBadBundle)
	require.Contains(t, err.Error(), "config.json: no such file")

	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), []byte("{not json"), 0o644))
	_, err = LoadBundle(dir)
	require.ErrorIs(t, err, ErrBadBundle)
	require.Contains(t, err.Error(), "not valid")

	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"args":["true"],"cwd":"/"}}`), 0o644))
	_, err = LoadBundle(dir)
	require.ErrorIs(t, err, ErrBadBundle)
	require.Contains(t, err.Error(), "root file system")

	require.NoError(t, os.Mkdir(filepath.Join(dir, "rootfs"), 0o755))
	b, err := LoadBundle(dir)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, "rootfs"), b.Rootfs)

	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"cwd":"/"}}`), 0o644))
	_, err = LoadBundle(dir)
	require.ErrorIs(t, err, ErrBadBundle)
	require.Contains(t, err.Error(), "no process")
}

// TestTranslateCapabilitySets: all five sets reach the guest, by number,
// and a name kiln does not know is left out and said.
func TestTranslateCapabilitySets(t *testing.T) {
	bundle, _ := podmanBundle(t, func(s *specs.Spec) {
		s.Process.Capabilities = &specs.LinuxCapabilities{
			Bounding:    []string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"},
			Effective:   []string{"CAP_KILL"},
			Permitted:   []string{"CAP_KILL", "CAP_NET_RAW"},
			Inheritable: []string{"CAP_NET_RAW", "CAP_NOSUCH"},
			Ambient:     []string{"cap_net_raw"},
		}
		adj := -500
		s.Process.OOMScoreAdj = &adj
	})
	b, err := LoadBundle(bundle)
	require.NoError(t, err)
	p, err := Translate(b, "/empty")
	require.NoError(t, err)
	require.Equal(t, &contract.Capabilities{
		Bounding: []int{0, 5, 13}, Effective: []int{5}, Permitted: []int{5, 13}, Inheritable: []int{13}, Ambient: []int{13},
	}, p.Container.Capabilities)
	require.Contains(t, p.Ignored, "unknown capability CAP_NOSUCH")
	require.Equal(t, -500, *p.Container.OOMScoreAdj)
}

// TestTranslateRootPropagation: linux.rootfsPropagation reaches the
// guest; a type that is none of the eight is refused.
func TestTranslateRootPropagation(t *testing.T) {
	for _, prop := range []string{"shared", "rslave", "private", "runbindable"} {
		bundle, _ := podmanBundle(t, func(s *specs.Spec) { s.Linux.RootfsPropagation = prop })
		b, err := LoadBundle(bundle)
		require.NoError(t, err)
		p, err := Translate(b, "/empty")
		require.NoError(t, err)
		require.Equal(t, prop, p.Container.RootPropagation)
	}
	bundle, _ := podmanBundle(t, func(s *specs.Spec) { s.Linux.RootfsPropagation = "sideways" })
	b, err := LoadBundle(bundle)
	require.NoError(t, err)
	_, err = Translate(b, "/empty")
	require.ErrorIs(t, err, ErrBadBundle)
	require.Contains(t, err.Error(), "rootfsPropagation")
}

// TestTranslateResources: podman run --memory 256m --cpus 2 gives a VM of
// 2 vCPUs and 256 MiB less what its VMM keeps under the host cgroup's
// limit; without a cgroupsPath the VM is the whole 256 MiB, and podman's
// default pids limit and device rules, which no host cgroup then takes,
// are noted, not dropped.
func TestTranslateResources(t *testing.T) {
	for _, c := range []struct {
		cgroupsPath string
		mem         uint64
		notes       []string
	}{
		{"/libpod_parent/libpod-c1", 256<<20 - VMMReserve, nil},
		{"", 256 << 20, []string{"memory.swap", "pids.limit", "devices"}},
	} {
		bundle, _ := podmanBundle(t, func(s *specs.Spec) {
			s.Linux.CgroupsPath = c.cgroupsPath
			s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: i64(256 << 20), Swap: i64(512 << 20)}
			s.Linux.Resources.CPU = &specs.LinuxCPU{Quota: i64(200000), Period: u64(100000)}
		})
		b, err := LoadBundle(bundle)
		require.NoError(t, err)
		p, err := TranslateOn(b, "/empty", Host{CPUs: 2, Memory: 4 << 30})
		require.NoError(t, err)
		require.Equal(t, Size{CPUs: 2, Memory: c.mem}, p.Size, "cgroupsPath %q", c.cgroupsPath)
		notes := strings.Join(p.Notes, "\n")
		for _, want := range c.notes {
			require.Contains(t, notes, want)
		}
		if c.notes == nil {
			require.Empty(t, p.Notes, "every limit is the host cgroup's")
		}
	}

	p, err := translateBundle(t, writeResourcesBundle(t, nil))
	require.NoError(t, err)
	require.Equal(t, DefaultSize, p.Size, "no limits: the default VM")
	require.Empty(t, p.Notes)
}

func writeResourcesBundle(t *testing.T, res *specs.LinuxResources) string {
	bundle, _ := podmanBundle(t, func(s *specs.Spec) { s.Linux.Resources = res })
	return bundle
}
