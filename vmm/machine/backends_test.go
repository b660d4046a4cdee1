package machine

import (
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/devices/share"
	"github.com/kiln-vmm/kiln/devices/tap"
	"github.com/kiln-vmm/kiln/devices/virtio"
	"github.com/kiln-vmm/kiln/vmm/config"
	"github.com/kiln-vmm/kiln/vmm/kvm"
)

// noKVM is a KVM device path that does not exist: a test that gets
// kvm.ErrNoKVM got as far as opening KVM, after every back end.
func noKVM(t *testing.T) string { return filepath.Join(t.TempDir(), "no-kvm") }

// openFDs counts this process's open descriptors. The first socket a
// process opens starts Go's network poller, whose descriptors stay: one
// is opened and closed before counting.
func openFDs(t *testing.T) int {
	ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "warm.sock"))
	require.NoError(t, err)
	ln.Close()
	ents, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	return len(ents)
}

// image writes a disk image of size bytes with the given mode.
func image(t *testing.T, size int64, mode os.FileMode) string {
	p := filepath.Join(t.TempDir(), "disk.img")
	require.NoError(t, os.WriteFile(p, nil, 0o600))
	require.NoError(t, os.Truncate(p, size))
	require.NoError(t, os.Chmod(p, mode))
	return p
}

// TestBackendErrorsComeBeforeKVM: every back end the user names is
// opened and checked before /dev/kvm, so its error, and the class the
// command line turns into an exit code (cmd/kiln/exitcodes.go: 65 for bad
// input, 66 for what is missing), is the same on any host. Each config
// here has a KVM path that does not exist: the back end's error wins.
func TestBackendErrorsComeBeforeKVM(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a-file")
	require.NoError(t, os.WriteFile(file, []byte("x"), 0o644))
	for _, c := range []struct {
		name string
		cfg  config.Config
		is   error  // the error class
		msg  string // in the message
	}{
		{"missing disk", config.Config{Shape: config.Shape{Disks: []config.Disk{{Path: filepath.Join(t.TempDir(), "none.img")}}}},
			fs.ErrNotExist, "no such file"},
		{"disk not a multiple of 512 bytes", config.Config{Shape: config.Shape{Disks: []config.Disk{{Path: image(t, 1000, 0o644)}}}},
			virtio.ErrBadImage, "not a positive multiple of 512"},
		{"read-only disk without ro", config.Config{Shape: config.Shape{Disks: []config.Disk{{Path: image(t, 4096, 0o444)}}}},
			virtio.ErrBadImage, "add ,ro"},
		{"tap that does not exist", config.Config{Shape: config.Shape{Nets: []config.Net{{Tap: "kiln-no-such0"}}}},
			tap.ErrNoTap, "does not exist"},
		{"share that is not a directory", config.Config{Shape: config.Shape{Shares: []config.Share{{HostDir: file, Tag: "kiln0"}}}},
			share.ErrBadShare, "not a directory"},
		{"vsock path that cannot be listened on", config.Config{Shape: config.Shape{Vsock: &config.Vsock{CID: 3, Path: filepath.Join(t.TempDir(), "no", "dir", "v.sock")}}},
			virtio.ErrVsock, "vsock unavailable"},
		{"a second disk missing after a good one", config.Config{Shape: config.Shape{Disks: []config.Disk{{Path: image(t, 4096, 0o644)}, {Path: "/nonexistent/b.img"}}}},
			fs.ErrNotExist, "no such file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := openFDs(t)
			cfg := c.cfg
			cfg.CPUs, cfg.Memory = 1, 64<<20
			_, err := New(&cfg, Options{KVMPath: noKVM(t)})
			require.ErrorIs(t, err, c.is)
			require.ErrorContains(t, err, c.msg)
			require.NotErrorIs(t, err, kvm.ErrNoKVM, "the back end is checked before KVM")
			require.Equal(t, before, openFDs(t), "what was opened is closed")
		})
	}
}

