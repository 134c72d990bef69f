package projection

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/modledger/modledger/events"
)

// Query service defaults.
const (
	// QueryServiceName is the NATS micro service name; `nats micro ls`
	// shows it beside the command service's "modledger".
	QueryServiceName = "modledger-query"
	// QueryQueueGroupDefault is the queue group every query service
	// instance joins, so that requests are spread over them.
	QueryQueueGroupDefault = "modledger-query"
	// QueryMaxInFlightDefault bounds the queries one process works on at
	// once (waits for min_seq included).
	QueryMaxInFlightDefault = 1024
	// QueryTimeoutDefault bounds one query's database work.
	QueryTimeoutDefault = 10 * time.Second
	// QueryAllGuilds is the guild token of a query subject that spans
	// every guild; only due_expiries accepts it.
	QueryAllGuilds = "all"
)

// QueryServiceConfig configures a QueryService.
type QueryServiceConfig struct {
	// Conn is the NATS connection. Required.
	Conn *nats.Conn
	// Queries answers the queries. Required.
	Queries *Queries
	// Store reads the cases projection's checkpoint for min_seq; its
	// schema must be the Queries' schema. Defaults to a store on the
	// Queries' pool and schema.
	Store *Store
	// Prefix is the ledger's subject prefix. Defaults to "modledger".
	Prefix string
	// QueueGroup is the queue group of the endpoints. Defaults to
	// "modledger-query".
	QueueGroup string
	// Logger receives the service's logs. Defaults to discarding them.
	Logger *slog.Logger
	// MinSeqWait bounds how long a query waits for its min_seq before it
	// answers unavailable. Defaults to 5s.
	MinSeqWait time.Duration
	// QueryTimeout bounds one query's database work. Defaults to 10s.
	QueryTimeout time.Duration
	// MaxInFlight bounds concurrent queries in this process. Defaults to 1024.
	MaxInFlight int
	// Version is the version reported to `nats micro info`. Defaults to "0.1.0".
	Version string
}

// WithDefaults returns a copy of c with unset fields at their defaults.
func (c QueryServiceConfig) WithDefaults() QueryServiceConfig {
	if c.Store == nil && c.Queries != nil {
		c.Store = &Store{pool: c.Queries.pool, schema: c.Queries.schema}
	}
	if c.Prefix == "" {
		c.Prefix = events.DefaultPrefix
	}
	if c.QueueGroup == "" {
		c.QueueGroup = QueryQueueGroupDefault
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.MinSeqWait == 0 {
		c.MinSeqWait = MinSeqWaitDefault
	}
	if c.QueryTimeout == 0 {
		c.QueryTimeout = QueryTimeoutDefault
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = QueryMaxInFlightDefault
	}
	if c.Version == "" {
		c.Version = "0.1.0"
	}
	return c
}

func (c QueryServiceConfig) validate() error {
	var errs []error
	if c.Conn == nil {
		errs = append(errs, errors.New("a NATS connection is required"))
	}
	if c.Queries == nil {
		errs = append(errs, errors.New("queries are required"))
	}
	if c.Store != nil && c.Queries != nil && c.Store.Schema() != c.Queries.Schema() {
		errs = append(errs, fmt.Errorf("store schema %q is not the queries' schema %q", c.Store.Schema(), c.Queries.Schema()))
	}
	if strings.ContainsAny(c.Prefix, " *>\t\r\n") || strings.HasPrefix(c.Prefix, ".") || strings.HasSuffix(c.Prefix, ".") {
		errs = append(errs, fmt.Errorf("subject prefix %q: want tokens without wildcards or spaces", c.Prefix))
	}
	if c.MinSeqWait < 0 || c.QueryTimeout <= 0 || c.MaxInFlight < 1 {
		errs = append(errs, errors.New("min_seq wait must not be negative; query timeout and max in flight must be positive"))
	}
	return errors.Join(errs...)
}

// QueryService is the NATS query service: it answers
// <prefix>.query.<guild>.<query> requests with the Queries, after waiting
// for the request's min_seq, in the wire conventions of the command
// service (strict JSON in, JSON out, typed error replies).
type QueryService struct {
	cfg    QueryServiceConfig
	waiter *checkpointWaiter

	mu      sync.Mutex
	micro   micro.Service
	ctx     context.Context
	cancel  context.CancelFunc
	slots   chan struct{}
	running sync.WaitGroup
	stopped chan struct{}
}

// NewQueryService returns a service; Start makes it answer.
func NewQueryService(cfg QueryServiceConfig) (*QueryService, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("query service config: %w", err)
	}
	return &QueryService{
		cfg:     cfg,
		waiter:  newCheckpointWaiter(cfg.Store, cfg.MinSeqWait, cfg.Logger),
		slots:   make(chan struct{}, cfg.MaxInFlight),
		stopped: make(chan struct{}),
	}, nil
}

