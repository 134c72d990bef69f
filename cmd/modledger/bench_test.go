package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/modledger/modledger/internal/testenv"
)

// benchEnv is the environment of a bench run in a test: the PostgreSQL
// server the tests use, where --embedded makes its throwaway database.
func benchEnv(k string) string {
	if k != "DATABASE_URL" {
		return ""
	}
	if v := os.Getenv(testenv.DatabaseURLEnv); v != "" {
		return v
	}
	return os.Getenv(testenv.DatabaseURLFallbackEnv)
}

// runBench runs `modledger bench` in process.
func runBench(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	code = runWith(ctx, append([]string{"bench"}, args...), &out, &errOut, benchEnv)
	return code, out.String(), errOut.String()
}

// benchJSON runs `modledger bench ... --json`, requires exit 0, and decodes
// the report strictly.
func benchJSON(t *testing.T, args ...string) benchReport {
	t.Helper()
	code, out, errOut := runBench(t, append(args, "--json")...)
	if code != exitOK {
		t.Fatalf("modledger bench %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	}
	var rep benchReport
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("decode the report: %v\n%s", err, out)
	}
	return rep
}

// checkLatency fails unless a latency distribution is ordered and positive.
func checkLatency(t *testing.T, what string, l latencyReport) {
	t.Helper()
	if !(0 < l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max) {
		t.Errorf("%s: latencies not ordered 0 < p50 <= p90 <= p99 <= p99.9 <= max: %+v", what, l)
	}
	if l.Mean <= 0 || l.Mean > l.Max {
		t.Errorf("%s: mean %v outside (0, max %v]", what, l.Mean, l.Max)
	}
}

// TestBenchEmbedded runs the load generator against an embedded ledger
// with every kind of operation and checks the report's structure and the
// exactness of the numbers, never its speed.
func TestBenchEmbedded(t *testing.T) {
	t.Parallel()
	rep := benchJSON(t, "--embedded", "--duration", "2s", "--clients", "4", "--guilds", "3", "--ceiling-duration", "300ms")

	if rep.Target != "embedded" || rep.Mode != "durable" {
		t.Errorf("target %q mode %q, want embedded and durable", rep.Target, rep.Mode)
	}
	if rep.NumbersExact == nil || !*rep.NumbersExact {
		t.Fatalf("numbers exact: %v; numbers: %+v", rep.NumbersExact, rep.Load)
	}
	l := rep.Load
	if l == nil {
		t.Fatal("no load in the report")
	}
	if !l.Numbers.StreamChecked || l.Numbers.Guilds != 3 || len(l.Guilds) != 3 {
		t.Errorf("numbers: %+v, guilds %v: want 3 guilds checked against the stream", l.Numbers, l.Guilds)
	}
	if l.ThroughputPerSec <= 0 || l.All.Count == 0 {
		t.Errorf("throughput %v, count %d: want > 0", l.ThroughputPerSec, l.All.Count)
	}
	if l.All.Errors != 0 || len(l.Errors) != 0 {
		t.Errorf("errors: %d, by code %v", l.All.Errors, l.Errors)
	}
	// 3 guilds seeded with 10 cases each, plus the run's opens.
	if opens := l.class(classOpens).Count; l.Numbers.Cases != 30+int(opens) {
		t.Errorf("numbers checked %d cases, want 30 seeded + %d opened", l.Numbers.Cases, opens)
	}
	checkLatency(t, "all", l.All.Lat)
	for _, cl := range l.Classes {
		if cl.Count == 0 {
			t.Errorf("class %s: no successful request in 2s", cl.Op)
			continue
		}
		checkLatency(t, cl.Op, cl.Lat)
	}
	for _, op := range l.Operations {
		if op.Count > 0 {
			checkLatency(t, op.Op, op.Lat)
		}
	}
	if l.Server == nil || l.Server.Appends["ok"] <= 0 {
		t.Errorf("ledger counters from its metrics: %+v, want appends ok > 0", l.Server)
	}
	p := l.Projection
	if p.LagSource != "status" || !p.CaughtUp || p.Events == 0 || p.EventsPerSec <= 0 {
		t.Errorf("projection: %+v, want status lag, caught up, events > 0", p)
	}

	c := rep.Ceilings
	if c == nil {
		t.Fatal("no ceilings in the report")
	}
	if c.PayloadBytes < 100 {
		t.Errorf("payload %d bytes: want the size of a real opened event", c.PayloadBytes)
	}
	for name, f := range map[string]ceilingFigure{"sync publish": c.SyncPublish, "async publish": c.AsyncPublish,
		"atomic batch": c.BatchPublish, "COPY": c.PostgresCopy} {
		if f.Error != "" || f.PerSec <= 0 || f.Count <= 0 {
			t.Errorf("ceiling %s: %+v, want a rate > 0", name, f)
		}
	}
	for _, k := range []string{"opens_vs_sync_publish", "opens_vs_async_publish", "opens_vs_batch_publish", "projection_vs_copy"} {
		if rep.Ratios[k] <= 0 {
			t.Errorf("ratio %s = %v, want > 0 (ratios %v)", k, rep.Ratios[k], rep.Ratios)
		}
	}
	if rep.Machine.NATSVersion == "" || rep.Machine.PostgresVersion == "" || rep.Machine.CPUs < 1 {
		t.Errorf("machine: %+v", rep.Machine)
	}
	if !strings.Contains(rep.Command, "--embedded") || !strings.Contains(rep.Command, "--guilds 3") {
		t.Errorf("command line %q does not say how the report was made", rep.Command)
	}
}

// TestBenchEmbeddedRaidOpenLoop runs a raid on a lazy server at a fixed
// rate for a fixed count, with the projector held back: every operation
// is an open in one guild, the schedule ends at the count, the numbers are
// exact, and the projector catches up on the backlog afterwards.
func TestBenchEmbeddedRaidOpenLoop(t *testing.T) {
	t.Parallel()
	jsonFile := filepath.Join(t.TempDir(), "report.json")
	rep := benchJSON(t, "--embedded", "--lazy", "--raid", "--mix", "opens=1", "--rate", "300", "--count", "120",
		"--clients", "8", "--guilds", "2", "--seed", "0", "--no-ceilings", "--backlog", "--json-file", jsonFile)
	if rep.Mode != "lazy" || rep.Ceilings != nil || rep.Ratios != nil {
		t.Errorf("mode %q, ceilings %v, ratios %v: want lazy and no ceilings", rep.Mode, rep.Ceilings, rep.Ratios)
	}
	l := rep.Load
	if l.All.Count+l.All.Errors != 120 || l.class(classOpens).Count != l.All.Count {
		t.Errorf("%d ok + %d errors, %d opens: want 120 operations, all opens", l.All.Count, l.All.Errors, l.class(classOpens).Count)
	}
	if rep.NumbersExact == nil || !*rep.NumbersExact || l.Numbers.Cases != int(l.All.Count) {
		t.Errorf("numbers: %+v", l.Numbers)
	}
	checkLatency(t, "opens", l.class(classOpens).Lat)
	if p := l.Projection; !p.Backlog || !p.CaughtUp || p.Events != uint64(l.All.Count) || p.LagEventsAtEnd != p.Events || p.EventsPerSec <= 0 {
		t.Errorf("projection %+v: want a backlog of the %d opens, all lagging at the end, then caught up", p, l.All.Count)
	}
	b, err := os.ReadFile(jsonFile)
	if err != nil {
		t.Fatal(err)
	}
	var fromFile benchReport
	if err := json.Unmarshal(b, &fromFile); err != nil || fromFile.Load == nil || fromFile.Load.All.Count != l.All.Count {
		t.Errorf("--json-file: %v, %s", err, b)
	}
}

// TestBenchEmbeddedBulkBans sends bulk bans (open_many) in a raid: each
// open request opens --bulk cases, counted as cases, with exact numbers.
func TestBenchEmbeddedBulkBans(t *testing.T) {
	t.Parallel()
	rep := benchJSON(t, "--embedded", "--lazy", "--raid", "--bulk", "50", "--mix", "opens=1", "--count", "12",
		"--clients", "3", "--guilds", "1", "--seed", "0", "--no-ceilings")
	l := rep.Load
	if l.All.Errors != 0 || l.All.Count != 12 || l.CasesOpened != 600 || l.CasesPerSec <= l.class(classOpens).PerSec {
		t.Errorf("%d requests, %d errors, %d cases at %.0f/s (%.0f requests/s): want 12 bulk bans of 50 cases",
			l.All.Count, l.All.Errors, l.CasesOpened, l.CasesPerSec, l.class(classOpens).PerSec)
	}
	if rep.NumbersExact == nil || !*rep.NumbersExact || l.Numbers.Cases != 600 {
		t.Errorf("numbers: %+v", l.Numbers)
	}
	if rep.Config.Bulk != 50 {
		t.Errorf("config bulk %d", rep.Config.Bulk)
	}
}

// TestBenchEmbeddedBulkChanges sends set commands: each change request
// closes or reopens up to --bulk of the client's seeded cases in one guild,
// and the report counts the events they appended.
func TestBenchEmbeddedBulkChanges(t *testing.T) {
	t.Parallel()
	rep := benchJSON(t, "--embedded", "--lazy", "--bulk", "20", "--mix", "changes=1", "--count", "12",
		"--clients", "2", "--guilds", "2", "--seed", "40", "--no-ceilings")
	l := rep.Load
	if l.All.Errors != 0 || l.All.Count != 12 || l.class(classChanges).Count != 12 {
		t.Fatalf("%d requests (%d changes), %d errors: want 12 set commands", l.All.Count, l.class(classChanges).Count, l.All.Errors)
	}
	// Each client owns 20 cases in each guild, so every set command
	// changes at least one case, and usually many.
	if l.ChangesApplied < 12 || l.ChangesApplied > 12*20 || l.ChangesPerSec <= l.class(classChanges).PerSec {
		t.Errorf("%d changes at %.0f/s from %d requests at %.0f/s: want several changes a request",
			l.ChangesApplied, l.ChangesPerSec, l.class(classChanges).Count, l.class(classChanges).PerSec)
	}
	if rep.NumbersExact == nil || !*rep.NumbersExact {
		t.Errorf("numbers: %+v", l.Numbers)
	}
}

// TestBenchCeilingsOnly measures only the ceilings, in text.
func TestBenchCeilingsOnly(t *testing.T) {
	t.Parallel()
	code, out, errOut := runBench(t, "--embedded", "--lazy", "--ceilings-only", "--ceiling-duration", "200ms", "--ceiling-batch", "250")
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"(lazy: ack before fsync)", "JetStream publish, one at a time", "atomic batches of 250", "PostgreSQL COPY, 1000 rows per commit"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "failed") || strings.Contains(out, "Load:") || strings.Contains(out, "Numbers exact") {
		t.Errorf("ceilings-only output has a failure or a load:\n%s", out)
	}
}

