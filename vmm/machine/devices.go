package machine

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/devices/bootsignal"
	"github.com/kiln-vmm/kiln/devices/i8042"
	"github.com/kiln-vmm/kiln/devices/serial"
	"github.com/kiln-vmm/kiln/devices/virtio"
	"github.com/kiln-vmm/kiln/guest/contract"
	"github.com/kiln-vmm/kiln/vmm/bus"
	"github.com/kiln-vmm/kiln/vmm/config"
	"github.com/kiln-vmm/kiln/vmm/kvm"
	"github.com/kiln-vmm/kiln/vmm/layout"
	"github.com/kiln-vmm/kiln/vmm/memory"
)

// deviceManager owns the machine's devices: it creates each one, places
// it on its bus at the address the layout gives it, connects it to its
// interrupt and its host back end, collects the kernel parameters that
// announce the devices the guest cannot discover, and tears them all down.
//
// A virtio-mmio device needs three things from the VM besides its register
// window on the MMIO bus: an interrupt line, which a device goroutine
// raises by writing to an eventfd that KVM turns into the interrupt
// (KVM_IRQFD); a way to learn that the guest notified a queue without a VM
// exit, which KVM gives by signalling an eventfd when the guest writes the
// queue's number to QueueNotify (KVM_IOEVENTFD); and a line on the kernel
// command line, since MMIO devices cannot be discovered by probing.
type deviceManager struct {
	vm        *kvm.VM
	mem       *memory.Guest
	pio, mmio *bus.Bus

	serial *serial.UART
	i8042  *i8042.Controller
	signal *bootsignal.Device
	virtio []*virtioDevice
	params []string // kernel parameters announcing the devices
}

// virtioDevice is one virtio-mmio device and what connects it to the VM
// and the host.
type virtioDevice struct {
	name      string // "virtio-blk", the bus and trace name
	transport *virtio.Transport
	base      uint64
	irq       uint32
	irqfd     *os.File
	kicks     []*os.File // one ioeventfd per queue
	backend   io.Closer  // the host side (a disk image, a tap); nil if none
}

// where names the device's register window as --stats does.
func (v *virtioDevice) where() string {
	return fmt.Sprintf("mmio %#x-%#x", v.base, v.base+layout.VirtioMMIOSize-1)
}

func newDeviceManager(vm *kvm.VM, mem *memory.Guest) *deviceManager {
	return &deviceManager{vm: vm, mem: mem, pio: bus.New("pio"), mmio: bus.New("mmio")}
}

// addLegacy places the PC devices every kiln VM has on the port bus: the
// serial console, the i8042 (whose reset line ends the VM) and the
// boot-signal device.
func (d *deviceManager) addLegacy(console io.Writer, onReset func(), onSignal func(contract.Event)) error {
	d.serial = serial.New(d.vm.IRQLine(layout.COM1IRQ), console)
	d.i8042 = i8042.New(onReset)
	d.signal = bootsignal.New(onSignal)
	for _, r := range []struct {
		name       string
		base, size uint64
		dev        bus.Device
	}{
		{"serial", layout.COM1Port, layout.UARTSize, d.serial},
		{"i8042", layout.I8042DataPort, layout.I8042Size, d.i8042},
		{"signal", layout.SignalPort, layout.SignalSize, d.signal},
	} {
		if err := d.pio.Insert(r.name, r.base, r.size, r.dev); err != nil {
			return err
		}
	}
	return nil
}

// addBackends places the virtio devices whose host side is open, in
// their order: the device manager owns them from here on, and closes
// those it could not place.
func (d *deviceManager) addBackends(bs backends) error {
	for i, b := range bs {
		if err := d.addVirtio(b.dev, b.closer); err != nil {
			bs[i+1:].close()
			return err
		}
	}
	return nil
}

// addVirtio places dev in the next virtio-mmio window with the next free
// interrupt line. backend, if not nil, is closed with the machine; it is
// closed here if the device cannot be placed.
func (d *deviceManager) addVirtio(dev virtio.Device, backend io.Closer) (err error) {
	v := &virtioDevice{name: "virtio-" + dev.Type().String(), backend: backend}
	d.virtio = append(d.virtio, v) // closed with the others, even half built
	i := len(d.virtio) - 1
	v.irq = uint32(layout.FirstVirtioIRQ + i)
	if v.irq > layout.LastVirtioIRQ {
		return fmt.Errorf("%w: too many virtio devices (at most %d)", config.ErrUsage, layout.LastVirtioIRQ-layout.FirstVirtioIRQ+1)
	}
	v.base = uint64(layout.VirtioMMIOBase + i*layout.VirtioMMIOSize)

	if v.irqfd, err = newEventfd(); err != nil {
		return err
	}
	if err := d.vm.RegisterIRQFD(int(v.irqfd.Fd()), v.irq); err != nil {
		return fmt.Errorf("%s: %w", v.name, err)
	}
	v.transport = virtio.NewTransport(dev, d.mem, eventfdIRQ{v.irqfd})
	if err := d.mmio.Insert(v.name, v.base, layout.VirtioMMIOSize, v.transport); err != nil {
		return err
	}
	for q := 0; q < v.transport.NumQueues(); q++ {
		kick, err := newEventfd()
		if err != nil {
			return err
		}
		v.kicks = append(v.kicks, kick)
		if err := d.vm.RegisterIOEventFD(int(kick.Fd()), v.base+virtio.RegQueueNotify, 4, true, uint64(q)); err != nil {
			return fmt.Errorf("%s queue %d: %w", v.name, q, err)
		}
		go forwardKicks(kick, v.transport, q)
	}
	d.params = append(d.params, fmt.Sprintf("virtio_mmio.device=%dK@%#x:%d", layout.VirtioMMIOSize>>10, v.base, v.irq))
	return nil
}

// kernelParams returns the kernel parameters that announce the devices.
func (d *deviceManager) kernelParams() []string { return d.params }

// close resets every virtio device, which stops its goroutines, then
// closes the eventfds (ending the kick forwarders) and the back ends.
func (d *deviceManager) close() error {
	var errs []error
	for _, v := range d.virtio {
		if v.transport != nil {
			v.transport.Reset()
		}
		for _, f := range append(v.kicks, v.irqfd) {
			if f != nil {
				f.Close()
			}
		}
		if v.backend != nil {
			if err := v.backend.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close %s: %w", v.name, err))
			}
		}
	}
	d.virtio = nil
	return errors.Join(errs...)
}

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