// queryEndpoint is one query endpoint.
type queryEndpoint struct {
	name string
	// allGuilds accepts the subject token "all" (guild zero).
	allGuilds bool
	serve     func(s *QueryService, ctx context.Context, guild events.Snowflake, body []byte) (any, error)
}

// endpointOf makes the endpoint of a query: decode the params, validate,
// wait for min_seq with the service's waiter, run.
func endpointOf[P any, PP interface {
	*P
	queryParams
}, R any](name string, fn func(*Queries, context.Context, events.Snowflake, PP) (*R, error)) queryEndpoint {
	return queryEndpoint{name: name, serve: func(s *QueryService, ctx context.Context, guild events.Snowflake, body []byte) (any, error) {
		p := PP(new(P))
		if err := decodeQueryParams(body, p); err != nil {
			return nil, err
		}
		return runQuery(ctx, s.cfg.Queries, name, s.waiter.wait, guild, p, fn)
	}}
}

// queryEndpoints lists the wire queries in the order `nats micro info`
// shows.
func queryEndpoints() []queryEndpoint {
	due := endpointOf(QueryDueExpiries, (*Queries).dueExpiries)
	due.allGuilds = true
	return []queryEndpoint{
		endpointOf(QueryCaseGet, (*Queries).caseGet),
		endpointOf(QueryCaseGetByID, (*Queries).caseGetByID),
		endpointOf(QueryCaseExists, (*Queries).caseExists),
		endpointOf(QueryCaseList, (*Queries).caseList),
		endpointOf(QueryCaseCount, (*Queries).caseCount),
		endpointOf(QueryCaseHistory, (*Queries).caseHistory),
		endpointOf(QueryCaseNotes, (*Queries).caseNotes),
		endpointOf(QueryUserCases, (*Queries).userCases),
		endpointOf(QueryUserActiveCases, (*Queries).userActiveCases),
		endpointOf(QueryUserLatestCase, (*Queries).userLatestCase),
		endpointOf(QueryUserCaseCount, (*Queries).userCaseCount),
		endpointOf(QueryUserRestriction, (*Queries).userRestriction),
		endpointOf(QueryUserRestrictions, (*Queries).userRestrictions),
		endpointOf(QueryModeratorCases, (*Queries).moderatorCases),
		endpointOf(QueryTypeCases, (*Queries).typeCases),
		endpointOf(QueryGuildCases, (*Queries).guildCases),
		endpointOf(QueryGuildCaseCount, (*Queries).guildCaseCount),
		endpointOf(QueryGuildStatistics, (*Queries).guildStatistics),
		endpointOf(QueryRecentCases, (*Queries).recentCases),
		due,
	}
}

// Start starts the min_seq listener and registers the micro service's
// endpoints. Requests are handled until Stop or until ctx is cancelled.
func (s *QueryService) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.stopped:
		return errors.New("query service: stopped; make a new one")
	default:
	}
	if s.micro != nil {
		return errors.New("query service: already started")
	}
	svc, err := micro.AddService(s.cfg.Conn, micro.Config{
		Name:        QueryServiceName,
		Version:     s.cfg.Version,
		Description: "modledger queries: cases, histories, restrictions, expiries and statistics",
		QueueGroup:  s.cfg.QueueGroup,
		Metadata:    map[string]string{"prefix": s.cfg.Prefix, "schema": s.cfg.Queries.Schema()},
	})
	if err != nil {
		return fmt.Errorf("query service: add micro service: %w", err)
	}
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	for _, ep := range queryEndpoints() {
		err := svc.AddEndpoint(ep.name, s.handler(ep), micro.WithEndpointSubject(s.endpointSubject(ep.name)))
		if err != nil {
			_ = svc.Stop()
			s.cancel()
			return fmt.Errorf("query service: add endpoint %s: %w", ep.name, err)
		}
	}
	// Make sure the server has the subscriptions before Start returns, so
	// that a request sent right after it finds a responder.
	fctx, fcancel := context.WithTimeout(ctx, 10*time.Second)
	err = s.cfg.Conn.FlushWithContext(fctx)
	fcancel()
	if err != nil {
		_ = svc.Stop()
		s.cancel()
		return fmt.Errorf("query service: flush subscriptions: %w", err)
	}
	s.waiter.start()
	s.micro = svc
	go func() {
		select {
		case <-ctx.Done():
			_ = s.Stop(context.Background())
		case <-s.stopped:
		}
	}()
	s.cfg.Logger.Info("query service started", "subjects", s.endpointSubject("*"), "schema", s.cfg.Queries.Schema())
	return nil
}

