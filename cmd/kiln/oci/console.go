package oci

import (
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/vmm/console"
)

// A container with a terminal (process.terminal, podman run -t) gets a
// pseudo-terminal from its runtime: the runtime opens one, keeps the
// slave side for the container, and hands the master to the engine by
// connecting to the unix socket named by --console-socket and sending one
// message: the name "/dev/ptmx" with the master's descriptor attached
// (SCM_RIGHTS). conmon and containerd's shim take it from there: they
// read the container's output from it, write its input, and set its size
// with TIOCSWINSZ.
//
// kiln's VMM keeps the slave as its stdin, stdout and stderr and relays
// it to a terminal in the guest, which does the line discipline (echo,
// ^C): so the host's side is made raw, passing bytes through unchanged.

// OpenPty opens a new host pseudo-terminal and returns its master and its
// slave, the slave in raw mode.
func OpenPty() (master, slave *os.File, err error) {
	m, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open a terminal: %w", err)
	}
	if err := unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(m)
		return nil, nil, fmt.Errorf("unlock the terminal: %w", err)
	}
	s, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(m), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
	if errno != 0 {
		unix.Close(m)
		return nil, nil, fmt.Errorf("open the terminal's slave: %w", errno)
	}
	master, slave = os.NewFile(uintptr(m), "ptmx"), os.NewFile(s, "pts")
	// Raw for good: the terminal is new, nothing to put back.
	if _, err := console.MakeRaw(slave); err != nil {
		master.Close()
		slave.Close()
		return nil, nil, fmt.Errorf("terminal settings: %w", err)
	}
	return master, slave, nil
}

// SendConsole connects to the engine's console socket and sends it the
// terminal's master.
func SendConsole(socket string, master *os.File) error {
	c, err := net.Dial("unix", socket)
	if err != nil {
		return fmt.Errorf("console socket: %w", err)
	}
	defer c.Close()
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return fmt.Errorf("console socket %s: not a unix socket", socket)
	}
	rights := unix.UnixRights(int(master.Fd()))
	if _, _, err := uc.WriteMsgUnix([]byte("/dev/ptmx"), rights, nil); err != nil {
		return fmt.Errorf("console socket: send the terminal: %w", err)
	}
	return nil
}
