// Package virtio implements virtio devices over the virtio-mmio transport
// (VIRTIO 1.2, OASIS, sections 2 "Basic Facilities of a Virtio Device",
// 4.2 "Virtio Over MMIO" and 5 "Device Types").
//
// A virtio device is a pair of shared-memory rings per queue plus a small
// register window. The guest driver owns buffers; it describes each request
// as a chain of descriptors (address, length, device-readable or
// device-writable) in the descriptor table, publishes the chain's head in
// the available ring, and notifies the device by writing the queue's index
// to the QueueNotify register. The device walks the chain, does the work,
// writes the head and the number of bytes it wrote into the used ring, and
// interrupts the guest. Both sides may suppress the other's notifications
// (VIRTIO_RING_F_EVENT_IDX): each publishes the ring index at which it
// next wants to hear from the other.
//
// The pieces here, each in its own file:
//
//	device.go       the Device interface a device type implements, and
//	                the feature bits every device shares
//	mmio.go         the virtio-mmio register window (the Transport) and
//	                the device status state machine (feature negotiation,
//	                queue setup, reset)
//	queue.go        the split virtqueue: turning a guest's descriptor
//	                chain into bounds-checked buffers, and returning used
//	                buffers
//	ring_unsafe.go  the ring indices, which the guest writes while the
//	                device reads them: read and written atomically
//	buffers.go      cutting a chain's buffers at a protocol's headers
//	worker.go       the goroutines of an activated device, and how a reset
//	                stops them
//	state.go        pausing a device, and its state for a snapshot
//	blk.go, net.go, p9.go, rng.go, vsock.go   the device types
//	names.go        registers and values in words, for kiln run --trace
//
// The guest is untrusted: every address and length it writes is checked
// against guest memory; a malformed chain marks the device as needing a
// reset and is never followed outside guest RAM or forever.
package virtio
