package main

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"strings"
)

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
		flags: func(fs *flag.FlagSet, getenv func(string) string) runner {
			c := &serveCmd{}
			c.nats.register(fs, getenv)
			c.db.register(fs, getenv)
			fs.StringVar(&c.roles, "roles", envDefault(getenv, "MODLEDGER_ROLES", roleCommand), "comma-separated roles to run (env MODLEDGER_ROLES)")
			c.ledger.register(fs, getenv, "json")
			return c
		},
	}
}

func (c *serveCmd) Run(ctx context.Context, env *cliEnv) error {
	if len(env.args) > 0 {
		return usageError{fmt.Sprintf("unexpected arguments %q", env.args)}
	}
	roles, err := parseRoles(c.roles)
	if err != nil {
		return err
	}
	logger, err := newLogger(env.stderr, c.ledger.logFormat, c.ledger.logLevel)
	if err != nil {
		return err
	}
	deps := roleDeps{db: &c.db}
	if slices.ContainsFunc(roles, needsDatabase) {
		if c.db.url == "" {
			return usageError{"--database-url (or DATABASE_URL) is required for the " + strings.Join(slices.DeleteFunc(slices.Clone(roles), func(r string) bool { return !needsDatabase(r) }), ", ") + " role"}
		}
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
