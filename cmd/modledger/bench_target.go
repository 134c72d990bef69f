package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/modledger/modledger/command"
	"github.com/modledger/modledger/events"
	"github.com/modledger/modledger/internal/natsserver"
	"github.com/modledger/modledger/projection"
)

// benchDatabaseURLDefault is the server --embedded makes its throwaway
// database on when neither --database-url nor DATABASE_URL is set: the one
// deploy/dev/ensure-postgres.sh runs.
const benchDatabaseURLDefault = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// benchConnsMax caps the client connections; clients share them.
const benchConnsMax = 8

// benchTarget is the ledger under load and the servers it runs on.
type benchTarget struct {
	embedded bool
	// mode is "durable" or "lazy" for an embedded server, "" for a running
	// ledger (its server's own setting).
	mode    string
	natsURL string // passwords redacted

	conns   []*nats.Conn
	cmds    []*command.Client
	queries []*projection.QueryClient
	js      jetstream.JetStream
	subj    events.Subjects
	prefix  string
	stream  string

	metricsURL string               // "" when there is none
	pool       *pgxpool.Pool        // nil without a database
	store      *projection.Store    // nil without a database
	replicas   int                  // the ledger stream's replicas, 1 when unknown
	closers    []func(*slog.Logger) // run in reverse by close
	// startProjector, with --backlog, starts the projector that was held
	// back during the load.
	startProjector func(context.Context) error

	natsVersion, pgVersion string
}

// openTarget starts the embedded ledger (--embedded) or connects to a
// running one.
func (c *benchCmd) openTarget(ctx context.Context, logger *slog.Logger) (_ *benchTarget, err error) {
	t := &benchTarget{embedded: c.embedded, prefix: c.prefix, stream: c.stream, subj: events.Subjects{Prefix: c.prefix}, replicas: 1}
	defer func() {
		if err != nil {
			t.close(logger)
		}
	}()
	url := ""
	var opts []nats.Option
	if c.embedded {
		if url, err = t.startEmbedded(ctx, c, logger); err != nil {
			return nil, err
		}
		t.mode = "lazy"
		if c.durable {
			t.mode = "durable"
		}
	} else {
		url = c.nats.url
		if opts, err = c.nats.options("modledger bench"); err != nil {
			return nil, err
		}
		opts = opts[:len(opts):len(opts)]
		t.metricsURL = c.metricsURL
		if c.db.url != "" {
			if t.pool, err = c.db.pool(ctx, "modledger bench"); err != nil {
				return nil, err
			}
			t.addCloser(func(*slog.Logger) { t.pool.Close() })
			if t.store, err = projection.NewStore(t.pool, c.db.schema); err != nil {
				return nil, err
			}
		}
	}
	t.natsURL = redactURLs(url)
	for i := range min(c.clients, benchConnsMax) {
		nc, err := nats.Connect(url, append(opts, nats.Name(fmt.Sprintf("modledger bench %d", i)))...)
		if err != nil {
			return nil, fmt.Errorf("connect to NATS at %s: %w", t.natsURL, err)
		}
		t.addCloser(func(*slog.Logger) { nc.Close() })
		cc, err := command.NewClient(nc, command.WithPrefix(c.prefix), command.WithAttemptTimeout(c.timeout))
		if err != nil {
			return nil, err
		}
		qc, err := projection.NewQueryClient(nc, projection.WithQueryPrefix(c.prefix), projection.WithQueryTimeout(c.timeout))
		if err != nil {
			return nil, err
		}
		t.conns, t.cmds, t.queries = append(t.conns, nc), append(t.cmds, cc), append(t.queries, qc)
	}
	t.natsVersion = t.conns[0].ConnectedServerVersion()
	if t.js, err = jetstream.New(t.conns[0]); err != nil {
		return nil, err
	}
	ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if st, err := t.js.Stream(ictx, t.stream); err == nil {
		t.replicas = max(1, st.CachedInfo().Config.Replicas)
	} else if !c.ceilingsOnly {
		return nil, fmt.Errorf("the ledger's stream %s: %w", t.stream, err)
	}
	if t.pool != nil {
		_ = t.pool.QueryRow(ictx, "SHOW server_version").Scan(&t.pgVersion)
	}
	return t, nil
}