// TestBackendsOpenBeforeKVM: with back ends that are fine, New gets to
// KVM, fails there, and closes them: the socket device's socket file is
// gone, and no descriptor is left open.
func TestBackendsOpenBeforeKVM(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "v.sock")
	cfg := config.Config{Shape: config.Shape{CPUs: 1, Memory: 64 << 20,
		Disks:  []config.Disk{{Path: image(t, 1<<20, 0o644)}, {Path: image(t, 4096, 0o444), ReadOnly: true}},
		Shares: []config.Share{{HostDir: dir, Tag: "kiln0"}},
		Vsock:  &config.Vsock{CID: 3, Path: sock}}}
	before := openFDs(t)
	_, err := New(&cfg, Options{KVMPath: noKVM(t)})
	require.ErrorIs(t, err, kvm.ErrNoKVM)
	require.NoFileExists(t, sock, "the vsock listener is closed")
	require.Equal(t, before, openFDs(t))

	bs, err := openBackends(&cfg, nil)
	require.NoError(t, err)
	var types []virtio.DeviceType
	for _, b := range bs {
		types = append(types, b.dev.Type())
	}
	require.Equal(t, []virtio.DeviceType{virtio.TypeBlock, virtio.TypeBlock, virtio.TypeP9, virtio.TypeVsock, virtio.TypeRNG}, types,
		"in the order the guest names them")
	require.NoError(t, bs.close())
	require.Equal(t, before, openFDs(t))
}

// TestRestoreBackendErrorsComeBeforeKVM: a restore opens the snapshot's
// disks, and the socket device the config gives, before KVM too.
func TestRestoreBackendErrorsComeBeforeKVM(t *testing.T) {
	dir := t.TempDir()
	s := testSnapshot()
	s.Shape.Disks = []config.Disk{{Path: filepath.Join(t.TempDir(), "gone.img")}}
	b, err := encodeSnapshot(s, MemoryFileInfo{Size: s.MemSize})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, StateFile), b, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, MemoryFile), nil, 0o600))
	require.NoError(t, os.Truncate(filepath.Join(dir, MemoryFile), int64(s.MemSize)))

	_, err = Restore(dir, &config.Config{}, Options{KVMPath: noKVM(t)})
	require.ErrorIs(t, err, fs.ErrNotExist)
	require.NotErrorIs(t, err, kvm.ErrNoKVM)

	s.Shape.Disks = nil
	s.Shape.Vsock = &config.Vsock{CID: 3, Path: filepath.Join(t.TempDir(), "v.sock")}
	b, err = encodeSnapshot(s, MemoryFileInfo{Size: s.MemSize})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, StateFile), b, 0o600))
	cfg := &config.Config{Shape: config.Shape{Vsock: &config.Vsock{CID: 4, Path: filepath.Join(t.TempDir(), "no", "dir", "v.sock")}}}
	_, err = Restore(dir, cfg, Options{KVMPath: noKVM(t)})
	require.ErrorIs(t, err, virtio.ErrVsock, "the config's socket path, not the snapshot's")
}

// TestGivenTapsStayTheCallers: a network device on a tap the caller
// opened (Options.Taps: a container's, made in the engine's namespace)
// uses it instead of opening one by name, and a machine that fails to
// build leaves it open, so the build can be tried again with it.
func TestGivenTapsStayTheCallers(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	defer unix.Close(fds[1])
	given := tap.FromFD("kiln-given0", fds[0]) // no such tap on the host
	defer given.Close()
	cfg := config.Config{Shape: config.Shape{CPUs: 1, Memory: 64 << 20, Nets: []config.Net{{Tap: "kiln-given0"}}}}
	for range 2 {
		_, err := New(&cfg, Options{KVMPath: noKVM(t), Taps: []*tap.Tap{given}})
		require.ErrorIs(t, err, kvm.ErrNoKVM, "the given tap served: no tap was opened by name")
		_, err = unix.Write(fds[1], []byte("still open"))
		require.NoError(t, err)
		require.NoError(t, given.WriteFrame([][]byte{[]byte("x")}), "the machine left the caller's tap open")
	}
	bs, err := openBackends(&cfg, []*tap.Tap{given})
	require.NoError(t, err)
	require.Equal(t, virtio.TypeNet, bs[0].dev.Type())
	require.Nil(t, bs[0].closer, "not closed with the machine")
	require.NoError(t, bs.close())

	// A name the given taps do not have is a host tap, opened by name.
	cfg.Nets[0].Tap = "kiln-no-such0"
	_, err = New(&cfg, Options{KVMPath: noKVM(t), Taps: []*tap.Tap{given}})
	require.ErrorIs(t, err, tap.ErrNoTap)
}
