package main

// `modledger bench`: a load generator that drives a ledger over NATS as bots
// do, and measures the raw ceilings of the same servers beside it. This file
// holds the flags and the run; bench_target.go starts or reaches the
// ledger, bench_load.go runs the workers, bench_verify.go checks the case
// numbers, bench_ceiling.go measures the ceilings, bench_metrics.go reads
// the ledger's /metrics, bench_report.go prints, bench_hist.go is the
// latency histogram. docs/benchmarks.md has figures made with it.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/modledger/modledger/command"
	"github.com/modledger/modledger/events"
)

// Defaults of `modledger bench`.
const (
	benchGuildsDefault          = 10
	benchClientsDefault         = 16
	benchMixDefault             = "opens=70,changes=20,queries=10"
	benchDurationDefault        = 10 * time.Second
	benchSeedDefault            = 10
	benchCeilingDurationDefault = 3 * time.Second
	benchTimeoutDefault         = 30 * time.Second
	// benchCatchUpTimeout bounds the wait for the read models after the load.
	benchCatchUpTimeout = 2 * time.Minute
)

// benchMix is the share of each kind of operation, as weights.
type benchMix struct {
	Opens   int `json:"opens"`
	Changes int `json:"changes"`
	Queries int `json:"queries"`
}

func (m benchMix) total() int { return m.Opens + m.Changes + m.Queries }

func (m benchMix) String() string {
	return fmt.Sprintf("opens=%d,changes=%d,queries=%d", m.Opens, m.Changes, m.Queries)
}

// parseBenchMix reads "opens=70,changes=20,queries=10"; a kind left out
// has weight 0.
func parseBenchMix(s string) (benchMix, error) {
	var m benchMix
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		k = strings.TrimSpace(k)
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if !ok || err != nil || n < 0 {
			return m, usageError{fmt.Sprintf("--mix %q: want kind=weight pairs like %s", s, benchMixDefault)}
		}
		if seen[k] {
			return m, usageError{fmt.Sprintf("--mix %q: %s given twice", s, k)}
		}
		seen[k] = true
		switch k {
		case "opens":
			m.Opens = n
		case "changes":
			m.Changes = n
		case "queries":
			m.Queries = n
		default:
			return m, usageError{fmt.Sprintf("--mix %q: unknown kind %q (want opens, changes, queries)", s, k)}
		}
	}
	if m.total() == 0 {
		return m, usageError{fmt.Sprintf("--mix %q: give at least one kind a weight above 0", s)}
	}
	return m, nil
}

// benchCmd is `modledger bench`.
type benchCmd struct {
	fs *flag.FlagSet

	nats       natsFlags
	db         dbFlags
	prefix     string
	stream     string
	metricsURL string

	embedded bool
	durable  bool
	lazy     bool
	dataDir  string

	guilds   int
	clients  int
	mixSpec  string
	mix      benchMix
	rate     float64
	duration time.Duration
	count    int64
	raid     bool
	bulk     int
	seed     int
	timeout  time.Duration

	backlog bool

	ceilingsOnly    bool
	noCeilings      bool
	ceilingDuration time.Duration
	ceilingBatch    int

	json     bool
	jsonFile string
	cpuProf  string
	logLevel string
}

