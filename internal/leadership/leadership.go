// Package leadership elects one active worker among processes with a
// PostgreSQL session advisory lock: the holder of the lock leads, the others
// stand by and try again. When the leader's process or connection dies,
// PostgreSQL ends its session and the lock with it, so a standby takes over
// without any timeout to tune.
package leadership

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Lease is a held lead: an advisory lock on a connection taken out of the
// pool for as long as the lead lasts.
type Lease struct {
	conn *pgxpool.Conn
	key  string
}

// TryAcquire tries to take the lead named key; it returns nil and no error
// when another session holds it.
func TryAcquire(ctx context.Context, pool *pgxpool.Pool, key string) (*Lease, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtext($1))`, key).Scan(&ok); err != nil {
		conn.Release()
		return nil, fmt.Errorf("take lead %s: %w", key, err)
	}
	if !ok {
		conn.Release()
		return nil, nil
	}
	return &Lease{conn: conn, key: key}, nil
}

// Held reports whether the lease's connection still works, and so still
// holds the lock.
func (l *Lease) Held(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return l.conn.Ping(ctx) == nil
}

// Release gives the lead up. A connection that cannot unlock is closed,
// which releases the lock too.
func (l *Lease) Release() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := l.conn.Exec(ctx, `SELECT pg_advisory_unlock(hashtext($1))`, l.key); err != nil {
		_ = l.conn.Conn().Close(ctx)
	}
	l.conn.Release()
}

// ErrLost is returned by a leader's work when it finds that its lease is no
// longer held; Run then stands by and tries again.
var ErrLost = errors.New("lead lost")

// Run takes the lead named key whenever it can and calls lead while it
// holds it, until ctx ends or lead returns an error other than ErrLost. While
// another session leads, or PostgreSQL cannot be reached, it tries again
// every poll.
func Run(ctx context.Context, pool *pgxpool.Pool, key string, poll time.Duration, logger *slog.Logger,
	lead func(ctx context.Context, l *Lease) error) error {
	for {
		l, err := TryAcquire(ctx, pool, key)
		if err != nil && ctx.Err() == nil {
			logger.Warn("cannot reach PostgreSQL to take the lead; retrying", "lead", key, "error", err)
		}
		if l == nil {
			t := time.NewTimer(poll)
			select {
			case <-t.C:
				continue
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			}
		}
		err = lead(ctx, l)
		l.Release()
		if !errors.Is(err, ErrLost) {
			return err
		}
		logger.Warn("lost the lead; standing by", "lead", key)
	}
}
