package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/modledger/modledger/internal/testenv"
)

// testGuild and testActor are the guild and the moderator the CLI tests act
// as (MODLEDGER_GUILD, MODLEDGER_ACTOR).
const (
	testGuild = "1234"
	testActor = "7"
	// testZone is the zone of human output in the tests: fixed, without
	// daylight saving, and not UTC, so that a test sees the conversion.
	testZone = "Asia/Tokyo"
)

// cliLedger is a running ledger (`serve` with every role, on an embedded
// NATS server and a fresh PostgreSQL database) that the CLI tests talk to.
// A test function starts one and runs its subtests against it.
type cliLedger struct {
	nats *testenv.NATSEnv
	env  map[string]string
}

// startCLILedger starts a ledger that stops when t ends.
func startCLILedger(t *testing.T) *cliLedger {
	t.Helper()
	nats := testenv.NATS(t)
	dsn := testenv.Postgres(t)
	l := &cliLedger{nats: nats, env: map[string]string{
		"MODLEDGER_NATS_URL": nats.URL,
		"DATABASE_URL":       dsn,
		"MODLEDGER_GUILD":    testGuild,
		"MODLEDGER_ACTOR":    testActor,
		"TZ":                 testZone,
		// Another test may hold the default metrics port.
		"MODLEDGER_METRICS_ADDR": "127.0.0.1:0",
	}}
	ctx, cancel := context.WithCancel(context.Background())
	var stderr syncBuffer
	code := make(chan int, 1)
	go func() {
		code <- runWith(ctx, []string{"serve", "--roles", "command,projector,scheduler,query"}, io.Discard, &stderr, l.getenv(nil))
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case c := <-code:
			if c != exitOK {
				t.Errorf("serve exited %d: %s", c, stderr.String())
			}
		case <-time.After(30 * time.Second):
			t.Errorf("serve did not stop: %s", stderr.String())
		}
	})
	testenv.Eventually(t, 20*time.Second, func() bool { return strings.Contains(stderr.String(), "ledger running") },
		"serve did not start: %s", &stderr)
	return l
}

// getenv returns the ledger's environment with extra on top ("" unsets).
func (l *cliLedger) getenv(extra map[string]string) func(string) string {
	return func(k string) string {
		if v, ok := extra[k]; ok {
			return v
		}
		return l.env[k]
	}
}

// cliRun is one run of the CLI.
type cliRun struct {
	code           int
	stdout, stderr string
}

// cliOpts are the optional settings of a run.
type cliOpts struct {
	now time.Time         // zero: the real clock
	env map[string]string // on top of the ledger's
}

// run runs the CLI with args in process.
func (l *cliLedger) run(t *testing.T, opts cliOpts, args ...string) cliRun {
	t.Helper()
	var env func(string) string
	if l != nil {
		env = l.getenv(opts.env)
	} else {
		env = func(k string) string { return opts.env[k] }
	}
	now := time.Now
	if !opts.now.IsZero() {
		now = func() time.Time { return opts.now }
	}
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	code := runWithClock(ctx, args, &stdout, &stderr, env, now)
	return cliRun{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// ok runs the CLI and fails the test unless it exits 0.
func (l *cliLedger) ok(t *testing.T, opts cliOpts, args ...string) string {
	t.Helper()
	r := l.run(t, opts, args...)
	if r.code != exitOK {
		t.Fatalf("modledger %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// okJSON runs the CLI with --json and decodes its output into v.
func okJSON[T any](t *testing.T, l *cliLedger, opts cliOpts, args ...string) T {
	t.Helper()
	out := l.ok(t, opts, append(args, "--json")...)
	var v T
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("modledger %s --json: %v\n%s", strings.Join(args, " "), err, out)
	}
	return v
}

// wantExit runs the CLI and checks its exit code and that its output
// contains want.
func (l *cliLedger) wantExit(t *testing.T, opts cliOpts, code int, want string, args ...string) cliRun {
	t.Helper()
	r := l.run(t, opts, args...)
	if r.code != code || !strings.Contains(r.stdout+r.stderr, want) {
		t.Errorf("modledger %s: exit %d, want %d with %q\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, code, want, r.stdout, r.stderr)
	}
	return r
}

// checkTable checks that out holds an aligned table under a header line
// that starts with header's first column: every cell of every row starts
// where its header cell starts. It returns the rows, split into cells.
func checkTable(t *testing.T, out, header string) [][]string {
	t.Helper()
	lines := strings.Split(out, "\n")
	start := -1
	for i, l := range lines {
		if strings.HasPrefix(l, header) {
			start = i
			break
		}
	}
	if start < 0 {
		t.Fatalf("no table with header %q in:\n%s", header, out)
	}
	head := []rune(lines[start])
	var cols []int // where each header cell starts
	for i, r := range head {
		if r != ' ' && (i == 0 || (i >= 2 && head[i-1] == ' ' && head[i-2] == ' ')) {
			cols = append(cols, i)
		}
	}
	var rows [][]string
	for _, l := range lines[start+1:] {
		if strings.TrimSpace(l) == "" || !strings.Contains(l, "  ") {
			break
		}
		row := []rune(l)
		var cells []string
		for j, c := range cols {
			if c >= len(row) || row[c] == ' ' || (c > 0 && row[c-1] != ' ') {
				t.Fatalf("column %d (%q) is not aligned in row %q\ntable:\n%s", j, strings.TrimSpace(string(head[c:])), l, out)
			}
			end := len(row)
			if j+1 < len(cols) && cols[j+1] <= len(row) {
				end = cols[j+1]
			}
			cells = append(cells, strings.TrimSpace(string(row[c:end])))
		}
		rows = append(rows, cells)
	}
	return rows
}

// closedPortURL returns a NATS URL on which nothing listens.
func closedPortURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "nats://" + ln.Addr().String()
	ln.Close()
	return url
}

// mustZone loads the tests' time zone.
func mustZone(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(testZone)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}
