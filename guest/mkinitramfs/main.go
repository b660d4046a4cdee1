// Command mkinitramfs builds kiln's guest initramfs with u-root.
//
// u-root compiles Go commands into one "busybox" binary (/bbin/bb) with a
// symlink per command, so a dozen tools cost one Go runtime. The image holds
// kiln's own init (guest/init) as /init, a poweroff that ends the VM, the
// u-root shell (gosh), a script shell as sh and /bin/sh (guest/sh), a small
// JSON HTTP service for the benchmarks (guest/httpd) and a small set of
// core tools. The archive is written uncompressed: a software-nested KVM
// unpacks an uncompressed cpio fastest, and the kernel needs no
// decompressor.
//
// Usage: go run ./guest/mkinitramfs -o bin/initramfs.cpio [-all]
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/u-root/gobusybox/src/pkg/golang"
	"github.com/u-root/mkuimage/uimage"
	"github.com/u-root/uio/llog"
)

const uroot = "github.com/u-root/u-root/cmds/core/"

// tools are the u-root commands in the default image: enough for a shell
// session, scripts and the tests, a few MiB in all.
var tools = []string{
	"gosh", "cat", "cp", "date", "dd", "df", "dmesg", "echo", "false", "free",
	"grep", "head", "kill", "ln", "ls", "mkdir", "mount", "mv", "ps", "pwd",
	"rm", "sleep", "sync", "tail", "tee", "true", "umount", "uname", "wc",
	"ping",
}

func main() {
	out := flag.String("o", "initramfs.cpio", "output file")
	all := flag.Bool("all", false, "include every u-root core command")
	flag.Parse()

	if err := build(*out, *all); err != nil {
		fmt.Fprintf(os.Stderr, "mkinitramfs: %v\n", err)
		os.Exit(1)
	}
}

func build(out string, all bool) error {
	cmds := []string{
		"github.com/kiln-vmm/kiln/guest/init",
		"github.com/kiln-vmm/kiln/guest/poweroff",
		"github.com/kiln-vmm/kiln/guest/sh",
		"github.com/kiln-vmm/kiln/guest/tcpcat",
		"github.com/kiln-vmm/kiln/guest/vsockcat",
		"github.com/kiln-vmm/kiln/guest/iobench",
		"github.com/kiln-vmm/kiln/guest/fstest",
		"github.com/kiln-vmm/kiln/guest/attack",
		"github.com/kiln-vmm/kiln/guest/httpd",
	}
	if all {
		cmds = append(cmds, uroot+"*")
	} else {
		for _, t := range tools {
			cmds = append(cmds, uroot+t)
		}
	}
	tmp, err := os.MkdirTemp("", "kiln-initramfs-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "[initramfs] building %d commands into one u-root busybox\n", len(cmds))
	l := llog.New(slog.LevelWarn, func(format string, v ...any) { fmt.Fprintf(os.Stderr, "[initramfs] "+format+"\n", v...) })
	err = uimage.Create(l,
		// goshliner: the shell's line editor is liner, which suits a serial
		// console, instead of a full-screen one that queries the terminal.
		uimage.WithEnv(golang.DisableCGO(), golang.WithGOARCH("amd64"), golang.WithBuildTag("goshliner")),
		uimage.WithTempDir(tmp),
		uimage.WithBusyboxCommands(cmds...),
		uimage.WithInit("init"),
		// bin/sh and bin/defaultsh: guest/sh, which hands a terminal to gosh.
		uimage.WithShell("sh"),
		uimage.WithSymlink("bin/reboot", "poweroff"),
		uimage.WithSkipLDD(),
		uimage.WithCPIOOutput(out),
	)
	if err != nil {
		return err
	}
	st, err := os.Stat(out)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "[initramfs] wrote %s (%.1f MiB)\n", out, float64(st.Size())/(1<<20))
	return nil
}
