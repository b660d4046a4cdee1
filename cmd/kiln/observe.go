package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/kiln-vmm/kiln/vmm/config"
	"github.com/kiln-vmm/kiln/vmm/machine"
)

// addObserveFlags adds the flags that show a VM's inside (--trace, --stats).
func addObserveFlags(fs *pflag.FlagSet, cfg *config.Config) {
	fs.Var(exitClassFlag{&cfg.Observe.Trace}, "trace",
		"print one line per VM exit; --trace=CLASSES only those, a comma-separated list of "+
			strings.Join(config.ExitClassNames(), ", "))
	fs.Lookup("trace").NoOptDefVal = "all"
	fs.StringVar(&cfg.Observe.TraceFile, "trace-file", "", "write the trace to `PATH` instead of stderr (implies --trace)")
	fs.BoolVar(&cfg.Observe.Stats, "stats", false, "at the end, print exit counts and times per exit reason and device, and the boot phases")
}

// exitClassFlag is --trace's value: the classes of exits to print.
type exitClassFlag struct{ c *config.ExitClass }

func (f exitClassFlag) String() string {
	if f.c == nil {
		return ""
	}
	return f.c.String()
}

func (f exitClassFlag) Set(s string) error {
	c, err := config.ParseExitClasses(s)
	if err != nil {
		return err
	}
	*f.c = c
	return nil
}

// Type is the value's name in --help. It is empty, so that the help shows
// --trace[=all] and not a value that must follow the flag.
func (f exitClassFlag) Type() string { return "" }

// reportObserve prints what was asked for when the VM has ended.
func reportObserve(cfg *config.Config, m *machine.Machine, res machine.Result) {
	if err := m.TraceErr(); err != nil {
		fmt.Fprintf(os.Stderr, "kiln: the trace is incomplete: %v\n", err)
	}
	if report, ok := m.Stats(); ok {
		fmt.Fprintln(os.Stderr)
		report.WriteTo(os.Stderr)
	}
}
