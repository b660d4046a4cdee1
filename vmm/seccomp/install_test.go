package seccomp_test

// Filters installed for real, in a child process: the test binary run
// again with KILN_SECCOMP_HELPER naming what it does (a filter cannot be
// taken off, so the test process itself never gets one).

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/devices/virtio"
	"github.com/kiln-vmm/kiln/vmm/kvm"
	"github.com/kiln-vmm/kiln/vmm/seccomp"
)

const helperEnv = "KILN_SECCOMP_HELPER"

func TestMain(m *testing.M) {
	if kind := os.Getenv(helperEnv); kind != "" {
		helper(kind)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// kvmSetRegs is a vCPU request no filter allows after setup.
const kvmSetRegs = 0x4090AE82

func TestInstalledFilters(t *testing.T) {
	const tail = `, which its filter does not allow\n$`
	for _, c := range []struct {
		kind   string
		why    string
		stdout string // what the helper printed before the forbidden call
		stderr string // the report: a regular expression; "" for none
		signal syscall.Signal
	}{
		{"process", "the process filter lets the runtime, threads and a KVM_RUN (to /dev/null) through, and refuses getcwd",
			"allowed", `^kiln: seccomp: the main or device thread (TID) called getcwd \(79\)` + tail, 0},
		{"vcpu", "a vCPU thread's filter allows KVM_RUN on its descriptor, refuses KVM_SET_REGS, and names the request",
			"allowed", `^kiln: seccomp: the vCPU 0 thread (TID) called ioctl \(16\) with request 0x4090ae82` + tail, 0},
		{"vcpu-read", "a call the process filter allows is still refused on a vCPU's thread: both filters apply",
			"allowed", `^kiln: seccomp: the vCPU 0 thread (TID) called read \(0\)` + tail, 0},
		{"worker", "a device worker (virtio.Workers) runs under the process filter",
			"", `^kiln: seccomp: the main or device thread (TID) called getcwd \(79\)` + tail, 0},
		{"blocked", "a thread that blocks SIGSYS cannot report: the kernel kills kiln with SIGSYS instead",
			"", "", unix.SIGSYS},
		{"log", "in log mode the call goes through", "logged", "", 0},
		{"foreign", "a SIGSYS another process sends is no refusal: kiln ends, saying so",
			"", `^kiln: SIGSYS from another process\n$`, 0},
		{"noleak", "once a vCPU's goroutine returns, its filter is gone with its thread", "no leak", "", 0},
	} {
		t.Run(c.kind, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), helperEnv+"="+c.kind)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			t.Logf("%s: %s\nstdout: %q\nstderr: %q", c.kind, c.why, stdout.String(), stderr.String())
			out := stdout.String()
			require.Contains(t, out, c.stdout)
			var ee *exec.ExitError
			switch {
			case c.signal != 0:
				require.True(t, errors.As(err, &ee), "%v", err)
				ws := ee.Sys().(syscall.WaitStatus)
				require.True(t, ws.Signaled(), "%v", err)
				require.Equal(t, c.signal, ws.Signal())
				require.Empty(t, stderr.String())
			case c.stderr != "":
				require.True(t, errors.As(err, &ee), "%v", err)
				require.Equal(t, seccomp.ExitCode, ee.ExitCode())
				// The thread named is the one that made the call.
				re := c.stderr
				if strings.Contains(re, "(TID)") {
					tid := regexp.MustCompile(`tid (\d+)`).FindStringSubmatch(out)
					require.NotNil(t, tid, "the helper says which thread calls")
					re = strings.Replace(re, "(TID)", tid[1], 1)
				}
				require.Regexp(t, regexp.MustCompile(re), stderr.String(), "one line, naming the call")
			default:
				require.NoError(t, err, "stderr: %s", stderr.String())
			}
		})
	}
}

