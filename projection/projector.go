package projection

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/events"
	"github.com/modledger/modledger/events/shred"
	"github.com/modledger/modledger/internal/leadership"
)

// Projector defaults.
const (
	// BatchSizeDefault is the most events a projector applies in one
	// transaction.
	BatchSizeDefault = 10_000
	// BulkCatchUpDefault is the backlog from which a projector rebuilds in
	// bulk (ProjectorConfig.BulkCatchUp).
	BulkCatchUpDefault = 100_000
	// IdleWaitDefault is how long an idle projector waits for the next
	// event before it looks around (its lead, shutdown) and waits again.
	IdleWaitDefault = 500 * time.Millisecond
	// StandbyPollDefault is how often a standby projector tries to become
	// the active one.
	StandbyPollDefault = time.Second
	// StreamDefault and PrefixDefault name the ledger's stream and subjects.
	StreamDefault = "MODLEDGER"
	PrefixDefault = events.DefaultPrefix
)

// ErrProjectionStopped wraps the error that stopped a projection: an event
// it could not decode or apply. The projection does not skip it; an
// operator fixes the cause (a newer build, a rebuild) and restarts.
var ErrProjectionStopped = errors.New("projection stopped")

// ProjectorConfig configures a Projector.
type ProjectorConfig struct {
	// JetStream reaches the ledger's stream. Required.
	JetStream jetstream.JetStream
	// Store is the read side's PostgreSQL. Required.
	Store *Store
	// Projection is what the projector builds. Required.
	Projection Projection
	// Stream is the ledger's stream. Defaults to "MODLEDGER".
	Stream string
	// Prefix is the ledger's subject prefix. Defaults to "modledger".
	Prefix string
	// BatchSize bounds a batch. A batch never waits to fill (see
	// IdleWait), so batches are small when the projector keeps up and
	// reach this size only over a backlog, where larger batches cost less
	// per event. Defaults to 10,000.
	BatchSize int
	// BulkCatchUp is the backlog, in stream messages, from which a
	// projector that becomes active rebuilds its projection in bulk (see
	// Rebuild and BulkProjection) instead of applying the backlog batch by
	// batch, provided the backlog is also no shorter than what the active
	// generation has applied: a new read model over a long stream, or one
	// restored far behind. Queries meanwhile read the active generation as
	// it is. Defaults to 100,000; negative turns it off.
	BulkCatchUp int
	// IdleWait is how long an idle projector's fetch waits for the next
	// event. A batch never waits to fill: it takes what is there, up to
	// BatchSize, as soon as there is one event. Defaults to 500ms.
	IdleWait time.Duration
	// StandbyPoll is how often a standby tries to take over. Defaults to 1s.
	StandbyPoll time.Duration
	// Logger receives the projector's logs. Defaults to discarding them.
	Logger *slog.Logger
	// OnBatch, when set, is called after each committed batch with the
	// number of events applied and the new checkpoint (metrics, tests).
	OnBatch func(applied int, checkpoint uint64)
	// Registerer receives the projector's Prometheus metrics: events
	// applied, batch sizes and batch latency. Nil: no metrics. Lag is
	// measured by a LagCollector.
	Registerer prometheus.Registerer
}

