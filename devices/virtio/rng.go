package virtio

import (
	"crypto/rand"
	"io"
)

// RNG is a virtio entropy device (5.4): the driver queues writable buffers
// and the device fills them with random bytes, here from the host's
// crypto/rand (getrandom(2)). Linux shows it as /dev/hwrng.
type RNG struct {
	src     io.Reader
	workers Workers
}

// NewRNG returns an entropy device fed from crypto/rand.
func NewRNG() *RNG { return &RNG{src: rand.Reader} }

func (r *RNG) Type() DeviceType                 { return TypeRNG }
func (r *RNG) Features() uint64                 { return CommonFeatures }
func (r *RNG) QueueMaxSizes() []uint16          { return []uint16{256} }
func (r *RNG) ReadConfig(off uint64, d []byte)  {} // no configuration space
func (r *RNG) WriteConfig(off uint64, d []byte) {}
func (r *RNG) Reset()                           { r.workers.Stop() }

// Activate starts filling the request queue.
func (r *RNG) Activate(a *Activation) error {
	r.workers.Start(a, 0, r.fill)
	return nil
}

func (r *RNG) fill(c *Chain) (uint32, error) {
	var n uint32
	for _, b := range c.Writable {
		k, err := io.ReadFull(r.src, b)
		n += uint32(k)
		if err != nil {
			break
		}
	}
	return n, nil
}
