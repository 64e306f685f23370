// Package telemetry sets up how Meridian observes itself: structured logs
// (log/slog, text or JSON), one Prometheus registry passed to every
// component, and OpenTelemetry traces exported over OTLP when configured.
package telemetry

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/meridian-obs/meridian/internal/config"
)

// LogConfig selects the log format and level.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}

// DefaultLogConfig logs info and above as text.
func DefaultLogConfig() LogConfig { return LogConfig{Level: "info", Format: "text"} }

// Validate implements config.Validator.
func (c LogConfig) Validate(r *config.Reporter) {
	if _, err := parseLevel(c.Level); err != nil {
		r.Errorf("level", "%v", err)
	}
	if c.Format != "text" && c.Format != "json" {
		r.Errorf("format", "expected text or json, got %q", c.Format)
	}
}

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("expected debug, info, warn or error, got %q", s)
}

// NewLogger builds the process logger.
func NewLogger(c LogConfig, w io.Writer) *slog.Logger {
	lvl, err := parseLevel(c.Level)
	if err != nil {
		lvl = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// NewRegistry returns a registry with the Go runtime and process collectors.
func NewRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// TracingConfig configures OTLP trace export (off when Endpoint is empty).
type TracingConfig struct {
	// Endpoint is the OTLP/HTTP traces URL, e.g. http://127.0.0.1:4318/v1/traces.
	Endpoint    string            `yaml:"endpoint"`
	SampleRatio float64           `yaml:"sample_ratio"`
	Headers     map[string]string `yaml:"headers"`
	ServiceName string            `yaml:"service_name"`
}

// DefaultTracingConfig has tracing off.
func DefaultTracingConfig() TracingConfig {
	return TracingConfig{SampleRatio: 0.1, ServiceName: "meridian"}
}

// Validate implements config.Validator.
func (c TracingConfig) Validate(r *config.Reporter) {
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			r.Errorf("endpoint", "expected an http(s) URL such as http://127.0.0.1:4318/v1/traces, got %q", c.Endpoint)
		}
	}
	if c.SampleRatio < 0 || c.SampleRatio > 1 {
		r.Errorf("sample_ratio", "expected a ratio from 0 to 1, got %v", c.SampleRatio)
	}
}

// SetupTracing installs the global tracer provider. The returned function
// flushes and stops the exporter.
func SetupTracing(ctx context.Context, c TracingConfig) (trace.TracerProvider, func(context.Context) error, error) {
	if c.Endpoint == "" {
		tp := noop.NewTracerProvider()
		otel.SetTracerProvider(tp)
		return tp, func(context.Context) error { return nil }, nil
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(c.Endpoint), otlptracehttp.WithHeaders(c.Headers),
		otlptracehttp.WithTimeout(10*time.Second))
	if err != nil {
		return nil, nil, fmt.Errorf("otlp exporter: %w", err)
	}
	res := resource.NewSchemaless(semconv.ServiceName(c.ServiceName))
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(c.SampleRatio))),
	)
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	return tp, tp.Shutdown, nil
}