func benchCommand() subcommand {
	return subcommand{
		name:    "bench",
		summary: "Load-test a ledger over NATS as bots do, beside the raw JetStream and PostgreSQL ceilings.",
		usage:   "[--embedded [--durable|--lazy]] [flags]",
		examples: `  modledger bench --embedded --duration 10s --clients 16 --guilds 10
  modledger bench --embedded --lazy --raid --mix opens=100 --clients 64
  modledger bench --embedded --raid --bulk 500 --mix opens=100 --clients 4
  modledger bench --embedded --rate 100 --duration 30s      # open loop: light-load latency
  modledger bench --nats-url nats://ledger:4222 --metrics-url http://ledger:9090/metrics --database-url postgres://...
  modledger bench --embedded --ceilings-only --json`,
		flags: func(fs *flag.FlagSet, getenv func(string) string) runner {
			c := &benchCmd{fs: fs}
			c.nats.register(fs, getenv)
			c.db.register(fs, getenv)
			fs.StringVar(&c.prefix, "subject-prefix", envDefault(getenv, "MODLEDGER_SUBJECT_PREFIX", events.DefaultPrefix), "the ledger's subject prefix (env MODLEDGER_SUBJECT_PREFIX)")
			fs.StringVar(&c.stream, "stream", envDefault(getenv, "MODLEDGER_STREAM", command.StreamNameDefault), "the ledger's JetStream stream (env MODLEDGER_STREAM)")
			fs.StringVar(&c.metricsURL, "metrics-url", "", "the ledger's /metrics URL, to report its retries, conflicts and projection lag (with --embedded: its own)")
			fs.BoolVar(&c.embedded, "embedded", false, "start a ledger in this process as modledger dev does (embedded NATS, every role), with a throwaway database on --database-url's server")
			fs.BoolVar(&c.durable, "durable", true, "with --embedded: the server fsyncs before it acknowledges (sync_interval: always)")
			fs.BoolVar(&c.lazy, "lazy", false, "with --embedded: the server acknowledges before it fsyncs (its periodic flush)")
			fs.StringVar(&c.dataDir, "data-dir", "", "with --embedded: where the embedded server keeps its store. Defaults to a temporary directory, removed at the end")
			fs.IntVar(&c.guilds, "guilds", benchGuildsDefault, "guilds the load is spread over (fresh ids each run)")
			fs.IntVar(&c.clients, "clients", benchClientsDefault, "concurrent clients")
			fs.StringVar(&c.mixSpec, "mix", benchMixDefault, "weights of opens, changes (close, reopen, update, note on a client's own cases) and queries (case_get, user_cases, user_restriction, guild_statistics)")
			fs.Float64Var(&c.rate, "rate", 0, "open loop: start this many operations a second, latency counted from each one's scheduled start; 0: closed loop, each client sends its next when the last is answered")
			fs.DurationVar(&c.duration, "duration", benchDurationDefault, "how long the load runs; with --count alone, until count")
			fs.Int64Var(&c.count, "count", 0, "stop after this many operations (0: no limit)")
			fs.BoolVar(&c.raid, "raid", false, "a raid: every open goes to the first guild, from all clients at once")
			fs.IntVar(&c.bulk, "bulk", 1, "cases per command: above 1, each open is a bulk ban (open_many of this many cases) and each change closes or reopens up to this many of the client's cases in one guild (close_many or reopen_many with their numbers), up to 1000")
			fs.IntVar(&c.seed, "seed", benchSeedDefault, "cases opened in each guild (open_many) before the timed run, for changes and queries to act on")
			fs.DurationVar(&c.timeout, "timeout", benchTimeoutDefault, "bound on each request, client retries included")
			fs.BoolVar(&c.backlog, "backlog", false, "with --embedded: hold the projector back until the load ends, then time its catch-up on the backlog the load made (a mix without queries)")
			fs.BoolVar(&c.ceilingsOnly, "ceilings-only", false, "measure only the raw ceilings, no ledger load")
			fs.BoolVar(&c.noCeilings, "no-ceilings", false, "skip the raw ceilings")
			fs.DurationVar(&c.ceilingDuration, "ceiling-duration", benchCeilingDurationDefault, "how long each ceiling is measured")
			fs.IntVar(&c.ceilingBatch, "ceiling-batch", ceilingBatchSizeDefault, "messages in each atomic batch of the batch-publish ceiling, 2 to 1000")
			fs.BoolVar(&c.json, "json", false, "print the report as JSON")
			fs.StringVar(&c.jsonFile, "json-file", "", "also write the report as JSON to this file")
			fs.StringVar(&c.cpuProf, "cpu-profile", "", "write a CPU profile of this process during the load to this file (with --embedded it holds the ledger's roles and NATS server too; read it with go tool pprof)")
			fs.StringVar(&c.logLevel, "log-level", "warn", "log level of the embedded ledger and of the bench: debug, info, warn, error")
			return c
		},
	}
}

// setFlags returns the names of the flags given on the command line.
func (c *benchCmd) setFlags() map[string]bool {
	set := map[string]bool{}
	c.fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}

