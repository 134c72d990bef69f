# Developer and CI entry points. `make test` is the one test command; CI runs
# it through .ci/run after starting PostgreSQL.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := test

GO ?= go
# How long `make fuzz` runs each fuzz target.
FUZZTIME ?= 30s
# Passed to -benchtime by `make bench-go`.
BENCHTIME ?= 1s
# Benchmarks `make bench-go` runs (a -bench regexp).
BENCH ?= .
# Where `make bench` writes its reports, how long each load runs, and how
# long each ceiling is measured.
BENCH_OUT ?= $(or $(TMPDIR),/tmp)/modledger-bench
BENCH_DURATION ?= 10s
BENCH_CEILING_DURATION ?= 3s

.PHONY: test vet fmt-check fuzz-smoke bench-smoke dev build fuzz bench bench-go

## test: go vet, gofmt check, then the whole test suite with the race detector.
## Packages run one at a time (-p 1): the fault and timing tests (expiries
## within a second, killed processes) measure the ledger, not two other test
## binaries competing for the same two cores. Tests within a package still run
## in parallel.
test: vet fmt-check fuzz-smoke bench-smoke
	$(GO) test -race -count=1 -p 1 -timeout 15m ./...

## bench-smoke: every Go benchmark once (-benchtime 1x), at its smallest size,
## so that none of them rots; the figures are meaningless and not printed.
bench-smoke:
	@echo "== every benchmark once (-benchtime 1x)"
	@$(GO) test -count=1 -p 1 -run '^$$' -bench . -benchtime 1x ./... > /tmp/bench-smoke.$$$$.log 2>&1 || { cat /tmp/bench-smoke.$$$$.log; rm -f /tmp/bench-smoke.$$$$.log; exit 1; }; \
	rm -f /tmp/bench-smoke.$$$$.log

## fuzz-smoke: every fuzz target for FUZZ_SMOKE_TIME, so that each runs in CI
## beyond its seed corpus (the seeds run in every `go test`). Targets are
## found by their declarations, which spares building every test binary to
## list them.
FUZZ_SMOKE_TIME ?= 3s
fuzz-smoke:
	@grep -rHo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*' . | sed 's|^\./||; s|/[^/]*_test.go:func | |' | sort -u | \
	while read -r dir target; do \
		echo "== fuzz $$target in ./$$dir ($(FUZZ_SMOKE_TIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZ_SMOKE_TIME) "./$$dir" > /tmp/fuzz-smoke.$$$$.log 2>&1 || { cat /tmp/fuzz-smoke.$$$$.log; rm -f /tmp/fuzz-smoke.$$$$.log; exit 1; }; \
		rm -f /tmp/fuzz-smoke.$$$$.log; \
	done

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

## bench: the benchmark report of docs/benchmarks.md: `modledger bench`
## against an embedded ledger (NATS in process, a throwaway database on
## DATABASE_URL's server, default 127.0.0.1:5432), each scenario durable
## (fsync before ack) and lazy, with the raw JetStream and COPY ceilings
## measured in the same run, then the ceilings alone with atomic batches of
## 1000. Text and JSON reports go to BENCH_OUT. About 15 minutes. Run it on an
## otherwise idle machine.
bench: build
	mkdir -p $(BENCH_OUT)
	set -- \
		"opens-1000-guilds --guilds 1000 --clients 64 --mix opens=100 --seed 0" \
		"opens-1000-guilds-1024-clients --guilds 1000 --clients 1024 --mix opens=100 --seed 0" \
		"raid-1-guild --raid --guilds 1 --clients 64 --mix opens=100 --seed 0" \
		"raid-1-guild-1024-clients --raid --guilds 1 --clients 1024 --mix opens=100 --seed 0" \
		"bulk-bans-1-guild --raid --guilds 1 --clients 4 --bulk 1000 --mix opens=100 --seed 0" \
		"changes --guilds 100 --clients 64 --mix changes=100 --seed 100" \
		"changes-1024-clients --guilds 1000 --clients 1024 --mix changes=100 --seed 10" \
		"bulk-changes --guilds 50 --clients 4 --seed 1000 --bulk 250 --mix changes=100" \
		"mixed --guilds 100 --clients 32 --mix opens=70,changes=20,queries=10" \
		"light-100-per-s --rate 100 --guilds 100 --clients 8 --mix opens=70,changes=30" \
		"projection-backlog --backlog --guilds 100 --clients 8 --bulk 1000 --mix opens=100 --seed 0"; \
	for s in "$$@"; do \
		name=$${s%% *}; flags=$${s#* }; \
		for mode in durable lazy; do \
			echo "== $$name, $$mode"; \
			bin/modledger bench --embedded --$$mode --duration $(BENCH_DURATION) --ceiling-duration $(BENCH_CEILING_DURATION) $$flags \
				--json-file $(BENCH_OUT)/$$name-$$mode.json | tee $(BENCH_OUT)/$$name-$$mode.txt; \
		done; \
	done; \
	for mode in durable lazy; do \
		echo "== ceilings with atomic batches of 1000, $$mode"; \
		bin/modledger bench --embedded --$$mode --ceilings-only --ceiling-batch 1000 --ceiling-duration $(BENCH_CEILING_DURATION) \
			--json-file $(BENCH_OUT)/ceilings-batch-1000-$$mode.json | tee $(BENCH_OUT)/ceilings-batch-1000-$$mode.txt; \
	done

## bench-go: run the Go benchmarks (testing.B) with allocation counts.
bench-go:
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -benchtime $(BENCHTIME) ./...
