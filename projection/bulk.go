package projection

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/modledger/modledger/events"
)

// BulkProjection is a Projection that fills a generation no query reads yet
// (a rebuild) faster than batch by batch. Before the first ApplyBulk the
// runtime drops the generation's secondary indexes and unique constraints
// (primary keys stay); once the build has caught up with the stream it
// runs the projection's BulkSteps and makes the indexes again (sorted
// builds, far cheaper than keeping them row by row), analyzes the tables,
// and applies whatever arrived meanwhile through Apply as usual.
type BulkProjection interface {
	Projection
	// ApplyBulk applies events as Apply does, but may leave out what the
	// BulkSteps derive. It must not rely on a secondary index. The runtime
	// calls it concurrently, in separate transactions, with the events of
	// disjoint sets of guilds (each guild's in stream order).
	ApplyBulk(ctx context.Context, tx pgx.Tx, evs []events.Event) error
	// BulkSteps derive what ApplyBulk left out, so that the generation is
	// what Apply would have made. They are independent of each other and
	// of the indexes (which may not exist yet): the runtime runs them
	// concurrently, each in a transaction of its own whose search_path is
	// the generation's schema.
	BulkSteps() []BulkStep
}

// BulkStep is one step of the end of a bulk load.
type BulkStep struct {
	// Name says what the step makes, for errors and logs.
	Name string
	// Run does it within tx.
	Run func(ctx context.Context, tx pgx.Tx) error
}

// deferredIndex is a secondary index or unique constraint dropped for a bulk
// load, with the DDL that makes it again.
type deferredIndex struct {
	name, drop, create string
}

// sqlSecondaryIndexes lists a schema's indexes other than primary keys,
// with the constraint each backs, if any.
const sqlSecondaryIndexes = `SELECT ic.relname, pg_get_indexdef(i.indexrelid), t.relname, con.conname, pg_get_constraintdef(con.oid)
	FROM pg_index i
	JOIN pg_class ic ON ic.oid = i.indexrelid
	JOIN pg_class t ON t.oid = i.indrelid
	JOIN pg_namespace n ON n.oid = t.relnamespace
	LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid AND con.contype IN ('u', 'x')
	WHERE n.nspname = $1 AND NOT i.indisprimary
	ORDER BY t.relname, ic.relname`

