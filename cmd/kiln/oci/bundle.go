package oci

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Bundle is a bundle directory, read: its config.json and the absolute
// path of its root file system.
type Bundle struct {
	Dir    string
	Spec   *specs.Spec
	Rootfs string
}

// ErrBadBundle marks a bundle that cannot be run: config.json missing or
// malformed, no root file system.
var ErrBadBundle = errors.New("bad bundle")

// LoadBundle reads the bundle in dir ("" for the working directory, as
// runc takes it).
func LoadBundle(dir string) (*Bundle, error) {
	if dir == "" {
		dir = "."
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadBundle, dir, err)
	}
	data, err := os.ReadFile(filepath.Join(abs, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadBundle, err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return nil, fmt.Errorf("%w: %s: config.json is not valid: %v", ErrBadBundle, abs, err)
	}
	if !strings.HasPrefix(spec.Version, "1.") {
		return nil, fmt.Errorf("%w: %s: config.json has ociVersion %q; kiln runs version 1 bundles", ErrBadBundle, abs, spec.Version)
	}
	if spec.Root == nil || spec.Root.Path == "" {
		return nil, fmt.Errorf("%w: %s: config.json has no root.path", ErrBadBundle, abs)
	}
	root := spec.Root.Path
	if !filepath.IsAbs(root) {
		root = filepath.Join(abs, root)
	}
	st, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("%w: root file system: %v", ErrBadBundle, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%w: root file system %s is not a directory", ErrBadBundle, root)
	}
	if spec.Process == nil || len(spec.Process.Args) == 0 {
		return nil, fmt.Errorf("%w: %s: config.json has no process to run (process.args)", ErrBadBundle, abs)
	}
	return &Bundle{Dir: abs, Spec: &spec, Rootfs: root}, nil
}
