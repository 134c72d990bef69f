package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/modledger/modledger/events"
)

// benchReport is what `modledger bench` prints; its JSON form is for
// machines (--json) and its fields are stable.
type benchReport struct {
	// Command is the command line that made the report.
	Command string `json:"command"`
	// Target is "embedded" or the NATS URL of the running ledger.
	Target string `json:"target"`
	// Mode is "durable" (fsync before ack) or "lazy" for an embedded
	// ledger; empty for a running one, whose server has its own setting.
	Mode    string       `json:"mode,omitempty"`
	Machine benchMachine `json:"machine"`
	Config  benchConfig  `json:"config"`
	// Load is the ledger under load; nil with --ceilings-only.
	Load *loadReport `json:"load,omitempty"`
	// Ceilings are the raw figures of the same servers; nil with
	// --no-ceilings.
	Ceilings *ceilingReport `json:"ceilings,omitempty"`
	// Ratios are each ledger figure over its ceiling, by name
	// (opens_vs_sync_publish, ..., projection_vs_copy).
	Ratios map[string]float64 `json:"ratios,omitempty"`
	// NumbersExact reports whether every guild's case numbers were exactly
	// 1..n; nil when no load ran.
	NumbersExact *bool `json:"numbers_exact,omitempty"`
}

type benchMachine struct {
	CPUs            int    `json:"cpus"`
	OS              string `json:"os"`
	GoVersion       string `json:"go_version"`
	NATSVersion     string `json:"nats_version,omitempty"`
	PostgresVersion string `json:"postgres_version,omitempty"`
}

type benchConfig struct {
	Guilds                 int      `json:"guilds"`
	Clients                int      `json:"clients"`
	Mix                    benchMix `json:"mix"`
	Rate                   float64  `json:"rate"` // 0: closed loop
	DurationSeconds        float64  `json:"duration_seconds"`
	Count                  int64    `json:"count"`
	Raid                   bool     `json:"raid"`
	Bulk                   int      `json:"bulk"`
	Seed                   int      `json:"seed"`
	CeilingDurationSeconds float64  `json:"ceiling_duration_seconds"`
}

// loadReport is the ledger's figures under the load.
type loadReport struct {
	DurationSeconds float64 `json:"duration_seconds"`
	// ThroughputPerSec is the successful operations a second, all kinds.
	ThroughputPerSec float64 `json:"throughput_per_sec"`
	// All, Classes (opens, changes, queries) and Operations (each command
	// and query) give counts, rates and latencies of successful requests;
	// errors are counted beside them.
	All        opReport   `json:"all"`
	Classes    []opReport `json:"classes"`
	Operations []opReport `json:"operations"`
	// Errors are the failed requests by code: the ledger's wire codes,
	// timeout, other.
	Errors map[string]int64 `json:"errors"`
	// CasesOpened are the cases the timed load opened, and CasesPerSec
	// them a second: with --bulk, each open request opens --bulk cases.
	CasesOpened int64   `json:"cases_opened"`
	CasesPerSec float64 `json:"cases_per_sec"`
	// ChangesApplied are the events the timed load's changes appended,
	// and ChangesPerSec them a second: with --bulk, each change request is
	// a set command over up to --bulk cases.
	ChangesApplied int64   `json:"changes_applied"`
	ChangesPerSec  float64 `json:"changes_per_sec"`
	// Server is the command service's retries and appends during the
	// load, from its /metrics; nil without metrics.
	Server     *serverReport    `json:"server,omitempty"`
	Projection projectionReport `json:"projection"`
	Numbers    numbersReport    `json:"numbers"`
	// Guilds are the guild ids the run used.
	Guilds []events.Snowflake `json:"guilds"`
}

type opReport struct {
	Op     string        `json:"op"`
	Count  int64         `json:"count"`
	Errors int64         `json:"errors"`
	PerSec float64       `json:"per_sec"`
	Lat    latencyReport `json:"latency_ms"`
}

// latencyReport is a latency distribution in milliseconds.
type latencyReport struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

