package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/modledger/modledger/command"
	"github.com/modledger/modledger/events"
	"github.com/modledger/modledger/internal/scheduler"
	"github.com/modledger/modledger/projection"
)

// Roles a process can run.
const (
	roleCommand   = "command"
	roleProjector = "projector"
	roleQuery     = "query"
	roleScheduler = "scheduler"
)

var knownRoles = []string{roleCommand, roleProjector, roleScheduler, roleQuery}

// needsDatabase reports whether a role reads or writes the read models.
func needsDatabase(role string) bool { return role != roleCommand }

// ledgerFlags are the settings every process that runs roles shares.
type ledgerFlags struct {
	stream          string
	prefix          string
	replicas        int
	duplicateWindow time.Duration
	logFormat       string
	logLevel        string
	minSeqWait      time.Duration
	metricsAddr     string
}

// register adds the flags; logFormat is the command's default.
func (f *ledgerFlags) register(fs *flag.FlagSet, getenv func(string) string, logFormat string) {
	fs.StringVar(&f.stream, "stream", envDefault(getenv, "MODLEDGER_STREAM", command.StreamNameDefault), "JetStream stream name (env MODLEDGER_STREAM)")
	fs.StringVar(&f.prefix, "subject-prefix", envDefault(getenv, "MODLEDGER_SUBJECT_PREFIX", events.DefaultPrefix), "subject prefix (env MODLEDGER_SUBJECT_PREFIX)")
	replicas, _ := strconv.Atoi(envDefault(getenv, "MODLEDGER_REPLICAS", "1"))
	fs.IntVar(&f.replicas, "replicas", replicas, "stream replicas: 1 in dev, 3 in production (env MODLEDGER_REPLICAS)")
	fs.DurationVar(&f.duplicateWindow, "duplicate-window", durationEnv(getenv, "MODLEDGER_DUPLICATE_WINDOW", command.DuplicateWindowDefault), "how long retried command ids are recognised by the server, at least 2m (env MODLEDGER_DUPLICATE_WINDOW)")
	fs.DurationVar(&f.minSeqWait, "min-seq-wait", durationEnv(getenv, "MODLEDGER_MIN_SEQ_WAIT", projection.MinSeqWaitDefault), "how long a query with min_seq waits for the read model before it answers unavailable (env MODLEDGER_MIN_SEQ_WAIT)")
	fs.StringVar(&f.logFormat, "log-format", envDefault(getenv, "MODLEDGER_LOG_FORMAT", logFormat), "log format: text or json (env MODLEDGER_LOG_FORMAT)")
	fs.StringVar(&f.logLevel, "log-level", envDefault(getenv, "MODLEDGER_LOG_LEVEL", "info"), "log level: debug, info, warn, error (env MODLEDGER_LOG_LEVEL)")
}

// registerMetrics adds --metrics-addr, for the commands that run roles.
func (f *ledgerFlags) registerMetrics(fs *flag.FlagSet, getenv func(string) string, def string) {
	fs.StringVar(&f.metricsAddr, "metrics-addr", envDefault(getenv, "MODLEDGER_METRICS_ADDR", def), "address of the HTTP server for /metrics, /healthz and /readyz; empty: none (env MODLEDGER_METRICS_ADDR)")
}

func (f *ledgerFlags) streamConfig() command.StreamConfig {
	return command.StreamConfig{Name: f.stream, Prefix: f.prefix, Replicas: f.replicas, DuplicateWindow: f.duplicateWindow}
}

// parseRoles reads a comma-separated role list.
func parseRoles(s string) ([]string, error) {
	var roles []string
	for _, r := range strings.Split(s, ",") {
		r = strings.TrimSpace(r)
		if r == "" {
			continue
		}
		if !slices.Contains(knownRoles, r) {
			return nil, usageError{fmt.Sprintf("--roles: unknown role %q (this build runs: %s)", r, strings.Join(knownRoles, ", "))}
		}
		if !slices.Contains(roles, r) {
			roles = append(roles, r)
		}
	}
	if len(roles) == 0 {
		return nil, usageError{"--roles: name at least one role"}
	}
	return roles, nil
}

// roleDeps are the connections the roles share.
type roleDeps struct {
	nc   *nats.Conn
	pool *pgxpool.Pool // nil when no role needs it
	db   *dbFlags
	// metricsFallback lets the metrics server take a free port when
	// --metrics-addr is taken (dev).
	metricsFallback bool
	// onRunning, when set, is called once every role runs, with the
	// metrics server's address ("" when there is none).
	onRunning func(metricsAddr string)
}

