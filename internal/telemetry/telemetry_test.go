package telemetry

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel"
)

// Traces reach an OTLP/HTTP endpoint when one is configured.
func TestTracesExportedOverOTLP(t *testing.T) {
	var mu sync.Mutex
	var bodies [][]byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		if r.URL.Path == "/v1/traces" && r.Header.Get("Content-Type") == "application/x-protobuf" {
			bodies = append(bodies, b)
		}
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	cfg := DefaultTracingConfig()
	cfg.Endpoint = srv.URL + "/v1/traces"
	cfg.SampleRatio = 1
	ctx := context.Background()
	_, shutdown, err := SetupTracing(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, span := otel.Tracer("test").Start(ctx, "meridian-test-span-name")
	span.End()
	if err := shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) == 0 {
		t.Fatal("no OTLP export received")
	}
	if !bytes.Contains(bytes.Join(bodies, nil), []byte("meridian-test-span-name")) {
		t.Error("exported traces lack the span")
	}
}

func TestTracingOffByDefault(t *testing.T) {
	tp, shutdown, err := SetupTracing(context.Background(), DefaultTracingConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(context.Background())
	_, span := tp.Tracer("x").Start(context.Background(), "y")
	if span.SpanContext().IsValid() {
		t.Error("a span was recorded with tracing off")
	}
}

func TestJSONLogs(t *testing.T) {
	var buf bytes.Buffer
	log := NewLogger(LogConfig{Level: "warn", Format: "json"}, &buf)
	log.Info("hidden")
	log.Warn("shown", "component", "x")
	out := buf.String()
	if strings.Contains(out, "hidden") || !strings.Contains(out, `"msg":"shown"`) || !strings.Contains(out, `"component":"x"`) {
		t.Errorf("log output %q", out)
	}
}
