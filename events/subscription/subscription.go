package subscription

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/modledger/modledger/events"
	"github.com/modledger/modledger/events/shred"
)

// Subscription defaults and limits.
const (
	// StreamDefault is the ledger's stream.
	StreamDefault = "MODLEDGER"
	// PrefixDefault is the ledger's subject prefix.
	PrefixDefault = events.DefaultPrefix
	// AckWaitDefault is how long the server waits for the answer to a
	// delivery before it delivers the message again.
	AckWaitDefault = 30 * time.Second
	// AckWaitMin is the shortest AckWait accepted.
	AckWaitMin = 100 * time.Millisecond
	// ConcurrencyDefault is one handler at a time, in stream order.
	ConcurrencyDefault = 1
	// MaxDeliverUnlimited lets the server deliver a failing event for ever.
	MaxDeliverUnlimited = -1
	// EphemeralInactiveThreshold is how long the server keeps an ephemeral
	// consumer whose subscriber has gone away without stopping (a crash, a
	// long disconnect). A stopped subscription deletes its ephemeral
	// consumer at once.
	EphemeralInactiveThreshold = time.Minute
	// APITimeoutDefault bounds one JetStream API call when the caller's
	// context has no deadline.
	APITimeoutDefault = 5 * time.Second
)

// Pull request settings (see Subscribe).
const (
	pullBatchMin = 64
	pullBatchMax = 1000
	// pullExpiry is how long a pull request waits on the server; the
	// server sends heartbeats at half of it, and two missed ones make the
	// subscription pull again.
	pullExpiry = 10 * time.Second
)

// BackoffDefault returns the default redelivery delays after a handler
// error: 1s, 2s, 5s, 10s, then 30s for every later attempt.
func BackoffDefault() []time.Duration {
	return []time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second}
}

// Errors of the subscription package.
var (
	// ErrInvalidConfig wraps every problem found in a Config.
	ErrInvalidConfig = errors.New("invalid subscription config")
	// ErrConsumerIncompatible is returned when Config.Durable names an
	// existing consumer that a subscription cannot use: a push consumer,
	// one without explicit acks, or one with priority groups.
	ErrConsumerIncompatible = errors.New("existing consumer is not usable by a subscription")
)

// Message headers the ledger writes (see docs/events.md).
const (
	headerEvent = "Modledger-Event"
	headerClaim = "Modledger-Claim"
)

// Config configures a subscription. The consumer settings (Filter, AckWait,
// MaxDeliver, MaxAckPending) are written to the server; the others are this
// process's behaviour.
type Config struct {
	// Stream is the ledger's stream. Defaults to "MODLEDGER".
	Stream string
	// Prefix is the ledger's subject prefix. Defaults to "modledger".
	Prefix string
	// Durable names a durable consumer: the server keeps its position
	// while no process runs, and every process that subscribes with the
	// same name shares its work. Subscribe creates it, or binds to it when
	// it exists (keeping its position; see Reset) and brings its filter and
	// delivery settings in line with this Config. Defaults to an ephemeral
	// consumer, deleted by Stop (empty).
	Durable string
	// Filter selects the events. Defaults to every case event.
	Filter Filter
	// Start is where a newly created consumer begins. An existing durable
	// keeps its own position and ignores it. Defaults to StartNew().
	Start Start
	// Reset deletes the durable consumer, if it exists, and creates it
	// anew at Start: its position and its pending redeliveries are lost.
	// Other processes bound to it stop with an error. Requires Durable.
	// Defaults to false.
	Reset bool
	// MaxDeliver bounds the deliveries of one event: when the handler fails
	// on the last one, the event is given up (see Poison). Defaults to
	// MaxDeliverUnlimited (-1).
	MaxDeliver int
	// Backoff is the delay before the server delivers an event again after
	// the handler returned an error: Backoff[n-1] after the n-th delivery,
	// and its last value for every later one. Defaults to BackoffDefault().
	Backoff []time.Duration
	// AckWait is how long the server waits for the answer to a delivery
	// before it delivers the message again: it covers a crashed process and
	// a lost message. A handler that runs longer is not redelivered: the
	// subscription tells the server it is still working every AckWait/3.
	// Defaults to 30s; at least 100ms.
	AckWait time.Duration
	// MaxAckPending bounds the events the server has delivered to all the
	// consumer's subscribers and not yet had answered. At 1, events are
	// handled strictly in stream order, retries included, across every
	// process bound to the consumer; above 1, the server delivers past an
	// event that waits for its retry, so later events may overtake it.
	// Processes sharing a durable should set it to their total
	// Concurrency. Defaults to Concurrency.
	MaxAckPending int
	// Concurrency is how many handlers this process runs at once. Events of
	// one case always go to the same handler goroutine, one at a time, in
	// the order they are delivered. Defaults to 1.
	Concurrency int
	// Codec decodes events; pass one with the deployment's own upcasters.
	// Defaults to events.NewCodec().
	Codec *events.Codec
	// Logger receives the subscription's logs. Defaults to text on
	// standard error at warn level.
	Logger *slog.Logger
	// OnPoison, when set, is called with every message the subscription
	// gives up (see Poison), before it is terminated. Record it somewhere
	// (a dead-letter table, an alert): the subscription does not stop for
	// it. Defaults to logging only (nil).
	OnPoison func(ctx context.Context, p Poison)
}

