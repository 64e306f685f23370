package probes

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"net"
	"strconv"
	"sync"
	"time"
)

// UDP probes any plain UDP echo service (one that returns the payload
// unchanged, such as `meridian-agent responder`). Each packet carries a magic,
// a per-round session id, its sequence number and its send time, so the
// prober detects loss, reordering (an answer whose sequence is lower than one
// already received) and duplicates (a sequence answered twice). Answers of
// another session are counted foreign_reply, unparsable ones
// malformed_reply; both are discarded without disturbing the round.
//
// Params: size (payload bytes, default 64, minimum 24).
type UDP struct{ Metrics *Metrics }

const (
	udpMagic      = 0x4d52444e // "MRDN"
	udpHeaderSize = 4 + 8 + 4 + 8
)

// EncodeUDPPayload writes the probe header into b (len ≥ 24).
func EncodeUDPPayload(b []byte, session uint64, seq uint32, sent time.Time) {
	binary.BigEndian.PutUint32(b[0:], udpMagic)
	binary.BigEndian.PutUint64(b[4:], session)
	binary.BigEndian.PutUint32(b[12:], seq)
	binary.BigEndian.PutUint64(b[16:], uint64(sent.UnixNano()))
}

// DecodeUDPPayload parses a probe header; ok is false when b is not one.
func DecodeUDPPayload(b []byte) (session uint64, seq uint32, sent time.Time, ok bool) {
	if len(b) < udpHeaderSize || binary.BigEndian.Uint32(b) != udpMagic {
		return 0, 0, time.Time{}, false
	}
	return binary.BigEndian.Uint64(b[4:]), binary.BigEndian.Uint32(b[12:]),
		time.Unix(0, int64(binary.BigEndian.Uint64(b[16:]))), true
}

// Probe implements Prober.
func (p *UDP) Probe(ctx context.Context, c Check) Result {
	c = c.WithDefaults()
	start := time.Now()
	size, err := strconv.Atoi(c.Param("size", "64"))
	if err != nil || size < udpHeaderSize || size > 65000 {
		size = 64
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", c.Target)
	if err != nil {
		reason := Reason(err)
		p.Metrics.Count(TypeUDP, reason, 1)
		return finish(c, start, "", c.Count, nil, 0, 0, reason)
	}
	defer conn.Close()
	addr := ""
	if ua, ok := conn.RemoteAddr().(*net.UDPAddr); ok {
		addr = ua.AddrPort().Addr().Unmap().String()
	}
	var sb [8]byte
	_, _ = rand.Read(sb[:])
	session := binary.BigEndian.Uint64(sb[:])

	sendTimes := make([]time.Time, c.Count)
	rtts := make([]time.Duration, c.Count)
	got := make([]bool, c.Count)
	var mu sync.Mutex
	sent := 0
	dups, reord, foreign, malformed := 0, 0, 0, 0
	maxSeq := -1
	var sendErr string

	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65535)
		for {
			n, err := conn.Read(buf)
			now := time.Now()
			if err != nil {
				var ne net.Error
				if ok := asNetErr(err, &ne); ok && ne.Timeout() {
					return
				}
				// ICMP port unreachable surfaces as ECONNREFUSED on a
				// connected socket: keep reading until the deadline.
				if Reason(err) == "refused" {
					mu.Lock()
					if sendErr == "" {
						sendErr = "refused"
					}
					mu.Unlock()
					continue
				}
				return
			}
			s, seq, _, ok := DecodeUDPPayload(buf[:n])
			mu.Lock()
			switch {
			case !ok:
				malformed++
			case s != session:
				foreign++
			case int(seq) >= sent || int(seq) >= c.Count:
				malformed++
			case got[seq]:
				dups++
			default:
				got[seq] = true
				rtts[seq] = now.Sub(sendTimes[seq])
				if int(seq) < maxSeq {
					reord++
				} else {
					maxSeq = int(seq)
				}
			}
			mu.Unlock()
		}
	}()

	buf := make([]byte, size)
	_ = conn.SetReadDeadline(time.Now().Add(time.Duration(c.Count)*c.Spacing + c.Timeout))
	for i := 0; i < c.Count; i++ {
		if i > 0 && !sleepCtx(ctx, c.Spacing) {
			break
		}
		now := time.Now()
		EncodeUDPPayload(buf, session, uint32(i), now)
		mu.Lock()
		sendTimes[i] = now
		sent++
		mu.Unlock()
		if _, err := conn.Write(buf); err != nil && Reason(err) != "refused" {
			mu.Lock()
			if sendErr == "" {
				sendErr = Reason(err)
			}
			mu.Unlock()
		}
	}
	// The last packet gets the full timeout; the read deadline covers it.
	_ = conn.SetReadDeadline(time.Now().Add(c.Timeout))
	select {
	case <-done:
	case <-ctx.Done():
		_ = conn.SetReadDeadline(time.Now())
		<-done
	}
	mu.Lock()
	defer mu.Unlock()
	var answered []time.Duration
	for i := 0; i < c.Count; i++ {
		if got[i] {
			answered = append(answered, rtts[i])
		}
	}
	p.Metrics.Count(TypeUDP, "foreign_reply", foreign)
	p.Metrics.Count(TypeUDP, "malformed_reply", malformed)
	reason := ""
	if len(answered) == 0 {
		reason = sendErr
		if reason == "" {
			reason = "timeout"
		}
		p.Metrics.Count(TypeUDP, reason, 1)
	}
	return finish(c, start, addr, c.Count, answered, dups, reord, reason)
}

func asNetErr(err error, ne *net.Error) bool {
	v, ok := err.(net.Error)
	if ok {
		*ne = v
	}
	return ok
}