type serverReport struct {
	// Retries are modledger_command_retries_total by reason (conflict,
	// duplicate, transient).
	Retries map[string]int64 `json:"retries"`
	// Appends are modledger_appends_total by outcome (ok, conflict,
	// duplicate, error).
	Appends map[string]int64 `json:"appends"`
}

type projectionReport struct {
	// LagEventsAtEnd and LagSecondsAtEnd are the cases projection's lag
	// when the load ended, from projection.Status ("status") or the
	// ledger's /metrics ("metrics"); LagSource is empty when neither was
	// available.
	LagSource       string  `json:"lag_source,omitempty"`
	LagEventsAtEnd  uint64  `json:"lag_events_at_end"`
	LagSecondsAtEnd float64 `json:"lag_seconds_at_end"`
	// CaughtUp reports whether the read models held every event of the
	// load within the wait, and CatchUpSeconds how long after its end.
	CaughtUp       bool    `json:"caught_up"`
	CatchUpSeconds float64 `json:"catch_up_seconds"`
	// Events are the stream messages the load appended; EventsPerSec is
	// them over the time from the load's start until the read models held
	// them all.
	Events       uint64  `json:"events"`
	EventsPerSec float64 `json:"events_per_sec"`
	// Backlog reports a --backlog run: the projector started when the
	// load ended, and Events and EventsPerSec are its catch-up on every
	// event after its checkpoint.
	Backlog bool `json:"backlog,omitempty"`
}

type numbersReport struct {
	Exact  bool `json:"exact"`
	Guilds int  `json:"guilds"`
	Cases  int  `json:"cases"`
	// StreamChecked reports whether the stream itself was read (beside the
	// replies); StreamError says why not.
	StreamChecked bool     `json:"stream_checked"`
	StreamError   string   `json:"stream_error,omitempty"`
	Problems      []string `json:"problems,omitempty"`
}

// ceilingReport is the raw figures of the servers.
type ceilingReport struct {
	PayloadBytes      int           `json:"payload_bytes"`
	SyncPublish       ceilingFigure `json:"jetstream_sync_publish"`
	AsyncPublish      ceilingFigure `json:"jetstream_async_publish"`
	AsyncInFlight     int           `json:"async_in_flight"`
	BatchPublish      ceilingFigure `json:"jetstream_atomic_batch_publish"`
	BatchSize         int           `json:"batch_size"`
	BatchInFlight     int           `json:"batch_in_flight"`
	PostgresCopy      ceilingFigure `json:"postgres_copy"`
	CopyRowsPerCommit int           `json:"copy_rows_per_commit"`
}

