// Package logstest captures what a test's components log: a worker, an
// API server and the goroutines they start all write to one Buffer, which
// the test reads while they run.
package logstest

import (
	"bytes"
	"sync"
)

// Buffer is a bytes.Buffer that several goroutines may write and read at
// once: a logger's output is written from every goroutine that logs, while
// the test reads it, and a bare bytes.Buffer would be a data race under
// go test -race. The zero value is ready to use.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p, as bytes.Buffer.Write does.
func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
