package web

import (
	"os"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestOpenAPIDocumentsEveryRoute checks that docs/openapi.yaml describes
// every /api/v1 route this package mounts, with its method.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	b, err := os.ReadFile("../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	s, err := New(DefaultConfig(), Deps{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range s.Routes() {
		method, path, ok := strings.Cut(r, " ")
		if !ok || !strings.HasPrefix(path, "/api/v1/") {
			continue
		}
		n++
		ops, ok := doc.Paths[path]
		if !ok {
			t.Errorf("%s is not in docs/openapi.yaml", path)
			continue
		}
		if _, ok := ops[strings.ToLower(method)]; !ok {
			t.Errorf("%s %s: method not documented", method, path)
		}
	}
	if n < 15 {
		t.Fatalf("only %d API routes found", n)
	}
}
