package projection

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/modledger/modledger/events"
)

// PendingExpiry is a case whose expiry the ledger has yet to record.
type PendingExpiry struct {
	GuildID    events.Snowflake
	CaseNumber uint32
	CaseID     uuid.UUID
	ExpiresAt  time.Time
}

// PendingExpiries returns, oldest first, up to limit active, undeleted
// cases of every guild whose expiry is at or before before and has neither
// expired (no CaseExpired) nor been processed: what the expiry scheduler
// must act on. It reads the partial index cases_pending_expiry, and returns
// ErrNoGeneration before the projection has tables.
func (s *Store) PendingExpiries(ctx context.Context, before time.Time, limit int) ([]PendingExpiry, error) {
	rows, err := s.pool.Query(ctx, `SELECT guild_id, case_number, case_id, expires_at FROM `+s.table("cases")+`
		WHERE expires_at <= $1 AND expires_at IS NOT NULL AND expired_at IS NULL AND NOT expiry_processed
		  AND status = 'active' AND NOT deleted
		ORDER BY expires_at LIMIT $2`, before, limit)
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42P01" {
			return nil, ErrNoGeneration
		}
		return nil, fmt.Errorf("pending expiries: %w", err)
	}
	defer rows.Close()
	var out []PendingExpiry
	for rows.Next() {
		var g, n int64
		var p PendingExpiry
		if err := rows.Scan(&g, &n, &p.CaseID, &p.ExpiresAt); err != nil {
			return nil, fmt.Errorf("pending expiries: %w", err)
		}
		p.GuildID, p.CaseNumber, p.ExpiresAt = events.Snowflake(g), uint32(n), p.ExpiresAt.UTC()
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pending expiries: %w", err)
	}
	return out, nil
}
