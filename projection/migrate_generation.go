package projection

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/tern/v2/migrate"
)

// runMigrations creates schema if needed and applies p's migrations to it.
// It reports whether any migration ran.
func runMigrations(ctx context.Context, conn *pgx.Conn, schema string, p Projection) (bool, error) {
	if current, err := schemaCurrent(ctx, conn, schema, p.Migrations()); err != nil || current {
		return false, err
	}
	if _, err := conn.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize()); err != nil {
		return false, fmt.Errorf("create schema %s: %w", schema, err)
	}
	m, err := migrate.NewMigrator(ctx, conn, pgx.Identifier{schema, "schema_version"}.Sanitize())
	if err != nil {
		return false, fmt.Errorf("migrate %s: %w", schema, err)
	}
	m.Data["schema"] = pgx.Identifier{schema}.Sanitize()
	if err := m.LoadMigrations(p.Migrations()); err != nil {
		return false, fmt.Errorf("migrate %s: %w", schema, err)
	}
	before, err := m.GetCurrentVersion(ctx)
	if err != nil {
		return false, fmt.Errorf("migrate %s: %w", schema, err)
	}
	if err := m.Migrate(ctx); err != nil {
		return false, fmt.Errorf("migrate %s: %w", schema, err)
	}
	after, err := m.GetCurrentVersion(ctx)
	if err != nil {
		return false, fmt.Errorf("migrate %s: %w", schema, err)
	}
	return after != before, nil
}
