# Developer and CI entry points. `make test` is the one test command; CI runs
# it through .ci/run after starting PostgreSQL.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := test

GO ?= go
# How long `make fuzz` runs each fuzz target.
FUZZTIME ?= 30s
# Passed to -benchtime by `make bench`.
BENCHTIME ?= 1s
# Benchmarks `make bench` runs (a -bench regexp).
BENCH ?= .

.PHONY: test vet fmt-check dev build fuzz bench

## test: go vet, gofmt check, then the whole test suite with the race detector.
## Packages run one at a time (-p 1): the fault and timing tests (expiries
## within a second, killed processes) measure the ledger, not two other test
## binaries competing for the same two cores. Tests within a package still run
## in parallel.
test: vet fmt-check
	$(GO) test -race -count=1 -p 1 -timeout 15m ./...

vet:
	$(GO) vet ./...

# Tracked and untracked-but-not-ignored Go files (all of them outside git),
# skipping tracked files deleted in the work tree.
fmt-check:
	@if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then \
		files=$$(git ls-files -co --exclude-standard -- '*.go' | while read -r f; do if [ -f "$$f" ]; then echo "$$f"; fi; done); \
	else \
		files=$$(find . -name '*.go' -not -path './.git/*'); \
	fi; \
	[ -n "$$files" ] || exit 0; \
	unformatted=$$(gofmt -l $$files); \
	if [ -n "$$unformatted" ]; then \
		echo "gofmt: these files need formatting (run gofmt -w):"; \
		echo "$$unformatted"; \
		exit 1; \
	fi

## dev: run the ledger with embedded NATS and a local PostgreSQL.
dev:
	$(GO) run ./cmd/modledger dev

## build: build the binary into bin/.
build:
	$(GO) build -o bin/modledger ./cmd/modledger

## fuzz: run every fuzz target of every package for FUZZTIME each.
fuzz:
	@pkgs=$$($(GO) list ./...); \
	for pkg in $$pkgs; do \
		list=$$($(GO) test -list '^Fuzz' "$$pkg"); \
		for target in $$(echo "$$list" | grep '^Fuzz' || true); do \
			echo "== $$pkg $$target ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) "$$pkg"; \
		done; \
	done

## bench: run the benchmarks with allocation counts.
bench:
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -benchtime $(BENCHTIME) ./...
