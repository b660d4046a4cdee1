package bench

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// newcEntry encodes one newc cpio entry.
func newcEntry(name string, mode uint32, data string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		0, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name)+1, 0)
	b.WriteString(name + "\x00")
	for b.Len()%4 != 0 {
		b.WriteByte(0)
	}
	b.WriteString(data)
	for b.Len()%4 != 0 {
		b.WriteByte(0)
	}
	return b.Bytes()
}

func archive(entries ...[]byte) []byte {
	var b bytes.Buffer
	for _, e := range entries {
		b.Write(e)
	}
	b.Write(newcEntry("TRAILER!!!", 0, ""))
	return b.Bytes()
}

func TestUnpackCpio(t *testing.T) {
	root := t.TempDir()
	a := archive(
		newcEntry("bbin", 0o040755, ""),
		newcEntry("bbin/bb", 0o100755, "#!binary"),
		newcEntry("bbin/true", 0o120777, "bb"),
		newcEntry("dev/console", 0o020600, ""),
		newcEntry("../../escape", 0o100644, "x"),
	)
	require.NoError(t, unpackCpio(bytes.NewReader(a), root))
	data, err := os.ReadFile(filepath.Join(root, "bbin/true"))
	require.NoError(t, err)
	require.Equal(t, "#!binary", string(data))
	fi, err := os.Stat(filepath.Join(root, "bbin/bb"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o755), fi.Mode().Perm())
	_, err = os.Lstat(filepath.Join(root, "dev/console"))
	require.True(t, os.IsNotExist(err), "device nodes are not made")
	// A name climbing out of the root lands inside it.
	_, err = os.Stat(filepath.Join(root, "escape"))
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(filepath.Dir(filepath.Dir(root)), "escape"))
	require.True(t, os.IsNotExist(err))
}

func TestUnpackCpioDoesNotWriteThroughSymlinks(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	a := archive(
		newcEntry("etc", 0o120777, outside),
		newcEntry("etc/passwd", 0o100644, "owned"),
	)
	require.ErrorContains(t, unpackCpio(bytes.NewReader(a), root), "symlink")
	_, err := os.Stat(filepath.Join(outside, "passwd"))
	require.True(t, os.IsNotExist(err))
}

func TestUnpackCpioRejectsDamage(t *testing.T) {
	good := archive(newcEntry("a", 0o100644, "hello"))
	for name, a := range map[string][]byte{
		"not cpio":  bytes.Repeat([]byte("x"), 200),
		"truncated": good[:len(good)-20],
		"empty":     nil,
	} {
		require.Error(t, unpackCpio(bytes.NewReader(a), t.TempDir()), name)
	}
}

func TestUnpackRealInitramfs(t *testing.T) {
	path := filepath.Join("..", "..", "..", "bin", "initramfs.cpio") // the top of the tree
	f, err := os.Open(path)
	if err != nil {
		t.Skipf("SKIP: no initramfs at %s (make initramfs builds it): %v", path, err)
	}
	defer f.Close()
	root := t.TempDir()
	require.NoError(t, unpackCpio(f, root))
	p, err := findInRoot(root, "true")
	require.NoError(t, err)
	require.FileExists(t, p)
	_, err = findInRoot(root, "no-such-tool")
	require.ErrorContains(t, err, "not in the initramfs")
}

func FuzzUnpackCpio(f *testing.F) {
	f.Add(archive(newcEntry("a/b", 0o100644, "data"), newcEntry("l", 0o120777, "a/b")))
	f.Add([]byte("070701"))
	f.Fuzz(func(t *testing.T, a []byte) {
		_ = unpackCpio(bytes.NewReader(a), t.TempDir())
	})
}