func (c ProjectorConfig) withDefaults() ProjectorConfig {
	if c.Stream == "" {
		c.Stream = StreamDefault
	}
	if c.Prefix == "" {
		c.Prefix = PrefixDefault
	}
	if c.BatchSize == 0 {
		c.BatchSize = BatchSizeDefault
	}
	if c.BulkCatchUp == 0 {
		c.BulkCatchUp = BulkCatchUpDefault
	}
	if c.IdleWait == 0 {
		c.IdleWait = IdleWaitDefault
	}
	if c.StandbyPoll == 0 {
		c.StandbyPoll = StandbyPollDefault
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Projector keeps one projection up to date: it consumes the stream with a
// durable pull consumer and applies batches with their checkpoint. Of the
// projectors of one projection, one is active (it holds a PostgreSQL
// advisory lock) and the others stand by.
type Projector struct {
	cfg     ProjectorConfig
	codec   *events.Codec
	keys    *shred.Store
	metrics *projectorMetrics

	mu      sync.Mutex
	cancel  context.CancelFunc
	done    chan struct{}
	err     error
	active  bool
	started bool
}

// NewProjector returns a projector; Start runs it.
func NewProjector(cfg ProjectorConfig) (*Projector, error) {
	cfg = cfg.withDefaults()
	var errs []error
	if cfg.JetStream == nil {
		errs = append(errs, errors.New("JetStream is required"))
	}
	if cfg.Store == nil {
		errs = append(errs, errors.New("store is required"))
	}
	if cfg.Projection == nil {
		errs = append(errs, errors.New("projection is required"))
	}
	if cfg.BatchSize < 1 || cfg.IdleWait <= 0 || cfg.StandbyPoll <= 0 {
		errs = append(errs, errors.New("batch size, idle wait and standby poll must be positive"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("projector config: %w", err)
	}
	codec, err := events.NewCodec()
	if err != nil {
		return nil, err
	}
	m, err := newProjectorMetrics(cfg.Registerer, cfg.Projection.Name())
	if err != nil {
		return nil, fmt.Errorf("projector: %w", err)
	}
	keys, err := shred.NewStore(shred.Config{Conn: cfg.JetStream.Conn(), Stream: shred.StreamName(cfg.Stream), Prefix: cfg.Prefix})
	if err != nil {
		return nil, fmt.Errorf("projector: %w", err)
	}
	return &Projector{cfg: cfg, codec: codec, keys: keys, metrics: m, done: make(chan struct{})}, nil
}

// batchApplyTimeout bounds one attempt to apply a batch and commit it.
const batchApplyTimeout = 30 * time.Second

// ConsumerName is the durable consumer of a projection.
func ConsumerName(projection string) string { return "modledger_projection_" + projection }

// Start runs the projector in the background until Stop, ctx's end, or an
// event it cannot apply (see Err).
func (p *Projector) Start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started {
		return errors.New("projector: already started")
	}
	p.started = true
	ctx, p.cancel = context.WithCancel(ctx)
	go func() {
		defer close(p.done)
		err := p.run(ctx)
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			err = nil
		}
		if err != nil {
			p.cfg.Logger.Error("projection stopped", "projection", p.cfg.Projection.Name(), "error", err)
		}
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
	}()
	return nil
}

// Stop stops the projector after the batch in flight and waits until ctx
// is done for it to finish.
func (p *Projector) Stop(ctx context.Context) error {
	p.mu.Lock()
	cancel := p.cancel
	p.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("projector %s: stop: %w", p.cfg.Projection.Name(), ctx.Err())
	}
}

// Stopped is closed when the projector has stopped.
func (p *Projector) Stopped() <-chan struct{} { return p.done }

// Err returns the error that stopped the projector, if any.
func (p *Projector) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Active reports whether this projector is the active one.
func (p *Projector) Active() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.active
}

func (p *Projector) setActive(v bool) {
	p.mu.Lock()
	p.active = v
	p.mu.Unlock()
}

// run waits to become the active projector, then projects until it loses
// the lock (and waits again), ctx ends, or an event cannot be applied.
func (p *Projector) run(ctx context.Context) error {
	name := p.cfg.Projection.Name()
	key := "modledger.projector." + p.cfg.Store.schema + "." + name
	return leadership.Run(ctx, p.cfg.Store.pool, key, p.cfg.StandbyPoll, p.cfg.Logger,
		func(ctx context.Context, lead *leadership.Lease) error {
			p.setActive(true)
			defer p.setActive(false)
			p.cfg.Logger.Info("projector active", "projection", name)
			return p.project(ctx, lead)
		})
}

