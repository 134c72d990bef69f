package natsserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/modledger/modledger/internal/natsserver"
)

// startServer starts a durable server in a temporary directory and stops it
// when the test ends.
func startServer(t *testing.T, cfg natsserver.Config) *natsserver.Server {
	t.Helper()
	if cfg.StoreDir == "" {
		cfg.StoreDir = t.TempDir()
	}
	srv, err := natsserver.Start(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(srv.Shutdown)
	return srv
}

func connect(t *testing.T, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("connect to %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func TestStartJetStreamPublish(t *testing.T) {
	t.Parallel()

	srv := startServer(t, natsserver.Config{SyncAlways: true, ServerName: "natsserver_test"})
	if !strings.HasPrefix(srv.ClientURL(), "nats://127.0.0.1:") {
		t.Fatalf("ClientURL = %q, want nats://127.0.0.1:<port>", srv.ClientURL())
	}
	if got := srv.Inner().JetStreamConfig(); got == nil || !got.SyncAlways {
		t.Fatalf("JetStreamConfig = %+v, want SyncAlways", got)
	}
	if got := srv.Inner().Name(); got != "natsserver_test" {
		t.Fatalf("server name = %q, want natsserver_test", got)
	}

	nc := connect(t, srv.ClientURL())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream.New: %v", err)
	}
	ctx := t.Context()
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name:               "NATSSERVER_TEST",
		Subjects:           []string{"natsserver.test.>"},
		Storage:            jetstream.FileStorage,
		AllowAtomicPublish: true,
		DenyDelete:         true,
		DenyPurge:          true,
	})
	if err != nil {
		t.Fatalf("CreateStream: %v", err)
	}
	if !stream.CachedInfo().Config.AllowAtomicPublish {
		t.Fatal("stream created without AllowAtomicPublish")
	}

	ack, err := js.Publish(ctx, "natsserver.test.one", []byte("hello"))
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if ack.Stream != "NATSSERVER_TEST" || ack.Sequence != 1 {
		t.Fatalf("PubAck = %+v, want stream NATSSERVER_TEST sequence 1", ack)
	}

	// An atomic batch of two: the first message is staged without a reply,
	// the commit carries the request and gets the one acknowledgement.
	first := nats.NewMsg("natsserver.test.two")
	first.Data = []byte("a")
	first.Header.Set("Nats-Batch-Id", "batch-1")
	first.Header.Set("Nats-Batch-Sequence", "1")
	if err := nc.PublishMsg(first); err != nil {
		t.Fatalf("publish batch message 1: %v", err)
	}
	commit := nats.NewMsg("natsserver.test.three")
	commit.Data = []byte("b")
	commit.Header.Set("Nats-Batch-Id", "batch-1")
	commit.Header.Set("Nats-Batch-Sequence", "2")
	commit.Header.Set("Nats-Batch-Commit", "1")
	reply, err := nc.RequestMsgWithContext(ctx, commit)
	if err != nil {
		t.Fatalf("commit batch: %v", err)
	}
	var batchAck struct {
		Stream   string `json:"stream"`
		Sequence uint64 `json:"seq"`
		Batch    string `json:"batch"`
		Count    int    `json:"count"`
		Error    *struct {
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(reply.Data, &batchAck); err != nil {
		t.Fatalf("decode batch ack %q: %v", reply.Data, err)
	}
	if batchAck.Error != nil || batchAck.Batch != "batch-1" || batchAck.Count != 2 || batchAck.Sequence != 3 {
		t.Fatalf("batch ack = %s, want batch-1 with 2 messages ending at sequence 3", reply.Data)
	}

	msg, err := stream.GetLastMsgForSubject(ctx, "natsserver.test.two")
	if err != nil {
		t.Fatalf("GetLastMsgForSubject: %v", err)
	}
	if string(msg.Data) != "a" || msg.Sequence != 2 {
		t.Fatalf("stored message = %q at %d, want \"a\" at 2", msg.Data, msg.Sequence)
	}
}

func TestStartKeepsDataAcrossRestart(t *testing.T) {
	t.Parallel()

	dir := t.TempDir()
	srv, err := natsserver.Start(t.Context(), natsserver.Config{StoreDir: dir, SyncAlways: true})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	nc := connect(t, srv.ClientURL())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream.New: %v", err)
	}
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "RESTART", Subjects: []string{"restart"}}); err != nil {
		t.Fatalf("CreateStream: %v", err)
	}
	if _, err := js.Publish(t.Context(), "restart", []byte("kept")); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	nc.Close()
	srv.Shutdown()
	srv.Shutdown() // idempotent

	srv = startServer(t, natsserver.Config{StoreDir: dir, SyncAlways: true})
	js, err = jetstream.New(connect(t, srv.ClientURL()))
	if err != nil {
		t.Fatalf("jetstream.New: %v", err)
	}
	stream, err := js.Stream(t.Context(), "RESTART")
	if err != nil {
		t.Fatalf("Stream after restart: %v", err)
	}
	if n := stream.CachedInfo().State.Msgs; n != 1 {
		t.Fatalf("messages after restart = %d, want 1", n)
	}
}

func TestStartFixedPort(t *testing.T) {
	t.Parallel()

	// A free port may be taken by a parallel test before the server binds
	// it: try a few.
	var (
		port int
		srv  *natsserver.Server
		err  error
	)
	for range 5 {
		port = freePort(t)
		if srv, err = natsserver.Start(t.Context(), natsserver.Config{Port: port, StoreDir: t.TempDir()}); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	if want := "nats://127.0.0.1:" + strconv.Itoa(port); srv.ClientURL() != want {
		t.Fatalf("ClientURL = %q, want %q", srv.ClientURL(), want)
	}
	connect(t, srv.ClientURL())
}

func TestStartErrors(t *testing.T) {
	t.Parallel()

	t.Run("StoreDirRequired", func(t *testing.T) {
		t.Parallel()
		_, err := natsserver.Start(t.Context(), natsserver.Config{})
		if !errors.Is(err, natsserver.ErrStoreDirRequired) {
			t.Fatalf("err = %v, want ErrStoreDirRequired", err)
		}
	})

	t.Run("PortInUse", func(t *testing.T) {
		t.Parallel()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		port := ln.Addr().(*net.TCPAddr).Port
		start := time.Now()
		_, err = natsserver.Start(t.Context(), natsserver.Config{StoreDir: t.TempDir(), Port: port})
		if err == nil || !strings.Contains(err.Error(), "listening on port") {
			t.Fatalf("err = %v, want a listen error", err)
		}
		// The fatal log line ends the wait; it does not run into the
		// ready timeout.
		if d := time.Since(start); d > natsserver.ReadyTimeoutDefault/2 {
			t.Fatalf("Start took %s to report the listen error", d)
		}
	})

	t.Run("ContextCanceled", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := natsserver.Start(ctx, natsserver.Config{StoreDir: t.TempDir()})
		// The server may win the race and be ready before the first
		// check of ctx; both outcomes are fine, a hang is not.
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want nil or context.Canceled", err)
		}
	})
}

func TestStartLogsToSlog(t *testing.T) {
	t.Parallel()

	var buf syncBuffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	startServer(t, natsserver.Config{Logger: logger})
	out := buf.String()
	if !strings.Contains(out, "level=DEBUG") || !strings.Contains(out, "Server is ready") {
		t.Fatalf("log output lacks the debug-level ready notice:\n%s", out)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return port
}

// syncBuffer is a bytes.Buffer safe for the server's logging goroutines.
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
