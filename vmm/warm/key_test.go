package warm

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kiln-vmm/kiln/vmm/config"
)

// aShape is a shape with every part present: a file for each file field,
// one element in each list, a value in each pointer.
func aShape(t *testing.T) config.Shape {
	dir := t.TempDir()
	file := func(name string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(name), 0o644))
		return p
	}
	return config.Shape{
		Kernel: file("vmlinux"), Initrd: file("initrd"), Cmdline: "a=1", CPUs: 2, Memory: 256 << 20,
		Disks:  []config.Disk{{Path: file("disk")}},
		Nets:   []config.Net{{Tap: "tap0"}},
		Vsock:  &config.Vsock{CID: 3, Path: "/tmp/v"},
		Shares: []config.Share{{HostDir: dir, GuestDir: "/mnt/x", Tag: "kiln0", View: &config.ShareView{Name: "x", Files: []string{"f"}}}},
	}
}

// leaf is one field of the shape that holds a value, found by walking it.
type leaf struct {
	path string
	each bool   // tagged snap:"each", or inside such a field
	kind string // the snap tag: file, disk or ""
	set  func(v reflect.Value, t *testing.T)
}

// leaves walks every value-holding field of v's type.
func leaves(t *testing.T, v reflect.Value, path string, each bool, kind string, out *[]leaf) {
	switch v.Kind() {
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			tag := f.Tag.Get("snap")
			leaves(t, v.Field(i), path+"."+f.Name, each || tag == "each", tag, out)
		}
	case reflect.Pointer:
		require.False(t, v.IsNil(), "aShape leaves %s nil: give it a value", path)
		leaves(t, v.Elem(), path, each, kind, out)
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 { // a MAC address
			*out = append(*out, leaf{path: path, each: each, kind: kind})
			return
		}
		require.Positive(t, v.Len(), "aShape leaves %s empty: give it an element", path)
		leaves(t, v.Index(0), path+"[0]", each, kind, out)
	default:
		*out = append(*out, leaf{path: path, each: each, kind: kind})
	}
}

// change returns a copy of s with the field at path changed.
func change(t *testing.T, s config.Shape, path string, kind string) config.Shape {
	c := deepCopy(s)
	v := reflect.ValueOf(&c).Elem()
	walkTo(t, v, path[1:], func(f reflect.Value) {
		switch f.Kind() {
		case reflect.String:
			if kind == "file" || kind == "disk" {
				// Another file: another identity.
				p := filepath.Join(t.TempDir(), "other")
				require.NoError(t, os.WriteFile(p, []byte("other"), 0o644))
				f.SetString(p)
				return
			}
			f.SetString(f.String() + "x")
		case reflect.Bool:
			f.SetBool(!f.Bool())
		case reflect.Int, reflect.Int64:
			f.SetInt(f.Int() + 1)
		case reflect.Uint32, reflect.Uint64:
			f.SetUint(f.Uint() + 1)
		case reflect.Slice: // bytes
			f.SetBytes([]byte{2, 0, 0, 0, 0, 1})
		default:
			t.Fatalf("%s: the test cannot change a %s", path, f.Kind())
		}
	})
	return c
}

func walkTo(t *testing.T, v reflect.Value, path string, do func(reflect.Value)) {
	if path == "" {
		do(v)
		return
	}
	for v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	name, rest := path, ""
	for i, c := range path {
		if c == '.' {
			name, rest = path[:i], path[i+1:]
			break
		}
	}
	if n := len(name); n > 3 && name[n-3:] == "[0]" {
		walkTo(t, v.FieldByName(name[:n-3]).Index(0), rest, do)
		return
	}
	walkTo(t, v.FieldByName(name), rest, do)
}

func deepCopy(s config.Shape) config.Shape {
	c := s
	c.Disks = append([]config.Disk(nil), s.Disks...)
	c.Nets = append([]config.Net(nil), s.Nets...)
	c.Shares = append([]config.Share(nil), s.Shares...)
	if s.Vsock != nil {
		v := *s.Vsock
		c.Vsock = &v
	}
	return c
}

// TestKeyHoldsEveryFieldOfTheShape changes every field of config.Shape in
// turn: the key must change with each, but for the parts each restored
// VM has of its own (snap:"each"), which must not change it. A field
// added to the shape is found by the walk, so it cannot be left out of
// the key unnoticed.
func TestKeyHoldsEveryFieldOfTheShape(t *testing.T) {
	s := aShape(t)
	base, err := Key(s, "build", "kvm")
	require.NoError(t, err)
	var ls []leaf
	leaves(t, reflect.ValueOf(s), "", false, "", &ls)
	require.Greater(t, len(ls), 15, "the walk found the shape's fields")
	for _, l := range ls {
		k, err := Key(change(t, s, l.path, l.kind), "build", "kvm")
		require.NoError(t, err, l.path)
		if l.each {
			require.Equal(t, base, k, "%s is each VM's own: it must not change the key", l.path)
		} else {
			require.NotEqual(t, base, k, "%s shapes the VM: it must change the key", l.path)
		}
	}
	k, _ := Key(s, "other build", "kvm")
	require.NotEqual(t, base, k, "the build is in the key")
	k, _ = Key(s, "build", "kvm-pvm")
	require.NotEqual(t, base, k, "the host is in the key")
	k, _ = Key(deepCopy(s), "build", "kvm")
	require.Equal(t, base, k, "the key is the same for the same shape")
}

func TestKeyNoticesAFileChangedInPlace(t *testing.T) {
	s := aShape(t)
	base, err := Key(s, "b", "kvm")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(s.Kernel, []byte("a kernel built again"), 0o644))
	k, err := Key(s, "b", "kvm")
	require.NoError(t, err)
	require.NotEqual(t, base, k, "a kernel rebuilt in place")

	// A disk's contents change with use: only its path and inode count.
	base, _ = Key(s, "b", "kvm")
	future := time.Now().Add(time.Hour)
	require.NoError(t, os.WriteFile(s.Disks[0].Path, []byte("written by the guest"), 0o644))
	require.NoError(t, os.Chtimes(s.Disks[0].Path, future, future))
	k, _ = Key(s, "b", "kvm")
	require.Equal(t, base, k)
}

func TestKeyOfAMissingFile(t *testing.T) {
	s := aShape(t)
	s.Initrd = filepath.Join(t.TempDir(), "missing")
	_, err := Key(s, "b", "kvm")
	require.ErrorIs(t, err, os.ErrNotExist)
}

// TestAttachTakesEveryPartEachVMHasOfItsOwn: a restore gives the VM what
// the shape marks as each VM's own, from the VM being restored.
func TestAttachTakesEveryPartEachVMHasOfItsOwn(t *testing.T) {
	snap := aShape(t)
	var ls []leaf
	leaves(t, reflect.ValueOf(snap), "", false, "", &ls)
	for _, l := range ls {
		if !l.each {
			continue
		}
		own := change(t, snap, l.path, l.kind)
		own.Disks = nil // a restore refuses disks
		got, err := snap.Attach(own)
		require.NoError(t, err, l.path)
		var want, have any
		walkTo(t, reflect.ValueOf(own), l.path[1:], func(v reflect.Value) { want = v.Interface() })
		walkTo(t, reflect.ValueOf(got), l.path[1:], func(v reflect.Value) { have = v.Interface() })
		require.Equal(t, want, have, "%s comes from the VM being restored", l.path)
	}
}
