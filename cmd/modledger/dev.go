package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/modledger/modledger/internal/natsserver"
	"github.com/modledger/modledger/internal/pgcluster"
)

// devPortDefault is the port `modledger dev` asks for first; when it is taken
// (another NATS is often on 4222) the server takes a free one.
const devPortDefault = 4222

// metricsAddrDev is dev's default metrics address: loopback only; when
// taken, a free port is used.
const metricsAddrDev = "127.0.0.1:9090"

// devCmd runs a complete ledger on this machine with zero configuration.
type devCmd struct {
	dataDir string
	port    int
	db      dbFlags
	ledger  ledgerFlags
}

func devCommand() subcommand {
	return subcommand{
		name:    "dev",
		summary: "Run a complete ledger locally: embedded NATS with JetStream and every role.",
		usage:   "[flags]",
		examples: `  modledger dev
  modledger dev --data-dir /tmp/modledger --port 0`,
		flags: func(fs *flag.FlagSet, getenv func(string) string) runner {
			c := &devCmd{}
			fs.StringVar(&c.dataDir, "data-dir", envDefault(getenv, "MODLEDGER_DATA_DIR", "data"), "where the ledger keeps its data; a second start reuses it (env MODLEDGER_DATA_DIR)")
			fs.IntVar(&c.port, "port", devPortDefault, "NATS client port; if taken, a free port is used (0: always a free port)")
			c.db.register(fs, getenv)
			c.ledger.register(fs, getenv, "text")
			c.ledger.registerMetrics(fs, getenv, metricsAddrDev)
			return c
		},
	}
}

func (c *devCmd) Run(ctx context.Context, env *cliEnv) error {
	if len(env.args) > 0 {
		return usageError{fmt.Sprintf("unexpected arguments %q", env.args)}
	}
	logger, err := newLogger(env.stderr, c.ledger.logFormat, c.ledger.logLevel)
	if err != nil {
		return err
	}
	storeDir, err := filepath.Abs(filepath.Join(c.dataDir, "nats"))
	if err != nil {
		return err
	}
	// The data directory itself is traversable: the private PostgreSQL
	// cluster in it runs as the postgres user when dev runs as root.
	if err := os.MkdirAll(c.dataDir, 0o755); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	if err := os.MkdirAll(storeDir, 0o750); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	cfg := natsserver.Config{
		Port: c.port, StoreDir: storeDir, SyncAlways: true, ServerName: "modledger-dev",
		Logger: logger.With("component", "nats-server"),
	}
	srv, err := natsserver.Start(ctx, cfg)
	if err != nil && c.port != 0 {
		logger.Info("NATS port taken, using a free one", "port", c.port, "error", err)
		cfg.Port = 0
		srv, err = natsserver.Start(ctx, cfg)
	}
	if err != nil {
		return fmt.Errorf("start embedded NATS: %w", err)
	}
	defer srv.Shutdown()
	nc, err := nats.Connect(srv.ClientURL(), nats.Name("modledger dev"))
	if err != nil {
		return fmt.Errorf("connect to embedded NATS: %w", err)
	}
	defer nc.Close()
	deps := roleDeps{nc: nc, db: &c.db}
	if c.db.url == "" {
		pgDir := filepath.Join(c.dataDir, "pg")
		if err := os.MkdirAll(pgDir, 0o755); err != nil {
			return fmt.Errorf("create data directory: %w", err)
		}
		logger.Info("no DATABASE_URL: starting a private PostgreSQL cluster", "dir", pgDir)
		cluster, err := pgcluster.Start(ctx, pgDir)
		if err != nil {
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := cluster.Stop(sctx); err != nil {
				logger.Warn("stop the private PostgreSQL cluster", "error", err)
			}
		}()
		c.db.url = cluster.URL()
	}
	if deps.pool, err = c.db.pool(ctx, "modledger dev"); err != nil {
		return err
	}
	defer deps.pool.Close()
	deps.metricsFallback = true
	deps.onRunning = func(metricsAddr string) {
		printDevBanner(env.stdout, srv.ClientURL(), storeDir, c.db.url, c.db.schema, metricsAddr, &c.ledger)
	}
	return runRoles(ctx, deps, knownRoles, &c.ledger, logger)
}

func printDevBanner(w io.Writer, url, storeDir, dbURL, schema, metricsAddr string, lf *ledgerFlags) {
	metrics := "off (--metrics-addr)"
	if metricsAddr != "" {
		metrics = "http://" + metricsAddr + "/metrics, /healthz, /readyz"
	}
	p := lf.prefix
	fmt.Fprintf(w, `modledger dev is running.

  NATS:       %[1]s  (JetStream in %[2]s, fsync before every ack)
  Stream:     %[3]s, subjects %[4]s.case.> and %[4]s.claim.>
  PostgreSQL: %[5]s  (read models in schema %[6]s)
  Roles:      command, projector, scheduler, query
  Metrics:    %[7]s
  Stop:       Ctrl-C; a second start reuses the data.

Try it with the nats CLI (https://github.com/nats-io/natscli):

  nats --server %[1]s req %[4]s.cmd.1234.open '{"command_id":"0192f1a0-0000-7000-8000-000000000001","type":"WARN","user_id":"42","moderator_id":"7","reason":"first warning"}'
  nats --server %[1]s req %[4]s.cmd.1234.close '{"command_id":"0192f1a0-0000-7000-8000-000000000002","actor_id":"7","case_number":1,"reason":"appealed"}'
  nats --server %[1]s req %[4]s.query.1234.case_get '{"case_number":1}'
  nats --server %[1]s sub '%[4]s.case.1234.>'

`, url, storeDir, lf.stream, p, redactURL(dbURL), schema, metrics)
}

// redactURL hides a URL's passwords: its user's, and the password and
// sslpassword (a client key's passphrase) parameters PostgreSQL also takes,
// in a URL or in PostgreSQL's keyword/value form (host=... password=...).
func redactURL(s string) string {
	if !strings.Contains(s, "://") && strings.Contains(s, "=") {
		return passwordKV.ReplaceAllString(s, "${1}xxxxx")
	}
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	if q := u.Query(); q.Has("password") || q.Has("sslpassword") {
		for _, k := range []string{"password", "sslpassword"} {
			if q.Has(k) {
				q.Set(k, "xxxxx")
			}
		}
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// passwordKV finds the passwords of a keyword/value connection string.
var passwordKV = regexp.MustCompile(`(?i)\b((?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)

// redactURLs hides the passwords of a comma-separated URL list.
func redactURLs(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		parts[i] = redactURL(strings.TrimSpace(p))
	}
	return strings.Join(parts, ",")
}
