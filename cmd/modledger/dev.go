package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/nats-io/nats.go"

	"github.com/modledger/modledger/internal/natsserver"
)

// devPortDefault is the port `modledger dev` asks for first; when it is taken
// (another NATS is often on 4222) the server takes a free one.
const devPortDefault = 4222

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
	roles := []string{roleCommand}
	if c.db.url != "" {
		if deps.pool, err = c.db.pool(ctx, "modledger dev"); err != nil {
			return err
		}
		defer deps.pool.Close()
		roles = knownRoles
	} else {
		logger.Warn("no DATABASE_URL: running the write side only; set --database-url to build the read models")
	}
	printDevBanner(env.stdout, srv.ClientURL(), storeDir, &c.ledger)
	return runRoles(ctx, deps, roles, &c.ledger, logger)
}

func printDevBanner(w io.Writer, url, storeDir string, lf *ledgerFlags) {
	p := lf.prefix
	fmt.Fprintf(w, `modledger dev is running.

  NATS:       %[1]s  (JetStream in %[2]s, fsync before every ack)
  Stream:     %[3]s, subjects %[4]s.case.> and %[4]s.claim.>
  Stop:       Ctrl-C; a second start reuses the data.

Try it with the nats CLI (https://github.com/nats-io/natscli):

  nats --server %[1]s req %[4]s.cmd.1234.open '{"command_id":"0192f1a0-0000-7000-8000-000000000001","type":"WARN","user_id":"42","moderator_id":"7","reason":"first warning"}'
  nats --server %[1]s req %[4]s.cmd.1234.close '{"command_id":"0192f1a0-0000-7000-8000-000000000002","actor_id":"7","case_number":1,"reason":"appealed"}'
  nats --server %[1]s sub '%[4]s.case.1234.>'

`, url, storeDir, lf.stream, p)
}
