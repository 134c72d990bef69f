package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/projection"
)

// projections returns every projection this build keeps.
func projections(reg *aggregate.Registry) []projection.Projection {
	return []projection.Projection{projection.NewCasesProjection(reg)}
}

func projectionByName(name string) (projection.Projection, error) {
	for _, p := range projections(nil) {
		if p.Name() == name {
			return p, nil
		}
	}
	return nil, usageError{fmt.Sprintf("unknown projection %q (this build has: %s)", name, projection.CasesName)}
}

// projectionStatusCmd shows how far each projection is.
type projectionStatusCmd struct {
	nats   natsFlags
	db     dbFlags
	ledger ledgerFlags
	json   bool
}

func projectionStatusCommand() subcommand {
	return subcommand{
		name:    "projection status",
		summary: "Show each projection's generation, checkpoint and lag behind the stream.",
		usage:   "[flags]",
		examples: `  modledger projection status
  modledger projection status --json | jq '.[0].lag_events'`,
		flags: func(fs *flag.FlagSet, getenv func(string) string) runner {
			c := &projectionStatusCmd{}
			c.nats.register(fs, getenv)
			c.db.register(fs, getenv)
			c.ledger.register(fs, getenv, "text")
			fs.BoolVar(&c.json, "json", false, "print JSON for scripts")
			return c
		},
	}
}

func (c *projectionStatusCmd) Run(ctx context.Context, env *cliEnv) error {
	if len(env.args) > 0 {
		return usageError{fmt.Sprintf("unexpected arguments %q", env.args)}
	}
	nc, err := c.nats.connect("modledger projection status")
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	pool, err := c.db.pool(ctx, "modledger projection status")
	if err != nil {
		return err
	}
	defer pool.Close()
	store, err := projection.NewStore(pool, c.db.schema)
	if err != nil {
		return err
	}
	st, err := projection.Status(ctx, js, store, c.ledger.stream, c.ledger.prefix, projections(nil)...)
	if err != nil {
		return err
	}
	if c.json {
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROJECTION\tGENERATION\tVERSION\tCHECKPOINT\tHEAD\tLAG\tLAG TIME\tREBUILD")
	for _, s := range st {
		rebuild := "-"
		if s.Building != 0 {
			rebuild = fmt.Sprintf("generation %d at %d", s.Building, s.BuildingCheckpoint)
		}
		version := fmt.Sprint(s.Version)
		if s.Version != s.CodeVersion {
			version = fmt.Sprintf("%d (code %d)", s.Version, s.CodeVersion)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%d\t%s\t%s\n", s.Name, s.Generation, version, s.Checkpoint, s.Head,
			s.LagEvents, (time.Duration(s.LagSeconds * float64(time.Second))).Round(time.Millisecond), rebuild)
	}
	return tw.Flush()
}

// projectionRebuildCmd rebuilds a projection beside the live one.
type projectionRebuildCmd struct {
	nats   natsFlags
	db     dbFlags
	ledger ledgerFlags
}

func projectionRebuildCommand() subcommand {
	return subcommand{
		name:     "projection rebuild",
		summary:  "Rebuild a projection from sequence 1 beside the live one, then swap it in.",
		usage:    "[flags] NAME",
		examples: `  modledger projection rebuild cases`,
		flags: func(fs *flag.FlagSet, getenv func(string) string) runner {
			c := &projectionRebuildCmd{}
			c.nats.register(fs, getenv)
			c.db.register(fs, getenv)
			c.ledger.register(fs, getenv, "text")
			return c
		},
	}
}

func (c *projectionRebuildCmd) Run(ctx context.Context, env *cliEnv) error {
	if len(env.args) != 1 {
		return usageError{"name one projection to rebuild, for example: modledger projection rebuild cases"}
	}
	p, err := projectionByName(env.args[0])
	if err != nil {
		return err
	}
	nc, err := c.nats.connect("modledger projection rebuild")
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	pool, err := c.db.pool(ctx, "modledger projection rebuild")
	if err != nil {
		return err
	}
	defer pool.Close()
	store, err := projection.NewStore(pool, c.db.schema)
	if err != nil {
		return err
	}
	if err := store.Migrate(ctx); err != nil {
		return err
	}
	start := time.Now()
	last := time.Time{}
	gen, err := projection.Rebuild(ctx, projection.RebuildConfig{JetStream: js, Store: store, Projection: p,
		Stream: c.ledger.stream, Prefix: c.ledger.prefix,
		Progress: func(pr projection.RebuildProgress) {
			if time.Since(last) < time.Second && !pr.Swapped {
				return
			}
			last = time.Now()
			if pr.Swapped {
				fmt.Fprintf(env.stdout, "generation %d swapped in at sequence %d after %s\n", pr.Generation, pr.Checkpoint, time.Since(start).Round(time.Millisecond))
				return
			}
			fmt.Fprintf(env.stdout, "generation %d: at sequence %d, %d events to go\n", pr.Generation, pr.Checkpoint, pr.Pending)
		}})
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "projection %s now reads generation %d (schema %s)\n", p.Name(), gen.Number, gen.Schema)
	return nil
}
