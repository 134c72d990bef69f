package projection

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// lease is the lead of one projection: a session advisory lock held on a
// connection taken out of the pool for as long as the lead lasts. When the
// connection dies, PostgreSQL releases the lock and a standby takes over.
type lease struct {
	conn *pgxpool.Conn
	key  string
}

// lead tries to take the lead of projection; it returns nil when another
// process holds it.
func (s *Store) lead(ctx context.Context, projection string) (*lease, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	key := "modledger.projector." + s.schema + "." + projection
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtext($1))`, key).Scan(&ok); err != nil {
		conn.Release()
		return nil, fmt.Errorf("take projection lead: %w", err)
	}
	if !ok {
		conn.Release()
		return nil, nil
	}
	return &lease{conn: conn, key: key}, nil
}

// held reports whether the lease's connection still works (and so still
// holds the lock).
func (l *lease) held(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return l.conn.Ping(ctx) == nil
}

// release unlocks and returns the connection; a connection that cannot
// unlock is closed, which releases the lock too.
func (l *lease) release() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := l.conn.Exec(ctx, `SELECT pg_advisory_unlock(hashtext($1))`, l.key); err != nil {
		_ = l.conn.Conn().Close(ctx)
	}
	l.conn.Release()
}
