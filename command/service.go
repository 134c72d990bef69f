package command

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/events"
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
	return c
}

func (c Config) validate() error {
	var errs []error
	if c.Conn == nil {
		errs = append(errs, errors.New("a NATS connection is required"))
	}
	if err := c.Stream.validate(); err != nil {
		errs = append(errs, err)
	}
	if c.MaxInFlight < 1 || c.APITimeout <= 0 || c.RetryTimeout <= 0 || c.CacheSize < 16 {
		errs = append(errs, errors.New("max in flight, timeouts and cache size must be positive (cache size at least 16)"))
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

	mu      sync.Mutex
	micro   micro.Service
	ctx     context.Context
	cancel  context.CancelFunc
	slots   chan struct{}
	running sync.WaitGroup
	stopped chan struct{}
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
	subj := events.Subjects{Prefix: cfg.Stream.Prefix}
	return &Service{
		cfg:  cfg,
		subj: subj,
		ledger: &ledger{
			nc: cfg.Conn, stream: cfg.Stream.Name, subjects: subj, codec: codec,
			window: cfg.Stream.DuplicateWindow, apiTimeout: cfg.APITimeout,
		},
		guilds:  newPositionCache[events.Snowflake](cfg.CacheSize, func() *guildPosition { return &guildPosition{} }),
		cases:   newPositionCache[caseKey](cfg.CacheSize, func() *caseState { return &caseState{} }),
		slots:   make(chan struct{}, cfg.MaxInFlight),
		stopped: make(chan struct{}),
	}, nil
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
	{aggregate.CommandExpire, MaxSingleRequestBytes, (*Service).handleExpire},
}

// Start ensures the stream and registers the micro service's endpoints.
// Requests are handled until Stop or until ctx is cancelled.
func (s *Service) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.micro != nil {
		return errors.New("command service: already started")
	}
	js, err := jetstream.New(s.cfg.Conn)
	if err != nil {
		return fmt.Errorf("command service: %w", err)
	}
	if _, err := EnsureStream(ctx, js, s.cfg.Stream); err != nil {
		return fmt.Errorf("command service: %w", err)
	}
	svc, err := micro.AddService(s.cfg.Conn, micro.Config{
		Name:        ServiceName,
		Version:     s.cfg.Version,
		Description: "modledger commands: open and change moderation cases",
		QueueGroup:  s.cfg.QueueGroup,
		Metadata:    map[string]string{"stream": s.cfg.Stream.Name, "prefix": s.cfg.Stream.Prefix},
	})
	if err != nil {
		return fmt.Errorf("command service: add micro service: %w", err)
	}
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	for _, ep := range endpoints {
		err := svc.AddEndpoint(ep.name, s.handler(ep), micro.WithEndpointSubject(s.subj.CommandEndpoint(ep.name)))
		if err != nil {
			_ = svc.Stop()
			s.cancel()
			return fmt.Errorf("command service: add endpoint %s: %w", ep.name, err)
		}
	}
	// Make sure the server has the endpoints' subscriptions before Start
	// returns, so that a request sent right after is answered.
	if err := s.cfg.Conn.FlushTimeout(s.cfg.APITimeout); err != nil {
		_ = svc.Stop()
		s.cancel()
		return fmt.Errorf("command service: flush subscriptions: %w", err)
	}
	s.micro = svc
	go func() {
		select {
		case <-ctx.Done():
			_ = s.Stop(context.Background())
		case <-s.stopped:
		}
	}()
	s.cfg.Logger.Info("command service started", "stream", s.cfg.Stream.Name, "subjects", s.subj.CommandEndpoint("*"))
	return nil
}

// Stop stops taking requests and waits, until ctx is done, for the
// commands in flight to finish. It may be called again.
func (s *Service) Stop(ctx context.Context) error {
	s.mu.Lock()
	svc := s.micro
	if svc != nil {
		s.micro = nil
		_ = svc.Stop()
		close(s.stopped)
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.running.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		if s.cancel != nil {
			s.cancel()
		}
		return fmt.Errorf("command service: stop: %w", ctx.Err())
	}
}

