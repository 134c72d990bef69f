package natsserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// HostDefault is the interface the server listens on when Config.Host is empty.
const HostDefault = "127.0.0.1"

// ReadyTimeoutDefault is how long Start waits for the server to accept clients
// when the caller's context has no earlier deadline.
const ReadyTimeoutDefault = 10 * time.Second

// ErrStoreDirRequired is returned by Start when Config.StoreDir is empty.
var ErrStoreDirRequired = errors.New("natsserver: store dir is required for jetstream")

// Config configures an embedded server. The zero value is not usable: StoreDir
// is required.
type Config struct {
	// Host is the interface the client listener binds to. Defaults to
	// HostDefault (127.0.0.1).
	Host string

	// Port is the client port. Zero picks a random free port, which
	// Server.ClientURL reports once the server runs. Defaults to a random
	// free port.
	Port int

	// StoreDir is the directory JetStream keeps its streams in. It is created
	// if missing. Required; there is no default.
	StoreDir string

	// SyncAlways makes JetStream fsync before acknowledging a publish
	// (sync_interval: always), so acknowledged messages survive a machine
	// crash. Every caller in this repository sets it to true. Defaults to
	// false, the server's periodic flush.
	SyncAlways bool

	// ServerName is the server's name in logs, monitoring and JetStream
	// cluster metadata. Defaults to the server's generated ID.
	ServerName string

	// Logger receives the server's log lines (see the package documentation
	// for levels). Defaults to discarding them.
	Logger *slog.Logger

	// MaxPayload is the largest message, in bytes, the server accepts.
	// Defaults to the server's default of 1 MiB.
	MaxPayload int32
}

// Server is a running embedded NATS server. Create it with Start and stop it
// with Shutdown.
type Server struct {
	inner        *server.Server
	shutdownOnce sync.Once
}

// Start creates and starts an embedded server with JetStream enabled, and
// returns once it accepts client connections. It waits at most until ctx is
// done or ReadyTimeoutDefault has passed, whichever comes first. The server's
// lifetime is not bound to ctx: stop it with Shutdown.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.StoreDir == "" {
		return nil, ErrStoreDirRequired
	}
	host := cfg.Host
	if host == "" {
		host = HostDefault
	}
	port := cfg.Port
	if port == 0 {
		port = server.RANDOM_PORT
	}
	opts := &server.Options{
		ServerName: cfg.ServerName,
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		SyncAlways: cfg.SyncAlways,
		MaxPayload: cfg.MaxPayload,
		NoSigs:     true,
		// HTTP monitoring, clustering and leaf nodes stay disabled: their
		// ports default to zero.
	}

	inner, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsserver: configure server: %w", err)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	adapter := newLogAdapter(logger)
	// The debug flag only decides whether the server formats debug lines at
	// all; skip that work when the handler would drop them anyway.
	inner.SetLoggerV2(adapter, logger.Enabled(ctx, slog.LevelDebug), false, false)

	s := &Server{inner: inner}
	// Start returns quickly, but enabling JetStream reads the store
	// directory, which can take a while for a large one; run it aside so
	// the wait below can honour ctx.
	started := make(chan struct{})
	go func() {
		defer close(started)
		inner.Start()
	}()

	if err := s.waitReady(ctx, adapter.fatal); err != nil {
		// Let Start finish first: a server shut down while it still sets
		// up JetStream goes on writing to the store directory.
		<-started
		s.Shutdown()
		return nil, err
	}
	return s, nil
}

// waitReady polls until the server accepts clients, reports a fatal error, or
// the wait is over.
func (s *Server) waitReady(ctx context.Context, fatal <-chan error) error {
	ctx, cancel := context.WithTimeout(ctx, ReadyTimeoutDefault)
	defer cancel()
	// ReadyForConnections spins without sleeping for waits under 25ms and
	// sleeps 25ms between checks for longer ones; a one-shot check plus our
	// own short timer starts faster and can stop on ctx or a fatal error.
	const (
		check = time.Microsecond
		poll  = 2 * time.Millisecond
	)
	timer := time.NewTimer(poll)
	defer timer.Stop()
	for {
		if s.inner.ReadyForConnections(check) {
			return nil
		}
		select {
		case err := <-fatal:
			return fmt.Errorf("natsserver: start server: %w", err)
		case <-ctx.Done():
			return fmt.Errorf("natsserver: server not ready for connections: %w", context.Cause(ctx))
		case <-timer.C:
			timer.Reset(poll)
		}
	}
}

// ClientURL returns the nats:// URL clients connect to, with the port the
// server actually listens on.
func (s *Server) ClientURL() string {
	return s.inner.ClientURL()
}

// Shutdown stops the server, closing every client connection, and waits until
// it has fully stopped and flushed JetStream. It is safe to call more than
// once and from several goroutines.
func (s *Server) Shutdown() {
	s.shutdownOnce.Do(func() {
		s.inner.Shutdown()
		s.inner.WaitForShutdown()
	})
}

// Inner returns the underlying nats-server, for monitoring (Varz, Jsz) or for
// tests that need to inspect it. Do not call Start or Shutdown on it.
func (s *Server) Inner() *server.Server {
	return s.inner
}
