package firewall

import (
	"bytes"
	"io"
	"testing"

	"github.com/meridian-obs/meridian/pipeline/record"
)

func parseSeeds(f *testing.F) {
	for _, b := range bodies {
		f.Add("<13>Jan 15 10:00:01 h " + b.tag + ": " + b.body)
		f.Add("<13>1 2024-01-15T10:00:01Z h " + b.tag + " - - [a b=\"c\"] " + b.body)
	}
	for _, l := range benchLines {
		f.Add(l.line)
	}
	f.Add("")
	f.Add("<")
	f.Add("<1>1 ")
}

// FuzzParse: any line gives an event with the raw line kept, a known format
// and action, and never a panic.
func FuzzParse(f *testing.F) {
	parseSeeds(f)
	p := testParser()
	f.Fuzz(func(t *testing.T, line string) {
		var ev record.FirewallEvent
		reason := p.Parse(line, testNow, &ev)
		if ev.Raw != line {
			t.Fatalf("raw %q, want %q", ev.Raw, line)
		}
		switch ev.Format {
		case FormatIPTables, FormatPANOS, FormatASA, FormatFortiGate:
			if reason == ReasonBadFields {
				t.Fatalf("format %s with reason %s", ev.Format, reason)
			}
		case FormatUnknown:
		default:
			t.Fatalf("format %q", ev.Format)
		}
		switch ev.Action {
		case record.ActionAllow, record.ActionDeny, record.ActionDrop, record.ActionReject, record.ActionUnknown:
		default:
			t.Fatalf("action %q", ev.Action)
		}
		if ev.Time.IsZero() {
			t.Fatal("zero time")
		}
	})
}

// FuzzFraming: any byte stream splits into frames no longer than the limit
// and ends, without a panic.
func FuzzFraming(f *testing.F) {
	f.Add([]byte("<13>Jan 15 10:00:01 h a: x\n<13>Jan 15 10:00:01 h a: y\n"))
	f.Add([]byte("5 hello3 abc"))
	f.Add([]byte("99999999999 x"))
	f.Add([]byte("1 \n0 x"))
	f.Add(bytes.Repeat([]byte("z"), 300))
	f.Fuzz(func(t *testing.T, data []byte) {
		const max = 128
		fr := newFrameReader(bytes.NewReader(data), max)
		for i := 0; i <= len(data)+1; i++ {
			frame, reason, err := fr.next()
			if err != nil {
				if err != io.EOF && err != io.ErrUnexpectedEOF && err != errBadFrame {
					t.Fatalf("error %v", err)
				}
				return
			}
			if reason == "" && (len(frame) == 0 || len(frame) > max) {
				t.Fatalf("frame of %d bytes", len(frame))
			}
		}
		t.Fatal("frame reader did not end")
	})
}

// FuzzHeader: the message is always a suffix of the line.
func FuzzHeader(f *testing.F) {
	parseSeeds(f)
	f.Fuzz(func(t *testing.T, line string) {
		h, _ := parseHeader(line, testNow)
		if len(h.Msg) > len(line) {
			t.Fatalf("msg longer than line")
		}
	})
}
