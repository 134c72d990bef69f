package projection

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/modledger/modledger/events"
	"github.com/modledger/modledger/events/shred"
)

// RebuildConfig configures Rebuild.
type RebuildConfig struct {
	// JetStream reaches the ledger's stream. Required.
	JetStream jetstream.JetStream
	// Store is the read side's PostgreSQL. Required.
	Store *Store
	// Projection is the projection to rebuild. Required.
	Projection Projection
	// Stream is the ledger's stream. Defaults to "MODLEDGER".
	Stream string
	// Prefix is the ledger's subject prefix. Defaults to "modledger".
	Prefix string
	// BatchSize bounds a batch. Defaults to 10,000 (RebuildBatchSizeDefault).
	BatchSize int
	// Incremental builds batch by batch through Projection.Apply, as the
	// live projector does, even when the projection is a BulkProjection
	// (for comparisons and tests). Defaults to false: a BulkProjection is
	// loaded in bulk, its secondary indexes made after the load.
	Incremental bool
	// Logger receives progress logs. Defaults to discarding them.
	Logger *slog.Logger
	// Progress, when set, is called after every batch.
	Progress func(RebuildProgress)
}

// RebuildBatchSizeDefault is the default batch of a rebuild: larger than a
// live projector's, since a rebuild always has a backlog and nobody waits
// for its single batches.
const RebuildBatchSizeDefault = 10_000

// RebuildProgress reports how far a rebuild has come.
type RebuildProgress struct {
	// Generation is the generation being built.
	Generation int
	// Checkpoint is the last sequence applied to it.
	Checkpoint uint64
	// Pending is how many events remain before the head of the stream.
	Pending uint64
	// Swapped is set on the last report, once queries read the new
	// generation.
	Swapped bool
}