// ceilingFigure is one ceiling: messages or rows a second, and the latency
// of each publish, batch or COPY where it has one.
type ceilingFigure struct {
	Count   int64          `json:"count"`
	PerSec  float64        `json:"per_sec"`
	Latency *latencyReport `json:"latency_ms,omitempty"`
	Error   string         `json:"error,omitempty"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func newLatencyReport(h *latencyHist) *latencyReport {
	if h.Count() == 0 {
		return nil
	}
	return &latencyReport{
		P50: ms(h.Percentile(50)), P90: ms(h.Percentile(90)), P99: ms(h.Percentile(99)),
		P999: ms(h.Percentile(99.9)), Max: ms(h.Max()), Mean: ms(h.Mean()),
	}
}

func newOpReport(op string, h *latencyHist, errs int64, secs float64) opReport {
	r := opReport{Op: op, Count: int64(h.Count()), Errors: errs}
	if secs > 0 {
		r.PerSec = float64(r.Count) / secs
	}
	if l := newLatencyReport(h); l != nil {
		r.Lat = *l
	}
	return r
}

func newBenchReport(c *benchCmd, t *benchTarget) *benchReport {
	rep := &benchReport{
		Command: c.commandLine(),
		Target:  "embedded",
		Mode:    t.mode,
		Machine: benchMachine{CPUs: runtime.NumCPU(), OS: runtime.GOOS + "/" + runtime.GOARCH, GoVersion: runtime.Version(),
			NATSVersion: t.natsVersion, PostgresVersion: t.pgVersion},
		Config: benchConfig{Guilds: c.guilds, Clients: c.clients, Mix: c.mix, Rate: c.rate, DurationSeconds: c.duration.Seconds(),
			Count: c.count, Raid: c.raid, Bulk: c.bulk, Seed: c.seed, CeilingDurationSeconds: c.ceilingDuration.Seconds()},
	}
	if !t.embedded {
		rep.Target = t.natsURL
	}
	return rep
}

// commandLine writes the flags given, so a report says how to make it again.
func (c *benchCmd) commandLine() string {
	parts := []string{"modledger bench"}
	c.fs.Visit(func(f *flag.Flag) {
		if strings.Contains(f.Name, "url") || strings.HasPrefix(f.Name, "nats-") {
			return // may hold secrets and names of this machine
		}
		if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && bf.IsBoolFlag() && f.Value.String() == "true" {
			parts = append(parts, "--"+f.Name)
			return
		}
		parts = append(parts, "--"+f.Name+" "+f.Value.String())
	})
	return strings.Join(parts, " ")
}

// class returns the report of a class of operations.
func (l *loadReport) class(name string) opReport {
	for _, c := range l.Classes {
		if c.Op == name {
			return c
		}
	}
	return opReport{Op: name}
}

// computeRatios divides each ledger figure by its ceiling.
func (r *benchReport) computeRatios() {
	if r.Load == nil || r.Ceilings == nil {
		return
	}
	r.Ratios = map[string]float64{}
	ratio := func(name string, v float64, c ceilingFigure) {
		if c.Error == "" && c.PerSec > 0 && v > 0 {
			r.Ratios[name] = v / c.PerSec
		}
	}
	for _, cl := range []string{classOpens, classChanges} {
		v := r.Load.class(cl).PerSec
		switch cl { // each case opened or changed is a message, in bulk or not
		case classOpens:
			v = r.Load.CasesPerSec
		case classChanges:
			v = r.Load.ChangesPerSec
		}
		ratio(cl+"_vs_sync_publish", v, r.Ceilings.SyncPublish)
		ratio(cl+"_vs_async_publish", v, r.Ceilings.AsyncPublish)
		ratio(cl+"_vs_batch_publish", v, r.Ceilings.BatchPublish)
	}
	if r.Load.Projection.CaughtUp {
		ratio("projection_vs_copy", r.Load.Projection.EventsPerSec, r.Ceilings.PostgresCopy)
	}
}

func (r *benchReport) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func (r *benchReport) writeJSONFile(path string) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--json-file: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("--json-file: %w", cerr)
		}
	}()
	return r.writeJSON(f)
}

func (r *benchReport) writeText(w io.Writer) {
	mode := r.Mode
	switch mode {
	case "durable":
		mode = "durable: fsync before every ack"
	case "lazy":
		mode = "lazy: ack before fsync"
	case "":
		mode = "the server's own sync setting"
	}
	fmt.Fprintf(w, "modledger bench: %s (%s)\n", r.Target, mode)
	fmt.Fprintf(w, "  %s\n", r.Command)
	fmt.Fprintf(w, "  %d CPUs, %s, nats-server %s, PostgreSQL %s\n", r.Machine.CPUs, r.Machine.GoVersion,
		orNone(r.Machine.NATSVersion), orNone(r.Machine.PostgresVersion))
	if l := r.Load; l != nil {
		loop := "closed loop"
		if r.Config.Rate > 0 {
			loop = fmt.Sprintf("open loop at %g/s", r.Config.Rate)
		}
		raid := ""
		if r.Config.Raid {
			raid = ", raid: every open in one guild"
		}
		fmt.Fprintf(w, "\nLoad: %d guilds, %d clients, %s, mix %s%s, %.1f s\n\n", r.Config.Guilds, r.Config.Clients, loop, r.Config.Mix, raid, l.DurationSeconds)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "operation\tcount\tper s\terrors\tp50 ms\tp90 ms\tp99 ms\tp99.9 ms\tmax ms\t")
		rows := append(slices.Clone(l.Operations), l.Classes...)
		for _, o := range append(rows, l.All) {
			if o.Count == 0 && o.Errors == 0 {
				continue
			}
			fmt.Fprintf(tw, "%s\t%d\t%.0f\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t\n", o.Op, o.Count, o.PerSec, o.Errors,
				o.Lat.P50, o.Lat.P90, o.Lat.P99, o.Lat.P999, o.Lat.Max)
		}
		tw.Flush()
		fmt.Fprintf(w, "\nCases opened: %d, %.0f a second; changes: %d, %.0f a second", l.CasesOpened, l.CasesPerSec, l.ChangesApplied, l.ChangesPerSec)
		if r.Config.Bulk > 1 {
			fmt.Fprintf(w, " (bulk commands of up to %d cases each)", r.Config.Bulk)
		}
		fmt.Fprintf(w, "\nErrors by code: %s\n", formatCounts(l.Errors))
		if l.Server != nil {
			fmt.Fprintf(w, "Ledger retries: %s; appends: %s\n", formatCounts(l.Server.Retries), formatCounts(l.Server.Appends))
		} else {
			fmt.Fprintln(w, "Ledger retries: unknown (no --metrics-url)")
		}
		p := l.Projection
		lag := "unknown (no database or metrics)"
		if p.LagSource != "" {
			lag = fmt.Sprintf("%d events, %.2f s", p.LagEventsAtEnd, p.LagSecondsAtEnd)
		}
		fmt.Fprintf(w, "Projection: lag at the end of the load %s; ", lag)
		switch {
		case p.CaughtUp && p.Backlog:
			fmt.Fprintf(w, "projector started then, caught up %.2f s later: %d events, %.0f events/s\n", p.CatchUpSeconds, p.Events, p.EventsPerSec)
		case p.CaughtUp:
			fmt.Fprintf(w, "caught up %.2f s later; %d events, %.0f events/s from the start of the load\n", p.CatchUpSeconds, p.Events, p.EventsPerSec)
		default:
			fmt.Fprintln(w, "did not catch up within the wait")
		}
		n := l.Numbers
		fmt.Fprintf(w, "Numbers exact: %s (%d guilds, %d cases; stream %s)\n", yesNo(n.Exact), n.Guilds, n.Cases, streamChecked(n))
		for _, pr := range n.Problems {
			fmt.Fprintf(w, "  %s\n", pr)
		}
	}
	if c := r.Ceilings; c != nil {
		fmt.Fprintf(w, "\nCeilings (same servers, %d-byte messages and rows):\n\n", c.PayloadBytes)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fig := func(name, unit string, f ceilingFigure) {
			if f.Error != "" {
				fmt.Fprintf(tw, "  %s\tfailed: %s\n", name, f.Error)
				return
			}
			lat := ""
			if f.Latency != nil {
				lat = fmt.Sprintf("  (each: p50 %.2f ms, p99 %.2f ms)", f.Latency.P50, f.Latency.P99)
			}
			fmt.Fprintf(tw, "  %s\t%.0f %s/s%s\n", name, f.PerSec, unit, lat)
		}
		fig("JetStream publish, one at a time", "msg", c.SyncPublish)
		fig(fmt.Sprintf("JetStream async publish, %d in flight", c.AsyncInFlight), "msg", c.AsyncPublish)
		fig(fmt.Sprintf("JetStream atomic batches of %d, %d in flight", c.BatchSize, c.BatchInFlight), "msg", c.BatchPublish)
		fig(fmt.Sprintf("PostgreSQL COPY, %d rows per commit", c.CopyRowsPerCommit), "row", c.PostgresCopy)
		tw.Flush()
	}
	if len(r.Ratios) > 0 {
		fmt.Fprintln(w, "\nRatios to the ceilings:")
		for _, k := range slices.Sorted(maps.Keys(r.Ratios)) {
			fmt.Fprintf(w, "  %-30s %.3f\n", k, r.Ratios[k])
		}
	}
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func streamChecked(n numbersReport) string {
	switch {
	case n.StreamChecked:
		return "checked"
	case n.StreamError != "":
		return "not checked: " + n.StreamError
	}
	return "not checked"
}

// formatCounts writes counts as "a=1 b=2", or "none".
func formatCounts[V int64 | float64](m map[string]V) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s=%v", k, m[k]))
	}
	return strings.Join(parts, " ")
}
