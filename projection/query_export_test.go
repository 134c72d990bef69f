package projection

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// Test signals for the external tests of the query API.

// MinSeqWaitsForTest returns how many queries wait for their min_seq.
func (q *Queries) MinSeqWaitsForTest() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.waiter == nil {
		return 0
	}
	return q.waiter.waiting.Load()
}

// MinSeqWaitsForTest returns how many queries wait for their min_seq.
func (s *QueryService) MinSeqWaitsForTest() int64 { return s.waiter.waiting.Load() }

// SnapshotBatchForTest sends the statements queue queues as the list
// queries send theirs: one read-only repeatable-read transaction, one round
// trip.
func (q *Queries) SnapshotBatchForTest(ctx context.Context, queue func(b *pgx.Batch)) error {
	return q.snapshotBatch(ctx, queue)
}
