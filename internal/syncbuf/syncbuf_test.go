package syncbuf

import (
	"strings"
	"sync"
	"testing"
)

func TestConcurrentWritesAndBound(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 1000; j++ {
				b.Write([]byte("x"))
				_ = b.String()
			}
		}()
	}
	wg.Wait()
	if n := len(b.String()); n != 4000 {
		t.Errorf("%d bytes, want 4000", n)
	}
	c := Buffer{Max: 10}
	c.Write([]byte(strings.Repeat("a", 11)))
	c.Write([]byte("b"))
	if got := c.String(); got != "b" {
		t.Errorf("bounded buffer holds %q, want the latest write only", got)
	}
}
