package warm

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"

	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/vmm/config"
	"github.com/kiln-vmm/kiln/vmm/machine"
)

// Key names the warm snapshot of a VM of shape s, taken by the kiln build
// build on a host of kind host (HostKind). It is derived from every field
// of config.Shape but those tagged `snap:"each"`, so a field added to the
// shape is in the key without an edit here; files tagged `snap:"file"`
// are in it by identity (path, inode, size and modification time: a file
// changed in place is noticed without reading it), disks tagged
// `snap:"disk"` by path and inode.
func Key(s config.Shape, build, host string) (string, error) {
	shape, err := keyValue(reflect.ValueOf(s), "")
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(struct {
		Format int    `json:"format"`
		Build  string `json:"build"`
		Host   string `json:"host"`
		Shape  any    `json:"shape"`
	}{machine.SnapshotFormat, build, host, shape})
	if err != nil {
		return "", fmt.Errorf("warm snapshot key: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:20], nil
}

// keyValue is v as the key holds it; tag is the field's snap tag.
func keyValue(v reflect.Value, tag string) (any, error) {
	switch tag {
	case "file":
		return identify(v.String(), true)
	case "disk":
		return identify(v.String(), false)
	}
	switch v.Kind() {
	case reflect.Struct:
		m := map[string]any{}
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := f.Tag.Get("snap")
			if tag == "each" {
				continue
			}
			x, err := keyValue(v.Field(i), tag)
			if err != nil {
				return nil, err
			}
			m[f.Name] = x
		}
		return m, nil
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return v.Bytes(), nil
		}
		l := make([]any, v.Len())
		for i := range l {
			x, err := keyValue(v.Index(i), "")
			if err != nil {
				return nil, err
			}
			l[i] = x
		}
		return l, nil
	case reflect.Pointer:
		if v.IsNil() {
			return nil, nil
		}
		return keyValue(v.Elem(), "")
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int64, reflect.Uint32, reflect.Uint64:
		return v.Interface(), nil
	}
	// A kind of field the key does not know how to hold: the shape grew
	// in a way this function must learn, and the key test says so.
	return nil, fmt.Errorf("warm snapshot key: a %s field in the VM's shape", v.Kind())
}

// fileIdentity is a file as a build cache knows it.
type fileIdentity struct {
	Path  string `json:"path"`
	Inode uint64 `json:"inode"`
	Size  int64  `json:"size,omitempty"`
	MTime int64  `json:"mtime_ns,omitempty"`
}

// identify names the file at path; withContents adds its size and
// modification time.
func identify(path string, withContents bool) (*fileIdentity, error) {
	if path == "" {
		return nil, nil
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Stat(abs, &st); err != nil {
		return nil, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	id := &fileIdentity{Path: abs, Inode: st.Ino}
	if withContents {
		id.Size, id.MTime = st.Size, st.Mtim.Nano()
	}
	return id, nil
}
