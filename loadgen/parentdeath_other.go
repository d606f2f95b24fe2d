//go:build !linux

package loadgen

import "os/exec"

// stopWithParent does nothing where the kernel offers no parent-death
// signal: a bench killed with SIGKILL leaves its nodes running there.
func stopWithParent(*exec.Cmd) {}