// WithDefaults returns a copy of c with unset fields at their defaults.
func (c Config) WithDefaults() Config {
	if c.Stream == "" {
		c.Stream = StreamDefault
	}
	if c.Prefix == "" {
		c.Prefix = PrefixDefault
	}
	if c.MaxDeliver == 0 {
		c.MaxDeliver = MaxDeliverUnlimited
	}
	if len(c.Backoff) == 0 {
		c.Backoff = BackoffDefault()
	} else {
		c.Backoff = slices.Clone(c.Backoff)
	}
	if c.AckWait == 0 {
		c.AckWait = AckWaitDefault
	}
	if c.Concurrency == 0 {
		c.Concurrency = ConcurrencyDefault
	}
	if c.MaxAckPending == 0 {
		c.MaxAckPending = c.Concurrency
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	if c.Stream == "" || strings.ContainsAny(c.Stream, ">*. /\\\t\r\n") {
		errs = append(errs, fmt.Errorf("stream %q: not a stream name", c.Stream))
	}
	if c.Prefix == "" || strings.ContainsAny(c.Prefix, ">* \t\r\n") || strings.HasPrefix(c.Prefix, ".") ||
		strings.HasSuffix(c.Prefix, ".") || strings.Contains(c.Prefix, "..") {
		errs = append(errs, fmt.Errorf("prefix %q: not a subject prefix", c.Prefix))
	}
	if strings.ContainsAny(c.Durable, ">*. /\\\t\r\n") {
		errs = append(errs, fmt.Errorf("durable %q: a consumer name has no dots, wildcards, slashes or spaces", c.Durable))
	}
	if c.Reset && c.Durable == "" {
		errs = append(errs, errors.New("reset: needs a durable consumer"))
	}
	if err := c.Filter.validate(); err != nil {
		errs = append(errs, err)
	}
	switch c.Start.kind {
	case startSeq:
		if c.Start.seq == 0 {
			errs = append(errs, errors.New("start: stream sequences start at 1"))
		}
	case startTime:
		if c.Start.time.IsZero() {
			errs = append(errs, errors.New("start: zero time"))
		}
	}
	if c.MaxDeliver < 1 && c.MaxDeliver != MaxDeliverUnlimited {
		errs = append(errs, fmt.Errorf("max deliver %d: must be at least 1, or %d for unlimited", c.MaxDeliver, MaxDeliverUnlimited))
	}
	for _, d := range c.Backoff {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("backoff %v: delays must be positive", c.Backoff))
			break
		}
	}
	if c.AckWait < AckWaitMin {
		errs = append(errs, fmt.Errorf("ack wait %s: must be at least %s", c.AckWait, AckWaitMin))
	}
	if c.Concurrency < 1 {
		errs = append(errs, fmt.Errorf("concurrency %d: must be at least 1", c.Concurrency))
	}
	if c.MaxAckPending < 1 {
		errs = append(errs, fmt.Errorf("max ack pending %d: must be at least 1", c.MaxAckPending))
	}
	return errors.Join(errs...)
}

