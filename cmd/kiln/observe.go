package main

import (
	"github.com/spf13/pflag"

	"github.com/kiln-vmm/kiln/vmm/config"
	"github.com/kiln-vmm/kiln/vmm/machine"
)

// addObserveFlags adds the flags that show a VM's inside (--trace, --stats).
func addObserveFlags(fs *pflag.FlagSet, cfg *config.Config) {}

// reportObserve prints what was asked for when the VM has ended.
func reportObserve(cfg *config.Config, m *machine.Machine, res machine.Result) {}
