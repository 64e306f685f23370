package probes

import (
	"testing"
	"time"
)

func FuzzDecodeUDPPayload(f *testing.F) {
	b := make([]byte, 64)
	EncodeUDPPayload(b, 7, 3, time.Unix(1, 2))
	f.Add(b)
	f.Add([]byte("short"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, seq, ts, ok := DecodeUDPPayload(data)
		if !ok {
			return
		}
		out := make([]byte, len(data))
		EncodeUDPPayload(out, s, seq, ts)
		s2, seq2, ts2, ok2 := DecodeUDPPayload(out)
		if !ok2 || s2 != s || seq2 != seq || !ts2.Equal(ts) {
			t.Fatalf("round trip mismatch")
		}
	})
}