// dropSecondaryIndexes drops the secondary indexes and unique constraints of
// the tables in schema and returns what makes them again.
func (s *Store) dropSecondaryIndexes(ctx context.Context, schema string) ([]deferredIndex, error) {
	var out []deferredIndex
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, sqlSecondaryIndexes, schema)
		if err != nil {
			return err
		}
		for rows.Next() {
			var index, def, table string
			var con, conDef *string
			if err := rows.Scan(&index, &def, &table, &con, &conDef); err != nil {
				rows.Close()
				return err
			}
			t := pgx.Identifier{schema, table}.Sanitize()
			d := deferredIndex{name: index, drop: `DROP INDEX ` + pgx.Identifier{schema, index}.Sanitize(), create: def}
			if con != nil {
				c := pgx.Identifier{*con}.Sanitize()
				d.drop = `ALTER TABLE ` + t + ` DROP CONSTRAINT ` + c
				d.create = `ALTER TABLE ` + t + ` ADD CONSTRAINT ` + c + ` ` + *conDef
			}
			out = append(out, d)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, d := range out {
			if _, err := tx.Exec(ctx, d.drop); err != nil {
				return fmt.Errorf("%s: %w", d.name, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("drop the indexes of %s for a bulk load: %w", schema, err)
	}
	return out, nil
}

// The end of a bulk load.
const (
	// finishWorkers is how many derive steps and index builds run at once,
	// each on its own connection. PostgreSQL builds a B-tree with parallel
	// workers by itself, but a GIN index (before version 18) or a step on
	// one core: two at a time keep both cores of a small server busy.
	finishWorkers = 2
	// finishMemory is maintenance_work_mem and work_mem at the end of a
	// bulk load: enough to sort and group a few million cases in memory.
	finishMemory = "256MB"
)

// finishBulk ends a bulk load of the generation in schema: it runs p's
// BulkSteps, then makes the deferred indexes again, finishWorkers at a
// time, then analyzes the tables, so that the planner knows the sizes of
// what was loaded.
func (s *Store) finishBulk(ctx context.Context, p BulkProjection, schema string, defs []deferredIndex) error {
	steps := p.BulkSteps()
	for _, d := range defs {
		steps = append(steps, BulkStep{Name: "index " + d.name, Run: func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, d.create)
			return err
		}})
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan BulkStep)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for range min(finishWorkers, len(steps)) {
		wg.Go(func() {
			for step := range work {
				err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
					if _, err := tx.Exec(ctx, `SELECT set_config('search_path', $1, true),
						set_config('synchronous_commit', 'off', true), set_config('maintenance_work_mem', $2, true),
						set_config('work_mem', $2, true)`, pgx.Identifier{schema}.Sanitize(), finishMemory); err != nil {
						return err
					}
					return step.Run(ctx, tx)
				})
				if err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("finish the bulk load of %s: %s: %w", schema, step.Name, err)
						cancel()
					}
					mu.Unlock()
				}
			}
		})
	}
	for _, step := range steps {
		select {
		case work <- step:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	if first != nil {
		return first
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	tables := p.Tables()
	names := make([]string, len(tables))
	for i, t := range tables {
		names[i] = pgx.Identifier{schema, t}.Sanitize()
	}
	if _, err := s.pool.Exec(ctx, `ANALYZE `+strings.Join(names, ", ")); err != nil {
		return fmt.Errorf("analyze %s after the bulk load: %w", schema, err)
	}
	return nil
}

// bulkWorkers is how many transactions a batch of a bulk load is applied
// in at once, each with the events of its own guilds: PostgreSQL runs a
// transaction on one core, and a bulk load keeps it busy.
const bulkWorkers = 2

// applyBulkBatch applies a batch of a bulk load to generation only: the
// events at or below its checkpoint are skipped, the rest split by guild
// over bulkWorkers transactions applied at once through ApplyBulk, then the
// checkpoint moves to the last event. Unlike a live batch this is not
// atomic: a bulk load that fails part way is not resumed but dropped and
// started over (Rebuild), so only its end needs to be right.
func (s *Store) applyBulkBatch(ctx context.Context, p BulkProjection, evs []events.Event, only int) (int, uint64, error) {
	fail := func(err error) (int, uint64, error) { return 0, 0, fmt.Errorf("projection %s: %w", p.Name(), err) }
	var schema string
	var checkpoint uint64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		if schema, err = s.generationSchema(ctx, tx, p, only); err != nil {
			return err
		}
		var seq int64
		err = tx.QueryRow(ctx, `SELECT seq FROM `+pgx.Identifier{schema, "checkpoint"}.Sanitize()+` WHERE projection = $1`,
			p.Name()).Scan(&seq)
		checkpoint = uint64(seq)
		return err
	})
	if err != nil {
		return fail(fmt.Errorf("read checkpoint: %w", err))
	}
	fresh := evs
	for len(fresh) > 0 && fresh[0].Seq <= checkpoint {
		fresh = fresh[1:]
	}
	for i := 1; i < len(fresh); i++ {
		if fresh[i].Seq <= fresh[i-1].Seq {
			return fail(fmt.Errorf("events out of order: sequence %d after %d", fresh[i].Seq, fresh[i-1].Seq))
		}
	}
	if len(fresh) == 0 {
		return 0, checkpoint, nil
	}
	var parts [bulkWorkers][]events.Event
	for _, e := range fresh {
		i := guildPart(e.GuildID, bulkWorkers)
		parts[i] = append(parts[i], e)
	}
	var (
		wg   sync.WaitGroup
		errs [bulkWorkers]error
	)
	for i, part := range parts {
		if len(part) == 0 {
			continue
		}
		wg.Go(func() {
			errs[i] = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
				if _, err := s.generationSchema(ctx, tx, p, only); err != nil {
					return err
				}
				if _, err := tx.Exec(ctx, `SELECT set_config('search_path', $1, true), set_config('synchronous_commit', 'off', true)`,
					pgx.Identifier{schema}.Sanitize()); err != nil {
					return err
				}
				return p.ApplyBulk(ctx, tx, part)
			})
		})
	}
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		return fail(err)
	}
	last := fresh[len(fresh)-1]
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := s.generationSchema(ctx, tx, p, only); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE `+pgx.Identifier{schema, "checkpoint"}.Sanitize()+
			` SET seq = $2, event_time = $3, updated_at = now() WHERE projection = $1`, p.Name(), int64(last.Seq), last.OccurredAt)
		return err
	})
	if err != nil {
		return fail(fmt.Errorf("write checkpoint: %w", err))
	}
	return len(fresh), last.Seq, nil
}

// guildPart returns which of n parts a guild's events go to.
func guildPart(g events.Snowflake, n int) int {
	return int((uint64(g) * 0x9E3779B97F4A7C15 >> 32) % uint64(n))
}