// TestBenchBadFlags: bad flags are usage errors, reported before anything
// is started.
func TestBenchBadFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--guilds", "0"}, "--guilds must be at least 1"},
		{[]string{"--clients", "-1"}, "--clients must be at least 1"},
		{[]string{"--mix", "opens=70,deletes=30"}, `unknown kind "deletes"`},
		{[]string{"--mix", "opens=lots"}, "want kind=weight pairs"},
		{[]string{"--mix", "opens=0"}, "at least one kind a weight above 0"},
		{[]string{"--mix", "opens=1,opens=2"}, "opens given twice"},
		{[]string{"--mix", "queries=10", "--seed", "0"}, "needs --seed above 0"},
		{[]string{"--lazy"}, "--lazy only applies with --embedded"},
		{[]string{"--backlog", "--mix", "opens=1"}, "--backlog only applies with --embedded"},
		{[]string{"--embedded", "--backlog"}, "--backlog with queries in --mix"},
		{[]string{"--embedded", "--durable", "--lazy"}, "--durable and --lazy: give one of them"},
		{[]string{"--rate", "-5"}, "--rate must not be negative"},
		{[]string{"--duration", "0"}, "give a positive --duration or --count"},
		{[]string{"--ceilings-only", "--no-ceilings"}, "give one of them"},
		{[]string{"--timeout", "0s"}, "--timeout must be positive"},
		{[]string{"--ceiling-batch", "1"}, "--ceiling-batch must be 2 to 1000"},
		{[]string{"--bulk", "0"}, "--bulk must be 1 to 1000"},
		{[]string{"--bulk", "1001"}, "--bulk must be 1 to 1000"},
		{[]string{"--log-level", "loud"}, "--log-level"},
		{[]string{"extra"}, "unexpected arguments"},
		{[]string{"--no-such-flag"}, "flag provided but not defined"},
	} {
		code, out, errOut := runBench(t, tc.args...)
		if code != exitUsage || !strings.Contains(errOut, tc.want) {
			t.Errorf("bench %s: exit %d, stderr %q; want exit %d and %q (stdout %q)", strings.Join(tc.args, " "), code, errOut, exitUsage, tc.want, out)
		}
	}
	// Every problem at once.
	_, _, errOut := runBench(t, "--guilds", "0", "--clients", "0")
	if !strings.Contains(errOut, "--guilds") || !strings.Contains(errOut, "--clients") {
		t.Errorf("both problems not reported at once: %q", errOut)
	}
}

