package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
)

// metricsAddrServe is serve's default metrics address: every interface, so
// that Prometheus and the orchestrator's probes reach it.
const metricsAddrServe = ":9090"

// serveCmd runs ledger roles against an existing NATS (2.12 or newer).
type serveCmd struct {
	nats   natsFlags
	db     dbFlags
	roles  string
	ledger ledgerFlags
}

func serveCommand() subcommand {
	return subcommand{
		name:    "serve",
		summary: "Run ledger roles against a NATS server (2.12+): the production shape.",
		usage:   "[flags]",
		examples: `  modledger serve --nats-url nats://nats-1:4222 --roles command
  modledger serve --roles projector --database-url postgres://modledger@db/modledger
  MODLEDGER_NATS_URL=nats://127.0.0.1:4222 modledger serve --replicas 3 --log-format json`,
		flags: func(fs *flag.FlagSet, getenv func(string) string) runner { return newServeCmd(fs, getenv) },
	}
}

// newServeCmd registers serve's flags; `modledger config` shares them.
func newServeCmd(fs *flag.FlagSet, getenv func(string) string) *serveCmd {
	c := &serveCmd{}
	c.nats.register(fs, getenv)
	c.db.register(fs, getenv)
	fs.StringVar(&c.roles, "roles", envDefault(getenv, "MODLEDGER_ROLES", roleCommand), "comma-separated roles to run (env MODLEDGER_ROLES)")
	c.ledger.register(fs, getenv, "json")
	c.ledger.registerMetrics(fs, getenv, metricsAddrServe)
	return c
}

// validate checks what serve checks before it connects anywhere.
func (c *serveCmd) validate() ([]string, error) {
	roles, err := parseRoles(c.roles)
	if err != nil {
		return nil, err
	}
	if _, err := newLogger(io.Discard, c.ledger.logFormat, c.ledger.logLevel); err != nil {
		return nil, err
	}
	if _, err := c.nats.options("modledger serve"); err != nil {
		return nil, err
	}
	if slices.ContainsFunc(roles, needsDatabase) && c.db.url == "" {
		return nil, usageError{"--database-url (or DATABASE_URL) is required for the " + strings.Join(slices.DeleteFunc(slices.Clone(roles), func(r string) bool { return !needsDatabase(r) }), ", ") + " role"}
	}
	if err := c.ledger.streamConfig().Validate(); err != nil {
		return nil, usageError{err.Error()}
	}
	return roles, nil
}

func (c *serveCmd) Run(ctx context.Context, env *cliEnv) error {
	if len(env.args) > 0 {
		return usageError{fmt.Sprintf("unexpected arguments %q", env.args)}
	}
	roles, err := c.validate()
	if err != nil {
		return err
	}
	logger, err := newLogger(env.stderr, c.ledger.logFormat, c.ledger.logLevel)
	if err != nil {
		return err
	}
	deps := roleDeps{db: &c.db}
	if slices.ContainsFunc(roles, needsDatabase) {
		if deps.pool, err = c.db.pool(ctx, "modledger serve"); err != nil {
			return err
		}
		defer deps.pool.Close()
	}
	if deps.nc, err = c.nats.connect("modledger serve"); err != nil {
		return err
	}
	defer deps.nc.Close()
	return runRoles(ctx, deps, roles, &c.ledger, logger)
}
