// Command poweroff ends a kiln guest: it flushes file systems and resets
// the machine, which kiln takes as the end of the VM. (A PC without ACPI
// cannot power itself off; Linux would halt forever instead.)
package main

import "golang.org/x/sys/unix"

func main() {
	unix.Sync()
	for {
		unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART)
	}
}
