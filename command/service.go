package command

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/events"
	"github.com/modledger/modledger/events/shred"
	"github.com/modledger/modledger/internal/wire"
)

// Service defaults.
const (
	// ServiceName is the NATS micro service name; `nats micro ls` shows it.
	ServiceName = "modledger"
	// QueueGroupDefault is the queue group every command service instance
	// joins, so that requests are spread over them.
	QueueGroupDefault = "modledger"
	// MaxInFlightDefault bounds the commands one process works on at once.
	MaxInFlightDefault = 1024
	// APITimeoutDefault bounds one JetStream API call.
	APITimeoutDefault = 5 * time.Second
	// RetryTimeoutDefault bounds the time one command spends retrying
	// conflicts and transient errors before it answers unavailable.
	RetryTimeoutDefault = 10 * time.Second
	// CacheSizeDefault bounds the guild and case positions kept in memory.
	CacheSizeDefault = 100_000
	// KeyPoolSizeDefault is how many stored data keys the service keeps
	// ready for new cases.
	KeyPoolSizeDefault = shred.PoolSizeDefault
)

// Config configures a command Service.
type Config struct {
	// Conn is the NATS connection. Required.
	Conn *nats.Conn
	// Stream is the ledger's stream; EnsureStream runs on Start.
	Stream StreamConfig
	// Registry holds the accepted case types. Defaults to the built-in ones.
	Registry *aggregate.Registry
	// Logger receives the service's logs. Defaults to discarding them.
	Logger *slog.Logger
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
	// QueueGroup is the queue group of the endpoints. Defaults to "modledger".
	QueueGroup string
	// Version is the version reported to `nats micro info`. Defaults to "0.1.0".
	Version string
	// MaxInFlight bounds concurrent commands in this process. Defaults to 1024.
	MaxInFlight int
	// APITimeout bounds one JetStream API call. Defaults to 5s.
	APITimeout time.Duration
	// RetryTimeout bounds the retries of one command. Defaults to 10s.
	RetryTimeout time.Duration
	// CacheSize bounds the cached guild and case positions. Defaults to 100000.
	CacheSize int
	// KeyPoolSize is how many data keys, already stored in the key
	// stream, the service keeps ready so that an open never waits for one;
	// the pool refills with whole blocks of 256 keys. Defaults to 4096.
	KeyPoolSize int
	// Registerer receives the service's Prometheus metrics: commands by
	// name and outcome, command latency, appends by outcome, append latency
	// and batch size, retries by reason. Nil: no metrics.
	Registerer prometheus.Registerer
}

