package deploy_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os/exec"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/command"
	"github.com/modledger/modledger/events"
	"github.com/modledger/modledger/internal/testenv"
	"github.com/modledger/modledger/projection"
)

// pgRoles are the three roles of roles.sql, under names unique to one test.
type pgRoles struct {
	owner, writer, reader string
	password              string
}

// The roles of deploy/postgres/roles.sql, applied to a fresh database under
// unique names: the owner migrates, the writer projects, the reader queries,
// and each is denied what docs/security.md says it is denied.
func TestPostgresRoles(t *testing.T) {
	t.Parallel()
	psql, err := exec.LookPath("psql")
	if err != nil {
		t.Fatal("psql (PostgreSQL's client) is needed to apply roles.sql: install postgresql-client")
	}
	ctx := t.Context()
	dsn := testenv.Postgres(t)
	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix)
	name := "modledger_test_" + hex.EncodeToString(suffix)
	r := pgRoles{owner: name + "_owner", writer: name + "_writer", reader: name + "_reader", password: hex.EncodeToString(suffix)}
	// Roles outlive databases: drop them even when the test fails. This
	// cleanup runs before the database is dropped.
	t.Cleanup(func() { dropRoles(t, dsn, r) })

	apply := func() {
		t.Helper()
		cmd := exec.CommandContext(ctx, psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn,
			"-v", "owner="+r.owner, "-v", "writer="+r.writer, "-v", "reader="+r.reader, "-v", "schema="+projection.SchemaDefault,
			"-f", "postgres/roles.sql")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("psql -f roles.sql: %v\n%s", err, out)
		}
	}
	apply()
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.Close(context.Background()) })
	for _, role := range []string{r.owner, r.writer, r.reader} {
		if _, err := admin.Exec(ctx, "ALTER ROLE "+pgx.Identifier{role}.Sanitize()+" PASSWORD '"+r.password+"'"); err != nil {
			t.Fatal(err)
		}
	}
	ownerPool := rolePool(t, dsn, r.owner, r.password)
	writerPool := rolePool(t, dsn, r.writer, r.password)
	readerPool := rolePool(t, dsn, r.reader, r.password)

	// The owner migrates, as `modledger migrate` does; roles.sql may run
	// again afterwards.
	p := projection.NewCasesProjection(nil)
	ownerStore, err := projection.NewStore(ownerPool, projection.SchemaDefault)
	if err != nil {
		t.Fatal(err)
	}
	if err := ownerStore.Migrate(ctx); err != nil {
		t.Fatalf("migrate as the owner: %v", err)
	}
	gen, err := ownerStore.Activate(ctx, p)
	if err != nil {
		t.Fatalf("activate as the owner: %v", err)
	}
	apply()
	genTable := func(table string) string { return pgx.Identifier{gen.Schema, table}.Sanitize() }
	viewName := func(table string) string { return pgx.Identifier{projection.SchemaDefault, table}.Sanitize() }

	const guild events.Snowflake = 1128457362048573440
	caseID := uuid.Must(uuid.NewV7())

	t.Run("writer", func(t *testing.T) {
		// Allowed: what a projector does, a batch with COPY, a temporary
		// staging table, row locks, the checkpoint and NOTIFY.
		store, err := projection.NewStore(writerPool, projection.SchemaDefault)
		if err != nil {
			t.Fatal(err)
		}
		expires := time.Now().Add(time.Hour)
		evs := []events.Event{openEventAt(1, guild, 1, caseID, &expires), openEventAt(2, guild, 2, uuid.Must(uuid.NewV7()), nil)}
		if n, cp, err := store.ApplyBatch(ctx, p, evs); err != nil || n != 2 || cp != 2 {
			t.Fatalf("apply a batch as the writer: %d events to %d: %v", n, cp, err)
		}
		if cp, _, err := store.Checkpoint(ctx, p.Name()); err != nil || cp != 2 {
			t.Fatalf("checkpoint as the writer: %d, %v", cp, err)
		}
		var locked bool
		if err := writerPool.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtext('deploy test writer'))`).Scan(&locked); err != nil || !locked {
			t.Fatalf("advisory lock as the writer: %v, %v", locked, err)
		}
		for _, sql := range []string{
			`UPDATE ` + genTable("cases") + ` SET reason = reason WHERE guild_id = 1`,
			`DELETE FROM ` + genTable("case_notes") + ` WHERE guild_id = 1`,
		} {
			if _, err := writerPool.Exec(ctx, sql); err != nil {
				t.Errorf("writer: %s: %v", sql, err)
			}
		}
		// Denied: changing the schema in any way.
		for _, sql := range []string{
			`DROP TABLE ` + genTable("cases"),
			`ALTER TABLE ` + genTable("cases") + ` ADD COLUMN x int`,
			`CREATE INDEX x ON ` + genTable("cases") + ` (reason)`,
			`TRUNCATE ` + genTable("case_events"),
			`CREATE TABLE ` + genTable("x") + ` (x int)`,
			`CREATE TABLE ` + viewName("x") + ` (x int)`,
			`CREATE TABLE public.x (x int)`,
			`CREATE SCHEMA x`,
			`DROP SCHEMA ` + pgx.Identifier{gen.Schema}.Sanitize() + ` CASCADE`,
			`DROP VIEW ` + viewName("cases"),
			`CREATE OR REPLACE VIEW ` + viewName("cases") + ` AS SELECT 1 AS x`,
			`DROP TABLE ` + viewName("projections"),
		} {
			denied(t, writerPool, "writer", sql)
		}
	})

	t.Run("reader", func(t *testing.T) {
		// Allowed: the query API on the views, the scheduler's read of
		// pending expiries and its leadership lock, LISTEN for checkpoints.
		q, err := projection.NewQueries(readerPool, projection.SchemaDefault, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(q.Close)
		got, err := q.CaseGet(ctx, guild, projection.CaseGetParams{CaseNumber: 1})
		if err != nil || got.Case.CaseID != caseID {
			t.Fatalf("query as the reader: %+v, %v", got, err)
		}
		store, err := projection.NewStore(readerPool, projection.SchemaDefault)
		if err != nil {
			t.Fatal(err)
		}
		due, err := store.PendingExpiries(ctx, time.Now().Add(2*time.Hour), 10)
		if err != nil || len(due) != 1 {
			t.Fatalf("pending expiries as the reader: %+v, %v", due, err)
		}
		var locked bool
		if err := readerPool.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtext('deploy test reader'))`).Scan(&locked); err != nil || !locked {
			t.Fatalf("advisory lock as the reader: %v, %v", locked, err)
		}
		if _, err := readerPool.Exec(ctx, "LISTEN "+pgx.Identifier{ownerStore.NotifyChannel()}.Sanitize()); err != nil {
			t.Fatalf("LISTEN as the reader: %v", err)
		}

		// Its sessions start read-only (defence in depth against a grant
		// added by mistake), and even a read-write transaction has no
		// privilege to write, create or drop.
		var ro string
		if err := readerPool.QueryRow(ctx, `SHOW default_transaction_read_only`).Scan(&ro); err != nil || ro != "on" {
			t.Fatalf("reader's default_transaction_read_only: %q, %v", ro, err)
		}
		for _, sql := range []string{
			`INSERT INTO ` + viewName("checkpoint") + ` (projection, seq, updated_at) VALUES ('x', 1, now())`,
			`UPDATE ` + viewName("cases") + ` SET reason = ''`,
			`DELETE FROM ` + viewName("cases"),
			`UPDATE ` + viewName("projections") + ` SET active_schema = 'x'`,
			`SELECT * FROM ` + viewName("projections") + ` FOR UPDATE`,
			`DELETE FROM ` + genTable("cases"),
			`SELECT count(*) FROM ` + genTable("cases"),
			`CREATE TABLE ` + viewName("x") + ` (x int)`,
			`CREATE TABLE public.x (x int)`,
			`CREATE TEMP TABLE x (x int)`,
			`CREATE SCHEMA x`,
			`DROP VIEW ` + viewName("cases"),
			`DROP TABLE ` + viewName("projections"),
			`DROP TABLE ` + genTable("cases"),
			`TRUNCATE ` + viewName("projections"),
		} {
			deniedReadWrite(t, readerPool, "reader", sql)
		}
	})

	// The ledger's roles run Store.Migrate when they start, and projectors
	// Store.Activate: with the schema current, the writer and the reader
	// need no CREATE privilege for either. A projector runs as the writer
	// and a query service as the reader.
	t.Run("non_owners_start", func(t *testing.T) {
		writerStore, err := projection.NewStore(writerPool, projection.SchemaDefault)
		if err != nil {
			t.Fatal(err)
		}
		readerStore, err := projection.NewStore(readerPool, projection.SchemaDefault)
		if err != nil {
			t.Fatal(err)
		}
		if err := writerStore.Migrate(ctx); err != nil {
			t.Fatalf("Store.Migrate as the writer, with the schema current: %v", err)
		}
		if err := readerStore.Migrate(ctx); err != nil {
			t.Fatalf("Store.Migrate as the reader, with the schema current: %v", err)
		}
		if _, err := writerStore.Activate(ctx, p); err != nil {
			t.Fatalf("Store.Activate as the writer: %v", err)
		}

		nats := testenv.NATS(t)
		nc := nats.Conn(t)
		svc, err := command.NewService(command.Config{Conn: nc})
		if err != nil {
			t.Fatal(err)
		}
		if err := svc.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = svc.Stop(context.Background()) })
		pr, err := projection.NewProjector(projection.ProjectorConfig{JetStream: nats.JetStream(t), Store: writerStore, Projection: p,
			Logger: testenv.Logger(t)})
		if err != nil {
			t.Fatal(err)
		}
		if err := pr.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = pr.Stop(context.Background()) })
		q, err := projection.NewQueries(readerPool, projection.SchemaDefault, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(q.Close)
		qs, err := projection.NewQueryService(projection.QueryServiceConfig{Conn: nc, Queries: q, Store: readerStore})
		if err != nil {
			t.Fatal(err)
		}
		if err := qs.Start(ctx); err != nil {
			t.Fatalf("query service as the reader: %v", err)
		}
		t.Cleanup(func() { _ = qs.Stop(context.Background()) })
		// The writer subtest left the checkpoint at 2, so the projector
		// starts at stream sequence 3: the third case is the first it sees.
		client, err := command.NewClient(nc)
		if err != nil {
			t.Fatal(err)
		}
		var res *command.Result
		for range 3 {
			if res, err = client.CaseOpen(ctx, 77, command.OpenParams{CaseFields: events.CaseFields{Type: aggregate.TypeWarn,
				UserID: 3, ModeratorID: 4}}); err != nil {
				t.Fatal(err)
			}
		}
		qc, err := projection.NewQueryClient(nc)
		if err != nil {
			t.Fatal(err)
		}
		got, err := qc.CaseGet(ctx, 77, projection.CaseGetParams{QueryMeta: projection.QueryMeta{MinSeq: res.Seq}, CaseNumber: 3})
		if err != nil || got.Case.CaseID != res.Case.CaseID {
			t.Fatalf("projected as the writer, queried as the reader: %+v, %v", got, err)
		}
	})
}

