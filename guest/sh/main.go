// Command sh is the guest's /bin/sh for scripts: `sh -c 'CMD' [ARG...]`,
// `sh FILE [ARG...]`, or a script on standard input, run by the same POSIX
// shell interpreter as u-root's gosh (mvdan.cc/sh), exiting with the
// script's status. An interactive session (no arguments, a terminal on
// standard input) is handed to gosh and its line editor.
//
// It exists because u-root's busybox picks a command by the name it was
// started as: a shell script calling `sh` must find a command named sh.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"

	"golang.org/x/term"
	"mvdan.cc/sh/v3/interp"
	"mvdan.cc/sh/v3/syntax"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	var src io.Reader = os.Stdin
	name := "sh"
	switch {
	case len(args) >= 2 && args[0] == "-c":
		src, args = strings.NewReader(args[1]), args[2:]
	case len(args) >= 1 && args[0] != "-c":
		f, err := os.Open(args[0])
		if err != nil {
			fmt.Fprintf(os.Stderr, "sh: %v\n", err)
			return 127
		}
		defer f.Close()
		src, name, args = f, args[0], args[1:]
	case len(args) == 1:
		fmt.Fprintln(os.Stderr, "sh: -c needs a command")
		return 2
	case term.IsTerminal(0):
		err := syscall.Exec("/bbin/gosh", []string{"/bbin/gosh"}, os.Environ())
		fmt.Fprintf(os.Stderr, "sh: start gosh: %v\n", err)
		return 126
	}
	prog, err := syntax.NewParser().Parse(src, name)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sh: %v\n", err)
		return 2
	}
	r, err := interp.New(interp.StdIO(os.Stdin, os.Stdout, os.Stderr), interp.Params(append([]string{"--"}, args...)...))
	if err != nil {
		fmt.Fprintf(os.Stderr, "sh: %v\n", err)
		return 2
	}
	err = r.Run(context.Background(), prog)
	if status, ok := interp.IsExitStatus(err); ok {
		return int(status)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(os.Stderr, "sh: %v\n", err)
		return 1
	}
	return 0
}
