package virtio

import (
	"encoding/binary"
	"testing"

	"github.com/kiln-vmm/kiln/vmm/memory"
)

// FuzzQueue lets the fuzzer write the descriptor table, the available ring
// and a few buffers, then drains the queue: the walk must terminate, never
// panic, and every buffer it returns must lie inside guest memory.
func FuzzQueue(f *testing.F) {
	seed := make([]byte, 16*8+4+2*8+64)
	binary.LittleEndian.PutUint64(seed[0:], 0x800)
	binary.LittleEndian.PutUint32(seed[8:], 16)
	binary.LittleEndian.PutUint16(seed[12:], descFWrite)
	binary.LittleEndian.PutUint16(seed[16*8+2:], 1)
	f.Add(seed, uint16(8))
	f.Add([]byte{}, uint16(4))
	f.Fuzz(func(t *testing.T, data []byte, size uint16) {
		const memSize = 4096
		raw := make([]byte, memSize)
		copy(raw, data) // desc at 0, avail at 0x200, used at 0x400
		if len(data) > 16*8 {
			copy(raw[0x200:], data[16*8:])
		}
		mem := memory.FromBytes(raw)
		q := &Queue{Size: 1 << (size % 7), DescAddr: 0, DriverAddr: 0x200, DeviceAddr: 0x400, EventIdx: size&0x8000 != 0}
		if q.Activate(mem) != nil {
			return
		}
		for i := 0; i < 2*int(q.Size)+2; i++ {
			c, err := q.Pop()
			if err != nil || c == nil {
				return
			}
			for _, b := range append(c.Readable, c.Writable...) {
				if len(b) > memSize {
					t.Fatalf("buffer of %d bytes in %d of memory", len(b), memSize)
				}
			}
			q.Push(c.Head, uint32(c.WritableLen()))
			q.NeedInterrupt()
			q.ArmNotify()
		}
	})
}
