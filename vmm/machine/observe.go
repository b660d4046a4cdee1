package machine

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/kiln-vmm/kiln/vmm/bus"
	"github.com/kiln-vmm/kiln/vmm/config"
	"github.com/kiln-vmm/kiln/vmm/kvm"
	"github.com/kiln-vmm/kiln/vmm/trace"
)

// observer watches the run loop for kiln run --trace and --stats. A
// machine has one only when either was asked for: without, the run loop
// sees a nil recorder and handles exits as if there were no such thing.
type observer struct {
	start     time.Time
	pio, mmio *bus.Bus
	tracer    *trace.Tracer // nil without --trace
	traceFile *os.File      // nil when tracing to stderr
	stats     *trace.Stats  // nil without --stats

	report   trace.Report // the statistics, once the VM has ended
	traceErr error        // a failure to write the trace
}

// newObserver returns the observer cfg.Observe asks for, or nil if it asks
// for nothing. The trace goes to stderr unless cfg names a file.
func newObserver(cfg *config.Config, start time.Time, dev *deviceManager, stderr io.Writer) (*observer, error) {
	o := cfg.Observe
	classes := o.Tracing()
	if classes == 0 && !o.Stats {
		return nil, nil
	}
	obs := &observer{start: start, pio: dev.pio, mmio: dev.mmio}
	if classes != 0 {
		w := stderr
		if cfg.Interactive {
			w = crlf{stderr} // the terminal is in raw mode while the guest runs
		}
		if o.TraceFile != "" {
			f, err := os.Create(o.TraceFile)
			if err != nil {
				return nil, fmt.Errorf("open trace file: %w", err)
			}
			obs.traceFile, w = f, f
		}
		obs.tracer = trace.NewTracer(w, classes)
	}
	if o.Stats {
		obs.stats = trace.NewStats()
	}
	return obs, nil
}

// crlf writes to a terminal in raw mode, where a line feed does not
// return the carriage: each "\n" goes out as "\r\n".
type crlf struct{ w io.Writer }

func (c crlf) Write(p []byte) (int, error) {
	if _, err := c.w.Write(bytes.ReplaceAll(p, []byte("\n"), []byte("\r\n"))); err != nil {
		return 0, err
	}
	return len(p), nil
}

// recorder is one vCPU's view of the observer.
type recorder struct {
	o    *observer
	v    vcpu
	id   int
	last time.Time // when the vCPU last went back into KVM_RUN
}

// vcpu returns the recorder for v, or nil when nothing is observed. Call
// it just before v's first KVM_RUN.
func (o *observer) vcpu(v vcpu) *recorder {
	if o == nil {
		return nil
	}
	return &recorder{o: o, v: v, id: v.ID(), last: time.Now()}
}

// exitHandler handles one exit of vCPU id; it reports whether the vCPU
// must stop.
type exitHandler func(id int, v exitSource, reason kvm.ExitReason) (stop bool, err error)

// handle runs handler for the exit that just happened, timing it, then
// counts the exit and traces it. The time in KVM_RUN before the exit is
// from the end of the previous handle to the start of this one.
func (r *recorder) handle(reason kvm.ExitReason, handler exitHandler) (bool, error) {
	returned := time.Now()
	stop, err := handler(r.id, r.v, reason)
	handled := time.Now()
	e := trace.Exit{
		VCPU:     r.id,
		Reason:   reason,
		At:       returned.Sub(r.o.start),
		Guest:    returned.Sub(r.last),
		Handling: handled.Sub(returned),
	}
	// The trace line and the counting below are kiln's own work too, but
	// not the exit's: the next exit's guest time starts when they are done.
	defer func() { r.last = time.Now() }()
	traced := r.o.tracer.Wants(reason)
	if !traced && r.o.stats == nil {
		return stop, err
	}
	switch reason {
	case kvm.ExitIO:
		port := r.v.IO()
		e.Access = &trace.Access{Space: trace.PIO, Addr: uint64(port.Port), Write: port.Write, Size: port.Size, Count: port.Count, Data: port.Data}
		e.Access.Device, _ = r.o.pio.Find(e.Access.Addr, port.Size)
	case kvm.ExitMMIO:
		mm := r.v.MMIO()
		e.Access = &trace.Access{Space: trace.MMIO, Addr: mm.Addr, Write: mm.Write, Size: len(mm.Data), Count: 1, Data: mm.Data}
		e.Access.Device, _ = r.o.mmio.Find(mm.Addr, len(mm.Data))
	default:
		if traced {
			e.Detail = exitDetail(r.v, reason)
			e.CPU = cpuState(r.v)
		}
	}
	if r.o.stats != nil {
		r.o.stats.Add(e)
	}
	if traced {
		r.o.tracer.Log(e)
	}
	return stop, err
}

// exitDetail is what KVM reports about an exit besides its reason.
func exitDetail(v exitSource, reason kvm.ExitReason) string {
	switch reason {
	case kvm.ExitInternalError:
		ie := v.Internal()
		return fmt.Sprintf("%v (data %#x)", ie.Suberror, ie.Data)
	case kvm.ExitFailEntry:
		return fmt.Sprintf("hardware entry failure reason %#x", v.FailEntryReason())
	case kvm.ExitSystemEvent:
		return v.SystemEventType().String()
	case kvm.ExitShutdown:
		return "triple fault"
	}
	return ""
}

// cpuState reads v's registers, or returns nil if KVM will not give them.
func cpuState(v exitSource) *trace.CPUState {
	regs, err := v.Regs()
	if err != nil {
		return nil
	}
	sregs, err := v.Sregs()
	if err != nil {
		return nil
	}
	return &trace.CPUState{Regs: regs, Sregs: sregs}
}

// deviceFailed traces a device asking for a reset, the moment it does.
func (o *observer) deviceFailed(f DeviceFailure) {
	if o == nil || o.tracer == nil {
		return
	}
	o.tracer.Note(f.At.Sub(o.start), fmt.Sprintf("%s (%s): DEVICE_NEEDS_RESET: %v", f.Device, f.Where, f.Reason))
}

// finish writes out the trace and gathers the statistics once the VM has
// ended, with the moments of its life and the devices that failed.
func (o *observer) finish(p Phases, failures []DeviceFailure) {
	if o == nil {
		return
	}
	if o.stats != nil {
		o.report = o.stats.Report(trace.Boot{Start: p.Start, FirstRun: p.FirstRun, Userspace: p.Userspace, Running: p.Running, End: p.End})
		for _, f := range failures {
			o.report.Failures = append(o.report.Failures, trace.Failure{Device: f.Device, Where: f.Where, At: f.At.Sub(o.start), Reason: f.Reason.Error()})
		}
	}
	if o.tracer == nil {
		return
	}
	o.traceErr = o.tracer.Flush()
	if o.traceFile != nil {
		if err := o.traceFile.Close(); err != nil && o.traceErr == nil {
			o.traceErr = fmt.Errorf("close trace file: %w", err)
		}
	}
}

// Stats returns the exit statistics of a VM that has ended, if --stats
// asked for them.
func (m *Machine) Stats() (trace.Report, bool) {
	if m.observe == nil || m.observe.stats == nil {
		return trace.Report{}, false
	}
	return m.observe.report, true
}

// TraceErr returns the error, if any, that kept the trace from being
// written in full. Call it after Run.
func (m *Machine) TraceErr() error {
	if m.observe == nil {
		return nil
	}
	return m.observe.traceErr
}