// startEmbedded starts an embedded NATS server, a throwaway database and
// every role of the ledger, as `modledger dev` does, and returns the
// server's client URL.
func (t *benchTarget) startEmbedded(ctx context.Context, c *benchCmd, logger *slog.Logger) (string, error) {
	dir := c.dataDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "modledger-bench-")
		if err != nil {
			return "", err
		}
		dir = tmp
		t.addCloser(func(l *slog.Logger) {
			if err := os.RemoveAll(tmp); err != nil {
				l.Warn("bench: remove the data directory", "dir", tmp, "error", err)
			}
		})
	}
	storeDir := filepath.Join(dir, "nats")
	if err := os.MkdirAll(storeDir, 0o750); err != nil {
		return "", fmt.Errorf("create data directory: %w", err)
	}
	srv, err := natsserver.Start(ctx, natsserver.Config{
		StoreDir: storeDir, SyncAlways: c.durable, ServerName: "modledger-bench",
		Logger: logger.With("component", "nats-server"),
	})
	if err != nil {
		return "", fmt.Errorf("start embedded NATS: %w", err)
	}
	t.addCloser(func(*slog.Logger) { srv.Shutdown() })

	admin := c.db.url
	if admin == "" {
		admin = benchDatabaseURLDefault
	}
	dbURL, drop, err := createBenchDatabase(ctx, admin)
	if err != nil {
		return "", err
	}
	t.addCloser(drop)
	db := &dbFlags{url: dbURL, schema: c.db.schema}
	if t.pool, err = db.pool(ctx, "modledger bench"); err != nil {
		return "", err
	}
	t.addCloser(func(*slog.Logger) { t.pool.Close() })
	if t.store, err = projection.NewStore(t.pool, db.schema); err != nil {
		return "", err
	}

	roles := knownRoles
	if c.backlog {
		roles = slices.DeleteFunc(slices.Clone(knownRoles), func(r string) bool { return r == roleProjector })
		t.startProjector = func(ctx context.Context) error {
			_, err := t.startRoles(ctx, srv.ClientURL(), db, []string{roleProjector}, c, "", logger)
			return err
		}
	}
	addr, err := t.startRoles(ctx, srv.ClientURL(), db, roles, c, "127.0.0.1:0", logger)
	if err != nil {
		return "", err
	}
	t.metricsURL = "http://" + addr + "/metrics"
	return srv.ClientURL(), nil
}

// startRoles runs roles of the ledger in this process, on their own NATS
// connection, as `modledger dev` does, until close; it returns the address
// of their metrics server ("" when metricsAddr is empty).
func (t *benchTarget) startRoles(ctx context.Context, url string, db *dbFlags, roles []string, c *benchCmd, metricsAddr string, logger *slog.Logger) (string, error) {
	name := "modledger bench: " + strings.Join(roles, ",")
	nc, err := nats.Connect(url, nats.Name(name))
	if err != nil {
		return "", fmt.Errorf("connect to embedded NATS: %w", err)
	}
	t.addCloser(func(*slog.Logger) { nc.Close() })
	lf := &ledgerFlags{
		stream: c.stream, prefix: c.prefix, replicas: 1, duplicateWindow: command.DuplicateWindowDefault,
		logFormat: "text", logLevel: c.logLevel, minSeqWait: projection.MinSeqWaitDefault, metricsAddr: metricsAddr,
	}
	running := make(chan string, 1)
	stopped := make(chan error, 1)
	rctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	deps := roleDeps{nc: nc, pool: t.pool, db: db, onRunning: func(addr string) { running <- addr }}
	go func() { stopped <- runRoles(rctx, deps, roles, lf, logger.With("component", "ledger")) }()
	select {
	case addr := <-running:
		t.addCloser(func(l *slog.Logger) {
			stop()
			if err := <-stopped; err != nil {
				l.Warn("bench: stop the embedded ledger", "roles", roles, "error", err)
			}
		})
		return addr, nil
	case err := <-stopped:
		stop()
		return "", fmt.Errorf("start the embedded ledger (%s): %w", strings.Join(roles, ","), err)
	case <-ctx.Done():
		stop()
		<-stopped
		return "", ctx.Err()
	}
}