// Stopped is closed once Stop has been called.
func (s *Service) Stopped() <-chan struct{} { return s.stopped }

// request is what a command needs of a NATS request. The handler copies it
// out of the micro.Request, which micro's own goroutine still reads after
// the handler returns, so that the worker never touches the request.
type request struct {
	subject, reply string
	data           []byte
}

// handler hands each request to a goroutine, at most MaxInFlight at once;
// when all slots are taken the endpoint waits, which pushes back on NATS.
// Replies are published by the worker itself, so micro's statistics count
// requests but not their errors or processing time.
func (s *Service) handler(ep endpointSpec) micro.Handler {
	return micro.HandlerFunc(func(req micro.Request) {
		r := request{subject: req.Subject(), reply: req.Reply(), data: req.Data()}
		select {
		case s.slots <- struct{}{}:
		case <-s.ctx.Done():
			s.respondError(r, &Error{Code: CodeUnavailable, Message: "command service is stopping"})
			return
		}
		s.running.Add(1)
		go func() {
			defer func() { <-s.slots; s.running.Done() }()
			s.serve(r, ep)
		}()
	})
}

func (s *Service) serve(req request, ep endpointSpec) {
	guild, werr := s.guildOf(req.subject, ep.name)
	if werr != nil {
		s.respondError(req, werr)
		return
	}
	if len(req.data) > ep.limit {
		s.respondError(req, invalidf("", "request is %d bytes, at most %d", len(req.data), ep.limit))
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.RetryTimeout+s.cfg.APITimeout)
	defer cancel()
	res, err := ep.run(s, ctx, guild, req.data)
	if err != nil {
		we := toWireError(err)
		if we.Code == CodeInternal || we.Code == CodeUnavailable {
			s.cfg.Logger.Error("command failed", "command", ep.name, "guild_id", guild, "error", err)
		}
		s.respondError(req, we)
		return
	}
	body, err := json.Marshal(res)
	if err != nil {
		s.respondError(req, &Error{Code: CodeInternal, Message: "encode reply: " + err.Error()})
		return
	}
	if err := s.cfg.Conn.Publish(req.reply, body); err != nil {
		s.cfg.Logger.Warn("reply failed", "command", ep.name, "guild_id", guild, "error", err)
	}
}

// guildOf reads the guild from <prefix>.cmd.<guild>.<command>.
func (s *Service) guildOf(subject, command string) (events.Snowflake, *Error) {
	p := s.cfg.Stream.Prefix + ".cmd."
	tok := strings.TrimSuffix(strings.TrimPrefix(subject, p), "."+command)
	g, err := events.ParseSnowflake(tok)
	if err != nil {
		return 0, invalidf("guild_id", "subject %q: %v", truncate(subject, 200), err)
	}
	return g, nil
}

// maxErrorMessage bounds an error message: it is sent in a header and in
// the body, and may quote the caller's input.
const maxErrorMessage = 512

// respondError sends an error reply the way micro does: the status and
// message in the Nats-Service-Error-Code and Nats-Service-Error headers,
// and the wire error as the body.
func (s *Service) respondError(req request, e *Error) {
	e.Message = truncate(e.Message, maxErrorMessage)
	body, _ := json.Marshal(errorReply{Error: e})
	m := nats.NewMsg(req.reply)
	m.Header.Set(micro.ErrorCodeHeader, strconv.Itoa(e.Code.Status()))
	m.Header.Set(micro.ErrorHeader, strings.Map(headerSafe, e.Message))
	m.Data = body
	if err := s.cfg.Conn.PublishMsg(m); err != nil {
		s.cfg.Logger.Warn("error reply failed", "error", err)
	}
}

// truncate cuts s to at most n bytes on a character boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
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

// headerSafe replaces the characters a NATS header value cannot hold.
func headerSafe(r rune) rune {
	if r == '\r' || r == '\n' {
		return ' '
	}
	return r
}