// backoff returns the delay before the next delivery after the handler
// failed on delivery number n (from 1).
func (c Config) backoff(n uint64) time.Duration {
	n = max(n, 1)
	i := len(c.Backoff) - 1
	if n-1 < uint64(i) {
		i = int(n - 1)
	}
	return c.Backoff[i]
}

// Subscription delivers the ledger's events to a handler until it is
// stopped. Create it with [Subscribe].
type Subscription struct {
	cfg       Config
	js        jetstream.JetStream
	handler   Handler
	codec     *events.Codec
	keys      *shred.Store
	log       *slog.Logger
	casePfx   string
	nameCheck bool

	name      string // the consumer's name
	ephemeral bool
	iter      jetstream.MessagesContext

	handlerCtx     context.Context
	cancelHandlers context.CancelFunc

	work []chan jetstream.Msg
	wg   sync.WaitGroup

	stopOnce sync.Once
	stopping chan struct{}
	readDone chan struct{} // closed when no more messages are read
	done     chan struct{}

	mu  sync.Mutex
	err error
}

// Subscribe creates or binds the consumer that cfg describes and delivers
// its events to handler in the background, until Stop is called or ctx is
// done (which stops it as Stop does). It returns once the consumer exists on
// the server: with StartNew, every event stored after Subscribe returns is
// delivered.
//
// Each event is decoded and handed to handler. When the handler returns nil
// the event is acknowledged; when it returns an error the server delivers it
// again after the next Backoff delay. An event that cannot be decoded, or
// that the handler fails on for good (see [Permanent], MaxDeliver), is
// passed to OnPoison and terminated.
func Subscribe(ctx context.Context, js jetstream.JetStream, cfg Config, handler Handler) (*Subscription, error) {
	cfg = cfg.WithDefaults()
	err := cfg.validate()
	if js == nil {
		err = errors.Join(err, errors.New("a JetStream context is required"))
	}
	if handler == nil {
		err = errors.Join(err, errors.New("a handler is required"))
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	codec := cfg.Codec
	if codec == nil {
		if codec, err = events.NewCodec(); err != nil {
			return nil, err
		}
	}
	keys, err := shred.NewStore(shred.Config{Conn: js.Conn(), Stream: shred.StreamName(cfg.Stream), Prefix: cfg.Prefix})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	s := &Subscription{
		cfg:       cfg,
		js:        js,
		handler:   handler,
		codec:     codec,
		keys:      keys,
		casePfx:   cfg.Prefix + ".case.",
		nameCheck: cfg.Filter.needsNameCheck(),
		ephemeral: cfg.Durable == "",
		stopping:  make(chan struct{}),
		readDone:  make(chan struct{}),
		done:      make(chan struct{}),
	}

	actx, cancel := apiContext(ctx)
	defer cancel()
	cons, err := s.consumer(actx)
	if err != nil {
		return nil, err
	}
	s.name = cons.CachedInfo().Name
	s.log = cfg.Logger.With("consumer", s.name)
	// The server never has more than MaxAckPending messages outstanding,
	// so a larger pull request does not make more messages wait here. It
	// keeps a request open while the last one is topped up: with a request
	// for a single message, a top-up that races with the previous one is
	// skipped by the client and the subscription idles until the next
	// heartbeat check.
	s.iter, err = cons.Messages(
		jetstream.PullMaxMessages(min(max(cfg.MaxAckPending, pullBatchMin), pullBatchMax)),
		jetstream.PullExpiry(pullExpiry),
	)
	if err != nil {
		s.deleteEphemeral()
		return nil, fmt.Errorf("subscribe to consumer %s: %w", s.name, err)
	}

	s.handlerCtx, s.cancelHandlers = context.WithCancel(context.WithoutCancel(ctx))
	s.work = make([]chan jetstream.Msg, cfg.Concurrency)
	for i := range s.work {
		s.work[i] = make(chan jetstream.Msg)
		s.wg.Add(1)
		go func(ch <-chan jetstream.Msg) {
			defer s.wg.Done()
			for m := range ch {
				s.handle(m)
			}
		}(s.work[i])
	}
	go s.run(ctx)
	s.log.Debug("subscribed", "filter", strings.Join(cfg.Filter.Subjects(events.Subjects{Prefix: cfg.Prefix}), " "),
		"start", cfg.Start.String(), "concurrency", cfg.Concurrency)
	return s, nil
}

// ConsumerName is the name of the subscription's consumer: Config.Durable,
// or the name made for an ephemeral consumer.
func (s *Subscription) ConsumerName() string { return s.name }

// Stop stops fetching events and waits for the handlers in flight to return
// and their events to be acknowledged. Events fetched but not yet handed to
// a handler are released at once, for the next subscriber of the consumer.
// An ephemeral consumer is then deleted.
//
// If ctx ends first, Stop cancels the handlers' context and returns ctx's
// error; the subscription still stops once they return (call Stop again, or
// wait on Stopped). Stop may be called more than once and from any
// goroutine.
func (s *Subscription) Stop(ctx context.Context) error {
	s.requestStop()
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		s.cancelHandlers()
		return fmt.Errorf("stop subscription %s: %w", s.name, ctx.Err())
	}
}

