package projection

import (
	"context"
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
// calls FinishBulk, makes the indexes again (sorted builds, far cheaper
// than keeping them row by row), analyzes the tables, and applies whatever
// arrived meanwhile through Apply as usual.
type BulkProjection interface {
	Projection
	// ApplyBulk applies events as Apply does, but may leave out what
	// FinishBulk derives. It must not rely on a secondary index.
	ApplyBulk(ctx context.Context, tx pgx.Tx, evs []events.Event) error
	// FinishBulk derives, within tx, whatever ApplyBulk left out, so that
	// the generation is what Apply would have made. The indexes are still
	// dropped.
	FinishBulk(ctx context.Context, tx pgx.Tx) error
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

// Index builds after a bulk load.
const (
	// indexBuildWorkers is how many indexes are built at once, each on its
	// own connection. PostgreSQL builds a B-tree with parallel workers by
	// itself, but a GIN index (before version 18) on one core: two at a
	// time keep both cores of a small server busy.
	indexBuildWorkers = 2
	// indexBuildMemory is maintenance_work_mem for an index build: enough to
	// sort the keys of a few million cases in memory.
	indexBuildMemory = "256MB"
)

// createIndexes makes the deferred indexes again, indexBuildWorkers at a
// time, then analyzes tables of schema, so that the planner knows the
// sizes of what was loaded.
func (s *Store) createIndexes(ctx context.Context, schema string, defs []deferredIndex, tables []string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan deferredIndex)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for range min(indexBuildWorkers, len(defs)) {
		wg.Go(func() {
			for d := range work {
				err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
					if _, err := tx.Exec(ctx, `SELECT set_config('maintenance_work_mem', $1, true),
						set_config('synchronous_commit', 'off', true)`, indexBuildMemory); err != nil {
						return err
					}
					_, err := tx.Exec(ctx, d.create)
					return err
				})
				if err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("make index %s again after the bulk load: %w", d.name, err)
						cancel()
					}
					mu.Unlock()
				}
			}
		})
	}
	for _, d := range defs {
		select {
		case work <- d:
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
	names := make([]string, len(tables))
	for i, t := range tables {
		names[i] = pgx.Identifier{schema, t}.Sanitize()
	}
	if _, err := s.pool.Exec(ctx, `ANALYZE `+strings.Join(names, ", ")); err != nil {
		return fmt.Errorf("analyze %s after the bulk load: %w", schema, err)
	}
	return nil
}

// finishBulk runs p's FinishBulk on the generation in schema, in one
// transaction.
func (s *Store) finishBulk(ctx context.Context, p BulkProjection, schema string) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT set_config('search_path', $1, true), set_config('synchronous_commit', 'off', true),
			set_config('work_mem', $2, true)`, pgx.Identifier{schema}.Sanitize(), indexBuildMemory); err != nil {
			return err
		}
		return p.FinishBulk(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("finish the bulk load of %s: %w", schema, err)
	}
	return nil
}
