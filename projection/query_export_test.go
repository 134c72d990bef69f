package projection

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