// WithDefaults returns a copy of c with unset fields at their defaults.
func (c Config) WithDefaults() Config {
	c.Stream = c.Stream.WithDefaults()
	if c.Registry == nil {
		c.Registry = aggregate.DefaultRegistry()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.QueueGroup == "" {
		c.QueueGroup = QueueGroupDefault
	}
	if c.Version == "" {
		c.Version = "0.1.0"
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = MaxInFlightDefault
	}
	if c.APITimeout == 0 {
		c.APITimeout = APITimeoutDefault
	}
	if c.RetryTimeout == 0 {
		c.RetryTimeout = RetryTimeoutDefault
	}
	if c.CacheSize == 0 {
		c.CacheSize = CacheSizeDefault
	}
	if c.KeyPoolSize == 0 {
		c.KeyPoolSize = KeyPoolSizeDefault
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	if c.Conn == nil {
		errs = append(errs, errors.New("a NATS connection is required"))
	}
	if err := c.Stream.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.MaxInFlight < 1 || c.APITimeout <= 0 || c.RetryTimeout <= 0 || c.CacheSize < 16 {
		errs = append(errs, errors.New("max in flight, timeouts and cache size must be positive (cache size at least 16)"))
	}
	if c.KeyPoolSize < 2 || c.KeyPoolSize > 100_000 {
		errs = append(errs, fmt.Errorf("key pool size %d: must be 2 to 100000", c.KeyPoolSize))
	}
	return errors.Join(errs...)
}

// Service is the NATS command service: it answers modledger.cmd.<guild>.<command>
// requests by deciding them against the case's state and appending the
// events to the stream with the server's concurrency checks.
type Service struct {
	cfg    Config
	ledger *ledger
	subj   events.Subjects

	guilds *positionCache[events.Snowflake, *guildPosition]
	cases  *positionCache[caseKey, *caseState]

	endpoints *wire.Dispatcher
	metrics   *metrics
	commit    *committer

	// keys holds the cases' data keys; pool the stored keys for new cases.
	keys *shred.Store
	pool *shred.Pool
}

// NewService returns a service; Start makes it answer.
func NewService(cfg Config) (*Service, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("command service config: %w", err)
	}
	codec, err := events.NewCodec()
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("command service: %w", err)
	}
	subj := events.Subjects{Prefix: cfg.Stream.Prefix}
	keys, err := shred.NewStore(shred.Config{Conn: cfg.Conn, Stream: shred.StreamName(cfg.Stream.Name),
		Prefix: cfg.Stream.Prefix, CacheSize: cfg.CacheSize, APITimeout: cfg.APITimeout})
	if err != nil {
		return nil, fmt.Errorf("command service: %w", err)
	}
	s := &Service{
		keys:    keys,
		pool:    keys.NewPool(&shred.PoolOpts{Size: cfg.KeyPoolSize, Logger: cfg.Logger}),
		cfg:     cfg,
		subj:    subj,
		metrics: m,
		ledger: &ledger{
			nc: cfg.Conn, stream: cfg.Stream.Name, subjects: subj, codec: codec, keys: keys,
			window: cfg.Stream.DuplicateWindow, apiTimeout: cfg.APITimeout, metrics: m,
		},
		guilds: newPositionCache[events.Snowflake](cfg.CacheSize, func() *guildPosition { return &guildPosition{} }),
		cases:  newPositionCache[caseKey](cfg.CacheSize, func() *caseState { return &caseState{} }),
	}
	if err := m.registerCaches(cfg.Registerer, s.guilds.len, s.cases.len); err != nil {
		return nil, fmt.Errorf("command service: %w", err)
	}
	s.commit = newCommitter(s.ledger)
	if cfg.Registerer != nil {
		if err := wire.Register(cfg.Registerer,
			prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "modledger", Name: "keys_destroyed_total",
				Help: "Data keys of redacted cases this process destroyed (secure erase in the key stream)."},
				func() float64 { return float64(keys.Deleted()) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "modledger", Name: "key_pool_waits_total",
				Help: "Opens that found the pool of stored data keys empty and waited for a refill."},
				func() float64 { return float64(s.pool.Waits()) }),
		); err != nil {
			return nil, fmt.Errorf("command service: %w", err)
		}
	}
	eps := make([]wire.Endpoint, len(endpoints))
	for i, ep := range endpoints {
		eps[i] = wire.Endpoint{Name: ep.name, Subject: subj.CommandEndpoint(ep.name),
			Serve: func(ctx context.Context, req wire.Request) (any, *Error) { return s.serve(ctx, req, ep) }}
	}
	s.endpoints = wire.NewDispatcher(wire.DispatcherConfig{
		Conn: cfg.Conn,
		Service: micro.Config{
			Name:        ServiceName,
			Version:     cfg.Version,
			Description: "modledger commands: open and change moderation cases",
			QueueGroup:  cfg.QueueGroup,
			Metadata:    map[string]string{"stream": cfg.Stream.Name, "prefix": cfg.Stream.Prefix},
		},
		Endpoints:    eps,
		Kind:         "command",
		Metrics:      m.requestMetrics(),
		MaxInFlight:  cfg.MaxInFlight,
		FlushTimeout: cfg.APITimeout,
		Logger:       cfg.Logger,
	})
	return s, nil
}

// endpointSpec is one command endpoint.
type endpointSpec struct {
	name  string
	limit int
	run   func(s *Service, ctx context.Context, guild events.Snowflake, body []byte) (any, error)
}

// endpoints lists the wire commands in the order `nats micro info` shows.
var endpoints = []endpointSpec{
	{aggregate.CommandOpen, MaxSingleRequestBytes, (*Service).handleOpen},
	{aggregate.CommandOpenMany, MaxRequestBytes, (*Service).handleOpenMany},
	{aggregate.CommandImport, MaxRequestBytes, (*Service).handleImport},
	{aggregate.CommandUpdate, MaxSingleRequestBytes, (*Service).handleUpdate},
	{aggregate.CommandClose, MaxSingleRequestBytes, (*Service).handleClose},
	{aggregate.CommandReopen, MaxSingleRequestBytes, (*Service).handleReopen},
	{aggregate.CommandAddNote, MaxSingleRequestBytes, (*Service).handleAddNote},
	{aggregate.CommandLinkModLog, MaxSingleRequestBytes, (*Service).handleLinkModLog},
	{aggregate.CommandMarkExpiryProcessed, MaxSingleRequestBytes, (*Service).handleMarkExpiryProcessed},
	{aggregate.CommandDelete, MaxSingleRequestBytes, (*Service).handleDelete},
	{aggregate.CommandRedact, MaxSingleRequestBytes, (*Service).handleRedact},
	{CommandCloseMany, MaxRequestBytes, (*Service).handleCloseMany},
	{CommandReopenMany, MaxRequestBytes, (*Service).handleReopenMany},
	{CommandDeleteMany, MaxRequestBytes, (*Service).handleDeleteMany},
	{CommandRedactMany, MaxRequestBytes, (*Service).handleRedactMany},
	{CommandUpdateMany, MaxRequestBytes, (*Service).handleUpdateMany},
	{aggregate.CommandExpire, MaxSingleRequestBytes, (*Service).handleExpire},
}

