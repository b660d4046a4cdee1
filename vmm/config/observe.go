package config

// Observe says what kiln shows about a VM's inside while it runs: the
// exit trace and the exit statistics (kiln run --trace, --stats).
type Observe struct {
	// Trace selects the VM exits to print, one line each; zero for none.
	Trace ExitClass
	// TraceFile is where the trace goes; "" for stderr. A trace file
	// without Trace traces every exit (see Tracing).
	TraceFile string
	// Stats prints, when the VM ends, exit counts and times per exit
	// reason and per device, and where the boot time went.
	Stats bool
}

// Tracing returns the classes of exits to trace. Naming a trace file asks
// for a trace, so a file alone means every class.
func (o Observe) Tracing() ExitClass {
	if o.Trace == 0 && o.TraceFile != "" {
		return AllExits
	}
	return o.Trace
}
