package leadership_test

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/goleak"

	"github.com/modledger/modledger/internal/leadership"
	"github.com/modledger/modledger/internal/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestOneLeaderAtATime(t *testing.T) {
	t.Parallel()
	dsn := testenv.Postgres(t)
	pools := make([]*pgxpool.Pool, 2)
	for i := range pools {
		p, err := pgxpool.New(t.Context(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		pools[i] = p
	}
	a, err := leadership.TryAcquire(t.Context(), pools[0], "test")
	if err != nil || a == nil {
		t.Fatalf("first acquire: %v %v", a, err)
	}
	if b, err := leadership.TryAcquire(t.Context(), pools[1], "test"); err != nil || b != nil {
		t.Fatalf("second acquire while held: %v %v", b, err)
	}
	if other, err := leadership.TryAcquire(t.Context(), pools[1], "other"); err != nil || other == nil {
		t.Fatalf("another key: %v %v", other, err)
	} else {
		other.Release()
	}
	if !a.Held(t.Context()) {
		t.Fatal("the lease is not held")
	}
	a.Release()
	b, err := leadership.TryAcquire(t.Context(), pools[1], "test")
	if err != nil || b == nil {
		t.Fatalf("acquire after release: %v %v", b, err)
	}
	b.Release()
	// A leader whose session dies loses the lead to a standby.
	c, err := leadership.TryAcquire(t.Context(), pools[0], "test")
	if err != nil || c == nil {
		t.Fatal(err)
	}
	if _, err := pools[1].Exec(t.Context(), `SELECT pg_terminate_backend(pid) FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid() AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`); err != nil {
		t.Fatal(err)
	}
	if c.Held(t.Context()) {
		t.Fatal("the lease still says it is held after its session was terminated")
	}
	c.Release()
	// The lock goes when the terminated backend has exited, a moment later.
	var d *leadership.Lease
	testenv.Eventually(t, 10*time.Second, func() bool {
		d, err = leadership.TryAcquire(t.Context(), pools[1], "test")
		return err == nil && d != nil
	}, "the lead was not free after the leader died: %v", err)
	d.Release()
}
