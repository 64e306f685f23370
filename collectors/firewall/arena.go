package firewall

import "unsafe"

// arena turns received bytes into strings without one allocation per line:
// lines are copied into large chunks that are never written again once a
// string points into them, so the strings stay immutable. A chunk is freed
// by the garbage collector when no row refers to it any more.
type arena struct {
	chunk []byte
}

const arenaChunk = 256 << 10

func (a *arena) str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if cap(a.chunk)-len(a.chunk) < len(b) {
		a.chunk = make([]byte, 0, max(arenaChunk, len(b)))
	}
	off := len(a.chunk)
	a.chunk = append(a.chunk, b...)
	return unsafe.String(&a.chunk[off], len(b))
}
