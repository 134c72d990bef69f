package projection

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/modledger/modledger/events"
)

// Store is the read side's PostgreSQL: the control schema and the tables of
// every projection's generations. It is safe for concurrent use.
type Store struct {
	pool   *pgxpool.Pool
	schema string
}

// NewStore returns a store on pool whose control schema is schema.
func NewStore(pool *pgxpool.Pool, schema string) (*Store, error) {
	if schema == "" {
		schema = SchemaDefault
	}
	if err := ValidateSchema(schema); err != nil {
		return nil, err
	}
	return &Store{pool: pool, schema: schema}, nil
}

// Schema returns the control schema's name.
func (s *Store) Schema() string { return s.schema }

// Pool returns the store's pool.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Migrate brings the control schema to the newest version.
func (s *Store) Migrate(ctx context.Context) error { return Migrate(ctx, s.pool, s.schema) }

// Generation is one build of a projection's tables.
type Generation struct {
	Number  int
	Schema  string
	Version int
}

// ErrNoGeneration is returned when a projection has no active generation.
var ErrNoGeneration = errors.New("projection has no active generation")

func (s *Store) table(name string) string { return pgx.Identifier{s.schema, name}.Sanitize() }

// Activate makes sure p has an active generation, creating the first one
// (empty, at sequence 0) when there is none, and brings its tables to the
// newest migration. It returns the active generation. Concurrent callers
// wait for each other.
func (s *Store) Activate(ctx context.Context, p Projection) (Generation, error) {
	var gen Generation
	err := s.withProjectionLock(ctx, p, func(conn *pgx.Conn) error {
		if _, err := conn.Exec(ctx, `INSERT INTO `+s.table("projections")+` (name) VALUES ($1) ON CONFLICT DO NOTHING`, p.Name()); err != nil {
			return err
		}
		var num, version *int
		var schema *string
		if err := conn.QueryRow(ctx, `SELECT active_generation, active_schema, active_version FROM `+s.table("projections")+`
			WHERE name = $1`, p.Name()).Scan(&num, &schema, &version); err != nil {
			return err
		}
		if num != nil {
			gen = Generation{Number: *num, Schema: *schema, Version: *version}
			changed, err := runMigrations(ctx, conn, gen.Schema, p)
			if err != nil || !changed {
				return err
			}
			// A view shows the columns its table had when it was made:
			// make them again, so that new columns show.
			return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error { return s.pointViews(ctx, tx, p, gen) })
		}
		g, err := s.createGeneration(ctx, conn, p)
		if err != nil {
			return err
		}
		gen = g
		return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if err := s.pointViews(ctx, tx, p, g); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `UPDATE `+s.table("projections")+` SET active_generation = $2, active_schema = $3,
				active_version = $4, swapped_at = now() WHERE name = $1`, p.Name(), g.Number, g.Schema, g.Version)
			return err
		})
	})
	if err != nil {
		return Generation{}, fmt.Errorf("activate projection %s: %w", p.Name(), err)
	}
	return gen, nil
}

