package testenv

import (
	"fmt"
	"testing"
	"time"
)

// Eventually polls cond until it returns true and fails the test if that has
// not happened within timeout. The optional msgAndArgs describe what was
// awaited: a format string and its arguments, or any values to print.
// Call it from the test's goroutine, like t.Fatal.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, msgAndArgs ...any) {
	t.Helper()
	const (
		pollMin = time.Millisecond
		pollMax = 50 * time.Millisecond
	)
	deadline := time.Now().Add(timeout)
	poll := pollMin
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		timer := time.NewTimer(min(poll, time.Until(deadline)))
		select {
		case <-timer.C:
		case <-t.Context().Done():
			timer.Stop()
			t.Fatalf("testenv: Eventually: test context done while waiting%s", describe(msgAndArgs))
			return
		}
		poll = min(2*poll, pollMax)
	}
	t.Fatalf("testenv: condition not met within %s%s", timeout, describe(msgAndArgs))
}

func describe(msgAndArgs []any) string {
	if len(msgAndArgs) == 0 {
		return ""
	}
	if format, ok := msgAndArgs[0].(string); ok {
		return ": " + fmt.Sprintf(format, msgAndArgs[1:]...)
	}
	return ": " + fmt.Sprint(msgAndArgs...)
}
