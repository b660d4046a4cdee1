package config

import (
	"fmt"
	"strings"
)

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

// ExitClass is a set of kinds of VM exit, as the user names them for
// --trace: a bit per kind. Which KVM exit reasons fall in each kind is
// decided where exits are observed (vmm/trace).
type ExitClass uint8

// The kinds of VM exit.
const (
	ExitsIO       ExitClass = 1 << iota // port I/O (in, out)
	ExitsMMIO                           // memory-mapped I/O outside RAM
	ExitsHLT                            // the guest halted
	ExitsShutdown                       // triple fault, reset and power events
	ExitsError                          // emulation failures, failed entries
	ExitsOther                          // every other exit reason

	AllExits = ExitsIO | ExitsMMIO | ExitsHLT | ExitsShutdown | ExitsError | ExitsOther
)

// exitClassNames are the words --trace takes, in the order String prints.
var exitClassNames = []struct {
	class ExitClass
	name  string
}{
	{ExitsIO, "io"},
	{ExitsMMIO, "mmio"},
	{ExitsHLT, "hlt"},
	{ExitsShutdown, "shutdown"},
	{ExitsError, "error"},
	{ExitsOther, "other"},
}

// ExitClassNames returns the words ParseExitClasses accepts, "all" first.
func ExitClassNames() []string {
	names := []string{"all"}
	for _, n := range exitClassNames {
		names = append(names, n.name)
	}
	return names
}

// ParseExitClasses parses a comma-separated list of exit kinds, such as
// "io,hlt", or "all". The error for an unknown word lists the known ones;
// the flag parser that calls this makes it a usage error.
func ParseExitClasses(s string) (ExitClass, error) {
	var c ExitClass
	for _, word := range strings.Split(s, ",") {
		word = strings.ToLower(strings.TrimSpace(word))
		if word == "all" {
			c |= AllExits
			continue
		}
		found := false
		for _, n := range exitClassNames {
			if n.name == word {
				c |= n.class
				found = true
			}
		}
		if !found {
			return 0, fmt.Errorf("unknown trace class %q (want a comma-separated list of %s)",
				word, strings.Join(ExitClassNames(), ", "))
		}
	}
	return c, nil
}

// String prints the set as ParseExitClasses reads it: "io,hlt", "all",
// and "" for the empty set.
func (c ExitClass) String() string {
	if c == AllExits {
		return "all"
	}
	var words []string
	for _, n := range exitClassNames {
		if c&n.class != 0 {
			words = append(words, n.name)
		}
	}
	return strings.Join(words, ",")
}
