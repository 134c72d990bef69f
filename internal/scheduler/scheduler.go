// Package scheduler is the ledger's expiry scheduler: when a case's expiry
// passes, it has CaseExpired appended to the case, on time and exactly
// once.
//
// It reads the expiries still to record from the read model (the partial
// index cases_pending_expiry), a little ahead of time, keeps them in a heap,
// and at each one's moment calls Expire, which sends the command service's
// expire command. Exactly once does not rest on the scheduler: the expire
// command carries a command id derived from the case id and the expiry, so
// the server drops a second copy within its duplicate window and the
// command service answers a retry with the first reply at any time; and
// the aggregate appends CaseExpired only to an active, undeleted case whose
// expiry is the one given and has neither expired nor been processed, under
// the case's own concurrency check. So two schedulers, a restart, or an
// expiry read twice from a lagging read model append one event. A moved
// expiry makes the old moment a no-op and appears as a new pending expiry;
// a closed, deleted or processed case leaves the index.
//
// One scheduler leads (a PostgreSQL advisory lock); others stand by and
// take over when its session ends. That saves work, not correctness.
package scheduler

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/modledger/modledger/internal/leadership"
	"github.com/modledger/modledger/projection"
)

// Defaults.
const (
	// LookaheadDefault is how far ahead the scheduler reads expiries.
	LookaheadDefault = 5 * time.Second
	// PollIntervalDefault is how often it reads them.
	PollIntervalDefault = 200 * time.Millisecond
	// WorkersDefault bounds the expire commands in flight.
	WorkersDefault = 32
	// StandbyPollDefault is how often a standby tries to lead.
	StandbyPollDefault = time.Second
	// BatchDefault is the most expiries one read takes.
	BatchDefault = 5000
)

// Config configures a Scheduler.
type Config struct {
	// Store reads the pending expiries. Required.
	Store *projection.Store
	// Expire records that p's expiry has passed (the command service's
	// expire command). It must be idempotent. Required.
	Expire func(ctx context.Context, p projection.PendingExpiry) error
	// Lookahead is how far ahead expiries are read. Defaults to 5s.
	Lookahead time.Duration
	// PollInterval is how often they are read. Defaults to 200ms.
	PollInterval time.Duration
	// Workers bounds concurrent Expire calls. Defaults to 32.
	Workers int
	// StandbyPoll is how often a standby tries to lead. Defaults to 1s.
	StandbyPoll time.Duration
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
	// Logger receives the scheduler's logs. Defaults to discarding them.
	Logger *slog.Logger
	// OnExpire, when set, is called after each Expire with its error and
	// how late it ran (metrics, tests).
	OnExpire func(p projection.PendingExpiry, late time.Duration, err error)
	// Registerer receives the scheduler's Prometheus metrics: expiries by
	// outcome, lateness, and whether it leads. Nil: no metrics.
	Registerer prometheus.Registerer
}

