package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/modledger/modledger/projection"
)

// readyCheckTimeout bounds each readiness check.
const readyCheckTimeout = 2 * time.Second

// observer serves /metrics, /healthz and /readyz for a process running
// roles.
type observer struct {
	registry *prometheus.Registry
	nc       *nats.Conn
	js       jetstream.JetStream
	stream   string
	pool     *pgxpool.Pool // nil when no role needs PostgreSQL
	schema   string
	stopping atomic.Bool

	ln  net.Listener
	srv *http.Server
}

// newObserver returns an observer whose registry holds the Go runtime and
// process collectors; roles register their own metrics with it.
func newObserver(nc *nats.Conn, stream string, pool *pgxpool.Pool, schema string) (*observer, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &observer{registry: reg, nc: nc, js: js, stream: stream, pool: pool, schema: schema}, nil
}

// check is one readiness check's result.
type check struct {
	Name  string `json:"name"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// readiness runs every check: NATS connected, the stream reachable and, when
// the process uses PostgreSQL, the database reachable and its migrations
// current. A stopping process is not ready.
func (o *observer) readiness(ctx context.Context) (bool, []check) {
	run := func(name string, fn func(ctx context.Context) error) check {
		ctx, cancel := context.WithTimeout(ctx, readyCheckTimeout)
		defer cancel()
		if err := fn(ctx); err != nil {
			return check{Name: name, Error: err.Error()}
		}
		return check{Name: name, OK: true}
	}
	checks := []check{
		run("process", func(context.Context) error {
			if o.stopping.Load() {
				return errors.New("shutting down")
			}
			return nil
		}),
		run("nats", func(context.Context) error {
			if st := o.nc.Status(); st != nats.CONNECTED {
				return fmt.Errorf("connection is %s", st)
			}
			return nil
		}),
		run("stream", func(ctx context.Context) error {
			_, err := o.js.Stream(ctx, o.stream)
			return err
		}),
	}
	if o.pool != nil {
		checks = append(checks,
			run("postgres", func(ctx context.Context) error { return o.pool.Ping(ctx) }),
			run("migrations", func(ctx context.Context) error {
				cur, newest, err := projection.MigrationStatus(ctx, o.pool, o.schema)
				if err != nil {
					return err
				}
				if cur != newest {
					return fmt.Errorf("schema %s is at version %d, this build needs %d: run modledger migrate", o.schema, cur, newest)
				}
				return nil
			}))
	}
	ready := true
	for _, c := range checks {
		ready = ready && c.OK
	}
	return ready, checks
}

func (o *observer) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(o.registry, promhttp.HandlerOpts{Registry: o.registry}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ready, checks := o.readiness(r.Context())
		w.Header().Set("Content-Type", "application/json")
		if !ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(struct {
			Ready  bool    `json:"ready"`
			Checks []check `json:"checks"`
		}{ready, checks})
	})
	return mux
}

// listen binds addr; when fallback is set and addr is taken, a free port
// on the same host is used instead.
func (o *observer) listen(addr string, fallback bool, logger *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil && fallback {
		host, _, _ := net.SplitHostPort(addr)
		logger.Info("metrics address taken, using a free port", "addr", addr, "error", err)
		ln, err = net.Listen("tcp", net.JoinHostPort(host, "0"))
	}
	if err != nil {
		return fmt.Errorf("metrics: listen on %s: %w", addr, err)
	}
	o.ln = ln
	o.srv = &http.Server{Handler: o.handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := o.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("metrics server stopped", "error", err)
		}
	}()
	return nil
}

// addr is the address the observer listens on, or "" before listen.
func (o *observer) addr() string {
	if o.ln == nil {
		return ""
	}
	return o.ln.Addr().String()
}

// shutdown stops the HTTP server after its requests in flight.
func (o *observer) shutdown(ctx context.Context) error {
	if o.srv == nil {
		return nil
	}
	return o.srv.Shutdown(ctx)
}
