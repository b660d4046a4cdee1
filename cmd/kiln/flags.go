package main

import (
	"fmt"
	"os"

	"github.com/spf13/pflag"

	"github.com/kiln-vmm/kiln/vmm/config"
)

// subcommand is the flag set of one of kiln's subcommands, with the
// -h/--help every one has and the usage text --help prints.
type subcommand struct {
	name string
	fs   *pflag.FlagSet
	help *bool
}

// newSubcommand starts the flag set of `kiln NAME`; usage is the text
// above the flags in --help.
func newSubcommand(name, usage string) *subcommand {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SortFlags = false
	s := &subcommand{name: name, fs: fs}
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage+"\n\nFlags:\n")
		fs.PrintDefaults()
	}
	return s
}

// parse parses args, after every flag is defined. helped says --help was
// asked for and printed: the subcommand is done. A bad flag is a usage
// error.
func (s *subcommand) parse(args []string) (helped bool, err error) {
	s.help = s.fs.BoolP("help", "h", false, "show this help")
	if err := s.fs.Parse(args); err != nil {
		return false, fmt.Errorf("%w: %v", config.ErrUsage, err)
	}
	if *s.help {
		s.fs.SetOutput(os.Stdout)
		s.fs.Usage()
		return true, nil
	}
	return false, nil
}

// fail prints err for this subcommand and returns its exit code (the
// package's fail, with the hint naming this subcommand's --help).
func (s *subcommand) fail(err error) int { return failIn(s.name, err) }