// openEventAt returns a valid CaseOpened event at seq for case n of guild,
// a TEMPBAN when expires is set, a WARN otherwise.
func openEventAt(seq uint64, guild events.Snowflake, n uint32, caseID uuid.UUID, expires *time.Time) events.Event {
	id := uuid.Must(uuid.NewV7())
	f := events.CaseFields{Type: aggregate.TypeWarn, UserID: 934871256019738654, ModeratorID: 272937604339466240, Reason: "be nice"}
	if expires != nil {
		f.Type = aggregate.TypeTempban
		e := aggregate.Instant(*expires)
		f.ExpiresAt = &e
	}
	return events.Event{
		Envelope: events.Envelope{EventID: uuid.Must(uuid.NewV7()), Event: events.NameCaseOpened, SchemaVersion: 1,
			GuildID: guild, CaseNumber: n, CaseID: caseID, OccurredAt: aggregate.Instant(time.Now()),
			ActorID: f.ModeratorID, CommandID: id, CorrelationID: id},
		Data: events.CaseOpened{CaseFields: f},
		Seq:  seq,
	}
}

// rolePool connects as role.
func rolePool(t *testing.T, dsn, role, password string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.User, cfg.ConnConfig.Password = role, password
	cfg.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := pool.Ping(t.Context()); err != nil {
		t.Fatalf("connect as %s: %v", role, err)
	}
	return pool
}

