package loadgen

import (
	"os/exec"
	"syscall"
)

// stopWithParent asks the kernel to send the node SIGTERM when the bench
// dies, even by SIGKILL, so that no node outlives the run that started it.
func stopWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
