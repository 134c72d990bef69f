package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modledger/modledger/internal/pgcluster"
	"github.com/modledger/modledger/internal/testenv"
)

var metricsAddrLog = regexp.MustCompile(`"metrics_addr":"([^"]+)"`)

// httpGet returns the status and body of GET url.
func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(body)
}

// readiness is /readyz's body.
type readiness struct {
	Ready  bool    `json:"ready"`
	Checks []check `json:"checks"`
}

func getReady(t *testing.T, base string) (int, readiness) {
	t.Helper()
	code, body := httpGet(t, base+"/readyz")
	var r readiness
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("/readyz body %q: %v", body, err)
	}
	return code, r
}

func failedChecks(r readiness) []string {
	var out []string
	for _, c := range r.Checks {
		if !c.OK {
			out = append(out, c.Name)
		}
	}
	return out
}

// TestServeMetricsHealthAndReadiness runs every role against a private
// PostgreSQL cluster, then stops and restarts the cluster: /readyz follows
// it, /healthz stays up, and /metrics counts what the ledger did.
func TestServeMetricsHealthAndReadiness(t *testing.T) {
	env := testenv.NATS(t)
	pgDir := reachableTempDir(t)
	cluster, err := pgcluster.Start(t.Context(), pgDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cluster.Stop(context.Background()) })
	getenv := func(k string) string {
		switch k {
		case "MODLEDGER_NATS_URL":
			return env.URL
		case "DATABASE_URL":
			return cluster.URL()
		case "MODLEDGER_METRICS_ADDR":
			return "127.0.0.1:0"
		}
		return ""
	}
	ctx, cancel := context.WithCancel(t.Context())
	var stdout, stderr syncBuffer
	code := make(chan int, 1)
	go func() {
		code <- runWith(ctx, []string{"serve", "--roles", "command,projector,scheduler,query"}, &stdout, &stderr, getenv)
	}()
	defer func() {
		cancel()
		if c := <-code; c != exitOK {
			t.Errorf("serve exited %d: %s", c, stderr.String())
		}
	}()
	testenv.Eventually(t, 15*time.Second, func() bool { return metricsAddrLog.MatchString(stderr.String()) }, "serve did not start: %s", &stderr)
	base := "http://" + metricsAddrLog.FindStringSubmatch(stderr.String())[1]

	if c, body := httpGet(t, base+"/healthz"); c != http.StatusOK || strings.TrimSpace(body) != "ok" {
		t.Fatalf("/healthz = %d %q", c, body)
	}
	if c, r := getReady(t, base); c != http.StatusOK || !r.Ready || len(r.Checks) != 5 {
		t.Fatalf("/readyz = %d %+v, want 200 with five passing checks", c, r)
	}

	r := openWarn(t, env.URL)
	var metrics string
	testenv.Eventually(t, 10*time.Second, func() bool {
		_, metrics = httpGet(t, base+"/metrics")
		// The checkpoint is read from PostgreSQL, which has it a moment
		// before the projector counts the batch: wait for both.
		return strings.Contains(metrics, `modledger_projection_checkpoint{projection="cases"} `+itoa(r.Seq)) &&
			strings.Contains(metrics, `modledger_projection_events_applied_total{projection="cases"} 1`)
	}, "the projection checkpoint never reached %d in /metrics", r.Seq)
	for _, want := range []string{
		`modledger_commands_total{command="open",outcome="ok"} 1`,
		`modledger_command_duration_seconds_count{command="open"} 1`,
		`modledger_appends_total{outcome="ok"} 1`,
		`modledger_append_duration_seconds_count 1`,
		`modledger_append_batch_messages_count 1`,
		`modledger_command_cache_entries{cache="guild"} 1`,
		`modledger_command_cache_entries{cache="case"} 1`,
		`modledger_keys_destroyed_total 0`,
		`modledger_key_pool_waits_total `,
		`modledger_projection_lag_events{projection="cases"} 0`,
		`modledger_projection_lag_seconds{projection="cases"} 0`,
		`modledger_projection_status_up 1`,
		`modledger_projection_events_applied_total{projection="cases"} 1`,
		`modledger_scheduler_leading 1`,
		`go_goroutines `,
		`process_resident_memory_bytes `,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// A query and a rejected command show up by name and outcome.
	if c := runWith(t.Context(), []string{"projection", "status"}, io.Discard, io.Discard, getenv); c != exitOK {
		t.Fatalf("projection status exited %d", c)
	}

	// PostgreSQL stops: not ready (postgres and migrations fail), still healthy.
	if err := cluster.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	c, rd := getReady(t, base)
	if c != http.StatusServiceUnavailable || rd.Ready {
		t.Fatalf("/readyz with PostgreSQL stopped = %d %+v, want 503", c, rd)
	}
	if got := strings.Join(failedChecks(rd), ","); got != "postgres,migrations" {
		t.Fatalf("failed checks %q, want postgres,migrations", got)
	}
	if c, _ := httpGet(t, base+"/healthz"); c != http.StatusOK {
		t.Fatalf("/healthz with PostgreSQL stopped = %d", c)
	}
	if _, m := httpGet(t, base+"/metrics"); !strings.Contains(m, "modledger_projection_status_up 0") {
		t.Errorf("/metrics does not report the failed status read")
	}

	// It comes back: ready again, on the same port.
	if cluster, err = pgcluster.Start(t.Context(), pgDir); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() bool {
		c, r := getReady(t, base)
		return c == http.StatusOK && r.Ready
	}, "/readyz did not recover after PostgreSQL restarted")
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }
