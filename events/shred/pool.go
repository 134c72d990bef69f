package shred

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Pool defaults.
const (
	// PoolSizeDefault is how many durable keys a Pool keeps ready: 16
	// blocks.
	PoolSizeDefault = 16 * BlockKeys
	// PoolBatchDefault is the most keys one refill publishes: 8 blocks in
	// one atomic batch.
	PoolBatchDefault = 8 * BlockKeys
)

// Pool keeps keys that are already stored (acknowledged, so durable) in the
// key stream, so that opening a case takes a key without a request. It
// refills itself in the background with whole blocks (at most
// PoolBatchDefault keys at a time) when it falls below half. A key is taken
// once; keys in the pool when the process ends are never used and never
// referenced by an event, which is harmless (32 bytes each in the key
// stream).
type Pool struct {
	store *Store
	size  int
	batch int
	log   *slog.Logger

	keys  chan *Key
	kick  chan struct{}
	waits atomic.Uint64

	mu      sync.Mutex
	lastErr error
	cancel  context.CancelFunc
	done    chan struct{}
}

// PoolOpts are a Pool's optional settings; nil means the defaults.
type PoolOpts struct {
	// Size is how many keys the pool keeps, rounded up to whole blocks
	// when it refills. Defaults to 4096.
	Size int
	// Logger receives refill failures. Defaults to discarding them.
	Logger *slog.Logger
}

// NewPool returns a pool of s's keys. It fills once Start is called.
func (s *Store) NewPool(opts *PoolOpts) *Pool {
	var o PoolOpts
	if opts != nil {
		o = *opts
	}
	if o.Size < 2 {
		o.Size = PoolSizeDefault
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Pool{
		store: s, size: o.Size, batch: min(PoolBatchDefault, PublishMax), log: o.Logger,
		// A refill adds whole blocks: up to a block more than size.
		keys: make(chan *Key, o.Size+BlockKeys), kick: make(chan struct{}, 1),
	}
}

// Start begins filling the pool in the background until Stop or until ctx
// is done.
func (p *Pool) Start(ctx context.Context) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done != nil {
		return
	}
	ctx, p.cancel = context.WithCancel(ctx)
	p.done = make(chan struct{})
	go p.run(ctx)
}

// Stop ends the background refill and waits for it. It may be called again.
func (p *Pool) Stop() {
	p.mu.Lock()
	cancel, done := p.cancel, p.done
	p.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
}

// run refills the pool whenever it is below half, retrying failures with
// backoff.
func (p *Pool) run(ctx context.Context) {
	defer close(p.done)
	wait := 10 * time.Millisecond
	for {
		for len(p.keys) <= p.size/2 {
			// Whole blocks, as many as fit below size, at least one.
			n := max(BlockKeys, min(p.batch, p.size-len(p.keys))/BlockKeys*BlockKeys)
			// A batch is finished even when the pool is stopped meanwhile
			// (within the store's API timeout): an abandoned atomic batch
			// would linger on the server.
			keys, err := p.store.Publish(context.WithoutCancel(ctx), n)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				p.mu.Lock()
				p.lastErr = err
				p.mu.Unlock()
				p.log.Warn("refill the key pool", "error", err)
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
				wait = min(2*wait, time.Second)
				continue
			}
			wait = 10 * time.Millisecond
			p.mu.Lock()
			p.lastErr = nil
			p.mu.Unlock()
			for _, k := range keys {
				p.keys <- k // never blocks: len+n <= size+BlockKeys
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-p.kick:
		}
	}
}

// Take returns a key no one else has, stored in the key stream. It waits
// for the pool to refill when it is empty, until ctx is done.
func (p *Pool) Take(ctx context.Context) (*Key, error) {
	var k *Key
	select {
	case k = <-p.keys:
	default:
		p.mu.Lock()
		started := p.done != nil
		p.mu.Unlock()
		if !started {
			return nil, ErrPoolStopped
		}
		p.waits.Add(1)
		p.wake()
		select {
		case k = <-p.keys:
		case <-ctx.Done():
			p.mu.Lock()
			last := p.lastErr
			p.mu.Unlock()
			if last != nil {
				return nil, fmt.Errorf("take a data key: %w (the key pool cannot refill: %w)", ctx.Err(), last)
			}
			return nil, fmt.Errorf("take a data key: %w", ctx.Err())
		}
	}
	if len(p.keys) <= p.size/2 {
		p.wake()
	}
	return k, nil
}

// Waits returns how many Takes found the pool empty and waited for a
// refill: when it grows, the pool is too small for the bursts of opens.
func (p *Pool) Waits() uint64 { return p.waits.Load() }

// wake asks the refill loop to look at the pool.
func (p *Pool) wake() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// ErrPoolStopped is returned by Take on a pool that was never started.
var ErrPoolStopped = errors.New("key pool not started")
