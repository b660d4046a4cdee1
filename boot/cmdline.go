package boot

import (
	"fmt"
	"strings"

	"github.com/kiln-vmm/kiln/vmm/layout"
)

// CheckCmdline checks that a kernel command line can be passed: it must
// fit, with its NUL terminator, in layout.CmdlineMax bytes and contain no NUL.
func CheckCmdline(s string) error {
	if strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("kernel command line contains a NUL byte")
	}
	if len(s)+1 > layout.CmdlineMax {
		return fmt.Errorf("kernel command line is %d bytes, at most %d", len(s), layout.CmdlineMax-1)
	}
	return nil
}

// writeCmdline writes the NUL-terminated command line at layout.CmdlineAddr.
func writeCmdline(mem Memory, s string) error {
	if err := CheckCmdline(s); err != nil {
		return err
	}
	_, err := mem.WriteAt(append([]byte(s), 0), layout.CmdlineAddr)
	return err
}
