package machine

import (
	"errors"
	"fmt"
	"io"

	"github.com/kiln-vmm/kiln/devices/share"
	"github.com/kiln-vmm/kiln/devices/tap"
	"github.com/kiln-vmm/kiln/devices/virtio"
	"github.com/kiln-vmm/kiln/vmm/config"
)

// The first step of a build opens the host side of every device, before
// /dev/kvm is touched: the disk images, the taps, the shared directories
// and the socket device's listening socket. What the user names on the
// command line is checked first, so its errors (a missing image, a tap
// that does not exist) say so on any host, KVM or not, and unit tests
// reach them without a VM. A virtio device needs no VM to exist (it is a
// state machine in front of its back end), so each is made here, and the
// device manager later places it on the MMIO bus (devices.go).

// backend is one virtio device with its host side open.
type backend struct {
	dev    virtio.Device
	closer io.Closer // the host side; nil if there is none (the entropy device)
}

// backends are the virtio devices of a VM, in the order the guest names
// them: disks (vda, vdb, ...), network devices (eth0, ...), shared
// directories, the socket device, and the entropy device unless it is
// turned off.
type backends []backend

// openBackends opens the host side of every device cfg asks for; a
// network device on one of taps (Options.Taps) uses it as it is, and
// leaves it open when the machine closes. On an error, what it opened is
// closed again.
func openBackends(cfg *config.Config, taps []*tap.Tap) (_ backends, err error) {
	var bs backends
	defer func() {
		if err != nil {
			bs.close()
		}
	}()
	for i, disk := range cfg.Disks {
		b, err := virtio.NewBlock(disk.Path, disk.ReadOnly, "kiln-"+config.DiskName(i))
		if err != nil {
			return nil, err
		}
		bs = append(bs, backend{b, b})
	}
	for _, n := range cfg.Nets {
		b, err := openNet(n, taps)
		if err != nil {
			return nil, err
		}
		bs = append(bs, b)
	}
	for _, s := range cfg.Shares {
		sh, err := openShare(s)
		if err != nil {
			return nil, err
		}
		dev, err := virtio.NewP9(s.Tag, share.NewServer(sh))
		if err != nil {
			sh.Close()
			return nil, err
		}
		bs = append(bs, backend{dev, sh})
	}
	if v := cfg.Vsock; v != nil {
		dev, err := virtio.NewVsock(v.CID, v.Path)
		if err != nil {
			return nil, err
		}
		bs = append(bs, backend{dev, dev})
	}
	if !cfg.NoRNG {
		bs = append(bs, backend{virtio.NewRNG(), nil})
	}
	return bs, nil
}

// openShare opens the host directory of s, through its view if it has one.
func openShare(s config.Share) (*share.Share, error) {
	if v := s.View; v != nil {
		return share.NewView(s.HostDir, share.View{Name: v.Name, Files: v.Files}, s.ReadOnly)
	}
	return share.New(s.HostDir, s.ReadOnly)
}

// openNet makes the network device n on its tap: one of taps, given
// open, or the host's tap of that name (tap.Open).
func openNet(n config.Net, taps []*tap.Tap) (backend, error) {
	for _, t := range taps {
		if t.Name == n.Tap {
			dev, err := virtio.NewNet(t, n.Address())
			// The caller's tap: not closed with the machine.
			return backend{dev, nil}, err
		}
	}
	t, err := tap.Open(n.Tap)
	if err != nil {
		return backend{}, err
	}
	dev, err := virtio.NewNet(t, n.Address())
	if err != nil {
		t.Close()
		return backend{}, err
	}
	return backend{dev, dev}, nil
}

// close closes the host side of every device.
func (bs backends) close() error {
	var errs []error
	for _, b := range bs {
		if b.closer != nil {
			if err := b.closer.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close virtio-%v: %w", b.dev.Type(), err))
			}
		}
	}
	return errors.Join(errs...)
}
