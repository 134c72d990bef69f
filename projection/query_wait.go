package projection

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	// minSeqPollInterval is how often a min_seq wait reads the checkpoint
	// while the LISTEN connection is down (or not up yet).
	minSeqPollInterval = 10 * time.Millisecond
	// listenRetryMin and listenRetryMax bound the delay before the LISTEN
	// connection is opened again after it failed.
	listenRetryMin = 50 * time.Millisecond
	listenRetryMax = 5 * time.Second
)

// checkpointWaiter lets queries wait for the cases projection's checkpoint
// to reach a sequence (min_seq). One dedicated connection LISTENs on the
// channel the store's ApplyBatch notifies with every new checkpoint
// ("cases <seq>"), and every waiting query shares it: a notification costs
// no query, and a query whose min_seq is already reached costs none either.
// While the connection is down, waits poll the checkpoint instead.
type checkpointWaiter struct {
	store   *Store
	maxWait time.Duration
	poll    time.Duration
	logger  *slog.Logger

	// seq is the highest checkpoint seen. Checkpoints only grow while a
	// generation is active; a swap to a generation that is behind is
	// brief (a rebuild catches up before it swaps).
	seq atomic.Uint64
	// waiting counts the waits in progress: a test signal, and a gauge.
	waiting atomic.Int64
	// listens counts the LISTEN sessions begun: a test signal.
	listens atomic.Int64

	mu      sync.Mutex
	ready   bool          // LISTENing, and seq was read after LISTEN began
	stopped bool          // stop was called
	changed chan struct{} // closed and replaced whenever seq, ready or stopped change

	cancel context.CancelFunc
	done   chan struct{}
}

func newCheckpointWaiter(store *Store, maxWait time.Duration, logger *slog.Logger) *checkpointWaiter {
	return &checkpointWaiter{store: store, maxWait: maxWait, poll: minSeqPollInterval, logger: logger,
		changed: make(chan struct{})}
}

// start runs the listener until stop.
func (w *checkpointWaiter) start() {
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel, w.done = cancel, make(chan struct{})
	go w.listen(ctx)
}

// stop ends the listener and fails the waits in progress. It may be
// called again.
func (w *checkpointWaiter) stop() {
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return
	}
	w.stopped = true
	w.broadcastLocked()
	w.mu.Unlock()
	if w.cancel != nil {
		w.cancel()
		<-w.done
	}
}

// isReady reports whether the LISTEN connection is up.
func (w *checkpointWaiter) isReady() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ready
}

func (w *checkpointWaiter) broadcastLocked() {
	close(w.changed)
	w.changed = make(chan struct{})
}

func (w *checkpointWaiter) setReady(ready bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ready != ready {
		w.ready = ready
		w.broadcastLocked()
	}
}

// advance records checkpoint seq and wakes the waits when it is new.
func (w *checkpointWaiter) advance(seq uint64) {
	for {
		cur := w.seq.Load()
		if seq <= cur {
			return
		}
		if w.seq.CompareAndSwap(cur, seq) {
			break
		}
	}
	w.mu.Lock()
	w.broadcastLocked()
	w.mu.Unlock()
}

// refresh reads the checkpoint. A projection without a generation is at 0.
func (w *checkpointWaiter) refresh(ctx context.Context) error {
	seq, _, err := w.store.Checkpoint(ctx, CasesName)
	if errors.Is(err, ErrNoGeneration) {
		return nil
	}
	if err != nil {
		return err
	}
	w.advance(seq)
	return nil
}

// wait returns once the checkpoint is at least min, or fails with
// ErrUnavailable after maxWait or when ctx is done.
func (w *checkpointWaiter) wait(ctx context.Context, min uint64) error {
	if w.seq.Load() >= min {
		return nil
	}
	w.waiting.Add(1)
	defer w.waiting.Add(-1)
	deadline := time.NewTimer(w.maxWait)
	defer deadline.Stop()
	var poll *time.Timer
	defer func() {
		if poll != nil {
			poll.Stop()
		}
	}()
	for {
		// Take the channel before reading seq, so that an advance between
		// the two closes the channel this wait selects on.
		w.mu.Lock()
		ready, stopped, changed := w.ready, w.stopped, w.changed
		w.mu.Unlock()
		if w.seq.Load() >= min {
			return nil
		}
		if stopped {
			return fmt.Errorf("%w: waiting for min_seq %d: stopped", ErrUnavailable, min)
		}
		var pollC <-chan time.Time
		if !ready {
			if err := w.refresh(ctx); err != nil && ctx.Err() == nil {
				w.logger.Debug("read checkpoint for min_seq", "error", err)
			}
			if w.seq.Load() >= min {
				return nil
			}
			if poll == nil {
				poll = time.NewTimer(w.poll)
			} else {
				poll.Reset(w.poll)
			}
			pollC = poll.C
		}
		select {
		case <-changed:
		case <-pollC:
		case <-deadline.C:
			// A last read: a checkpoint reached without a notification
			// (a rebuild's swap) still counts.
			if err := w.refresh(ctx); err == nil && w.seq.Load() >= min {
				return nil
			}
			return fmt.Errorf("%w: the cases projection is at sequence %d, not at min_seq %d after %s",
				ErrUnavailable, w.seq.Load(), min, w.maxWait)
		case <-ctx.Done():
			return fmt.Errorf("%w: waiting for min_seq %d: %w", ErrUnavailable, min, ctx.Err())
		}
	}
}

// listen keeps a LISTEN connection open until ctx is done.
func (w *checkpointWaiter) listen(ctx context.Context) {
	defer close(w.done)
	delay := listenRetryMin
	for {
		wasReady, err := w.listenOnce(ctx)
		w.setReady(false)
		if ctx.Err() != nil {
			return
		}
		if wasReady {
			delay = listenRetryMin
		}
		w.logger.Warn("checkpoint listener: connection failed; min_seq waits poll until it is back",
			"retry_in", delay, "error", err)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
		delay = min(2*delay, listenRetryMax)
	}
}

// listenOnce opens a connection, LISTENs, reads the checkpoint, and follows
// notifications until the connection fails or ctx is done.
func (w *checkpointWaiter) listenOnce(ctx context.Context) (ready bool, err error) {
	conn, err := pgx.ConnectConfig(ctx, w.store.pool.Config().ConnConfig)
	if err != nil {
		return false, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{w.store.NotifyChannel()}.Sanitize()); err != nil {
		return false, err
	}
	// Read after LISTEN: a checkpoint written in between is either in this
	// read or in a notification.
	if err := w.refresh(ctx); err != nil {
		return false, err
	}
	w.listens.Add(1)
	w.setReady(true)
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return true, err
		}
		if seq, ok := parseCheckpointNotice(n.Payload); ok {
			w.advance(seq)
		}
	}
}

// parseCheckpointNotice reads "<projection> <seq>", the payload ApplyBatch
// sends, for the cases projection.
func parseCheckpointNotice(payload string) (uint64, bool) {
	name, seq, ok := strings.Cut(payload, " ")
	if !ok || name != CasesName {
		return 0, false
	}
	v, err := strconv.ParseUint(seq, 10, 64)
	return v, err == nil
}