// Start ensures the stream and registers the micro service's endpoints.
// Requests are handled until Stop or until ctx is cancelled.
func (s *Service) Start(ctx context.Context) error {
	js, err := jetstream.New(s.cfg.Conn)
	if err != nil {
		return fmt.Errorf("command service: %w", err)
	}
	if _, err := EnsureStream(ctx, js, s.cfg.Stream); err != nil {
		return fmt.Errorf("command service: %w", err)
	}
	s.pool.Start(ctx)
	if err := s.endpoints.Start(ctx); err != nil {
		s.pool.Stop()
		return fmt.Errorf("command service: %w", err)
	}
	context.AfterFunc(ctx, func() { _ = s.Stop(context.Background()) })
	s.cfg.Logger.Info("command service started", "stream", s.cfg.Stream.Name, "subjects", s.subj.CommandEndpoint("*"))
	return nil
}

// Stop stops taking requests and waits, until ctx is done, for the
// commands in flight to finish. It may be called again.
func (s *Service) Stop(ctx context.Context) error {
	if err := s.endpoints.Stop(ctx); err != nil {
		return fmt.Errorf("command service: stop: %w", err)
	}
	s.pool.Stop()
	return nil
}

// Stopped is closed once Stop has been called.
func (s *Service) Stopped() <-chan struct{} { return s.endpoints.Stopped() }

// serve answers one request of endpoint ep.
func (s *Service) serve(ctx context.Context, req wire.Request, ep endpointSpec) (any, *Error) {
	guild, werr := s.guildOf(req.Subject, ep.name)
	if werr != nil {
		return nil, werr
	}
	if len(req.Data) > ep.limit {
		return nil, invalidf("", "request is %d bytes, at most %d", len(req.Data), ep.limit)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RetryTimeout+s.cfg.APITimeout)
	defer cancel()
	res, err := ep.run(s, ctx, guild, req.Data)
	if err != nil {
		we := wire.ErrorOf(err)
		if we.Code == CodeInternal || we.Code == CodeUnavailable {
			s.cfg.Logger.Error("command failed", "command", ep.name, "guild_id", guild, "error", err)
		}
		return nil, we
	}
	return res, nil
}

// guildOf reads the guild from <prefix>.cmd.<guild>.<command>.
func (s *Service) guildOf(subject, command string) (events.Snowflake, *Error) {
	p := s.cfg.Stream.Prefix + ".cmd."
	tok := strings.TrimSuffix(strings.TrimPrefix(subject, p), "."+command)
	g, err := events.ParseSnowflake(tok)
	if err != nil {
		return 0, invalidf("guild_id", "subject %q: %v", wire.Truncate(subject, 200), err)
	}
	return g, nil
}

// retry runs op until it succeeds, fails permanently, or RetryTimeout
// passes. op marks permanent errors with backoff.Permanent. A lost
// concurrency check means another writer made progress, not that anything
// is overloaded, so it is retried at once (after a sub-millisecond jitter
// that breaks lockstep between processes); transient NATS errors are
// retried with exponential backoff. Exhausted retries answer unavailable.
func retry[T any](ctx context.Context, s *Service, op func() (T, error)) (T, error) {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 5 * time.Millisecond
	b.MaxInterval = 500 * time.Millisecond
	b.MaxElapsedTime = 0
	b.Reset()
	deadline := time.Now().Add(s.cfg.RetryTimeout)
	for attempt := 1; ; attempt++ {
		res, err := op()
		if err == nil {
			return res, nil
		}
		var perm *backoff.PermanentError
		if errors.As(err, &perm) {
			return res, perm.Err
		}
		var zero T
		if time.Now().After(deadline) {
			return zero, fmt.Errorf("%w: gave up after %d attempts: %w", ErrUnavailable, attempt, err)
		}
		s.metrics.observeRetry(err)
		wait := b.NextBackOff()
		if errors.Is(err, errWrongLastSeq) || errors.Is(err, errDuplicate) {
			wait = rand.N(time.Millisecond)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return zero, fmt.Errorf("%w: %w (after %d attempts: %w)", ErrUnavailable, ctx.Err(), attempt, err)
		}
	}
}

// now is the service clock as the ledger stores instants.
func (s *Service) now() time.Time { return aggregate.Instant(s.cfg.Now()) }
