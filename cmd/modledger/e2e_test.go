package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/modledger/modledger/command"
	"github.com/modledger/modledger/internal/testenv"
	"github.com/modledger/modledger/projection"
)

// buildBinary builds the modledger binary once per test run.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "modledger")
	cmd := exec.CommandContext(t.Context(), "go", "build", "-o", bin, ".")
	cmd.Dir = filepath.Join(testenv.ModuleRoot(t), "cmd", "modledger")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestEndToEndDevThroughTheCLI builds the binary, starts `modledger dev` as
// a process on free ports in a temp dir, and drives it only through the
// binary's CLI, as a newcomer would: once with DATABASE_URL, once with the
// private PostgreSQL cluster dev makes itself.
func TestEndToEndDevThroughTheCLI(t *testing.T) {
	bin := buildBinary(t)
	t.Run("database_url", func(t *testing.T) {
		runEndToEnd(t, bin, t.TempDir(), testenv.Postgres(t))
	})
	t.Run("private_cluster", func(t *testing.T) {
		if _, err := exec.LookPath("initdb"); err != nil {
			if _, err := os.Stat("/usr/lib/postgresql"); err != nil {
				t.Skip("no initdb on this machine")
			}
		}
		runEndToEnd(t, bin, reachableTempDir(t), "")
	})
}

var devNATSURL = regexp.MustCompile(`NATS:\s+(nats://\S+)`)

func runEndToEnd(t *testing.T, bin, dir, databaseURL string) {
	env := append(os.Environ(), "TZ=UTC", "MODLEDGER_METRICS_ADDR=127.0.0.1:0")
	env = slicesDeleteEnv(env, "DATABASE_URL", "MODLEDGER_NATS_URL", "MODLEDGER_GUILD", "MODLEDGER_ACTOR")
	if databaseURL != "" {
		env = append(env, "DATABASE_URL="+databaseURL)
	}
	dev := exec.Command(bin, "dev", "--data-dir", filepath.Join(dir, "data"), "--port", "0")
	dev.Env = env
	var stdout, stderr syncBuffer
	dev.Stdout, dev.Stderr = &stdout, &stderr
	if err := dev.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- dev.Wait() }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = dev.Process.Signal(syscall.SIGINT)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("modledger dev exited with %v after Ctrl-C:\n%s", err, stderr.String())
			}
		case <-time.After(30 * time.Second):
			_ = dev.Process.Kill()
			t.Errorf("modledger dev did not stop after Ctrl-C")
		}
	}
	t.Cleanup(stop)
	var url string
	testenv.Eventually(t, 60*time.Second, func() bool {
		if m := devNATSURL.FindStringSubmatch(stdout.String()); m != nil {
			url = m[1]
			return true
		}
		return false
	}, "modledger dev did not print its banner:\n%s", &stderr)
	if !strings.Contains(stdout.String(), "Metrics:    http://127.0.0.1:") {
		t.Errorf("the banner does not say where the metrics are:\n%s", stdout.String())
	}

	cli := func(wantExit int, args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(slicesDeleteEnv(os.Environ(), "MODLEDGER_NATS_URL"), "TZ=UTC", "MODLEDGER_NATS_URL="+url,
			"MODLEDGER_GUILD=1234", "MODLEDGER_ACTOR=7")
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != wantExit {
			t.Fatalf("modledger %s: exit %d, want %d\n%s%s", strings.Join(args, " "), code, wantExit, out.String(), errOut.String())
		}
		return out.String() + errOut.String()
	}
	must := func(out string, wants ...string) {
		t.Helper()
		for _, w := range wants {
			if !strings.Contains(out, w) {
				t.Fatalf("output lacks %q:\n%s", w, out)
			}
		}
	}

	must(cli(0, "case", "open", "--type", "WARN", "--user", "42", "--reason", "spam in #general"), "Opened case #1.", "Case #1: WARN of user 42, active")
	var opened command.Result
	if err := json.Unmarshal([]byte(cli(0, "case", "open", "--type", "TEMPBAN", "--user", "42", "--duration", "7d", "--reason", "raid", "--json")), &opened); err != nil {
		t.Fatal(err)
	}
	if opened.Case.CaseNumber != 2 || opened.Appended != 1 || opened.Case.ExpiresAt == nil {
		t.Fatalf("case open --json: %+v", opened)
	}
	must(cli(0, "case", "note", "2", "alt of a banned account"), "Added a note to case #2.")
	must(cli(0, "case", "list", "--user", "42"), "#2    TEMPBAN", "#1    WARN", "2 of 2 cases.")
	var page projection.CaseListResult
	if err := json.Unmarshal([]byte(cli(0, "case", "list", "--json")), &page); err != nil || page.Total != 2 {
		t.Fatalf("case list --json: %+v %v", page, err)
	}
	must(cli(0, "case", "show", "2"), "Case #2: TEMPBAN of user 42, active", "alt of a banned account")
	must(cli(0, "case", "close", "2", "--reason", "appeal accepted"), "Closed case #2.", "Case #2: TEMPBAN of user 42, closed")
	must(cli(0, "case", "history", "2"), "opened", "note_added", "closed")
	must(cli(0, "stats"), "2")
	tail := cli(0, "events", "tail", "--follow=false", "--json")
	if n := strings.Count(strings.TrimSpace(tail), "\n") + 1; n != 4 {
		t.Fatalf("events tail printed %d events, want 4 (2 opened, a note, a close):\n%s", n, tail)
	}
	must(cli(0, "events", "tail", "--follow=false"), "opened", "note_added", "closed")
	must(cli(3, "case", "show", "9"), "not found")
	must(cli(2, "case", "open", "--type", "WARN"), "--user is required")
	stop()
}

// slicesDeleteEnv removes the named variables from an environment.
func slicesDeleteEnv(env []string, names ...string) []string {
	out := env[:0:0]
	for _, kv := range env {
		keep := true
		for _, n := range names {
			if strings.HasPrefix(kv, n+"=") {
				keep = false
			}
		}
		if keep {
			out = append(out, kv)
		}
	}
	return out
}
