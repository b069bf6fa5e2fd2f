//go:build unix

package redisproc

import "syscall"

// Pause stops the process (SIGSTOP) without closing its connections: to
// its peers it is there but answers nothing. Resume continues it.
func (s *Server) Pause() error { return s.cmd.Process.Signal(syscall.SIGSTOP) }

// Resume continues a paused process.
func (s *Server) Resume() error { return s.resume() }

func (s *Server) resume() error { return s.cmd.Process.Signal(syscall.SIGCONT) }
