package flow

import (
	"net/netip"
)

// lpm is a longest-prefix-match table over IPv4 and IPv6 prefixes: two
// binary tries stored in flat slices (no pointers, no allocation on
// lookup). Values are indices into a caller-owned slice; -1 means none.
type lpm struct {
	v4, v6 trie
}

type trie struct {
	// nodes[0] is the root. child 0 means "no child" (the root is never a
	// child).
	child [][2]int32
	val   []int32
}

func (t *trie) init() {
	if t.child == nil {
		t.child = [][2]int32{{0, 0}}
		t.val = []int32{-1}
	}
}

// insert sets the value of prefix bits[0:n] (bits read MSB first).
func (t *trie) insert(bits [16]byte, n int, v int32) {
	t.init()
	cur := int32(0)
	for i := 0; i < n; i++ {
		b := (bits[i>>3] >> (7 - uint(i&7))) & 1
		next := t.child[cur][b]
		if next == 0 {
			t.child = append(t.child, [2]int32{})
			t.val = append(t.val, -1)
			next = int32(len(t.child) - 1)
			t.child[cur][b] = next
		}
		cur = next
	}
	t.val[cur] = v
}

func (t *trie) lookup(bits *[16]byte, n int) int32 {
	if t.child == nil {
		return -1
	}
	best := t.val[0]
	cur := int32(0)
	for i := 0; i < n; i++ {
		b := (bits[i>>3] >> (7 - uint(i&7))) & 1
		cur = t.child[cur][b]
		if cur == 0 {
			break
		}
		if v := t.val[cur]; v >= 0 {
			best = v
		}
	}
	return best
}

// Insert adds prefix p with value v (a later insert of the same prefix wins).
func (l *lpm) Insert(p netip.Prefix, v int32) {
	p = p.Masked()
	a := p.Addr()
	if a.Is4() {
		var b [16]byte
		a4 := a.As4()
		copy(b[:], a4[:])
		l.v4.insert(b, p.Bits(), v)
		return
	}
	l.v6.insert(a.As16(), p.Bits(), v)
}

// Lookup returns the value of the longest prefix holding a, or -1. IPv4
// mapped IPv6 addresses are looked up as IPv4.
func (l *lpm) Lookup(a netip.Addr) int32 {
	if a.Is4() || a.Is4In6() {
		var b [16]byte
		a4 := a.Unmap().As4()
		copy(b[:], a4[:])
		return l.v4.lookup(&b, 32)
	}
	if !a.IsValid() {
		return -1
	}
	b := a.As16()
	return l.v6.lookup(&b, 128)
}