// Stop stops taking requests and waits, until ctx is done, for the queries
// in flight to finish; when ctx is done first, it cancels them and returns
// ctx's error. It may be called again.
func (s *QueryService) Stop(ctx context.Context) error {
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
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("query service: stop: %w", ctx.Err())
	}
	// Queries still running (after ctx expired) see their context cancelled.
	if s.cancel != nil {
		s.cancel()
	}
	s.waiter.stop()
	return err
}

// Stopped is closed once Stop has been called.
func (s *QueryService) Stopped() <-chan struct{} { return s.stopped }

func (s *QueryService) endpointSubject(query string) string {
	return s.cfg.Prefix + ".query.*." + query
}

// handler hands each request to a goroutine, at most MaxInFlight at once;
// when all slots are taken the endpoint waits, which pushes back on NATS.
func (s *QueryService) handler(ep queryEndpoint) micro.Handler {
	return micro.HandlerFunc(func(req micro.Request) {
		select {
		case s.slots <- struct{}{}:
		case <-s.ctx.Done():
			respondQueryError(req, &QueryError{Code: CodeUnavailable, Message: "query service is stopping"})
			return
		}
		s.running.Add(1)
		go func() {
			defer func() { <-s.slots; s.running.Done() }()
			s.serve(req, ep)
		}()
	})
}

func (s *QueryService) serve(req micro.Request, ep queryEndpoint) {
	guild, qerr := s.guildOf(req.Subject(), ep)
	if qerr != nil {
		respondQueryError(req, qerr)
		return
	}
	// The wait for min_seq has its own bound; the database work has
	// QueryTimeout on top of it.
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.MinSeqWait+s.cfg.QueryTimeout)
	defer cancel()
	res, err := ep.serve(s, ctx, guild, req.Data())
	if err != nil {
		qe := toQueryError(err)
		switch {
		case qe.Code == CodeInternal:
			s.cfg.Logger.Error("query failed", "query", ep.name, "guild_id", guild, "error", err)
		case qe.Code == CodeUnavailable && !errors.Is(err, context.Canceled):
			s.cfg.Logger.Warn("query unavailable", "query", ep.name, "guild_id", guild, "error", err)
		}
		respondQueryError(req, qe)
		return
	}
	body, err := json.Marshal(res)
	if err != nil {
		s.cfg.Logger.Error("encode reply", "query", ep.name, "guild_id", guild, "error", err)
		respondQueryError(req, &QueryError{Code: CodeInternal, Message: "internal error"})
		return
	}
	if err := req.Respond(body); err != nil {
		s.cfg.Logger.Warn("reply failed", "query", ep.name, "guild_id", guild, "error", err)
	}
}

// guildOf reads the guild from <prefix>.query.<guild>.<query>.
func (s *QueryService) guildOf(subject string, ep queryEndpoint) (events.Snowflake, *QueryError) {
	tok := strings.TrimSuffix(strings.TrimPrefix(subject, s.cfg.Prefix+".query."), "."+ep.name)
	if tok == QueryAllGuilds {
		if ep.allGuilds {
			return 0, nil
		}
		return 0, queryInvalidf("guild_id", "query %s needs one guild, not %q", ep.name, QueryAllGuilds)
	}
	g, err := events.ParseSnowflake(tok)
	if err != nil {
		return 0, queryInvalidf("guild_id", "subject %q: %v", subject, err)
	}
	return g, nil
}

func respondQueryError(req micro.Request, e *QueryError) {
	body, _ := json.Marshal(queryErrorReply{Error: e})
	_ = req.Error(strconv.Itoa(e.Code.Status()), e.Message, body)
}