// project consumes and applies while this projector holds the lead.
func (p *Projector) project(ctx context.Context, lead *leadership.Lease) error {
	proj := p.cfg.Projection
	gen, err := retryDB(ctx, p.cfg.Logger, func() (Generation, error) {
		return p.cfg.Store.Activate(ctx, proj)
	})
	if err != nil {
		return err
	}
	// PostgreSQL or NATS may be coming back from an outage: the consumer
	// is made again with the same backoff as a batch.
	newConsumer := func() (jetstream.Consumer, error) {
		return retryDB(ctx, p.cfg.Logger, func() (jetstream.Consumer, error) { return p.consumer(ctx) })
	}
	cons, err := newConsumer()
	if err != nil {
		return err
	}
	rebuilt, err := p.bulkCatchUp(ctx, lead, cons)
	if err != nil {
		return err
	}
	if rebuilt {
		if cons, err = newConsumer(); err != nil {
			return err
		}
	} else if gen.Version < proj.Version() {
		// The active generation was built by older code: build a new one
		// beside it and swap it in, while this projector keeps the old one
		// current.
		p.cfg.Logger.Info("projection code is newer than its tables; rebuilding", "projection", proj.Name(),
			"active_version", gen.Version, "code_version", proj.Version())
		go func() {
			_, err := Rebuild(ctx, p.rebuildConfig())
			if err != nil && ctx.Err() == nil {
				p.cfg.Logger.Error("automatic rebuild failed; the old generation stays active", "projection", proj.Name(), "error", err)
			}
		}()
	}
	// The next batch is fetched and decoded while one is applied.
	fetchCtx, stopFetch := context.WithCancel(ctx)
	batches := p.prefetch(fetchCtx, cons)
	stopFetching := func() {
		stopFetch()
		for range batches { // wait for the fetcher to stop
		}
	}
	defer func() { stopFetching() }()
	restart := func() error {
		stopFetching()
		var err error
		if cons, err = newConsumer(); err != nil {
			return err
		}
		fetchCtx, stopFetch = context.WithCancel(ctx)
		batches = p.prefetch(fetchCtx, cons)
		return nil
	}
	lastCheck := time.Now()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if time.Since(lastCheck) > p.cfg.StandbyPoll {
			if !lead.Held(ctx) {
				return leadership.ErrLost
			}
			lastCheck = time.Now()
		}
		var f liveBatch
		select {
		case f = <-batches:
		case <-ctx.Done():
			return ctx.Err()
		}
		if f.err != nil {
			return f.err
		}
		evs, last, gap := f.evs, f.last, f.gap
		if len(evs) == 0 {
			if gap {
				p.cfg.Logger.Info("consumer skipped a message; restarting it at the checkpoint", "projection", proj.Name())
				if err := restart(); err != nil {
					return err
				}
			} else if last != nil {
				// Only messages that are not case events (claims): let the
				// consumer forget them.
				if err := last.Ack(); err != nil {
					p.cfg.Logger.Warn("ack failed", "projection", proj.Name(), "error", err)
				}
			}
			continue
		}
		type result struct {
			applied int
			cp      uint64
		}
		start := time.Now()
		r, err := retryDB(ctx, p.cfg.Logger, func() (result, error) {
			// A batch taken is finished even when Stop comes during it:
			// shutdown waits for its commit rather than rolling it back.
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), batchApplyTimeout)
			defer cancel()
			applied, cp, err := p.cfg.Store.ApplyBatch(actx, proj, evs)
			return result{applied, cp}, err
		})
		if err != nil {
			return err
		}
		// Acknowledge after commit; the consumer acks all up to the last.
		if err := last.Ack(); err != nil {
			p.cfg.Logger.Warn("ack failed; the batch will be redelivered and skipped", "projection", proj.Name(), "error", err)
		}
		p.metrics.observe(len(evs), r.applied, time.Since(start))
		if p.cfg.OnBatch != nil {
			p.cfg.OnBatch(r.applied, r.cp)
		}
		if gap {
			p.cfg.Logger.Info("consumer skipped a message; restarting it at the checkpoint", "projection", proj.Name())
			if err := restart(); err != nil {
				return err
			}
		}
	}
}

// rebuildConfig is the configuration of the rebuilds the projector starts.
func (p *Projector) rebuildConfig() RebuildConfig {
	return RebuildConfig{JetStream: p.cfg.JetStream, Store: p.cfg.Store, Projection: p.cfg.Projection,
		Stream: p.cfg.Stream, Prefix: p.cfg.Prefix, Logger: p.cfg.Logger}
}