// withProjectionLock runs fn on a connection holding a session advisory lock
// on p, so that activations and rebuilds of one projection never overlap.
func (s *Store) withProjectionLock(ctx context.Context, p Projection, fn func(conn *pgx.Conn) error) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	key := "modledger.projection." + s.schema + "." + p.Name()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(hashtext($1))`, key); err != nil {
		return fmt.Errorf("lock projection: %w", err)
	}
	defer func() {
		// A fresh context: the unlock must run even when ctx is done, or
		// the pooled connection would keep the lock.
		uctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(uctx, `SELECT pg_advisory_unlock(hashtext($1))`, key); err != nil {
			conn.Conn().Close(uctx)
		}
	}()
	return fn(conn.Conn())
}

// createGeneration hands out the next generation number of p and creates its
// schema and tables, with a checkpoint at sequence 0.
func (s *Store) createGeneration(ctx context.Context, conn *pgx.Conn, p Projection) (Generation, error) {
	var n int
	if err := conn.QueryRow(ctx, `UPDATE `+s.table("projections")+` SET last_generation = last_generation + 1
		WHERE name = $1 RETURNING last_generation`, p.Name()).Scan(&n); err != nil {
		return Generation{}, err
	}
	g := Generation{Number: n, Schema: fmt.Sprintf("%s_%s_g%d", s.schema, p.Name(), n), Version: p.Version()}
	if _, err := runMigrations(ctx, conn, g.Schema, p); err != nil {
		return Generation{}, err
	}
	_, err := conn.Exec(ctx, `INSERT INTO `+pgx.Identifier{g.Schema, "checkpoint"}.Sanitize()+
		` (projection, seq, updated_at) VALUES ($1, 0, now()) ON CONFLICT DO NOTHING`, p.Name())
	return g, err
}

// pointViews makes every table of p in the control schema a view on the
// tables of generation g.
func (s *Store) pointViews(ctx context.Context, tx pgx.Tx, p Projection, g Generation) error {
	for _, t := range p.Tables() {
		// Drop and create rather than replace, so that a generation whose
		// tables gained or lost columns can be swapped in.
		if _, err := tx.Exec(ctx, `DROP VIEW IF EXISTS `+s.table(t)); err != nil {
			return fmt.Errorf("point view %s: %w", t, err)
		}
		if _, err := tx.Exec(ctx, `CREATE VIEW `+s.table(t)+` AS SELECT * FROM `+pgx.Identifier{g.Schema, t}.Sanitize()); err != nil {
			return fmt.Errorf("point view %s: %w", t, err)
		}
	}
	return nil
}

// ApplyBatch applies evs to p's active generation in one transaction with
// the checkpoint, skipping events at or below it. It returns how many
// events it applied and the checkpoint after.
func (s *Store) ApplyBatch(ctx context.Context, p Projection, evs []events.Event) (int, uint64, error) {
	return s.applyBatch(ctx, p, evs, 0, applyMode{notify: true})
}

// applyMode says how a batch is applied.
type applyMode struct {
	// notify announces the new checkpoint to query servers (a live batch).
	notify bool
	// async commits with synchronous_commit off: a crash may lose the last
	// commits. Only for a generation being built, which a rebuild that
	// crashed drops and builds again anyway; the swap is durable.
	async bool
	// bulk applies through BulkProjection.ApplyBulk (a generation no query
	// reads yet, its secondary indexes dropped): see applyBulkBatch.
	bulk bool
}

// applyBatch applies evs to the active generation, or to generation only
// when only is not zero (a rebuild).
func (s *Store) applyBatch(ctx context.Context, p Projection, evs []events.Event, only int, mode applyMode) (applied int, checkpoint uint64, err error) {
	if bp, ok := p.(BulkProjection); ok && mode.bulk && only != 0 {
		return s.applyBulkBatch(ctx, bp, evs, only)
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		schema, err := s.generationSchema(ctx, tx, p, only)
		if err != nil {
			return err
		}
		applied, checkpoint, err = s.applyInTx(ctx, tx, schema, p, evs, mode)
		return err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("projection %s: %w", p.Name(), err)
	}
	return applied, checkpoint, nil
}

// applyInTx applies evs to the generation in schema within tx: events at or
// below its checkpoint are skipped, the rest applied, and the checkpoint
// moved to the last. A live batch announces the new checkpoint to query
// servers.
func (s *Store) applyInTx(ctx context.Context, tx pgx.Tx, schema string, p Projection, evs []events.Event, mode applyMode) (int, uint64, error) {
	syncCommit := "on"
	if mode.async {
		syncCommit = "off"
	}
	if _, err := tx.Exec(ctx, `SELECT set_config('search_path', $1, true), set_config('synchronous_commit', $2, true)`,
		pgx.Identifier{schema}.Sanitize(), syncCommit); err != nil {
		return 0, 0, err
	}
	var seq int64
	if err := tx.QueryRow(ctx, `SELECT seq FROM checkpoint WHERE projection = $1 FOR UPDATE`, p.Name()).Scan(&seq); err != nil {
		return 0, 0, fmt.Errorf("read checkpoint: %w", err)
	}
	checkpoint := uint64(seq)
	fresh := evs
	for len(fresh) > 0 && fresh[0].Seq <= checkpoint {
		fresh = fresh[1:]
	}
	for i := 1; i < len(fresh); i++ {
		if fresh[i].Seq <= fresh[i-1].Seq {
			return 0, 0, fmt.Errorf("events out of order: sequence %d after %d", fresh[i].Seq, fresh[i-1].Seq)
		}
	}
	if len(fresh) == 0 {
		return 0, checkpoint, nil
	}
	if err := p.Apply(ctx, tx, fresh); err != nil {
		return 0, 0, err
	}
	last := fresh[len(fresh)-1]
	if _, err := tx.Exec(ctx, `UPDATE checkpoint SET seq = $2, event_time = $3, updated_at = now() WHERE projection = $1`,
		p.Name(), int64(last.Seq), last.OccurredAt); err != nil {
		return 0, 0, fmt.Errorf("write checkpoint: %w", err)
	}
	if mode.notify {
		if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, s.NotifyChannel(), fmt.Sprintf("%s %d", p.Name(), last.Seq)); err != nil {
			return 0, 0, err
		}
	}
	return len(fresh), last.Seq, nil
}

// NotifyChannel is the LISTEN channel on which projectors announce each
// new checkpoint, as "<projection> <seq>".
func (s *Store) NotifyChannel() string { return s.schema + "_checkpoint" }

// generationSchema returns the schema to apply to, holding a share lock on
// the projection's row so that a swap waits for the batch (and the batch
// for the swap).
func (s *Store) generationSchema(ctx context.Context, tx pgx.Tx, p Projection, only int) (string, error) {
	var active, building *string
	var activeN, buildingN *int
	err := tx.QueryRow(ctx, `SELECT active_generation, active_schema, building_generation, building_schema
		FROM `+s.table("projections")+` WHERE name = $1 FOR SHARE`, p.Name()).Scan(&activeN, &active, &buildingN, &building)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && active == nil && only == 0) {
		return "", ErrNoGeneration
	}
	if err != nil {
		return "", err
	}
	switch {
	case only == 0:
		return *active, nil
	case buildingN != nil && *buildingN == only:
		return *building, nil
	}
	return "", fmt.Errorf("generation %d of %s is no longer being built", only, p.Name())
}

// Checkpoint returns the active generation's checkpoint of p and the time
// of the event at it.
func (s *Store) Checkpoint(ctx context.Context, p string) (uint64, time.Time, error) {
	var seq int64
	var at *time.Time
	err := s.pool.QueryRow(ctx, `SELECT seq, event_time FROM `+s.table("checkpoint")+` WHERE projection = $1`, p).Scan(&seq, &at)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, time.Time{}, ErrNoGeneration
	}
	if err != nil {
		var pgErr interface{ SQLState() string }
		if errors.As(err, &pgErr) && pgErr.SQLState() == "42P01" {
			return 0, time.Time{}, ErrNoGeneration
		}
		return 0, time.Time{}, err
	}
	if at == nil {
		return uint64(seq), time.Time{}, nil
	}
	return uint64(seq), at.UTC(), nil
}