// Stopped is closed when the subscription has stopped: after Stop, after
// the context given to Subscribe ended, or after an error (see Err).
func (s *Subscription) Stopped() <-chan struct{} { return s.done }

// Err returns the error that stopped the subscription on its own, such as
// its consumer being deleted or its connection closed; nil while it runs
// and after Stop or the end of Subscribe's context.
func (s *Subscription) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *Subscription) requestStop() {
	s.stopOnce.Do(func() { close(s.stopping) })
}

func (s *Subscription) isStopping() bool {
	select {
	case <-s.stopping:
		return true
	default:
		return false
	}
}

// run reads messages and hands them to the workers until the iterator
// closes, then waits for the workers and cleans up.
func (s *Subscription) run(ctx context.Context) {
	defer close(s.done)
	go func() {
		select {
		case <-s.stopping:
		case <-ctx.Done():
			s.requestStop()
		case <-s.readDone:
			return
		}
		// Stop asking for messages; those already on their way are
		// still returned by Next, and released by read.
		s.iter.Drain()
	}()
	err := s.read()
	close(s.readDone)
	s.iter.Stop()
	for _, ch := range s.work {
		close(ch)
	}
	s.wg.Wait()
	s.cancelHandlers()

	// Make sure the last acknowledgements have left this process before
	// Stop returns and the caller perhaps closes the connection.
	if nc := s.js.Conn(); nc != nil && !nc.IsClosed() {
		if ferr := nc.FlushTimeout(APITimeoutDefault); ferr != nil {
			s.log.Warn("flush acknowledgements", "error", ferr)
		}
	}
	s.deleteEphemeral()
	if err != nil {
		s.log.Error("subscription stopped", "error", err)
	} else {
		s.log.Debug("subscription stopped")
	}
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
}

// read takes messages from the iterator until it closes. Once the
// subscription is stopping, messages still arriving are released, after the
// iterator has closed: released earlier, the server could deliver them
// straight back to this subscription's last pull request.
func (s *Subscription) read() error {
	var unhandled []jetstream.Msg
	defer func() {
		for _, m := range unhandled {
			s.release(m)
		}
	}()
	for {
		m, err := s.iter.Next()
		if err != nil {
			if s.isStopping() {
				return nil
			}
			if errors.Is(err, jetstream.ErrNoHeartbeat) {
				// The iterator asks again by itself; find out whether
				// there is still a consumer to ask.
				if err := s.checkConsumer(); err != nil {
					return err
				}
				continue
			}
			return fmt.Errorf("consume %s: %w", s.name, err)
		}
		if s.isStopping() {
			unhandled = append(unhandled, m)
			continue
		}
		ch := s.work[s.worker(m.Subject())]
		select {
		case ch <- m:
		case <-s.stopping:
			unhandled = append(unhandled, m)
		}
	}
}

// checkConsumer reports an error when the consumer no longer exists:
// deleted by an operator, or an ephemeral consumer the server dropped after
// a disconnect longer than EphemeralInactiveThreshold. Pulls from a consumer
// that never existed get no answer at all, only missing heartbeats.
func (s *Subscription) checkConsumer() error {
	ctx, cancel := context.WithTimeout(context.Background(), APITimeoutDefault)
	defer cancel()
	_, err := s.js.Consumer(ctx, s.cfg.Stream, s.name)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("consume %s: %w", s.name, err)
	}
	if err != nil {
		s.log.Debug("no heartbeat from the server; cannot look up the consumer", "error", err)
	} else {
		s.log.Debug("no heartbeat from the server; pulling again")
	}
	return nil
}

// worker picks the worker of a subject's case, so that the events of one
// case are handled one at a time, in order.
func (s *Subscription) worker(subject string) int {
	if len(s.work) == 1 {
		return 0
	}
	if i := strings.LastIndexByte(subject, '.'); i > 0 {
		subject = subject[:i]
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(subject))
	return int(h.Sum32() % uint32(len(s.work)))
}

// release gives back a message this process will not handle, so that the
// server delivers it again at once instead of after AckWait.
func (s *Subscription) release(m jetstream.Msg) {
	if err := m.Nak(); err != nil {
		s.log.Debug("release message", "subject", m.Subject(), "error", err)
	}
}

// handle decodes one message, runs the handler and answers the server.
func (s *Subscription) handle(m jetstream.Msg) {
	md, err := m.Metadata()
	if err != nil {
		s.log.Error("message without JetStream metadata; terminated", "subject", m.Subject(), "error", err)
		_ = m.Term()
		return
	}
	d := Delivery{Subject: m.Subject(), Seq: md.Sequence.Stream, NumDelivered: md.NumDelivered, Stored: md.Timestamp}
	hdr := m.Headers()
	if hdr.Get(headerClaim) != "" || !strings.HasPrefix(d.Subject, s.casePfx) {
		// Not a case event (a consumer bound with a wider filter before
		// its update took effect): never a subscriber's business.
		s.ack(m, d)
		return
	}
	if s.nameCheck {
		if n := hdr.Get(headerEvent); n != "" && !s.cfg.Filter.matchName(events.Name(n)) {
			s.ack(m, d)
			return
		}
	}
	e, err := s.codec.Decode(m.Data())
	if err != nil {
		s.poison(m, d, nil, err)
		return
	}
	e.Seq = d.Seq
	// Sealed personal text is opened with its case's key; a key that is
	// gone (the case was redacted) leaves it empty.
	if err := s.keys.OpenEvent(s.handlerCtx, &e); err != nil {
		if errors.Is(err, shred.ErrSealBroken) {
			s.poison(m, d, nil, err)
			return
		}
		delay := s.cfg.backoff(d.NumDelivered)
		s.log.Warn("reading the event's data key failed; the event will be delivered again", "seq", d.Seq, "retry_in", delay, "error", err)
		if err := m.NakWithDelay(delay); err != nil {
			s.log.Warn("nak failed; the event comes back after the ack wait", "seq", d.Seq, "error", err)
		}
		return
	}
	if !s.cfg.Filter.matchName(e.Event) {
		s.ack(m, d)
		return
	}

	err = s.call(m, d, e)
	switch {
	case err == nil:
		s.ack(m, d)
	case s.handlerCtx.Err() != nil && errors.Is(err, context.Canceled):
		// Stop gave up waiting: hand the event back at once, once this
		// subscription asks for no more (see read).
		<-s.readDone
		s.release(m)
	case IsPermanent(err) || (s.cfg.MaxDeliver > 0 && d.NumDelivered >= uint64(s.cfg.MaxDeliver)):
		s.poison(m, d, &e, err)
	default:
		delay := s.cfg.backoff(d.NumDelivered)
		s.log.Warn("handler failed; the event will be delivered again", "seq", d.Seq, "event", e.Event,
			"num_delivered", d.NumDelivered, "retry_in", delay, "error", err)
		if err := m.NakWithDelay(delay); err != nil {
			s.log.Warn("nak failed; the event comes back after the ack wait", "seq", d.Seq, "error", err)
		}
	}
}

// call runs the handler, telling the server it is still working while it
// runs, and turns a panic into an error.
func (s *Subscription) call(m jetstream.Msg, d Delivery, e events.Event) (err error) {
	p := startProgress(m, s.cfg.AckWait/3)
	defer p.stop()
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("handler panicked", "seq", d.Seq, "event", e.Event, "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("handler panicked: %v", r)
		}
	}()
	return s.handler(context.WithValue(s.handlerCtx, deliveryKey{}, d), e)
}

func (s *Subscription) ack(m jetstream.Msg, d Delivery) {
	if err := m.Ack(); err != nil {
		s.log.Warn("ack failed; the event may be delivered again", "seq", d.Seq, "error", err)
	}
}

// poison gives a message up: the hook, a log line, and Term so that the
// server does not deliver it again.
func (s *Subscription) poison(m jetstream.Msg, d Delivery, e *events.Event, cause error) {
	s.log.Error("event given up", "seq", d.Seq, "subject", d.Subject, "num_delivered", d.NumDelivered, "error", cause)
	if s.cfg.OnPoison != nil {
		func() {
			defer func() {
				if r := recover(); r != nil {
					s.log.Error("OnPoison panicked", "seq", d.Seq, "panic", r)
				}
			}()
			s.cfg.OnPoison(context.WithValue(s.handlerCtx, deliveryKey{}, d), Poison{Delivery: d, Data: m.Data(), Event: e, Err: cause})
		}()
	}
	reason := cause.Error()
	if len(reason) > 200 {
		reason = strings.ToValidUTF8(reason[:200], "")
	}
	if err := m.TermWithReason("modledger subscription gave up: " + reason); err != nil {
		s.log.Warn("term failed; the event may be delivered again", "seq", d.Seq, "error", err)
	}
}

// consumer creates, binds or recreates the subscription's consumer.
func (s *Subscription) consumer(ctx context.Context) (jetstream.Consumer, error) {
	cfg := s.cfg
	want := jetstream.ConsumerConfig{
		Durable:       cfg.Durable,
		Description:   "modledger subscription",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cfg.AckWait,
		MaxDeliver:    cfg.MaxDeliver,
		MaxAckPending: cfg.MaxAckPending,
	}
	setFilter(&want, cfg.Filter.Subjects(events.Subjects{Prefix: cfg.Prefix}))
	cfg.Start.apply(&want)
	if s.ephemeral {
		want.InactiveThreshold = EphemeralInactiveThreshold
		c, err := s.js.CreateConsumer(ctx, cfg.Stream, want)
		if err != nil {
			return nil, fmt.Errorf("create consumer on stream %s: %w", cfg.Stream, err)
		}
		return c, nil
	}
	if cfg.Reset {
		err := s.js.DeleteConsumer(ctx, cfg.Stream, cfg.Durable)
		if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil, fmt.Errorf("reset consumer %s: %w", cfg.Durable, err)
		}
	}
	for range 3 {
		c, err := s.js.Consumer(ctx, cfg.Stream, cfg.Durable)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			c, err = s.js.CreateConsumer(ctx, cfg.Stream, want)
			if errors.Is(err, jetstream.ErrConsumerExists) {
				continue // another process created it first: bind to it
			}
			if err != nil {
				return nil, fmt.Errorf("create consumer %s: %w", cfg.Durable, err)
			}
			return c, nil
		}
		if err != nil {
			return nil, fmt.Errorf("look up consumer %s: %w", cfg.Durable, err)
		}
		return s.bind(ctx, c, want)
	}
	return nil, fmt.Errorf("create consumer %s: created and deleted by others while binding", cfg.Durable)
}

