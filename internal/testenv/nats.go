package testenv

import (
	"bytes"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/modledger/modledger/internal/natsserver"
)

// NATSEnv is an embedded NATS server started for one test.
type NATSEnv struct {
	// URL is the server's client URL (nats://127.0.0.1:<port>).
	URL string
	// Server is the running server; it is shut down when the test ends.
	Server *natsserver.Server
	// StoreDir is the directory JetStream keeps its streams in: a test
	// that must know what reached the disk reads it.
	StoreDir string
}

// NATS starts a fresh embedded NATS server with JetStream, its store in
// t.TempDir() and sync_interval: always, and shuts it down when t ends.
func NATS(t testing.TB) *NATSEnv {
	t.Helper()
	// The server's notices (logged at debug) are noise in a failing test's
	// output; its warnings and errors are not. LogLevelEnv=debug shows all.
	level := logLevel(t, slog.LevelInfo)
	dir := t.TempDir()
	srv, err := natsserver.Start(t.Context(), natsserver.Config{
		StoreDir:   dir,
		SyncAlways: true,
		ServerName: "testenv",
		Logger:     newLogger(t, level).With("component", "nats-server"),
	})
	if err != nil {
		t.Fatalf("testenv: start embedded NATS server: %v", err)
	}
	t.Cleanup(srv.Shutdown)
	return &NATSEnv{URL: srv.ClientURL(), Server: srv, StoreDir: dir}
}

// Conn returns a new connection to the server, closed when t ends. t may be
// the test that started the server or one of its subtests.
func (e *NATSEnv) Conn(t testing.TB) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(e.URL, nats.Name("testenv "+t.Name()))
	if err != nil {
		t.Fatalf("testenv: connect to NATS at %s: %v", e.URL, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// JetStream returns a JetStream context on a new connection (see Conn).
func (e *NATSEnv) JetStream(t testing.TB) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(e.Conn(t))
	if err != nil {
		t.Fatalf("testenv: create JetStream context: %v", err)
	}
	return js
}

// StoreContains reports the files under the server's store directory that
// hold needle, with their paths relative to it: proof of what the server
// wrote to disk (both in plaintext and, for tests of erasure, that it is
// gone).
func (e *NATSEnv) StoreContains(t testing.TB, needle []byte) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(e.StoreDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil // a temporary file the server just renamed
		}
		if err != nil {
			return err
		}
		if bytes.Contains(b, needle) {
			rel, _ := filepath.Rel(e.StoreDir, path)
			found = append(found, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("testenv: scan the store directory %s: %v", e.StoreDir, err)
	}
	return found
}
