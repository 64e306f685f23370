package flow

import (
	"encoding/binary"
	"os"
	"testing"
	"time"
)

// pcapTraffic writes a pcap (Ethernet link type) of nFlows conversations:
// IPv4 and (with v6) IPv6, TCP, UDP and ICMP, each of a few packets of
// varied sizes, over a few seconds starting at t0. It returns the number of
// packets and IP bytes written (what an exporter counts).
func pcapTraffic(t *testing.T, path string, nFlows int, v6 bool, t0 time.Time) (packets, ipBytes uint64) {
	t.Helper()
	le := binary.LittleEndian
	var b []byte
	b = le.AppendUint32(b, 0xa1b2c3d4)
	b = le.AppendUint16(b, 2)
	b = le.AppendUint16(b, 4)
	b = le.AppendUint32(b, 0)
	b = le.AppendUint32(b, 0)
	b = le.AppendUint32(b, 65535)
	b = le.AppendUint32(b, 1) // LINKTYPE_ETHERNET
	for i := 0; i < nFlows; i++ {
		six := v6 && i%3 == 2
		proto := []uint8{6, 17, 6, 1}[i%4]
		if six && proto == 1 {
			proto = 58
		}
		nPkts := 1 + i%7
		for k := 0; k < nPkts; k++ {
			payload := (i*37 + k*101) % 900
			ts := t0.Add(time.Duration(i%50)*100*time.Millisecond + time.Duration(k)*10*time.Millisecond)
			frame := buildFrame(i, k, six, proto, payload)
			b = le.AppendUint32(b, uint32(ts.Unix()))
			b = le.AppendUint32(b, uint32(ts.Nanosecond()/1000))
			b = le.AppendUint32(b, uint32(len(frame)))
			b = le.AppendUint32(b, uint32(len(frame)))
			b = append(b, frame...)
			packets++
			ipBytes += uint64(len(frame) - 14)
		}
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return
}

func buildFrame(i, k int, six bool, proto uint8, payload int) []byte {
	be := binary.BigEndian
	var l4 []byte
	sport, dport := uint16(20000+i), []uint16{443, 53, 80, 0}[i%4]
	switch proto {
	case 6:
		l4 = be.AppendUint16(l4, sport)
		l4 = be.AppendUint16(l4, dport)
		l4 = be.AppendUint32(l4, uint32(k))
		l4 = be.AppendUint32(l4, 0)
		l4 = append(l4, 0x50, 0x18) // ACK|PSH; no FIN so flows stay open until the end
		l4 = append(l4, 0xff, 0xff, 0, 0, 0, 0)
	case 17:
		l4 = be.AppendUint16(l4, sport)
		l4 = be.AppendUint16(l4, dport)
		l4 = be.AppendUint16(l4, uint16(8+payload))
		l4 = append(l4, 0, 0)
	default: // ICMP / ICMPv6 echo
		typ := byte(8)
		if proto == 58 {
			typ = 128
		}
		l4 = append(l4, typ, 0, 0, 0)
		l4 = be.AppendUint16(l4, uint16(i))
		l4 = be.AppendUint16(l4, uint16(k))
	}
	l4 = append(l4, make([]byte, payload)...)
	f := []byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1}
	if six {
		f = be.AppendUint16(f, 0x86dd)
		f = append(f, 0x60, 0, 0, 0)
		f = be.AppendUint16(f, uint16(len(l4)))
		f = append(f, proto, 64)
		f = append(f, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, byte(i>>8), byte(i))
		f = append(f, 0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1)
	} else {
		f = be.AppendUint16(f, 0x0800)
		f = append(f, 0x45, 0)
		f = be.AppendUint16(f, uint16(20+len(l4)))
		f = append(f, 0, 0, 0x40, 0, 64, proto, 0, 0)
		f = append(f, 10, 0, byte(i>>8), byte(i))
		f = append(f, 172, 16, 0, 1)
	}
	return append(f, l4...)
}
