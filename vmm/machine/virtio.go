package machine

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/devices/virtio"
	"github.com/kiln-vmm/kiln/vmm/layout"
)

// A virtio-mmio device needs three things from the VM besides its register
// window on the MMIO bus: an interrupt line, which a device goroutine
// raises by writing to an eventfd that KVM turns into the interrupt
// (KVM_IRQFD); a way to learn that the guest notified a queue without a VM
// exit, which KVM gives by signalling an eventfd when the guest writes the
// queue's number to QueueNotify (KVM_IOEVENTFD); and a line on the kernel
// command line, since MMIO devices cannot be discovered by probing.

// eventfdIRQ raises an interrupt through an irqfd.
type eventfdIRQ struct{ f *os.File }

// Trigger implements devices.Interrupt.
func (e eventfdIRQ) Trigger() error {
	_, err := e.f.Write([]byte{1, 0, 0, 0, 0, 0, 0, 0})
	return err
}

func newEventfd() (*os.File, error) {
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	return os.NewFile(uintptr(fd), "eventfd"), nil
}

// addVirtio places dev in the next virtio-mmio window with the next free
// interrupt line, and returns its kernel command-line parameter.
func (m *Machine) addVirtio(dev virtio.Device) error {
	i := len(m.virtio)
	irq := uint32(layout.FirstVirtioIRQ + i)
	if irq > layout.LastVirtioIRQ {
		return fmt.Errorf("too many virtio devices: at most %d", layout.LastVirtioIRQ-layout.FirstVirtioIRQ+1)
	}
	base := uint64(layout.VirtioMMIOBase + i*layout.VirtioMMIOSize)

	irqfd, err := newEventfd()
	if err != nil {
		return err
	}
	m.files = append(m.files, irqfd)
	if err := m.vm.RegisterIRQFD(int(irqfd.Fd()), irq); err != nil {
		return fmt.Errorf("virtio-%v: %w", dev.Type(), err)
	}
	t := virtio.NewTransport(dev, m.mem, eventfdIRQ{irqfd})
	name := fmt.Sprintf("virtio-%v", dev.Type())
	if err := m.mmio.Insert(name, base, layout.VirtioMMIOSize, t); err != nil {
		return err
	}
	for q := 0; q < t.NumQueues(); q++ {
		kick, err := newEventfd()
		if err != nil {
			return err
		}
		m.files = append(m.files, kick)
		if err := m.vm.RegisterIOEventFD(int(kick.Fd()), base+virtio.RegQueueNotify, 4, true, uint64(q)); err != nil {
			return fmt.Errorf("%s queue %d: %w", name, q, err)
		}
		go forwardKicks(kick, t, q)
	}
	m.virtio = append(m.virtio, t)
	m.deviceParams = append(m.deviceParams, fmt.Sprintf("virtio_mmio.device=%dK@%#x:%d", layout.VirtioMMIOSize>>10, base, irq))
	return nil
}

// forwardKicks turns the guest's notifications of queue q, counted by KVM
// in an eventfd, into kicks of the device, until the eventfd is closed.
func forwardKicks(f *os.File, t *virtio.Transport, q int) {
	b := make([]byte, 8)
	for {
		if _, err := f.Read(b); err != nil {
			return
		}
		t.Kick(q)
	}
}
