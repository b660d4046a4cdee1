package oci

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/kiln-vmm/kiln/guest/contract"
)

// Link is the host side of a container VM's streams. The guest's init
// connects to host vsock ports, and kiln's vsock device turns each
// connection into a connection to the unix socket PATH_PORT (PATH being
// the device's host path): so the VMM listens on those sockets before the
// guest runs. One port carries the control messages (guest/contract's
// Control), the next three the process's stdin, stdout and stderr, or with
// a terminal, the terminal both ways on the first. The streams are copied
// to and from the VMM's own stdio, which are the container's as the
// engine set them up (pipes, or the slave of the terminal the engine
// holds the master of).
type Link struct {
	ctl      net.Listener
	std      []net.Listener
	terminal bool

	msgs chan contract.Control // from the guest

	mu   sync.Mutex
	conn net.Conn // the control connection, once the guest made it

	streams *streams // the copies of the process's stdio, once Stdio ran
}

// Listen listens on the control and stdio sockets of a VM whose vsock
// device is at vsockPath, with the control port port.
func Listen(vsockPath string, port uint32, terminal bool) (*Link, error) {
	l := &Link{terminal: terminal, msgs: make(chan contract.Control, 16)}
	listen := func(p uint32) (net.Listener, error) {
		path := vsockPath + "_" + strconv.Itoa(int(p))
		os.Remove(path)
		ln, err := net.Listen("unix", path)
		if err != nil {
			return nil, fmt.Errorf("listen for the guest: %w", err)
		}
		return ln, nil
	}
	var err error
	if l.ctl, err = listen(port); err != nil {
		return nil, err
	}
	n := 3
	if terminal {
		n = 1
	}
	for i := 0; i < n; i++ {
		ln, err := listen(port + contract.PortStdin + uint32(i))
		if err != nil {
			l.Close()
			return nil, err
		}
		l.std = append(l.std, ln)
	}
	go l.acceptControl()
	return l, nil
}

// acceptControl takes the guest's control connections: a guest that had
// to connect again replaces its first connection.
func (l *Link) acceptControl() {
	for {
		c, err := l.ctl.Accept()
		if err != nil {
			return
		}
		l.mu.Lock()
		if l.conn != nil {
			l.conn.Close()
		}
		l.conn = c
		l.mu.Unlock()
		go func() {
			// The guest is untrusted: what it sends beyond what the VMM
			// waits for (Ready reads until ready or error) is dropped,
			// never queued, so a guest cannot hold this goroutine, nor
			// make one per connection that never ends. A line longer
			// than the scanner's buffer ends the connection.
			s := bufio.NewScanner(c)
			for s.Scan() {
				m, err := contract.UnmarshalControl(s.Bytes())
				if err != nil {
					continue
				}
				select {
				case l.msgs <- m:
				default:
				}
			}
		}()
	}
}

// ErrGuestSetup wraps what the guest's init reported failing while it set
// the container up.
var ErrGuestSetup = errors.New("container setup in the VM")

// Ready waits until the guest reports the container set up, or its
// failure, or the VM ends (ended closes), or timeout passes. commandStarted
// closes if the guest's init starts a command instead (an init that does
// not know container jobs).
func (l *Link) Ready(ended, commandStarted <-chan struct{}, timeout time.Duration) (contract.Control, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case m := <-l.msgs:
			switch m.Op {
			case contract.ControlReady:
				if l.streams != nil {
					l.streams.started() // stdio.go
				}
				return m, nil
			case contract.ControlError:
				return m, fmt.Errorf("%w: %s", ErrGuestSetup, m.Error)
			}
		case <-ended:
			return contract.Control{}, errors.New("the VM ended before the container was set up")
		case <-commandStarted:
			return contract.Control{}, errors.New("the guest's init started a command, not the container: is the initramfs kiln's, of this version?")
		case <-t.C:
			return contract.Control{}, fmt.Errorf("the container was not set up within %v", timeout)
		}
	}
}

// Restored waits until the guest of a VM restored from a checkpoint has
// connected again and reports ControlRestored, or the VM ends, or
// timeout passes.
func (l *Link) Restored(ended <-chan struct{}, timeout time.Duration) (contract.Control, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case m := <-l.msgs:
			if m.Op == contract.ControlRestored {
				return m, nil
			}
		case <-ended:
			return contract.Control{}, errors.New("the restored VM ended before its init connected again")
		case <-t.C:
			return contract.Control{}, fmt.Errorf("the restored VM's init did not connect again within %v", timeout)
		}
	}
}

// Messages are the guest's control messages after Ready: ControlStarted
// and ControlExited. Like every message of the guest's, they are dropped
// when nobody reads them.
func (l *Link) Messages() <-chan contract.Control { return l.msgs }

// sendTimeout bounds a write to a guest that does not read its control
// connection: a kill must not hang on it.
const sendTimeout = 10 * time.Second

// Send sends a control message to the guest.
func (l *Link) Send(m contract.Control) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		return errors.New("the guest has not connected")
	}
	l.conn.SetWriteDeadline(time.Now().Add(sendTimeout))
	if _, err := l.conn.Write(contract.MarshalControl(m)); err != nil {
		return fmt.Errorf("send %s to the guest: %w", m.Op, err)
	}
	return nil
}

// Stdio copies the guest's streams to and from the VMM's stdio as the
// guest connects them (stdio.go).
func (l *Link) Stdio(stdin io.Reader, stdout, stderr io.Writer) {
	l.streams = relayStdio(l.std, stdin, stdout, stderr)
}

// WaitOutput waits up to timeout for the guest's output to be copied to
// its end, once the VM ended.
func (l *Link) WaitOutput(timeout time.Duration) {
	if l.streams != nil {
		l.streams.wait(timeout)
	}
}

// Close stops listening; output copies end when the VM's vsock device
// closes its connections.
func (l *Link) Close() {
	if l.ctl != nil {
		l.ctl.Close()
	}
	for _, ln := range l.std {
		ln.Close()
	}
}
