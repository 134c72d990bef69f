package command_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/modledger/modledger/command"
)

// envServiceURL, when set, makes the test binary run a command service
// against that NATS URL instead of tests: the "separate OS process" of the
// multi-process tests.
const envServiceURL = "MODLEDGER_TEST_COMMAND_SERVICE_NATS_URL"

func TestMain(m *testing.M) {
	if url := os.Getenv(envServiceURL); url != "" {
		os.Exit(runServiceProcess(url))
	}
	goleak.VerifyTestMain(m)
}

// runServiceProcess runs a command service until SIGTERM or stdin closes.
func runServiceProcess(url string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	nc, err := nats.Connect(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, "connect:", err)
		return 1
	}
	defer nc.Close()
	svc, err := command.NewService(command.Config{Conn: nc})
	if err != nil {
		fmt.Fprintln(os.Stderr, "service:", err)
		return 1
	}
	if err := svc.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "start:", err)
		return 1
	}
	fmt.Println("ready")
	go func() {
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n') // EOF when the test ends
		stop()
	}()
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := svc.Stop(sctx); err != nil {
		fmt.Fprintln(os.Stderr, "stop:", err)
		return 1
	}
	return 0
}

// startServiceProcess runs a command service in a child process of the test
// binary and stops it when t ends.
func startServiceProcess(t *testing.T, url string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envServiceURL+"="+url)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start service process: %v", err)
	}
	t.Cleanup(func() {
		_ = stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("service process: %v", err)
			}
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("service process did not stop")
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("service process did not start: %q %v", line, err)
	}
}
