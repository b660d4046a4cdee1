// Command init is the first process of a kiln guest (/init in the
// initramfs, PID 1).
//
// It does what a minimal init must: mount /proc, /sys, /dev and /tmp, then
// tells kiln that user space has started by writing to kiln's boot-signal
// device (I/O port 0x440, see devices/signal). Then, if kiln passed a
// command on the kernel command line (kiln.cmd=, base64 of the arguments
// joined by NUL), it runs it, reports its exit status through the same
// device and resets the machine, which ends the VM; otherwise it starts the
// u-root shell on the console and ends the VM when the shell exits.
//
// As PID 1 it also reaps orphaned processes, and it never exits: if init
// returned, the kernel would panic.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/vmm/config"
	"github.com/kiln-vmm/kiln/vmm/layout"
)

const path = "/bbin:/bin:/usr/bin:/sbin:/usr/sbin"

// MarkParam names a kernel parameter whose value init prints on the console
// the moment it reports user space (kiln bench uses it to time other VMMs).
const MarkParam = "kiln.mark"

func main() {
	// ioperm(2) grants port access to the calling thread only: keep this
	// goroutine on the thread that asked.
	runtime.LockOSThread()
	mountAll()
	params := kernelParams()
	if params["kiln.raw"] == "1" {
		rawConsole()
	}
	if err := setupNetwork(params[NetParam]); err != nil {
		fmt.Fprintf(os.Stderr, "kiln init: network: %v\n", err)
	}
	// From this moment kiln feeds its stdin to the console: the tty is
	// set up, so nothing typed or piped is lost to the driver's start-up.
	signalUserspace()
	if mark := params[MarkParam]; mark != "" {
		// A VMM without kiln's signal device (QEMU in kiln bench) sees
		// user space begin by this line on the console.
		fmt.Println(mark)
	}
	os.Setenv("PATH", path)
	os.Setenv("HOME", "/")
	os.Setenv("TERM", "linux")

	_, quiet = params["quiet"]

	argv := []string{"gosh"}
	if params["kiln.raw"] == "1" {
		// Not a terminal on the host side: the shell reads a script from
		// the console until end of file, instead of drawing a line editor.
		argv = append(argv, "/proc/self/fd/0")
	}
	if enc, ok := params[config.CommandParam]; ok {
		cmd, err := config.DecodeCommand(enc)
		if err != nil || len(cmd) == 0 {
			fmt.Fprintf(os.Stderr, "kiln init: %v\n", err)
			end(125)
		}
		argv = cmd
	}
	end(run(argv))
}

// mountAll mounts the kernel's pseudo file systems.
func mountAll() {
	for _, m := range []struct{ src, dir, fstype string }{
		{"proc", "/proc", "proc"},
		{"sysfs", "/sys", "sysfs"},
		{"devtmpfs", "/dev", "devtmpfs"},
		{"devpts", "/dev/pts", "devpts"},
		{"tmpfs", "/tmp", "tmpfs"},
	} {
		os.MkdirAll(m.dir, 0o755)
		if err := unix.Mount(m.src, m.dir, m.fstype, 0, ""); err != nil && err != unix.EBUSY {
			fmt.Fprintf(os.Stderr, "kiln init: mount %s: %v\n", m.dir, err)
		}
	}
}

// kernelParams returns the key=value parameters of /proc/cmdline.
func kernelParams() map[string]string {
	b, _ := os.ReadFile("/proc/cmdline")
	p := map[string]string{}
	for _, f := range strings.Fields(string(b)) {
		k, v, _ := strings.Cut(f, "=")
		p[k] = v
	}
	return p
}

// rawConsole makes the console pass bytes through unchanged when kiln's
// stdin and stdout are not a terminal: no echo of piped input, no "\r\n"
// for "\n". Line input and Ctrl-D as end of file stay.
func rawConsole() {
	t, err := unix.IoctlGetTermios(0, unix.TCGETS)
	if err != nil {
		return
	}
	t.Lflag &^= unix.ECHO | unix.ECHOE | unix.ECHOK | unix.ECHONL | unix.ECHOCTL
	t.Oflag &^= unix.OPOST
	t.Iflag &^= unix.ICRNL
	unix.IoctlSetTermios(0, unix.TCSETS, t)
}

// run starts argv as the console's session leader and waits for it,
// reaping any other process that exits meanwhile. It returns the exit
// status as a shell would: 126 not executable, 127 not found, 128+n for a
// death by signal n.
func run(argv []string) int {
	bin, err := exec.LookPath(argv[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "kiln init: %s: command not found\n", argv[0])
		return 127
	}
	// argv[0] is the full path: u-root's busybox follows it through
	// symlinks (/bin/sh -> /bbin/gosh) to learn which command to run.
	argv = append([]string{bin}, argv[1:]...)
	pid, err := syscall.ForkExec(bin, argv, &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{0, 1, 2},
		Sys:   &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "kiln init: %s: %v\n", argv[0], err)
		return 126
	}
	for {
		var ws syscall.WaitStatus
		wpid, err := syscall.Wait4(-1, &ws, 0, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return 125
		}
		if wpid != pid {
			continue // an orphan, reaped
		}
		if ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ws.ExitStatus()
	}
}

// quiet is set when kiln asked for a quiet console (running a command).
var quiet bool

// end reports the exit status to kiln, flushes file systems and resets the
// machine. It does not return.
func end(status int) {
	unix.Sync()
	if quiet {
		// The kernel's "reboot: Restarting system" is an emergency-level
		// message that quiet does not hide; console level 0 does.
		os.WriteFile("/proc/sys/kernel/printk", []byte("0"), 0)
	}
	signalStatus(status)
	for {
		unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART)
	}
}

// signalUserspace tells kiln that user space has started.
func signalUserspace() {
	if ioperm() {
		outb(layout.SignalPort, 1)
	}
}

// signalStatus reports the command's exit status to kiln.
func signalStatus(status int) {
	if ioperm() {
		outb(layout.SignalPort+1, uint8(status))
	}
}

var haveIO bool

// ioperm grants this process access to the signal device's ports.
func ioperm() bool {
	if !haveIO {
		_, _, errno := unix.Syscall(unix.SYS_IOPERM, layout.SignalPort, layout.SignalSize, 1)
		if errno != 0 {
			fmt.Fprintf(os.Stderr, "kiln init: ioperm: %v\n", errno)
			return false
		}
		haveIO = true
	}
	return true
}

// outb writes one byte to an I/O port (outb_amd64.s).
func outb(port uint16, val uint8)