// Rebuild builds a new generation of a projection from sequence 1 beside
// the active one, catches up to the head of the stream, and swaps it in:
// one transaction repoints the views while the live projector waits, so
// queries see the old model or the new one, never a half-built one. The
// old generation is dropped afterwards. A rebuild that dies leaves the
// active generation untouched; the next rebuild starts over.
func Rebuild(ctx context.Context, cfg RebuildConfig) (Generation, error) {
	if cfg.Stream == "" {
		cfg.Stream = StreamDefault
	}
	if cfg.Prefix == "" {
		cfg.Prefix = PrefixDefault
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = RebuildBatchSizeDefault
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.JetStream == nil || cfg.Store == nil || cfg.Projection == nil {
		return Generation{}, errors.New("rebuild: JetStream, store and projection are required")
	}
	s, p := cfg.Store, cfg.Projection
	if _, err := s.Activate(ctx, p); err != nil {
		return Generation{}, err
	}
	gen, err := s.beginBuild(ctx, p)
	if err != nil {
		return Generation{}, err
	}
	cfg.Logger.Info("rebuild started", "projection", p.Name(), "generation", gen.Number, "schema", gen.Schema)
	codec, err := events.NewCodec()
	if err != nil {
		return Generation{}, err
	}
	keys, err := shred.NewStore(shred.Config{Conn: cfg.JetStream.Conn(), Stream: shred.StreamName(cfg.Stream), Prefix: cfg.Prefix})
	if err != nil {
		return Generation{}, fmt.Errorf("rebuild: %w", err)
	}
	// The consumer reads the whole stream and skips what is not a case
	// event (claims): with a subject filter the server counts the filter's
	// pending messages over every subject at each pull request, which with
	// a million cases costs a fifth of a second a request.
	cons, err := cfg.JetStream.OrderedConsumer(ctx, cfg.Stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return Generation{}, fmt.Errorf("rebuild: consumer: %w", err)
	}
	casePrefix := cfg.Prefix + ".case."
	// fetch reads the next batch; a batch of no message means the head is
	// reached.
	fetch := func(ctx context.Context) (fetched, error) {
		batch, err := cons.FetchNoWait(cfg.BatchSize)
		if err != nil {
			return fetched{}, err
		}
		var f fetched
		for m := range batch.Messages() {
			md, err := m.Metadata()
			if err != nil {
				return fetched{}, err
			}
			f.messages++
			f.pending = md.NumPending
			if !strings.HasPrefix(m.Subject(), casePrefix) {
				continue
			}
			e, err := codec.Decode(m.Data())
			if err != nil {
				return fetched{}, fmt.Errorf("%w: event at sequence %d: %w", ErrProjectionStopped, md.Sequence.Stream, err)
			}
			e.Seq = md.Sequence.Stream
			f.evs = append(f.evs, e)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return fetched{}, err
		}
		// The batch's keys in a few batched reads; a case whose key is
		// gone (it was redacted) has empty personal text, as it has live.
		if err := keys.OpenEvents(ctx, f.evs); err != nil {
			return fetched{}, fmt.Errorf("rebuild: %w", err)
		}
		return f, nil
	}
	progress := func(pr RebuildProgress) {
		if cfg.Progress != nil {
			cfg.Progress(pr)
		}
	}
	// Catch up outside any lock: the live projector keeps going. The next
	// batch is fetched and decoded while one is applied.
	catchUp := func(mode applyMode) error {
		ctx, cancel := context.WithCancel(ctx)
		batches := prefetch(ctx, fetch)
		defer func() {
			cancel()
			for range batches { // wait for the fetcher to stop
			}
		}()
		for f := range batches {
			if f.err != nil {
				return f.err
			}
			if len(f.evs) > 0 {
				_, cp, err := s.applyBatch(ctx, p, f.evs, gen.Number, mode)
				if err != nil {
					return err
				}
				progress(RebuildProgress{Generation: gen.Number, Checkpoint: cp, Pending: f.pending})
			}
		}
		return ctx.Err()
	}
	bp, bulk := p.(BulkProjection)
	bulk = bulk && !cfg.Incremental
	if !bulk {
		if err := catchUp(applyMode{async: true}); err != nil {
			return Generation{}, fmt.Errorf("rebuild %s: %w", p.Name(), err)
		}
	} else {
		// Load without the secondary indexes, derive what the bulk load
		// left out, make the indexes, and apply what came meanwhile as
		// usual.
		deferred, err := s.dropSecondaryIndexes(ctx, gen.Schema)
		if err != nil {
			return Generation{}, fmt.Errorf("rebuild %s: %w", p.Name(), err)
		}
		if err := catchUp(applyMode{async: true, bulk: true}); err != nil {
			return Generation{}, fmt.Errorf("rebuild %s: %w", p.Name(), err)
		}
		start := time.Now()
		if err := s.finishBulk(ctx, bp, gen.Schema, deferred); err != nil {
			return Generation{}, fmt.Errorf("rebuild %s: %w", p.Name(), err)
		}
		cfg.Logger.Info("rebuild loaded in bulk; derived tables and indexes made", "projection", p.Name(),
			"generation", gen.Number, "indexes", len(deferred), "took", time.Since(start).Round(time.Millisecond))
		if err := catchUp(applyMode{async: true}); err != nil {
			return Generation{}, fmt.Errorf("rebuild %s: %w", p.Name(), err)
		}
	}
	// Swap: with the projection's row locked the live projector waits;
	// apply what arrived meanwhile and repoint the views, all in one
	// transaction.
	var old *Generation
	var final uint64
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var activeN, activeV *int
		var activeS *string
		if err := tx.QueryRow(ctx, `SELECT active_generation, active_schema, active_version FROM `+s.table("projections")+`
			WHERE name = $1 FOR UPDATE`, p.Name()).Scan(&activeN, &activeS, &activeV); err != nil {
			return err
		}
		if activeN != nil {
			old = &Generation{Number: *activeN, Schema: *activeS, Version: *activeV}
		}
		for {
			f, err := fetch(ctx)
			if err != nil {
				return err
			}
			if f.messages == 0 {
				break
			}
			if _, _, err := s.applyInTx(ctx, tx, gen.Schema, p, f.evs, applyMode{}); err != nil {
				return err
			}
			// The head as this fetch saw it: what comes later is the live
			// projector's. Waiting for a fetch that finds nothing would
			// never end under steady writes (a command every few
			// milliseconds arrives during each apply), and the live
			// projector waits on this lock meanwhile.
			if f.pending == 0 {
				break
			}
		}
		if err := tx.QueryRow(ctx, `SELECT seq FROM `+pgx.Identifier{gen.Schema, "checkpoint"}.Sanitize()+` WHERE projection = $1`,
			p.Name()).Scan(&final); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `SELECT set_config('search_path', $1, true)`, pgx.Identifier{s.schema}.Sanitize()); err != nil {
			return err
		}
		if err := s.pointViews(ctx, tx, p, gen); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE `+s.table("projections")+` SET active_generation = $2, active_schema = $3,
			active_version = $4, building_generation = NULL, building_schema = NULL, building_version = NULL,
			swapped_at = now() WHERE name = $1`, p.Name(), gen.Number, gen.Schema, gen.Version); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, s.NotifyChannel(), fmt.Sprintf("%s %d", p.Name(), final))
		return err
	})
	if err != nil {
		return Generation{}, fmt.Errorf("rebuild %s: swap: %w", p.Name(), err)
	}
	progress(RebuildProgress{Generation: gen.Number, Checkpoint: final, Swapped: true})
	cfg.Logger.Info("rebuild swapped in", "projection", p.Name(), "generation", gen.Number, "checkpoint", final)
	if old != nil && old.Schema != gen.Schema {
		if _, err := s.pool.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{old.Schema}.Sanitize()+` CASCADE`); err != nil {
			cfg.Logger.Warn("could not drop the old generation", "schema", old.Schema, "error", err)
		}
	}
	return gen, nil
}

// fetched is one fetch from the stream: the case events among its messages,
// how many messages it took, and how many remained after them.
type fetched struct {
	evs      []events.Event
	messages int
	pending  uint64
	err      error
}

// prefetch runs fetch in the background, one batch ahead of its reader,
// until a fetch fails, finds no message or finds the last one, or ctx ends.
// The channel is closed when the fetcher has stopped.
func prefetch(ctx context.Context, fetch func(context.Context) (fetched, error)) <-chan fetched {
	out := make(chan fetched, 1)
	go func() {
		defer close(out)
		for ctx.Err() == nil {
			f, err := fetch(ctx)
			f.err = err
			select {
			case out <- f:
			case <-ctx.Done():
				return
			}
			if err != nil || f.messages == 0 || f.pending == 0 {
				return
			}
		}
	}()
	return out
}

// beginBuild creates a new generation of p to build beside the active one.
// A build left behind by a rebuild that died is dropped first.
func (s *Store) beginBuild(ctx context.Context, p Projection) (Generation, error) {
	var gen Generation
	err := s.withProjectionLock(ctx, p, func(conn *pgx.Conn) error {
		var stale *string
		if err := conn.QueryRow(ctx, `SELECT building_schema FROM `+s.table("projections")+` WHERE name = $1`, p.Name()).Scan(&stale); err != nil {
			return err
		}
		if stale != nil {
			if _, err := conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{*stale}.Sanitize()+` CASCADE`); err != nil {
				return fmt.Errorf("drop abandoned build %s: %w", *stale, err)
			}
		}
		g, err := s.createGeneration(ctx, conn, p)
		if err != nil {
			return err
		}
		gen = g
		_, err = conn.Exec(ctx, `UPDATE `+s.table("projections")+` SET building_generation = $2, building_schema = $3,
			building_version = $4 WHERE name = $1`, p.Name(), g.Number, g.Schema, g.Version)
		return err
	})
	if err != nil {
		return Generation{}, fmt.Errorf("begin rebuild of %s: %w", p.Name(), err)
	}
	return gen, nil
}