// runRoles runs the roles until ctx is done, then stops them gracefully:
// not ready, no new requests, in-flight commands and batches finish, NATS
// drains, the metrics server stops.
func runRoles(ctx context.Context, deps roleDeps, roles []string, lf *ledgerFlags, logger *slog.Logger) error {
	obs, err := newObserver(deps.nc, lf.stream, deps.pool, deps.db.schema)
	if err != nil {
		return err
	}
	reg := obs.registry
	var stops []func(context.Context) error
	stopAll := func() error {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var errs []error
		for _, stop := range slices.Backward(stops) {
			if err := stop(sctx); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
	var store *projection.Store
	if deps.pool != nil {
		var err error
		if store, err = projection.NewStore(deps.pool, deps.db.schema); err != nil {
			return err
		}
		if err := store.Migrate(ctx); err != nil {
			return err
		}
	}
	for _, role := range roles {
		var err error
		switch role {
		case roleCommand:
			var svc *command.Service
			svc, err = command.NewService(command.Config{
				Conn:       deps.nc,
				Stream:     lf.streamConfig(),
				Logger:     logger.With("role", roleCommand),
				Registerer: reg,
			})
			if err == nil {
				err = svc.Start(ctx)
				stops = append(stops, svc.Stop)
			}
		case roleProjector:
			var js jetstream.JetStream
			if js, err = jetstream.New(deps.nc); err != nil {
				break
			}
			for _, p := range projections(nil) {
				var pr *projection.Projector
				pr, err = projection.NewProjector(projection.ProjectorConfig{
					JetStream: js, Store: store, Projection: p, Stream: lf.stream, Prefix: lf.prefix,
					Logger: logger.With("role", roleProjector), Registerer: reg,
				})
				if err != nil {
					break
				}
				if err = pr.Start(ctx); err != nil {
					break
				}
				stops = append(stops, pr.Stop)
			}
		case roleScheduler:
			var client *command.Client
			if client, err = command.NewClient(deps.nc, command.WithPrefix(lf.prefix)); err != nil {
				break
			}
			var sch *scheduler.Scheduler
			sch, err = scheduler.New(scheduler.Config{Store: store, Expire: scheduler.CommandExpirer(client, scheduler.SystemActorDefault),
				Logger: logger.With("role", roleScheduler), Registerer: reg})
			if err == nil {
				err = sch.Start(ctx)
				stops = append(stops, sch.Stop)
			}
		case roleQuery:
			var q *projection.Queries
			if q, err = projection.NewQueries(deps.pool, deps.db.schema, &projection.QueriesOpts{Logger: logger.With("role", roleQuery), MinSeqWait: lf.minSeqWait}); err != nil {
				break
			}
			var qs *projection.QueryService
			qs, err = projection.NewQueryService(projection.QueryServiceConfig{
				Conn: deps.nc, Queries: q, Store: store, Prefix: lf.prefix, Logger: logger.With("role", roleQuery),
				MinSeqWait: lf.minSeqWait, Registerer: reg,
			})
			if err == nil {
				err = qs.Start(ctx)
			}
			stops = append(stops, func(ctx context.Context) error {
				defer q.Close()
				if qs == nil {
					return nil
				}
				return qs.Stop(ctx)
			})
		}
		if err != nil {
			return errors.Join(fmt.Errorf("start role %s: %w", role, err), stopAll())
		}
	}
	if store != nil {
		js, err := jetstream.New(deps.nc)
		if err != nil {
			return errors.Join(err, stopAll())
		}
		reg.MustRegister(projection.NewLagCollector(js, store, lf.stream, lf.prefix, logger.With("component", "metrics"), projections(nil)...))
	}
	if lf.metricsAddr != "" {
		if err := obs.listen(lf.metricsAddr, deps.metricsFallback, logger); err != nil {
			return errors.Join(err, stopAll())
		}
	}
	logger.Info("ledger running", "roles", strings.Join(roles, ","), "nats_url", deps.nc.ConnectedUrlRedacted(), "metrics_addr", obs.addr())
	if deps.onRunning != nil {
		deps.onRunning(obs.addr())
	}
	<-ctx.Done()
	logger.Info("shutting down")
	obs.stopping.Store(true)
	errs := []error{stopAll()}
	if err := deps.nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		errs = append(errs, fmt.Errorf("drain NATS connection: %w", err))
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := obs.shutdown(sctx); err != nil {
		errs = append(errs, fmt.Errorf("stop metrics server: %w", err))
	}
	return errors.Join(errs...)
}