// createBenchDatabase creates an empty database with a random name on the
// server of adminURL, and returns its URL and a function that drops it.
func createBenchDatabase(ctx context.Context, adminURL string) (string, func(*slog.Logger), error) {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "modledger_bench_" + hex.EncodeToString(b)
	ident := pgx.Identifier{name}.Sanitize()
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, adminURL)
	if err != nil {
		return "", nil, fmt.Errorf("connect to PostgreSQL at %s (set --database-url or DATABASE_URL to a server where you may create databases): %w", redactURL(adminURL), err)
	}
	defer conn.Close(context.WithoutCancel(cctx))
	if _, err := conn.Exec(cctx, "CREATE DATABASE "+ident); err != nil {
		return "", nil, fmt.Errorf("create the throwaway database %s: %w", name, err)
	}
	drop := func(l *slog.Logger) {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(dctx, adminURL)
		if err == nil {
			defer conn.Close(dctx)
			_, err = conn.Exec(dctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)")
		}
		if err != nil {
			l.Warn("bench: drop the throwaway database", "database", name, "error", err)
		}
	}
	dbURL, err := withDatabaseName(adminURL, name)
	if err != nil {
		drop(slog.New(slog.DiscardHandler))
		return "", nil, err
	}
	return dbURL, drop, nil
}

// withDatabaseName returns the connection string dsn naming database name.
func withDatabaseName(dsn, name string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", usageError{fmt.Sprintf("--database-url: %v", err)}
		}
		u.Path, u.RawPath = "/"+name, ""
		return u.String(), nil
	}
	return strings.TrimSpace(dsn) + " dbname=" + name, nil // a later keyword wins
}

func (t *benchTarget) addCloser(f func(*slog.Logger)) { t.closers = append(t.closers, f) }

// close stops and removes what openTarget started, last first.
func (t *benchTarget) close(logger *slog.Logger) {
	for _, f := range slices.Backward(t.closers) {
		f(logger)
	}
	t.closers = nil
}

// projectionStatus reads the cases projection's progress from PostgreSQL;
// ok is false without a database.
func (t *benchTarget) projectionStatus(ctx context.Context) (st projection.ProjectionStatus, ok bool, err error) {
	if t.store == nil {
		return st, false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	sts, err := projection.Status(ctx, t.js, t.store, t.stream, t.prefix, projections(nil)...)
	if err != nil || len(sts) == 0 {
		return st, false, err
	}
	return sts[0], true, nil
}

// samplePayload returns the body of a real opened event, the size the
// ceilings publish and copy: the last one in the stream, or one encoded
// here with the fields the load sends when there is none.
func (t *benchTarget) samplePayload(ctx context.Context, load *loadReport) []byte {
	if load != nil {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if st, err := t.js.Stream(ctx, t.stream); err == nil {
			if m, err := st.GetLastMsgForSubject(ctx, t.subj.AllOpened()); err == nil {
				return m.Data
			}
		}
	}
	codec, err := events.NewCodec()
	if err == nil {
		e := events.Event{
			Envelope: events.Envelope{
				EventID: uuid.New(), GuildID: 900000000000000001, CaseNumber: 1234, CaseID: uuid.New(),
				OccurredAt: time.Now(), ActorID: benchModeratorBase + 1, CommandID: uuid.New(), Command: "open", CorrelationID: uuid.New(),
			},
			Data: events.CaseOpened{CaseFields: benchCaseFields(0, 1, 1)},
		}
		if b, err := codec.Encode(e); err == nil {
			return b
		}
	}
	return make([]byte, 512)
}

// errNoDatabase is reported for a ceiling that needs PostgreSQL when the
// bench has none.
var errNoDatabase = errors.New("no database: give --database-url")
