# Meridian — network observability and SLO engine.
SHELL := /bin/bash
GO ?= go
export PATH := /usr/local/go/bin:$(PATH)
BIN := bin
PKGS := ./...
GOTESTFLAGS ?=
FUZZTIME ?= 10s

.PHONY: help build test test-race bench fuzz lint demo deps assets clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

build: ## build meridian, meridian-agent and the tools into bin/
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./cmd/...

deps: ## install the Debian packages the tests and the demo use (root)
	@bash scripts/install-deps.sh

test: ## install the test peers if missing (root), run every test, list every skip loudly
	@bash scripts/test-peers.sh
	$(GO) vet $(PKGS)
	@$(GO) build -o $(BIN)/testsummary ./internal/tools/testsummary
	set -o pipefail; $(GO) test -json -count=1 -timeout 30m $(GOTESTFLAGS) $(PKGS) | $(BIN)/testsummary

test-race: ## run every test with the race detector
	$(GO) test -race -count=1 -timeout 45m $(GOTESTFLAGS) $(PKGS)

bench: ## run the benchmarks and print their figures
	$(GO) test -run '^$$' -bench . -timeout 60m ./pipeline/ ./collectors/... ./slo/... ./probes/... ./runbooks/... ./cmd/meridian-agent/ | grep -E '^(Benchmark|ok|PASS|FAIL|goos|cpu)|/s|ns/op'

fuzz: ## run every fuzz target for FUZZTIME each
	@bash scripts/fuzz-all.sh $(FUZZTIME)

lint: ## gofmt, go vet, and staticcheck when installed
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	@if command -v staticcheck >/dev/null; then staticcheck $(PKGS); else echo "staticcheck not installed; skipped"; fi

demo: ## install what is missing, build, and run Meridian on its embedded default
	@bash scripts/demo.sh

assets: ## rebuild the vendored dashboard assets from npm (uPlot), then commit web/ui/vendor
	cd web/ui && npm ci && npm run build

clean: ## remove build outputs
	rm -rf $(BIN)
