package testenv

import (
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
)

// LogLevelEnv names the environment variable that sets the level of Logger
// (debug, info, warn or error).
const LogLevelEnv = "MODLEDGER_TEST_LOG_LEVEL"

// Logger returns a logger that writes text lines to t's output. Lines logged
// after t has finished (by a goroutine that outlived it) are dropped instead
// of panicking.
func Logger(t testing.TB) *slog.Logger {
	return newLogger(t, logLevel(t, slog.LevelDebug))
}

func newLogger(t testing.TB, level slog.Leveler) *slog.Logger {
	w := &testWriter{w: t.Output()}
	t.Cleanup(w.close)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey && a.Value.Kind() == slog.KindTime {
				return slog.String(slog.TimeKey, a.Value.Time().Format("15:04:05.000000"))
			}
			return a
		},
	}))
}

// logLevel returns the level from LogLevelEnv, or def when it is unset.
func logLevel(t testing.TB, def slog.Level) slog.Level {
	s := strings.TrimSpace(os.Getenv(LogLevelEnv))
	if s == "" {
		return def
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(s)); err != nil {
		t.Fatalf("testenv: %s=%q: %v", LogLevelEnv, s, err)
	}
	return level
}

// testWriter forwards to a test's output until the test's cleanup runs.
type testWriter struct {
	mu     sync.Mutex
	w      io.Writer
	closed bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return len(p), nil
	}
	return w.w.Write(p)
}

func (w *testWriter) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
}
