package virtio

import (
	"encoding/json"
	"io"

	"golang.org/x/sys/unix"
)

// RNG is a virtio entropy device (5.4): the driver queues writable buffers
// and the device fills them with random bytes, here from the host's
// kernel's getrandom(2). Linux shows it as /dev/hwrng.
type RNG struct {
	src     io.Reader
	workers Workers
}

// NewRNG returns an entropy device fed from getrandom(2). (Not
// crypto/rand: it reads the same source, but would link Go's FIPS
// cryptography module into the VMM, a few hundred KiB of resident memory.)
func NewRNG() *RNG { return &RNG{src: getrandom{}} }

// getrandom reads the host kernel's random number generator.
type getrandom struct{}

func (getrandom) Read(p []byte) (int, error) {
	for {
		n, err := unix.Getrandom(p, 0)
		if err != unix.EINTR {
			return n, err
		}
	}
}

func (r *RNG) Type() DeviceType                 { return TypeRNG }
func (r *RNG) Features() uint64                 { return CommonFeatures }
func (r *RNG) QueueMaxSizes() []uint16          { return []uint16{256} }
func (r *RNG) ReadConfig(off uint64, d []byte)  {} // no configuration space
func (r *RNG) WriteConfig(off uint64, d []byte) {}
func (r *RNG) Reset()                           { r.workers.Stop() }

// SaveState implements Snapshotter: an entropy device has no state of
// its own.
func (r *RNG) SaveState() (json.RawMessage, error) { return json.RawMessage(`{}`), nil }

// RestoreState implements Snapshotter.
func (r *RNG) RestoreState(json.RawMessage) error { return nil }

// Activate starts filling the request queue.
func (r *RNG) Activate(a *Activation) error {
	r.workers.Start(a, 0, r.fill)
	return nil
}

// rngMaxFill bounds the random bytes one request gets: a driver may
// offer more room than that (a chain over all of guest RAM, many times),
// and the device may fill less (5.4.6). Linux asks for 64 bytes at a
// time. So one request costs kiln at most this much of getrandom(2).
const rngMaxFill = 64 << 10

func (r *RNG) fill(c *Chain) (uint32, error) {
	var n uint32
	for _, b := range cut(c.Writable, rngMaxFill) {
		k, err := io.ReadFull(r.src, b)
		n += uint32(k)
		if err != nil {
			break
		}
	}
	return n, nil
}
