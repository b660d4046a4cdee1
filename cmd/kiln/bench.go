package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/kiln-vmm/kiln/cmd/kiln/bench"
	"github.com/kiln-vmm/kiln/cmd/kiln/vmflags"
	"github.com/kiln-vmm/kiln/vmm/config"
)

// cmdBench is `kiln bench`: the same workload started as a kiln microVM, a
// QEMU microvm, and in containers, interleaved, with the distributions,
// the memory and the goals (see bench and
// docs/benchmarks.md).
func cmdBench(args []string) int {
	sub := newSubcommand("bench", bench.Usage)
	fs := sub.fs
	fs.SortFlags = true
	kernel := fs.String("kernel", vmflags.DefaultPath("KILN_KERNEL", "vmlinux"), "guest kernel (vmlinux)")
	initrd := fs.String("initrd", vmflags.DefaultPath("KILN_INITRD", "initramfs.cpio"), "initramfs; also unpacked as the containers' root file system")
	rounds := fs.Int("rounds", 5, "measured rounds (each starts every method once)")
	warmup := fs.Int("warmup", 1, "rounds run first and not counted")
	mem := fs.String("memory", "128M", "guest memory for the VMs")
	density := fs.String("density", "1,4,16", "numbers of kiln VMs to start at once, comma-separated; \"\" for none")
	restoreDensity := fs.String("restore-density", "8", "numbers of kiln VMs to restore at once from one snapshot, comma-separated; \"\" for none (boot: kiln-restore's; http: clones of the ready-app snapshot, 32 unless told)")
	only := fs.StringSlice("only", nil, "run only these methods: "+strings.Join(bench.MethodNames, ", "))
	timeout := fs.Duration("timeout", 5*time.Minute, "longest a single start may take")
	workload := fs.String("workload", "boot", "boot: COMMAND started to its exit; http: the image's httpd served by each method (first HTTP 200, a burst, memory, density)")
	burst := fs.Int("burst", bench.DefaultBurst.Requests, "http: requests in the burst")
	burstConns := fs.Int("burst-conns", bench.DefaultBurst.Conns, "http: connections the burst uses at once")
	keepAlive := fs.Bool("keep-alive", bench.DefaultBurst.KeepAlive, "http: each burst connection carries many requests (false: one request per connection)")
	jsonOut := fs.String("json", "", "write every sample as JSON to `FILE`")
	svgOut := fs.String("svg", "", "draw the distributions as an SVG chart in `FILE`")
	if helped, err := sub.parse(args); helped || err != nil {
		if helped {
			return 0
		}
		return sub.fail(err)
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(os.Stderr, "kiln: bench: "+format+"\n", a...)
		return ExitUsage
	}
	size, err := config.ParseSize(*mem)
	if err != nil {
		return usageErr("--memory: %s", strings.TrimPrefix(err.Error(), "usage: "))
	}
	if *workload == "http" && !fs.Changed("restore-density") {
		*restoreDensity = "32"
	}
	rks, err := bench.ParseDensity(*restoreDensity)
	if err != nil {
		return usageErr("%v", strings.Replace(err.Error(), "--density", "--restore-density", 1))
	}
	if *workload == "http" && !fs.Changed("density") {
		*density = "1,8,16"
	}
	ks, err := bench.ParseDensity(*density)
	if err != nil {
		return usageErr("%v", err)
	}
	command := fs.Args()
	if len(command) == 0 {
		command = []string{"true"}
	}
	self, err := os.Executable()
	if err != nil {
		return fail(fmt.Errorf("find the kiln binary: %w", err))
	}
	// Check the output files can be written before minutes of measuring.
	for _, f := range []string{*jsonOut, *svgOut} {
		if f == "" {
			continue
		}
		fh, err := os.Create(f)
		if err != nil {
			fmt.Fprintf(os.Stderr, "kiln: bench: %v\n", err)
			return ExitCantCreate
		}
		fh.Close()
	}

	opts := bench.Options{
		Kiln: self, Kernel: *kernel, Initrd: *initrd, Memory: size, Command: command,
		Rounds: *rounds, Warmup: *warmup, Density: ks, RestoreDensity: rks, Only: *only, Timeout: *timeout,
		Host: bench.ThisHost(), Progress: os.Stderr,
	}
	if *workload != "boot" {
		opts.Workload = *workload
	}
	opts.Burst = bench.DefaultBurst
	opts.Burst.Requests, opts.Burst.Conns, opts.Burst.KeepAlive = *burst, *burstConns, *keepAlive
	if err := opts.Check(); err != nil {
		return usageErr("%v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := bench.Run(ctx, opts)
	var ke *bench.KilnError
	switch {
	case errors.As(err, &ke):
		// kiln run's own message; its flags are bench's flags here.
		fmt.Fprintln(os.Stderr, strings.ReplaceAll(ke.Msg, "kiln run --help", "kiln bench --help"))
		return ke.Code
	case ctx.Err() != nil:
		fmt.Fprintln(os.Stderr, "kiln: bench: interrupted")
		return ExitInterrupted
	case err != nil:
		return fail(err)
	}
	fmt.Println()
	bench.WriteReport(os.Stdout, res)
	if *jsonOut != "" {
		if err := writeFile(*jsonOut, func(f *os.File) error { return bench.WriteJSON(f, res) }); err != nil {
			return fail(err)
		}
		fmt.Fprintf(os.Stderr, "kiln: bench: samples written to %s\n", *jsonOut)
	}
	if *svgOut != "" {
		if err := writeFile(*svgOut, func(f *os.File) error { return bench.WriteSVG(f, res) }); err != nil {
			return fail(err)
		}
		fmt.Fprintf(os.Stderr, "kiln: bench: chart written to %s\n", *svgOut)
	}
	return 0
}

func writeFile(name string, write func(*os.File) error) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	return f.Close()
}