func (c Config) withDefaults() Config {
	if c.Lookahead == 0 {
		c.Lookahead = LookaheadDefault
	}
	if c.PollInterval == 0 {
		c.PollInterval = PollIntervalDefault
	}
	if c.Workers == 0 {
		c.Workers = WorkersDefault
	}
	if c.StandbyPoll == 0 {
		c.StandbyPoll = StandbyPollDefault
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Scheduler runs the expiry loop.
type Scheduler struct {
	cfg     Config
	metrics *metrics

	mu      sync.Mutex
	cancel  context.CancelFunc
	done    chan struct{}
	leading bool
}

// New returns a scheduler; Start runs it.
func New(cfg Config) (*Scheduler, error) {
	cfg = cfg.withDefaults()
	var errs []error
	if cfg.Store == nil {
		errs = append(errs, errors.New("store is required"))
	}
	if cfg.Expire == nil {
		errs = append(errs, errors.New("expire function is required"))
	}
	if cfg.Lookahead <= 0 || cfg.PollInterval <= 0 || cfg.Workers < 1 || cfg.StandbyPoll <= 0 {
		errs = append(errs, errors.New("lookahead, poll interval, workers and standby poll must be positive"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("scheduler config: %w", err)
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	return &Scheduler{cfg: cfg, metrics: m, done: make(chan struct{})}, nil
}

// Start runs the scheduler in the background until Stop or ctx's end.
func (s *Scheduler) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancel != nil {
		return errors.New("scheduler: already started")
	}
	ctx, s.cancel = context.WithCancel(ctx)
	go func() {
		defer close(s.done)
		s.run(ctx)
	}()
	return nil
}

// Stop stops the scheduler and waits, until ctx is done, for the expire
// commands in flight.
func (s *Scheduler) Stop(ctx context.Context) error {
	s.mu.Lock()
	cancel := s.cancel
	s.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("scheduler: stop: %w", ctx.Err())
	}
}

// Stopped is closed once the scheduler has stopped.
func (s *Scheduler) Stopped() <-chan struct{} { return s.done }

// Leading reports whether this scheduler is the active one.
func (s *Scheduler) Leading() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.leading
}

func (s *Scheduler) setLeading(v bool) {
	s.mu.Lock()
	s.leading = v
	s.mu.Unlock()
	s.metrics.setLeading(v)
}

// run waits for the lead, then schedules until it loses it or ctx ends.
func (s *Scheduler) run(ctx context.Context) {
	_ = leadership.Run(ctx, s.cfg.Store.Pool(), "modledger.scheduler."+s.cfg.Store.Schema(), s.cfg.StandbyPoll, s.cfg.Logger,
		func(ctx context.Context, lease *leadership.Lease) error {
			s.setLeading(true)
			defer s.setLeading(false)
			s.cfg.Logger.Info("expiry scheduler leading")
			return s.lead(ctx, lease)
		})
}

// item is one expiry the leader will fire.
type item struct {
	p   projection.PendingExpiry
	key string
}

// dueHeap orders items by expiry.
type dueHeap []item

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].p.ExpiresAt.Before(h[j].p.ExpiresAt) }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(item)) }
func (h *dueHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

// result is how firing an item went.
type result struct {
	key string
	ok  bool
}

func keyOf(p projection.PendingExpiry) string {
	return fmt.Sprintf("%d/%d/%d", p.GuildID, p.CaseNumber, p.ExpiresAt.UnixMicro())
}

// lead reads pending expiries every PollInterval and fires each at its
// moment, until the lease is lost or ctx ends.
// lead reads pending expiries and fires them until it loses the lease
// (leadership.ErrLost) or ctx ends.
func (s *Scheduler) lead(ctx context.Context, lease *leadership.Lease) error {
	ctx, cancel := context.WithCancel(ctx)
	var (
		due      dueHeap
		known    = map[string]time.Time{} // scheduled or fired, with when to forget it
		results  = make(chan result, s.cfg.Workers)
		slots    = make(chan struct{}, s.cfg.Workers)
		inflight sync.WaitGroup
		timer    = time.NewTimer(0)
		poll     = time.NewTicker(s.cfg.PollInterval)
		lastHeld = s.cfg.Now()
	)
	defer func() {
		cancel() // workers waiting to hand in a result give up
		poll.Stop()
		timer.Stop()
		inflight.Wait()
	}()
	read := func() {
		now := s.cfg.Now()
		pending, err := s.cfg.Store.PendingExpiries(ctx, now.Add(s.cfg.Lookahead), BatchDefault)
		switch {
		case errors.Is(err, projection.ErrNoGeneration):
			s.cfg.Logger.Debug("no read model yet; waiting for the projector")
			return
		case err != nil:
			if ctx.Err() == nil {
				s.cfg.Logger.Warn("read pending expiries", "error", err)
			}
			return
		}
		for _, p := range pending {
			k := keyOf(p)
			if _, ok := known[k]; ok {
				continue
			}
			known[k] = time.Time{}
			heap.Push(&due, item{p: p, key: k})
		}
		// Forget fired expiries once the read model can no longer list
		// them as pending; a retry of one that failed comes back sooner.
		for k, until := range known {
			if !until.IsZero() && now.After(until) {
				delete(known, k)
			}
		}
	}
	settle := func(r result) {
		if r.ok {
			known[r.key] = s.cfg.Now().Add(time.Minute)
		} else {
			delete(known, r.key) // read again on the next poll
		}
	}
	read()
	for {
		now := s.cfg.Now()
		for due.Len() > 0 && !due[0].p.ExpiresAt.After(now) {
			it := heap.Pop(&due).(item)
			// Wait for a free worker, taking results meanwhile: the
			// workers hand their results to this loop, so it must not
			// wait on the slots alone.
			for acquired := false; !acquired; {
				select {
				case slots <- struct{}{}:
					acquired = true
				case r := <-results:
					settle(r)
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			inflight.Add(1)
			go func() {
				defer inflight.Done()
				err := s.cfg.Expire(ctx, it.p)
				<-slots
				late := s.cfg.Now().Sub(it.p.ExpiresAt)
				s.metrics.observeExpire(late, err)
				if s.cfg.OnExpire != nil {
					s.cfg.OnExpire(it.p, late, err)
				}
				if err != nil && ctx.Err() == nil {
					s.cfg.Logger.Warn("expire failed; retrying", "guild_id", it.p.GuildID, "case_number", it.p.CaseNumber, "error", err)
				}
				select {
				case results <- result{key: it.key, ok: err == nil}:
				case <-ctx.Done():
				}
			}()
		}
		wait := s.cfg.PollInterval
		if due.Len() > 0 {
			wait = min(wait, max(0, due[0].p.ExpiresAt.Sub(now)))
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case r := <-results:
			settle(r)
		case <-poll.C:
			if s.cfg.Now().Sub(lastHeld) > s.cfg.StandbyPoll {
				if !lease.Held(ctx) {
					return leadership.ErrLost
				}
				lastHeld = s.cfg.Now()
			}
			read()
		case <-timer.C:
		}
	}
}