// TestBenchHistPercentiles checks the histogram on known data.
func TestBenchHistPercentiles(t *testing.T) {
	t.Parallel()
	var h latencyHist
	if h.Percentile(50) != 0 || h.Max() != 0 || h.Mean() != 0 {
		t.Fatal("empty histogram: want zeros")
	}
	// 1 µs .. 10 000 µs, each once, recorded out of order in two halves
	// merged together.
	var a, b latencyHist
	for i := 10000; i >= 1; i-- {
		d := time.Duration(i) * time.Microsecond
		if i%2 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	h.Merge(&a)
	h.Merge(&b)
	if h.Count() != 10000 {
		t.Fatalf("count %d, want 10000", h.Count())
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{
		{0, 1 * time.Microsecond}, {50, 5000 * time.Microsecond}, {90, 9000 * time.Microsecond},
		{99, 9900 * time.Microsecond}, {99.9, 9990 * time.Microsecond}, {100, 10000 * time.Microsecond},
	} {
		got := h.Percentile(tc.q)
		// HDR semantics: never below the true value, at most 1/64 above.
		if got < tc.want || float64(got) > float64(tc.want)*(1+1.0/64) {
			t.Errorf("p%v = %v, want %v within +1/64", tc.q, got, tc.want)
		}
	}
	if h.Max() != 10*time.Millisecond {
		t.Errorf("max %v, want 10ms exactly", h.Max())
	}
	if m := h.Mean(); m < 5000*time.Microsecond || m > 5001*time.Microsecond {
		t.Errorf("mean %v, want 5000.5µs", m)
	}

	// A skewed distribution: 990 fast, 10 slow.
	var s latencyHist
	for range 990 {
		s.Record(time.Millisecond)
	}
	for range 10 {
		s.Record(time.Second)
	}
	if p := s.Percentile(99); p < time.Millisecond || p > time.Millisecond*65/64 {
		t.Errorf("p99 %v, want 1ms: the 990th of 1000 is fast", p)
	}
	if p := s.Percentile(99.9); p != time.Second {
		t.Errorf("p99.9 %v, want 1s (clamped to the max)", p)
	}

	// Every bucket's bounds hold its values, across the whole range.
	for _, v := range []int64{0, 1, 127, 128, 129, 255, 256, 1000, 1 << 20, 123456789, 1<<40 + 12345, 1<<62 + 1, 1<<63 - 1} {
		i := histIndex(v)
		if histUpper(i) < v || (i > 0 && histUpper(i-1) >= v) || i >= histBuckets {
			t.Errorf("value %d: bucket %d of %d has bounds (%d, %d]", v, i, histBuckets, histUpper(i-1), histUpper(i))
		}
	}
}

// TestBenchMetricsParse reads the ledger's counters from the Prometheus
// text format and takes their difference.
func TestBenchMetricsParse(t *testing.T) {
	t.Parallel()
	parse := func(s string) ledgerMetrics {
		m, err := parseLedgerMetrics(strings.NewReader(s))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	before := parse(`# HELP modledger_appends_total Appends.
# TYPE modledger_appends_total counter
modledger_appends_total{outcome="ok"} 10
modledger_appends_total{outcome="conflict"} 1
modledger_command_retries_total{reason="conflict"} 1
`)
	after := parse(`modledger_appends_total{outcome="ok"} 110
modledger_appends_total{outcome="conflict"} 4
modledger_command_retries_total{reason="conflict"} 3
modledger_command_retries_total{reason="transient"} 2
modledger_projection_lag_events{projection="cases"} 17
go_goroutines 42
`)
	c := ledgerCounters(before, after)
	if c.Appends["ok"] != 100 || c.Appends["conflict"] != 3 || c.Retries["conflict"] != 2 || c.Retries["transient"] != 2 {
		t.Errorf("counters %+v", c)
	}
	if v, ok := after.value("modledger_projection_lag_events", "projection", "cases"); !ok || v != 17 {
		t.Errorf("lag %v %v, want 17", v, ok)
	}
	if v, ok := after.value("go_goroutines", "", ""); !ok || v != 42 {
		t.Errorf("go_goroutines %v %v, want 42", v, ok)
	}
}

// TestBenchRunningLedger drives a ledger that runs on its own (modledger
// dev), reaching it only through its NATS URL, its /metrics and its
// database, as against a deployment.
func TestBenchRunningLedger(t *testing.T) {
	t.Parallel()
	dsn := testenv.Postgres(t)
	ctx, cancel := context.WithCancel(t.Context())
	var stdout, stderr syncBuffer
	code := make(chan int, 1)
	go func() {
		code <- runWith(ctx, []string{"dev", "--data-dir", t.TempDir(), "--port", "0", "--metrics-addr", "127.0.0.1:0", "--log-level", "warn"},
			&stdout, &stderr, func(k string) string {
				if k == "DATABASE_URL" {
					return dsn
				}
				return ""
			})
	}()
	defer func() {
		cancel()
		select {
		case c := <-code:
			if c != exitOK {
				t.Errorf("modledger dev: exit %d\n%s", c, stderr.String())
			}
		case <-time.After(30 * time.Second):
			t.Error("modledger dev did not stop")
		}
	}()
	banner := regexp.MustCompile(`NATS:\s+(nats://\S+)(?s:.*)Metrics:\s+(http://\S+/metrics)`)
	var m []string
	testenv.Eventually(t, 30*time.Second, func() bool {
		m = banner.FindStringSubmatch(stdout.String())
		return m != nil
	}, "modledger dev did not start: %s", &stderr)

	rep := benchJSON(t, "--nats-url", m[1], "--metrics-url", m[2], "--database-url", dsn,
		"--duration", "1s", "--clients", "2", "--guilds", "2", "--ceiling-duration", "200ms")
	if rep.Target != m[1] || rep.Mode != "" {
		t.Errorf("target %q mode %q: want %s and the server's own mode", rep.Target, rep.Mode, m[1])
	}
	if rep.NumbersExact == nil || !*rep.NumbersExact || !rep.Load.Numbers.StreamChecked {
		t.Errorf("numbers: %+v", rep.Load.Numbers)
	}
	if rep.Load.ThroughputPerSec <= 0 || rep.Load.Server == nil || rep.Load.Projection.LagSource != "status" || !rep.Load.Projection.CaughtUp {
		t.Errorf("load: throughput %v, server %+v, projection %+v", rep.Load.ThroughputPerSec, rep.Load.Server, rep.Load.Projection)
	}
	c := rep.Ceilings
	if c.SyncPublish.PerSec <= 0 || c.AsyncPublish.PerSec <= 0 || c.BatchPublish.PerSec <= 0 || c.PostgresCopy.PerSec <= 0 {
		t.Errorf("ceilings: %+v", c)
	}
	if strings.Contains(rep.Command, dsn) || strings.Contains(rep.Command, "nats://") {
		t.Errorf("command line %q holds the URLs", rep.Command)
	}
}
