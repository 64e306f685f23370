package server

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"testing"
	"time"

	"github.com/meridian-obs/meridian/probes"
	"github.com/meridian-obs/meridian/probes/api"
)

// FuzzResults feeds arbitrary bodies (plain and gzip) to the results
// endpoint: it must answer 200/400/413 and store only sane rows.
func FuzzResults(f *testing.F) {
	ok, _ := json.Marshal(api.Results{BatchID: "i:1", Results: []probes.Result{result("all", "icmp")}})
	f.Add(ok, false)
	f.Add(ok, true)
	f.Add([]byte(`{"results":[{"check":"all","type":"icmp","sent":-1}]}`), false)
	f.Add([]byte(`{"results":[{"check":"all","type":"icmp","sent":1,"received":1,"rtts_us":[1],"rtt_avg_ms":1e400}]}`), false)
	f.Add([]byte("\x1f\x8b garbage"), true)
	f.Fuzz(func(t *testing.T, body []byte, compress bool) {
		fx := newFixture(t, "")
		fx.do(t, "POST", api.PathRegister, "tok-par1", api.Register{Name: "par1", Region: "eu-west"}, nil)
		hdr := map[string]string{api.HeaderBatchID: "i:1"}
		if compress {
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			zw.Write(body)
			zw.Close()
			body = b.Bytes()
			hdr["Content-Encoding"] = "gzip"
		}
		w, _ := fx.do(t, "POST", api.PathResults, "tok-par1", body, hdr)
		switch w.Code {
		case 200, 400, 413:
		default:
			t.Fatalf("status %d", w.Code)
		}
		for _, r := range fx.sink.rows {
			if r.Received > r.Sent || len(r.RTTsUs) != int(r.Received) || r.LossRatio < 0 || r.LossRatio > 1 ||
				r.Time.After(time.Now().Add(2*time.Hour)) {
				t.Fatalf("insane row stored: %+v", r)
			}
		}
	})
}
