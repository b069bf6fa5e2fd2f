//go:build !unix

package redisproc

import "errors"

// Pause needs SIGSTOP, which only Unix has; refundctl still builds for
// Windows, where nothing pauses a server.
func (s *Server) Pause() error { return errors.ErrUnsupported }

// Resume continues a paused process: none is, without SIGSTOP.
func (s *Server) Resume() error { return errors.ErrUnsupported }

func (s *Server) resume() error { return nil }