// helper installs filters and calls what kind says. What it prints before
// the forbidden call, its test checks.
func helper(kind string) {
	must := func(err error) {
		if err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
	}
	vmNull, err := unix.Open("/dev/null", unix.O_RDWR|unix.O_CLOEXEC, 0)
	must(err)
	vcpuNull, err := unix.Open("/dev/null", unix.O_RDWR|unix.O_CLOEXEC, 0)
	must(err)
	n := seccomp.Needs{VMFD: vmNull, VCPUFDs: []int{vcpuNull}}
	// noleak reads /proc: the lists for writing a snapshot open files.
	n.Snapshot = kind == "noleak"
	mode := seccomp.On
	if kind == "log" {
		mode = seccomp.Log
	}
	must(seccomp.InstallProcess(seccomp.Process(n), mode))

	// kvmRun issues KVM_RUN on fd: the filter decides before the driver
	// sees it, and /dev/null answers ENOTTY.
	kvmRun := func(fd int) {
		_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), kvm.IoctlRun, 0)
		if e != unix.ENOTTY {
			must(fmt.Errorf("KVM_RUN on /dev/null: %v, want ENOTTY", e))
		}
	}
	// vcpu runs f on a thread of its own with vCPU 0's filter, and does
	// not return until f has.
	vcpu := func(f func()) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			runtime.LockOSThread() // and never unlocked: the thread ends with the goroutine
			must(seccomp.InstallThread(seccomp.VCPU(n, 0), mode))
			f()
		}()
		<-done
	}
	tid := func() { fmt.Printf("tid %d\n", unix.Gettid()) }

	switch kind {
	case "process":
		busy()
		kvmRun(vcpuNull)
		fmt.Println("allowed")
		runtime.LockOSThread()
		tid()
		unix.Getcwd(make([]byte, 256))
	case "vcpu":
		vcpu(func() {
			kvmRun(vcpuNull)
			fmt.Println("allowed") // write: every filter allows it
			tid()
			unix.Syscall(unix.SYS_IOCTL, uintptr(vcpuNull), kvmSetRegs, 0)
		})
	case "vcpu-read":
		vcpu(func() {
			fmt.Println("allowed")
			tid()
			unix.Read(vcpuNull, make([]byte, 1))
		})
	case "worker":
		var w virtio.Workers
		w.Go(func(<-chan struct{}) {
			runtime.LockOSThread()
			tid()
			unix.Getcwd(make([]byte, 256))
		})
		w.Stop()
	case "blocked":
		runtime.LockOSThread()
		var set unix.Sigset_t
		set.Val[0] = 1 << (unix.SIGSYS - 1)
		must(unix.PthreadSigmask(unix.SIG_BLOCK, &set, nil))
		unix.Getcwd(make([]byte, 256))
	case "foreign":
		unix.Tgkill(unix.Getpid(), unix.Gettid(), unix.SIGSYS) // as kill -SYS from a shell would
		time.Sleep(time.Second)
	case "log":
		_, err := unix.Getcwd(make([]byte, 256))
		must(err)
		fmt.Println("logged")
	case "noleak":
		var vcpuTid int
		vcpu(func() { vcpuTid = unix.Gettid() })
		time.Sleep(50 * time.Millisecond) // the thread's exit
		// Calls the vCPU filter refuses, on every thread Go has.
		busy()
		for range 100 {
			_, err := unix.Read(vcpuNull, make([]byte, 1))
			must(err)
		}
		must(checkTasks(vcpuTid))
		fmt.Println("no leak")
	}
}

// busy makes the runtime work: goroutines on new threads, a GC, sleeps,
// and reads that only the process filter allows.
func busy() {
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			runtime.LockOSThread() // a new thread, from the template thread
			defer runtime.UnlockOSThread()
			b := make([]byte, 1<<20)
			runtime.GC()
			time.Sleep(time.Millisecond)
			_ = b
		})
	}
	wg.Wait()
}

// checkTasks makes sure no thread of this process has more than one
// filter: the vCPU's must have gone with its thread. If the vCPU's
// goroutine ran on the main thread, which Go never ends, the runtime
// parks that thread for good instead (mexit): it keeps the filter and
// runs no goroutine again.
func checkTasks(vcpuTid int) error {
	tasks, err := filepath.Glob("/proc/self/task/*/status")
	if err != nil {
		return err
	}
	for _, p := range tasks {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // the thread ended
		}
		if p == fmt.Sprintf("/proc/self/task/%d/status", vcpuTid) && vcpuTid == unix.Getpid() {
			fmt.Println("the vCPU's goroutine ran on the main thread, parked for good")
			continue
		}
		if !strings.Contains(string(b), "Seccomp_filters:\t1\n") {
			return fmt.Errorf("%s: %s", p, regexp.MustCompile(`Seccomp.*`).FindAllString(string(b), -1))
		}
	}
	return nil
}
