package projection

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"regexp"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/tern/v2/migrate"
)

// SchemaDefault is the control schema a ledger uses when none is configured.
const SchemaDefault = "modledger"

//go:embed migrations
var migrationFiles embed.FS

// schemaPattern bounds schema names: they are spliced into DDL (quoted), and
// generation schemas append a suffix within PostgreSQL's 63-byte limit.
var schemaPattern = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,39}$`)

// ValidateSchema reports whether name can be the control schema.
func ValidateSchema(name string) error {
	if !schemaPattern.MatchString(name) {
		return fmt.Errorf("schema %q: want lower-case letters, digits and underscores, at most 40, not starting with a digit", name)
	}
	return nil
}

// Migrate creates the control schema and brings it to the newest version.
// It is safe to run from several processes at once.
func Migrate(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	if err := ValidateSchema(schema); err != nil {
		return err
	}
	return migrateSchema(ctx, pool, schema, "migrations/control")
}

// migrateSchema creates schema if needed and runs the tern migrations in dir
// against it, recording versions in <schema>.schema_version.
func migrateSchema(ctx context.Context, pool *pgxpool.Pool, schema, dir string) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", schema, err)
	}
	defer conn.Release()
	sub, err := fs.Sub(migrationFiles, dir)
	if err != nil {
		return err
	}
	// A current schema needs nothing, not even a lock: the roles that
	// only write or read rows may start without CREATE privileges.
	if current, err := schemaCurrent(ctx, conn.Conn(), schema, sub); err != nil || current {
		return err
	}
	if err := createSchema(ctx, conn.Conn(), schema); err != nil {
		return err
	}
	m, err := migrate.NewMigrator(ctx, conn.Conn(), pgx.Identifier{schema, "schema_version"}.Sanitize())
	if err != nil {
		return fmt.Errorf("migrate %s: %w", schema, err)
	}
	m.Data["schema"] = pgx.Identifier{schema}.Sanitize()
	if err := m.LoadMigrations(sub); err != nil {
		return fmt.Errorf("migrate %s: load %s: %w", schema, dir, err)
	}
	if err := m.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate %s: %w", schema, err)
	}
	return nil
}

// createSchema creates schema unless it exists. Concurrent callers wait on
// an advisory lock rather than fail on pg_namespace's unique index.
func createSchema(ctx context.Context, conn *pgx.Conn, schema string) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("create schema %s: %w", schema, err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext('modledger.create_schema'))"); err != nil {
		return fmt.Errorf("create schema %s: lock: %w", schema, err)
	}
	if _, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize()); err != nil {
		return fmt.Errorf("create schema %s: %w", schema, err)
	}
	return tx.Commit(ctx)
}

// MigrationStatus reports the control schema's migration version and the
// newest one this build has.
func MigrationStatus(ctx context.Context, pool *pgxpool.Pool, schema string) (current, newest int32, err error) {
	sub, err := fs.Sub(migrationFiles, "migrations/control")
	if err != nil {
		return 0, 0, err
	}
	names, err := migrate.FindMigrations(sub)
	if err != nil {
		return 0, 0, err
	}
	newest = int32(len(names))
	err = pool.QueryRow(ctx, "SELECT version FROM "+pgx.Identifier{schema, "schema_version"}.Sanitize()).Scan(&current)
	var pgErr interface{ SQLState() string }
	if errors.As(err, &pgErr) && (pgErr.SQLState() == "42P01" || pgErr.SQLState() == "3F000") {
		return 0, newest, nil
	}
	return current, newest, err
}

// schemaCurrent reports whether schema's tern version table says every
// migration of migrations ran. A missing schema or table is not current.
func schemaCurrent(ctx context.Context, conn *pgx.Conn, schema string, migrations fs.FS) (bool, error) {
	names, err := migrate.FindMigrations(migrations)
	if err != nil {
		return false, err
	}
	var current int32
	err = conn.QueryRow(ctx, "SELECT version FROM "+pgx.Identifier{schema, "schema_version"}.Sanitize()).Scan(&current)
	var pgErr interface{ SQLState() string }
	if errors.As(err, &pgErr) && (pgErr.SQLState() == "42P01" || pgErr.SQLState() == "3F000") || errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("migration version of %s: %w", schema, err)
	}
	return current == int32(len(names)), nil
}