// bind checks an existing durable and brings its filter and delivery
// settings in line with the Config, keeping its position.
func (s *Subscription) bind(ctx context.Context, c jetstream.Consumer, want jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	have := c.CachedInfo().Config
	if have.DeliverSubject != "" || have.AckPolicy != jetstream.AckExplicitPolicy || len(have.PriorityGroups) > 0 {
		return nil, fmt.Errorf("%w: %s must be a pull consumer with explicit acks and no priority groups; reset it or choose another name",
			ErrConsumerIncompatible, have.Durable)
	}
	upd := have
	upd.Description = want.Description
	setFilter(&upd, filters(want))
	upd.AckWait = want.AckWait
	upd.MaxDeliver = want.MaxDeliver
	upd.BackOff = nil
	upd.MaxAckPending = want.MaxAckPending
	if slices.Equal(filters(have), filters(upd)) && have.Description == upd.Description && have.AckWait == upd.AckWait &&
		have.MaxDeliver == upd.MaxDeliver && len(have.BackOff) == 0 && have.MaxAckPending == upd.MaxAckPending {
		return c, nil
	}
	s.cfg.Logger.Info("updating the settings of an existing consumer", "consumer", have.Durable,
		"filter", strings.Join(filters(upd), " "), "ack_wait", upd.AckWait, "max_deliver", upd.MaxDeliver,
		"max_ack_pending", upd.MaxAckPending)
	c, err := s.js.UpdateConsumer(ctx, s.cfg.Stream, upd)
	if err != nil {
		return nil, fmt.Errorf("update consumer %s: %w", have.Durable, err)
	}
	return c, nil
}

// setFilter sets one filter subject, or several.
func setFilter(cfg *jetstream.ConsumerConfig, subjects []string) {
	cfg.FilterSubject, cfg.FilterSubjects = "", nil
	if len(subjects) == 1 {
		cfg.FilterSubject = subjects[0]
	} else {
		cfg.FilterSubjects = subjects
	}
}

// filters returns a consumer's filter subjects in either form.
func filters(cfg jetstream.ConsumerConfig) []string {
	if len(cfg.FilterSubjects) > 0 {
		return cfg.FilterSubjects
	}
	if cfg.FilterSubject != "" {
		return []string{cfg.FilterSubject}
	}
	return nil
}

// deleteEphemeral deletes an ephemeral consumer; the server would drop it
// after EphemeralInactiveThreshold anyway.
func (s *Subscription) deleteEphemeral() {
	if !s.ephemeral || s.name == "" {
		return
	}
	if nc := s.js.Conn(); nc == nil || nc.IsClosed() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), APITimeoutDefault)
	defer cancel()
	if err := s.js.DeleteConsumer(ctx, s.cfg.Stream, s.name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		s.log.Debug("delete ephemeral consumer", "error", err)
	}
}

// apiContext bounds ctx by APITimeoutDefault unless it has a deadline.
func apiContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, APITimeoutDefault)
}

// progress tells the server, every interval while a handler runs, that the
// message is still being worked on, so that it is not redelivered.
type progress struct {
	mu      sync.Mutex
	t       *time.Timer
	stopped bool
}

func startProgress(m jetstream.Msg, every time.Duration) *progress {
	p := &progress{}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.t = time.AfterFunc(every, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.stopped {
			return
		}
		_ = m.InProgress()
		p.t.Reset(every)
	})
	return p
}

func (p *progress) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	p.t.Stop()
}
