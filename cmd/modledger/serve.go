package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/nats-io/nats.go"
)

// serveCmd runs ledger roles against an existing NATS (2.12 or newer).
type serveCmd struct {
	natsURL     string
	natsCreds   string
	databaseURL string
	roles       string
	ledger      ledgerFlags
}

func serveCommand() subcommand {
	return subcommand{
		name:    "serve",
		summary: "Run ledger roles against a NATS server (2.12+): the production shape.",
		usage:   "[flags]",
		examples: `  modledger serve --nats-url nats://nats-1:4222 --roles command
  MODLEDGER_NATS_URL=nats://127.0.0.1:4222 modledger serve --replicas 3 --log-format json`,
		flags: func(fs *flag.FlagSet, getenv func(string) string) runner {
			c := &serveCmd{}
			fs.StringVar(&c.natsURL, "nats-url", envDefault(getenv, "MODLEDGER_NATS_URL", nats.DefaultURL), "NATS server URL(s), comma separated (env MODLEDGER_NATS_URL)")
			fs.StringVar(&c.natsCreds, "nats-creds", envDefault(getenv, "MODLEDGER_NATS_CREDS", ""), "NATS credentials file (env MODLEDGER_NATS_CREDS)")
			fs.StringVar(&c.databaseURL, "database-url", envDefault(getenv, "DATABASE_URL", ""), "PostgreSQL URL for the read-side roles (env DATABASE_URL)")
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
	opts := []nats.Option{nats.Name("modledger serve"), nats.MaxReconnects(-1)}
	if c.natsCreds != "" {
		opts = append(opts, nats.UserCredentials(c.natsCreds))
	}
	nc, err := nats.Connect(c.natsURL, opts...)
	if err != nil {
		return fmt.Errorf("connect to NATS at %s: %w", c.natsURL, err)
	}
	defer nc.Close()
	return runRoles(ctx, nc, roles, &c.ledger, logger)
}
