//go:build !linux

package redisproc

import "os/exec"

// dieWithParent does nothing where the kernel offers no parent-death
// signal: the caller's own Stop (on SIGTERM or Ctrl-C) ends the server.
func dieWithParent(*exec.Cmd) {}
