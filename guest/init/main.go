// Command init is the first process of a kiln guest (/init in the
// initramfs, PID 1).
//
// It does what a minimal init must: mount /proc, /sys, /dev and /tmp and
// configure the network, then tells kiln that user space has started by
// writing to kiln's boot-signal device (I/O port 0x440, see
// guest/contract). Then it asks for its job and reads it from the same
// device: the command to run (or none, for the shell), the console's mode,
// entropy and the wall-clock time. A VM restored from a snapshot resumes
// exactly there, so it gets a fresh job, fresh entropy and the right time.
// init runs the command, reports its exit status through the device and
// resets the machine, which ends the VM; or it starts the u-root shell on
// the console and ends the VM when the shell exits; or, for kiln as an OCI
// runtime, it sets up and runs a container (container.go).
//
// As PID 1 it also reaps orphaned processes, and it never exits: if init
// returned, the kernel would panic.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/guest/contract"
)

const searchPath = "/bbin:/bin:/usr/bin:/sbin:/usr/sbin"

func main() {
	// ioperm(2) grants port access to the calling thread only: keep this
	// goroutine on the thread that asked.
	runtime.LockOSThread()
	mountAll()
	params := kernelParams()
	if err := setupNetwork(params[contract.ParamNet]); err != nil {
		fmt.Fprintf(os.Stderr, "kiln init: network: %v\n", err)
	}
	signal(contract.EventUserspace)
	if mark := params[contract.ParamMark]; mark != "" {
		// A VMM without kiln's signal device (QEMU in kiln bench) sees
		// user space begin by this line on the console.
		fmt.Println(mark)
	}
	job, err := getJob(params)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kiln init: %v\n", err)
		end(125, false)
	}
	t := time.Now()
	apply(job)
	timings.apply = time.Since(t)
	if job.Container != nil {
		runContainer(job.Container, job.Quiet) // container.go
	}
	if job.Ready != nil && len(job.Argv) > 0 {
		runApp(job) // ready.go
	}
	argv := job.Argv
	if len(argv) == 0 {
		argv = []string{"gosh"}
		if job.Raw {
			// Not a terminal on the host side: the shell reads a script
			// from the console until end of file, instead of drawing a
			// line editor.
			argv = append(argv, "/proc/self/fd/0")
		}
	}
	// From this moment kiln feeds its stdin to the console: the tty is
	// set up, so nothing typed or piped is echoed or lost.
	signal(contract.EventRunning)
	end(run(argv), job.Quiet)
}

// getJob takes the job from the kernel command line, where a VMM without
// kiln's signal device puts it, or else asks kiln for it. Under a VMM with
// neither, the job is the shell.
func getJob(params map[string]string) (*contract.Job, error) {
	if enc, ok := params[contract.ParamJob]; ok {
		return contract.DecodeJobParam(enc)
	}
	job, err := readJob()
	if errors.Is(err, contract.ErrNoJob) {
		return &contract.Job{}, nil
	}
	return job, err
}

// apply sets the guest up as the job asks, before its command runs:
// entropy, the clock, the console, the environment, the network and
// the shares.
func apply(job *contract.Job) {
	if len(job.Seed) > 0 {
		if err := addEntropy(job.Seed); err != nil {
			fmt.Fprintf(os.Stderr, "kiln init: entropy: %v\n", err)
		}
	}
	if job.Time != 0 {
		ts := unix.NsecToTimespec(job.Time)
		if err := unix.ClockSettime(unix.CLOCK_REALTIME, &ts); err != nil {
			fmt.Fprintf(os.Stderr, "kiln init: set the clock: %v\n", err)
		}
	}
	if job.Quiet {
		// The console shows the command's output and nothing of the
		// kernel's but emergencies.
		os.WriteFile("/proc/sys/kernel/printk", []byte("1"), 0)
	}
	if job.Raw {
		rawConsole()
	}
	os.Setenv("PATH", searchPath)
	os.Setenv("HOME", "/")
	os.Setenv("TERM", "linux")
	for _, kv := range withGuestEnv(job.Env) { // guestenv.go
		if k, v, ok := strings.Cut(kv, "="); ok {
			os.Setenv(k, v)
		}
	}
	applyNetwork(job.Net) // net.go
	for _, m := range job.Mounts {
		if err := mountShare(m); err != nil {
			fmt.Fprintf(os.Stderr, "kiln init: %v\n", err)
		}
	}
}

// addEntropy mixes seed into the kernel's input pool, credited as entropy
// (RNDADDENTROPY), and reseeds the generator that getrandom(2) and
// /dev/urandom read (RNDRESEEDCRNG): from here on, this VM's random
// numbers differ from those of every other VM restored from the same
// snapshot.
func addEntropy(seed []byte) error {
	f, err := os.OpenFile("/dev/urandom", os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	// struct rand_pool_info: entropy_count (bits), buf_size (bytes), buf.
	info := make([]byte, 8+len(seed))
	putInt32(info[0:], int32(8*len(seed)))
	putInt32(info[4:], int32(len(seed)))
	copy(info[8:], seed)
	if err := ioctlPtr(f.Fd(), unix.RNDADDENTROPY, info); err != nil {
		return fmt.Errorf("RNDADDENTROPY: %w", err)
	}
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.RNDRESEEDCRNG, 0); e != 0 {
		return fmt.Errorf("RNDRESEEDCRNG: %w", e)
	}
	return nil
}

// setClock sets the wall clock to the job's time, Unix nanoseconds (0:
// none given).
func setClock(t int64) {
	if t == 0 {
		return
	}
	ts := unix.NsecToTimespec(t)
	if err := unix.ClockSettime(unix.CLOCK_REALTIME, &ts); err != nil {
		fmt.Fprintf(os.Stderr, "kiln init: set the clock: %v\n", err)
	}
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

// mountShare mounts a host directory shared over virtio-9p.
func mountShare(m contract.Mount) error {
	if err := os.MkdirAll(m.Dir, 0o755); err != nil {
		return fmt.Errorf("share %s: %w", m.Tag, err)
	}
	var flags uintptr
	if m.ReadOnly {
		flags |= unix.MS_RDONLY
	}
	if err := unix.Mount(m.Tag, m.Dir, "9p", flags, contract.ShareMountOptions); err != nil {
		return fmt.Errorf("mount share %s at %s: %w", m.Tag, m.Dir, err)
	}
	return nil
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
	pid, status := start(argv)
	if pid == 0 {
		return status
	}
	return reap(pid) // orphans are reaped meanwhile
}

// start starts argv as the console's session leader and returns its pid,
// or 0 and the status a shell gives a command that cannot start.
func start(argv []string) (pid, status int) {
	bin, err := exec.LookPath(argv[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "kiln init: %s: command not found\n", argv[0])
		return 0, 127
	}
	// argv[0] is the full path: u-root's busybox follows it through
	// symlinks (/bin/sh -> /bbin/gosh) to learn which command to run.
	argv = append([]string{bin}, argv[1:]...)
	pid, err = syscall.ForkExec(bin, argv, &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{0, 1, 2},
		Sys:   &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "kiln init: %s: %v\n", argv[0], err)
		return 0, 126
	}
	return pid, 0
}

// end reports the exit status to kiln, flushes file systems and resets the
// machine. It does not return.
func end(status int, quiet bool) {
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
