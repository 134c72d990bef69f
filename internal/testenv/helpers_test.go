package testenv_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modledger/modledger/internal/testenv"
)

// recordingTB captures fatal failures instead of stopping the goroutine, so
// Eventually's failure path can be tested.
type recordingTB struct {
	testing.TB
	fatal string
}

func (r *recordingTB) Helper() {}

func (r *recordingTB) Fatalf(format string, args ...any) {
	r.fatal = fmt.Sprintf(format, args...)
}

func TestEventually(t *testing.T) {
	t.Parallel()

	t.Run("Met", func(t *testing.T) {
		t.Parallel()
		var calls atomic.Int32
		testenv.Eventually(t, 5*time.Second, func() bool { return calls.Add(1) >= 3 })
		if n := calls.Load(); n != 3 {
			t.Fatalf("cond called %d times, want 3", n)
		}
	})

	t.Run("NotMet", func(t *testing.T) {
		t.Parallel()
		rec := &recordingTB{TB: t}
		start := time.Now()
		testenv.Eventually(rec, 30*time.Millisecond, func() bool { return false }, "queue %s drained", "q1")
		if d := time.Since(start); d < 30*time.Millisecond {
			t.Fatalf("gave up after %s, before the timeout", d)
		}
		if !strings.Contains(rec.fatal, "30ms") || !strings.Contains(rec.fatal, "queue q1 drained") {
			t.Fatalf("failure message = %q", rec.fatal)
		}
	})
}

func TestLogger(t *testing.T) {
	t.Parallel()

	var logger interface{ Info(string, ...any) }
	t.Run("Inner", func(t *testing.T) {
		l := testenv.Logger(t)
		l.Info("from the test", "key", "value")
		logger = l
	})
	// Logging after the test ended must not panic (testing would).
	logger.Info("late line, dropped")
}

func TestModuleRoot(t *testing.T) {
	t.Parallel()

	root := testenv.ModuleRoot(t)
	data, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "module github.com/modledger/modledger\n") {
		t.Fatalf("%s/go.mod is not this module's", root)
	}
}
