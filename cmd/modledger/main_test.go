package main

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/command"
	"github.com/modledger/modledger/events"
	"github.com/modledger/modledger/internal/testenv"
	"github.com/modledger/modledger/projection"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func noEnv(string) string { return "" }

// startDev runs `modledger dev` in process and returns the NATS URL it
// printed and a function that stops it and returns its exit code.
func startDev(t *testing.T, dataDir string) (string, func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	var stdout, stderr syncBuffer
	code := make(chan int, 1)
	go func() {
		code <- runWith(ctx, []string{"dev", "--data-dir", dataDir, "--port", "0"}, &stdout, &stderr, noEnv)
	}()
	urlRE := regexp.MustCompile(`NATS:\s+(nats://\S+)`)
	var url string
	testenv.Eventually(t, 20*time.Second, func() bool {
		if m := urlRE.FindStringSubmatch(stdout.String()); m != nil {
			url = m[1]
			return strings.Contains(stderr.String(), "ledger running")
		}
		return false
	}, "modledger dev did not start: %s", &stderr)
	return url, func() int {
		cancel()
		select {
		case c := <-code:
			return c
		case <-time.After(30 * time.Second):
			t.Fatal("modledger dev did not stop")
			return -1
		}
	}
}

func openWarn(t *testing.T, url string) *command.Result {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	client, err := command.NewClient(nc)
	if err != nil {
		t.Fatal(err)
	}
	r, err := client.CaseOpen(t.Context(), 1234, command.OpenParams{CaseFields: events.CaseFields{
		Type: aggregate.TypeWarn, UserID: 42, ModeratorID: 7, Reason: "first warning",
	}})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// reachableTempDir returns a temp directory the postgres user can reach.
func reachableTempDir(t *testing.T) string { return testenv.ReachableTempDir(t) }

func TestDevRunsLedgerAndReusesData(t *testing.T) {
	dir := reachableTempDir(t)
	url, stop := startDev(t, dir)
	r := openWarn(t, url)
	if r.Case.CaseNumber != 1 {
		t.Fatalf("first case got number %d", r.Case.CaseNumber)
	}
	// The read side runs too, on the private PostgreSQL cluster.
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	qc, err := projection.NewQueryClient(nc)
	if err != nil {
		t.Fatal(err)
	}
	got, err := qc.CaseGet(t.Context(), 1234, projection.CaseGetParams{QueryMeta: projection.QueryMeta{MinSeq: r.Seq}, CaseNumber: 1})
	nc.Close()
	if err != nil || got.Case.Reason != "first warning" {
		t.Fatalf("query through dev: %+v %v", got, err)
	}
	if code := stop(); code != exitOK {
		t.Fatalf("dev exited %d after Ctrl-C, want 0", code)
	}
	url, stop = startDev(t, dir)
	if r := openWarn(t, url); r.Case.CaseNumber != 2 {
		t.Fatalf("after a restart the next case got number %d, want 2", r.Case.CaseNumber)
	}
	if code := stop(); code != exitOK {
		t.Fatalf("dev exited %d, want 0", code)
	}
}

func TestServeRunsCommandRole(t *testing.T) {
	env := testenv.NATS(t)
	ctx, cancel := context.WithCancel(t.Context())
	var stdout, stderr syncBuffer
	code := make(chan int, 1)
	getenv := func(k string) string {
		switch k {
		case "MODLEDGER_NATS_URL":
			return env.URL
		case "MODLEDGER_METRICS_ADDR":
			return "127.0.0.1:0"
		}
		return ""
	}
	go func() { code <- runWith(ctx, []string{"serve", "--roles", "command"}, &stdout, &stderr, getenv) }()
	testenv.Eventually(t, 10*time.Second, func() bool { return strings.Contains(stderr.String(), "ledger running") }, "serve did not start: %s", &stderr)
	if r := openWarn(t, env.URL); r.Case.CaseNumber != 1 {
		t.Fatalf("case number %d", r.Case.CaseNumber)
	}
	cancel()
	if c := <-code; c != exitOK {
		t.Fatalf("serve exited %d: %s", c, stderr.String())
	}
	if !strings.Contains(stderr.String(), `"msg":"ledger running"`) {
		t.Fatalf("serve does not log JSON by default: %s", stderr.String())
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args []string
		code int
		want string
	}{
		{nil, exitUsage, "Commands:"},
		{[]string{"nope"}, exitUsage, `unknown command "nope"`},
		{[]string{"serve", "--roles", "dancer"}, exitUsage, `unknown role "dancer"`},
		{[]string{"serve", "--log-format", "xml"}, exitUsage, "--log-format"},
		{[]string{"serve", "extra"}, exitUsage, "unexpected arguments"},
		{[]string{"help", "serve"}, exitOK, "Examples:"},
		{[]string{"serve", "--bogus"}, exitUsage, "flag provided but not defined"},
		{[]string{"serve", "--nats-tls-cert", "client.pem"}, exitUsage, "--nats-tls-cert and --nats-tls-key go together"},
		{[]string{"serve", "--nats-creds", "a.creds", "--nats-nkey", "a.nk"}, exitUsage, "give one of them"},
		{[]string{"serve", "--nats-nkey", "/nonexistent.nk"}, exitUsage, "--nats-nkey"},
		{[]string{"serve", "--replicas", "7"}, exitUsage, "replicas 7"},
	}
	for _, c := range cases {
		var out, errOut bytes.Buffer
		got := runWith(t.Context(), c.args, &out, &errOut, noEnv)
		if got != c.code || !strings.Contains(out.String()+errOut.String(), c.want) {
			t.Errorf("%v: exit %d, output %q; want exit %d containing %q", c.args, got, out.String()+errOut.String(), c.code, c.want)
		}
	}
}

func TestServeReadSideMigrateAndProjectionCommands(t *testing.T) {
	env := testenv.NATS(t)
	dsn := testenv.Postgres(t)
	getenv := func(k string) string {
		switch k {
		case "MODLEDGER_NATS_URL":
			return env.URL
		case "DATABASE_URL":
			return dsn
		case "MODLEDGER_METRICS_ADDR":
			return "127.0.0.1:0"
		}
		return ""
	}
	var out, errOut bytes.Buffer
	if code := runWith(t.Context(), []string{"migrate"}, &out, &errOut, getenv); code != exitOK {
		t.Fatalf("migrate exited %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "projection cases: generation 1") {
		t.Fatalf("migrate output: %s", out.String())
	}
	ctx, cancel := context.WithCancel(t.Context())
	var stdout, stderr syncBuffer
	code := make(chan int, 1)
	go func() {
		code <- runWith(ctx, []string{"serve", "--roles", "command,projector,scheduler,query"}, &stdout, &stderr, getenv)
	}()
	testenv.Eventually(t, 10*time.Second, func() bool { return strings.Contains(stderr.String(), "ledger running") }, "serve did not start: %s", &stderr)
	r := openWarn(t, env.URL)
	// A bot reads its own write through the query role.
	nc, err := nats.Connect(env.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	qc, err := projection.NewQueryClient(nc)
	if err != nil {
		t.Fatal(err)
	}
	got, err := qc.CaseGet(t.Context(), 1234, projection.CaseGetParams{QueryMeta: projection.QueryMeta{MinSeq: r.Seq}, CaseNumber: r.Case.CaseNumber})
	if err != nil || got.Case.Reason != "first warning" {
		t.Fatalf("query the case just opened: %+v %v", got, err)
	}
	testenv.Eventually(t, 10*time.Second, func() bool {
		out.Reset()
		errOut.Reset()
		if runWith(t.Context(), []string{"projection", "status", "--json"}, &out, &errOut, getenv) != exitOK {
			return false
		}
		return strings.Contains(out.String(), fmt.Sprintf(`"checkpoint": %d`, r.Seq)) && strings.Contains(out.String(), `"lag_events": 0`)
	}, "projection status never showed the case: %s %s", &out, &errOut)

	// The scheduler role expires a short tempban on time.
	client, err := command.NewClient(nc)
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Second)
	tb, err := client.CaseOpen(t.Context(), 1234, command.OpenParams{CaseFields: events.CaseFields{
		Type: aggregate.TypeTempban, UserID: 43, ModeratorID: 7, ExpiresAt: &exp}})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() bool {
		got, err := qc.CaseGet(t.Context(), 1234, projection.CaseGetParams{CaseNumber: tb.Case.CaseNumber})
		return err == nil && got.Case.ExpiredAt != nil
	}, "the tempban did not expire")

	out.Reset()
	if c := runWith(t.Context(), []string{"projection", "rebuild", "cases"}, &out, &errOut, getenv); c != exitOK {
		t.Fatalf("rebuild exited %d: %s", c, errOut.String())
	}
	if !strings.Contains(out.String(), "now reads generation 2") {
		t.Fatalf("rebuild output: %s", out.String())
	}
	out.Reset()
	if c := runWith(t.Context(), []string{"projection", "status"}, &out, &errOut, getenv); c != exitOK || !strings.Contains(out.String(), "cases       2") {
		t.Fatalf("status after rebuild: exit %d\n%s", c, out.String())
	}
	if c := runWith(t.Context(), []string{"projection", "rebuild", "nope"}, &out, &errOut, getenv); c != exitUsage {
		t.Fatalf("rebuild of an unknown projection exited %d", c)
	}
	cancel()
	if c := <-code; c != exitOK {
		t.Fatalf("serve exited %d: %s", c, stderr.String())
	}
}
