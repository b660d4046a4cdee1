package config

import (
	"fmt"
	"strings"
)

// ExitClass is a set of kinds of VM exit, as the user names them for
// --trace: a bit per kind. trace.ClassOf says which kind an exit reason
// is; the set is part of the config because it is what the user asked
// for, before any VM exists.
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
	var names []string
	for _, n := range exitClassNames {
		if c&n.class != 0 {
			names = append(names, n.name)
		}
	}
	return strings.Join(names, ",")
}
