package command

import (
	"context"
	"sync"
	"time"
)

// Group commit: appends that arrive while another is on its way to the
// server go out together, as one atomic batch, so that one round trip and
// one fsync serve them all. Each append keeps its own messages, message ids
// and concurrency checks; the batch is all or none. When a combined batch
// fails (one member's check lost, one member a retry the server has seen),
// every member is sent again on its own, so each learns its own outcome
// exactly as if it had never been combined. A combined batch that gets no
// answer (a timeout, a lost connection) is not split: each member retries on
// its own. A lone append goes out at once: nothing waits for company.
//
// One combined batch is on its way at a time. Four in flight were measured
// slower: while a batch is on its way the next one gathers, so one at a
// time makes larger batches and pays the server's per-batch work (an atomic
// batch is staged in a store of its own) less often. With the projector held
// back, 1024 clients opening single cases over 1000 guilds made 14 700
// opens/s with one batch in flight and 11 700 to 12 100 with four
// (docs/benchmarks.md).

// groupCommitMaxMessages bounds a combined batch: the server's atomic batch
// limit is 1000 messages.
const groupCommitMaxMessages = MaxCasesPerBatch

// committer combines concurrent appends.
type committer struct {
	l   *ledger
	max int

	mu      sync.Mutex
	queue   []*commitReq
	running bool // a flush goroutine is sending
}

// commitReq is one append waiting to be sent.
type commitReq struct {
	ctx  context.Context
	msgs []outMsg
	done chan commitRes
}

type commitRes struct {
	ack pubAck
	err error
}

func newCommitter(l *ledger) *committer {
	return &committer{l: l, max: groupCommitMaxMessages}
}

// append stores msgs like ledger.append, combined with the appends that
// wait alongside it.
func (c *committer) append(ctx context.Context, msgs []outMsg) (pubAck, error) {
	if len(msgs) >= c.max {
		return c.l.append(ctx, msgs)
	}
	req := &commitReq{ctx: ctx, msgs: msgs, done: make(chan commitRes, 1)}
	c.mu.Lock()
	c.queue = append(c.queue, req)
	if !c.running {
		c.running = true
		go c.flush()
	}
	c.mu.Unlock()
	select {
	case r := <-req.done:
		return r.ack, r.err
	case <-ctx.Done():
		// The append may still be sent: the caller's retry finds out, as
		// after any timeout (message ids and checks make that safe).
		return pubAck{}, transient(ctx.Err())
	}
}

// flush sends what is queued, one combined batch at a time, until the queue
// is empty. While a batch is on its way, the next one gathers.
func (c *committer) flush() {
	for {
		c.mu.Lock()
		if len(c.queue) == 0 {
			c.running = false
			c.mu.Unlock()
			return
		}
		var batch []*commitReq
		n := 0
		rest := c.queue[:0]
		for _, r := range c.queue {
			if r.ctx.Err() != nil {
				r.done <- commitRes{err: transient(r.ctx.Err())}
				continue
			}
			if n+len(r.msgs) > c.max {
				rest = append(rest, r)
				continue
			}
			batch = append(batch, r)
			n += len(r.msgs)
		}
		c.queue = append([]*commitReq(nil), rest...)
		c.mu.Unlock()
		c.send(batch, n)
	}
}

// send sends batch as one atomic batch, or its members on their own when
// it is one member or the combined batch fails.
func (c *committer) send(batch []*commitReq, n int) {
	if len(batch) == 0 {
		return
	}
	if len(batch) == 1 {
		r := batch[0]
		ack, err := c.l.append(r.ctx, r.msgs)
		r.done <- commitRes{ack, err}
		return
	}
	all := make([]outMsg, 0, n)
	for _, r := range batch {
		all = append(all, r.msgs...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.l.apiTimeout)
	start := time.Now()
	ack, err := c.l.append(ctx, all)
	cancel()
	c.l.metrics.observeGroup(len(batch), time.Since(start), err)
	if err == nil && !ack.Duplicate {
		// Sequences are consecutive: each member's last message is at its
		// offset from the batch's first.
		seq := ack.Seq - uint64(n)
		for _, r := range batch {
			seq += uint64(len(r.msgs))
			r.done <- commitRes{ack: pubAck{Stream: ack.Stream, Seq: seq}}
		}
		return
	}
	if isTransient(err) {
		// No answer (a timeout, a lost connection): the batch may or may
		// not be stored. Each member retries on its own, with the same
		// message ids and checks, which is safe either way; sending each
		// again here, one after the other, would make them all wait out
		// the timeout in turn.
		for _, r := range batch {
			r.done <- commitRes{err: err}
		}
		return
	}
	for _, r := range batch {
		ack, err := c.l.append(r.ctx, r.msgs)
		r.done <- commitRes{ack, err}
	}
}
