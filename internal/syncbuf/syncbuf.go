// Package syncbuf is a bytes.Buffer that several goroutines may write and
// read: the output of a child process (exec.Cmd's copiers) read by its
// supervisor or a test.
package syncbuf

import (
	"bytes"
	"sync"
)

// Buffer is safe for concurrent use. With Max > 0, a write that finds more
// than Max bytes buffered drops them first, so a long-running child's
// output cannot grow without bound (only its latest output is kept).
type Buffer struct {
	Max int
	mu  sync.Mutex
	b   bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Max > 0 && s.b.Len() > s.Max {
		s.b.Reset()
	}
	return s.b.Write(p)
}

// String returns what is buffered.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