// bulkCatchUp rebuilds the projection in bulk when the consumer, just made
// at the checkpoint, has at least BulkCatchUp messages pending and no fewer
// than the checkpoint: a new read model over a long stream, or one
// restored far behind, is built faster from the start in bulk than caught
// up batch by batch. It reports whether it rebuilt. The rebuild stops if
// this projector loses the lead; if it fails, the projector catches up
// batch by batch instead.
func (p *Projector) bulkCatchUp(ctx context.Context, lead *leadership.Lease, cons jetstream.Consumer) (bool, error) {
	if p.cfg.BulkCatchUp < 0 {
		return false, nil
	}
	info := cons.CachedInfo()
	cp, _, err := p.cfg.Store.Checkpoint(ctx, p.cfg.Projection.Name())
	if err != nil {
		return false, nil // PostgreSQL is away: the batches will wait for it
	}
	if info == nil || info.NumPending < uint64(p.cfg.BulkCatchUp) || info.NumPending < cp {
		return false, nil
	}
	p.cfg.Logger.Info("backlog is long: rebuilding in bulk", "projection", p.cfg.Projection.Name(),
		"checkpoint", cp, "pending", info.NumPending)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		t := time.NewTicker(p.cfg.StandbyPoll)
		defer t.Stop()
		for {
			select {
			case <-rctx.Done():
				return
			case <-t.C:
				if !lead.Held(rctx) {
					cancel()
					return
				}
			}
		}
	}()
	if _, err := Rebuild(rctx, p.rebuildConfig()); err != nil {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		if rctx.Err() != nil {
			return false, leadership.ErrLost
		}
		// The active generation is as it was: catch up batch by batch,
		// which retries what may pass and stops at an event that cannot be
		// applied.
		p.cfg.Logger.Warn("bulk catch-up failed; catching up batch by batch", "projection", p.cfg.Projection.Name(), "error", err)
		return false, nil
	}
	return true, nil
}

// liveBatch is what one fetch of the projector took: the case events of a
// batch and its last message, or a gap, or an error that stops the
// projection. An empty batch without a gap means that nothing came.
type liveBatch struct {
	evs  []events.Event
	last jetstream.Msg
	gap  bool
	err  error
}

// prefetch fetches in the background, one batch ahead of the applier, until
// ctx ends or it sends a gap or a stopping error; it retries other fetch
// errors. It closes the channel when it stops.
func (p *Projector) prefetch(ctx context.Context, cons jetstream.Consumer) <-chan liveBatch {
	out := make(chan liveBatch, 1)
	go func() {
		defer close(out)
		var consumed uint64 // the consumer sequence of the last message taken
		for ctx.Err() == nil {
			evs, last, gap, err := p.fetch(cons, &consumed)
			if err != nil && !errors.Is(err, ErrProjectionStopped) {
				if ctx.Err() != nil {
					return
				}
				p.cfg.Logger.Warn("fetch failed; retrying", "projection", p.cfg.Projection.Name(), "error", err)
				if sleep(ctx, 100*time.Millisecond) != nil {
					return
				}
				continue
			}
			if err == nil {
				// The batch's messages are taken: open them, however long
				// the key stream takes to answer.
				for {
					oerr := p.keys.OpenEvents(ctx, evs)
					if oerr == nil {
						break
					}
					if errors.Is(oerr, shred.ErrSealBroken) {
						err = fmt.Errorf("%w: %w", ErrProjectionStopped, oerr)
						break
					}
					if ctx.Err() != nil {
						return
					}
					p.cfg.Logger.Warn("reading data keys failed; retrying", "projection", p.cfg.Projection.Name(), "error", oerr)
					if sleep(ctx, 100*time.Millisecond) != nil {
						return
					}
				}
			}
			select {
			case out <- liveBatch{evs: evs, last: last, gap: gap, err: err}:
			case <-ctx.Done():
				return
			}
			if gap || err != nil {
				return
			}
		}
	}()
	return out
}

