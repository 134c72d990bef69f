package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/modledger/modledger/projection"
)

// migrateCmd brings the read side's schema up to date.
type migrateCmd struct {
	db dbFlags
}

func migrateCommand() subcommand {
	return subcommand{
		name:    "migrate",
		summary: "Create or update the read models' PostgreSQL schema (safe to run from several processes).",
		usage:   "[flags]",
		examples: `  modledger migrate --database-url postgres://modledger@db/modledger
  DATABASE_URL=postgres://... modledger migrate --schema modledger`,
		flags: func(fs *flag.FlagSet, getenv func(string) string) runner {
			c := &migrateCmd{}
			c.db.register(fs, getenv)
			return c
		},
	}
}

func (c *migrateCmd) Run(ctx context.Context, env *cliEnv) error {
	if len(env.args) > 0 {
		return usageError{fmt.Sprintf("unexpected arguments %q", env.args)}
	}
	pool, err := c.db.pool(ctx, "modledger migrate")
	if err != nil {
		return err
	}
	defer pool.Close()
	store, err := projection.NewStore(pool, c.db.schema)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "migrating schema %s ...\n", c.db.schema)
	if err := store.Migrate(ctx); err != nil {
		return err
	}
	current, newest, err := projection.MigrationStatus(ctx, pool, c.db.schema)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "control schema %s at version %d of %d\n", c.db.schema, current, newest)
	for _, p := range projections(nil) {
		gen, err := store.Activate(ctx, p)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.stdout, "projection %s: generation %d (version %d) in schema %s\n", p.Name(), gen.Number, gen.Version, gen.Schema)
	}
	return nil
}
