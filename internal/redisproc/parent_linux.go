package redisproc

import (
	"os/exec"
	"syscall"
)

// dieWithParent asks the kernel to send the child SIGTERM (redis-server's
// clean shutdown) when its parent dies, and gives the child a process group
// of its own, so that a terminal's Ctrl-C reaches the parent alone, which
// then stops the server itself. The signal follows the thread that started
// the child; the Go runtime keeps its threads for the life of the process
// unless a goroutine locked to one exits, which redisproc's callers do not
// do.
func dieWithParent(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGTERM
	cmd.SysProcAttr.Setpgid = true
}