// check validates the flags; every problem is reported at once.
func (c *benchCmd) check(env *cliEnv) error {
	if len(env.args) > 0 {
		return usageError{fmt.Sprintf("unexpected arguments %q", env.args)}
	}
	set := c.setFlags()
	var errs []string
	if c.lazy && set["durable"] && c.durable {
		errs = append(errs, "--durable and --lazy: give one of them")
	}
	if c.lazy {
		c.durable = false
	}
	if !c.embedded {
		for _, f := range []string{"durable", "lazy", "data-dir", "backlog"} {
			if set[f] {
				errs = append(errs, fmt.Sprintf("--%s only applies with --embedded (a running ledger's server and projector are its own)", f))
			}
		}
	}
	if c.ceilingsOnly && c.noCeilings {
		errs = append(errs, "--ceilings-only and --no-ceilings: give one of them")
	}
	if c.guilds < 1 {
		errs = append(errs, "--guilds must be at least 1")
	}
	if c.clients < 1 {
		errs = append(errs, "--clients must be at least 1")
	}
	if c.rate < 0 {
		errs = append(errs, "--rate must not be negative")
	}
	if c.count < 0 {
		errs = append(errs, "--count must not be negative")
	}
	if c.duration < 0 {
		errs = append(errs, "--duration must not be negative")
	}
	if c.count > 0 && !set["duration"] {
		c.duration = 0 // --count alone: run until count
	}
	if c.duration == 0 && c.count == 0 {
		errs = append(errs, "give a positive --duration or --count")
	}
	if c.bulk < 1 || c.bulk > command.MaxCasesPerBatch {
		errs = append(errs, fmt.Sprintf("--bulk must be 1 to %d", command.MaxCasesPerBatch))
	}
	if c.seed < 0 || c.seed > 1000 {
		errs = append(errs, "--seed must be 0 to 1000")
	}
	if c.timeout <= 0 {
		errs = append(errs, "--timeout must be positive")
	}
	if c.ceilingDuration <= 0 {
		errs = append(errs, "--ceiling-duration must be positive")
	}
	if c.ceilingBatch < 2 || c.ceilingBatch > ceilingBatchSizeMax {
		errs = append(errs, fmt.Sprintf("--ceiling-batch must be 2 to %d", ceilingBatchSizeMax))
	}
	if c.prefix == "" {
		errs = append(errs, "--subject-prefix must not be empty")
	}
	mix, err := parseBenchMix(c.mixSpec)
	if err != nil {
		errs = append(errs, err.Error())
	}
	c.mix = mix
	if c.backlog && mix.Queries > 0 {
		errs = append(errs, "--backlog with queries in --mix: the read models are empty until the load ends")
	}
	if mix.Queries > 0 && c.seed == 0 {
		errs = append(errs, "--mix with queries needs --seed above 0: queries read the seeded cases")
	}
	if _, err := newLogger(env.stderr, "text", c.logLevel); err != nil {
		errs = append(errs, err.Error())
	}
	if len(errs) > 0 {
		sort.Strings(errs)
		return usageError{strings.Join(errs, "; ")}
	}
	return nil
}

// startCPUProfile starts a CPU profile into path, and returns the function
// that stops it; with no path it does nothing.
func startCPUProfile(path string) (func() error, error) {
	if path == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpu-profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpu-profile: %w", err)
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}

// errNumbersNotExact fails a run whose case numbers were not exactly 1..n.
var errNumbersNotExact = errors.New("case numbers are not exact (see the report)")

func (c *benchCmd) Run(ctx context.Context, env *cliEnv) error {
	if err := c.check(env); err != nil {
		return err
	}
	logger, _ := newLogger(env.stderr, "text", c.logLevel)
	tgt, err := c.openTarget(ctx, logger)
	if err != nil {
		return err
	}
	defer tgt.close(logger)

	rep := newBenchReport(c, tgt)
	if !c.ceilingsOnly {
		logger.Info("bench: load", "guilds", c.guilds, "clients", c.clients, "mix", c.mix.String())
		stopProfile, err := startCPUProfile(c.cpuProf)
		if err != nil {
			return err
		}
		load, err := runLoad(ctx, c, tgt, logger)
		if perr := stopProfile(); err == nil {
			err = perr
		}
		if err != nil {
			return err
		}
		rep.Load = load
		exact := load.Numbers.Exact
		rep.NumbersExact = &exact
	}
	if !c.noCeilings {
		logger.Info("bench: ceilings", "duration", c.ceilingDuration)
		payload := tgt.samplePayload(ctx, rep.Load)
		rep.Ceilings = measureCeilings(ctx, c, tgt, payload, logger)
	}
	rep.computeRatios()
	if c.jsonFile != "" {
		if err := rep.writeJSONFile(c.jsonFile); err != nil {
			return err
		}
	}
	if c.json {
		if err := rep.writeJSON(env.stdout); err != nil {
			return err
		}
	} else {
		rep.writeText(env.stdout)
	}
	if rep.NumbersExact != nil && !*rep.NumbersExact {
		return errNumbersNotExact
	}
	return nil
}