// denied fails unless sql fails for lack of privilege (SQLSTATE 42501).
func denied(t *testing.T, pool *pgxpool.Pool, role, sql string) {
	t.Helper()
	// Each in its own transaction, rolled back, so that a statement that
	// wrongly succeeds changes nothing for the next.
	err := pgx.BeginFunc(t.Context(), pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(t.Context(), sql); err != nil {
			return err
		}
		return errRollback
	})
	if code := sqlState(err); code != "42501" {
		t.Errorf("%s: %s: got %v, want insufficient_privilege (42501)", role, sql, err)
	}
}

// deniedReadWrite is denied inside a read-write transaction.
func deniedReadWrite(t *testing.T, pool *pgxpool.Pool, role, sql string) {
	t.Helper()
	err := pgx.BeginTxFunc(t.Context(), pool, pgx.TxOptions{AccessMode: pgx.ReadWrite}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(t.Context(), sql); err != nil {
			return err
		}
		return errRollback
	})
	if code := sqlState(err); code != "42501" {
		t.Errorf("%s (read-write transaction): %s: got %v, want insufficient_privilege (42501)", role, sql, err)
	}
}

var errRollback = errors.New("rolled back")

func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// dropRoles drops the test's roles and everything they own or were granted
// in the test's database.
func dropRoles(t *testing.T, dsn string, r pgRoles) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Errorf("drop roles: %v", err)
		return
	}
	defer conn.Close(ctx)
	for _, role := range []string{r.owner, r.writer, r.reader} {
		var exists bool
		if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, role).Scan(&exists); err != nil {
			t.Errorf("drop role %s: %v", role, err)
			continue
		}
		if !exists {
			continue
		}
		ident := pgx.Identifier{role}.Sanitize()
		for _, sql := range []string{
			`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '` + role + `'`,
			`DROP OWNED BY ` + ident + ` CASCADE`,
			`DROP ROLE ` + ident,
		} {
			if _, err := conn.Exec(ctx, sql); err != nil {
				t.Errorf("drop role %s: %s: %v", role, sql, err)
				break
			}
		}
	}
}