// fetch returns the next batch: whatever is there, up to BatchSize, at
// once; when nothing is, it waits up to IdleWait for one message and takes
// whatever came with it. Messages that are not case events (claims) are
// skipped, but last is the last message taken, so that acknowledging it
// lets the consumer forget them too. consumed is the consumer sequence of
// the last message taken; gap reports that the consumer skipped a message
// (a pull response lost under load, a redelivery), so that the batch holds
// only the contiguous prefix and the consumer must be restarted at the
// checkpoint.
func (p *Projector) fetch(cons jetstream.Consumer, consumed *uint64) (evs []events.Event, last jetstream.Msg, gap bool, err error) {
	casePrefix := p.cfg.Prefix + ".case."
	taken := 0
	take := func(batch jetstream.MessageBatch) error {
		for m := range batch.Messages() {
			if gap {
				continue // drain the batch
			}
			md, err := m.Metadata()
			if err != nil {
				return fmt.Errorf("%w: message on %s without metadata: %v", ErrProjectionStopped, m.Subject(), err)
			}
			if md.Sequence.Consumer != *consumed+1 || md.NumDelivered > 1 {
				gap = true
				continue
			}
			*consumed = md.Sequence.Consumer
			last = m
			taken++
			if !strings.HasPrefix(m.Subject(), casePrefix) {
				continue
			}
			e, err := p.codec.Decode(m.Data())
			if err != nil {
				return fmt.Errorf("%w: event at sequence %d (%s): %w", ErrProjectionStopped, md.Sequence.Stream, m.Subject(), err)
			}
			e.Seq = md.Sequence.Stream
			evs = append(evs, e)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			p.cfg.Logger.Debug("fetch ended early", "projection", p.cfg.Projection.Name(), "error", err)
		}
		return nil
	}
	batch, err := cons.FetchNoWait(p.cfg.BatchSize)
	if err != nil {
		return nil, nil, false, err
	}
	if err := take(batch); err != nil {
		return nil, nil, false, err
	}
	if taken > 0 || gap {
		return evs, last, gap, nil
	}
	if batch, err = cons.Fetch(1, jetstream.FetchMaxWait(p.cfg.IdleWait)); err != nil {
		return nil, nil, false, err
	}
	if err := take(batch); err != nil || taken == 0 || gap || p.cfg.BatchSize == 1 {
		return evs, last, gap, err
	}
	if batch, err = cons.FetchNoWait(p.cfg.BatchSize - 1); err != nil {
		return evs, last, gap, nil // apply what came; the rest comes next time
	}
	err = take(batch)
	return evs, last, gap, err
}

// consumer (re)creates the projection's durable consumer so that it starts
// right after the checkpoint: the checkpoint, not the consumer's ack state,
// is the truth (a restored or rebuilt database may be behind the acks).
func (p *Projector) consumer(ctx context.Context) (jetstream.Consumer, error) {
	name := ConsumerName(p.cfg.Projection.Name())
	cp, _, err := p.cfg.Store.Checkpoint(ctx, p.cfg.Projection.Name())
	if err != nil {
		return nil, err
	}
	if err := p.cfg.JetStream.DeleteConsumer(ctx, p.cfg.Stream, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("reset consumer %s: %w", name, err)
	}
	cfg := jetstream.ConsumerConfig{
		Durable:     name,
		Description: "modledger projector " + p.cfg.Projection.Name(),
		// No subject filter: with one, the server counts the filter's
		// pending messages over every subject at each pull request, which
		// with a million cases costs a fifth of a second a request. The
		// few other messages (claims) are skipped by fetch.
		AckPolicy:     jetstream.AckAllPolicy,
		AckWait:       time.Minute,
		MaxAckPending: -1,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	if cp > 0 {
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = cp + 1
	}
	c, err := p.cfg.JetStream.CreateOrUpdateConsumer(ctx, p.cfg.Stream, cfg)
	if err != nil {
		return nil, fmt.Errorf("create consumer %s: %w", name, err)
	}
	return c, nil
}

// retryDB runs op, retrying PostgreSQL errors that may pass (a lost
// connection, a restart, a serialization failure) with backoff; an event
// that cannot be applied stops the projection.
func retryDB[T any](ctx context.Context, log *slog.Logger, op func() (T, error)) (T, error) {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 50 * time.Millisecond
	b.MaxInterval = 5 * time.Second
	b.MaxElapsedTime = 0
	return backoff.RetryNotifyWithData(func() (T, error) {
		v, err := op()
		if err != nil && permanent(err) {
			return v, backoff.Permanent(fmt.Errorf("%w: %w", ErrProjectionStopped, err))
		}
		return v, err
	}, backoff.WithContext(b, ctx), func(err error, d time.Duration) {
		log.Warn("PostgreSQL error; retrying", "error", err, "retry_in", d)
	})
}

// permanent reports whether err means the events cannot be applied, so
// that retrying would never help.
func permanent(err error) bool {
	if errors.Is(err, aggregate.ErrBadEvent) || errors.Is(err, events.ErrMalformedEvent) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code[:2] {
		case "22", "23", "42": // data exceptions, integrity violations, undefined objects
			return true
		}
	}
	return false
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
