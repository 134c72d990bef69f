package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modledger/modledger/internal/testenv"
)

// TestNodeBotExample runs docs/examples/node-bot against a real ledger:
// proof that the wire contract works from a bot in another language. It
// needs node and npm on the machine (and the npm registry for the two NATS
// packages); without node it is skipped.
func TestNodeBotExample(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed; the Node.js example runs where it is")
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Skip("npm is not installed")
	}
	dir := t.TempDir()
	src := filepath.Join(testenv.ModuleRoot(t), "docs", "examples", "node-bot")
	for _, f := range []string{"package.json", "package-lock.json", "bot.mjs"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var out []byte
	for attempt := range 3 {
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
		cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--loglevel=error")
		cmd.Dir = dir
		out, err = cmd.CombinedOutput()
		cancel()
		if err == nil {
			break
		}
		t.Logf("npm ci, attempt %d: %v\n%s", attempt+1, err, out)
	}
	if err != nil {
		t.Fatalf("npm ci failed; the example's dependencies come from the npm registry: %v\n%s", err, out)
	}

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
	testenv.Eventually(t, 10*time.Second, func() bool { return strings.Contains(stderr.String(), "ledger running") }, "serve did not start: %s", &stderr)

	bctx, bcancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer bcancel()
	bot := exec.CommandContext(bctx, node, "bot.mjs")
	bot.Dir = dir
	bot.Env = append(os.Environ(), "NATS_URL="+env.URL, "EXPIRES_IN_MS=1500")
	var botOut, botErr bytes.Buffer
	bot.Stdout, bot.Stderr = &botOut, &botErr
	if err := bot.Run(); err != nil {
		t.Fatalf("node bot.mjs: %v\nstdout:\n%s\nstderr:\n%s\nledger:\n%s", err, botOut.String(), botErr.String(), stderr.String())
	}
	for _, want := range []string{`"step":"opened"`, `"event":"expired"`, `"step":"marked_processed","appended":1`, `"event":"expiry_processed"`, `"restricted":false`} {
		if !strings.Contains(botOut.String(), want) {
			t.Fatalf("the bot's output lacks %s:\n%s", want, botOut.String())
		}
	}
	t.Logf("node bot:\n%s", botOut.String())
}
