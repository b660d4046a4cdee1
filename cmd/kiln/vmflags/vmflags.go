// Package vmflags holds the command-line flags that describe a VM, shared
// by kiln run and kiln snapshot: the kernel and initramfs, vCPUs and
// memory, the devices, and the seccomp mode; and the guest command after
// "--".
package vmflags

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/kiln-vmm/kiln/vmm/config"
	"github.com/kiln-vmm/kiln/vmm/seccomp"
)

// DefaultPath returns name next to the kiln binary (where make puts the
// kernel and initramfs), unless the environment variable env names one.
func DefaultPath(env, name string) string {
	if p := os.Getenv(env); p != "" {
		return p
	}
	exe, err := os.Executable()
	if err != nil {
		return name
	}
	return filepath.Join(filepath.Dir(exe), name)
}

// VM are the flags that describe a VM, shared by kiln run and kiln
// snapshot; Parse turns their values into cfg once the flag set is parsed.
type VM struct {
	fs                  *pflag.FlagSet
	cfg                 *config.Config
	mem, vsock          *string
	disks, nets, shares *[]string
	noSeccomp           *bool
}

// Hardware names the flags that shape a VM's hardware: a snapshot fixes
// them. (--net is not one: a restored VM gives each of the snapshot's
// network devices its own tap, MAC address and addresses.)
var Hardware = []string{"kernel", "initrd", "cmdline", "cpus", "memory", "disk", "no-rng"}

// Add defines the VM flags on fs, filling cfg.
func Add(fs *pflag.FlagSet, cfg *config.Config) *VM {
	v := &VM{fs: fs, cfg: cfg}
	fs.StringVar(&cfg.Kernel, "kernel", DefaultPath("KILN_KERNEL", "vmlinux"), "guest kernel: an ELF vmlinux with a PVH note, or a bzImage")
	fs.StringVar(&cfg.Initrd, "initrd", DefaultPath("KILN_INITRD", "initramfs.cpio"), "initramfs (cpio archive); \"\" for none")
	fs.StringVar(&cfg.Cmdline, "cmdline", "", "extra kernel command-line arguments")
	fs.IntVar(&cfg.CPUs, "cpus", 1, "number of vCPUs")
	v.mem = fs.String("memory", "128M", "guest memory (e.g. 512M, 2G)")
	v.disks = fs.StringArray("disk", nil, "add a virtio disk backed by a raw image: PATH[,ro] (repeatable: vda, vdb, ...)")
	v.nets = fs.StringArray("net", nil, "add a virtio network device on an existing tap: tap=NAME[,mac=MAC][,ip=ADDR/PREFIX][,gw=ADDR] (ip/gw configure eth0 in the guest; with --restore, one for each of the snapshot's devices)")
	v.shares = fs.StringArray("share", nil, "share a host directory with the guest over virtio-9p: HOSTDIR[:GUESTDIR][,ro][,tag=TAG] (repeatable; mounted at GUESTDIR, default /mnt/BASENAME; tag default kiln0, kiln1, ...)")
	v.vsock = fs.String("vsock", "", "add a virtio socket device: CID,PATH (host programs reach the guest through the unix socket PATH; the guest reaches host port P at PATH_P)")
	fs.BoolVar(&cfg.NoRNG, "no-rng", false, "leave out the virtio entropy device")
	fs.BoolVarP(&cfg.Verbose, "verbose", "v", false, "show the kernel's boot messages when running a command, and say when the seccomp filters are on")
	v.noSeccomp = fs.Bool("no-seccomp", false, "run without kiln's seccomp filters, which otherwise end kiln when one of its threads makes a system call outside its list (for debugging)")
	return v
}

// Seccomp is the filter mode the flags and KILN_SECCOMP ask for: on,
// unless --no-seccomp; KILN_SECCOMP=log logs the calls outside the lists
// instead of refusing them (vmm/seccomp).
func (v *VM) Seccomp() seccomp.Mode {
	switch {
	case *v.noSeccomp:
		return seccomp.Off
	case os.Getenv("KILN_SECCOMP") == "log":
		return seccomp.Log
	}
	return seccomp.On
}

// Parse reads the device flags' values into the config.
func (v *VM) Parse() error {
	cfg := v.cfg
	for _, d := range *v.disks {
		disk, err := config.ParseDisk(d)
		if err != nil {
			return err
		}
		cfg.Disks = append(cfg.Disks, disk)
	}
	for _, s := range *v.nets {
		n, err := config.ParseNet(s)
		if err != nil {
			return err
		}
		cfg.Nets = append(cfg.Nets, n)
	}
	for i, s := range *v.shares {
		sh, err := config.ParseShare(s, i)
		if err != nil {
			return err
		}
		cfg.Shares = append(cfg.Shares, sh)
	}
	if *v.vsock != "" {
		vs, err := config.ParseVsock(*v.vsock)
		if err != nil {
			return err
		}
		cfg.Vsock = &vs
	}
	size, err := config.ParseSize(*v.mem)
	if err != nil {
		return err
	}
	cfg.Memory = size
	return nil
}

// Changed returns the first of names given on the command line, or "".
func Changed(fs *pflag.FlagSet, names []string) string {
	for _, n := range names {
		if fs.Changed(n) {
			return n
		}
	}
	return ""
}

// Command takes the guest command after "--", refusing stray arguments.
func Command(fs *pflag.FlagSet) ([]string, error) {
	if dash := fs.ArgsLenAtDash(); dash >= 0 {
		if dash > 0 {
			return nil, fmt.Errorf("%w: unexpected argument %q before --", config.ErrUsage, fs.Args()[0])
		}
		if fs.NArg() == 0 {
			return nil, fmt.Errorf("%w: no command after --", config.ErrUsage)
		}
		return fs.Args(), nil
	} else if fs.NArg() > 0 {
		return nil, fmt.Errorf("%w: unexpected argument %q (put the guest command after --)", config.ErrUsage, fs.Arg(0))
	}
	return nil, nil
}
