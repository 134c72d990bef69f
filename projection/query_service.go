package projection

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/modledger/modledger/events"
	"github.com/modledger/modledger/internal/wire"
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
	// Registerer receives the service's Prometheus metrics: queries by
	// name and outcome, and query latency. Nil: no metrics.
	Registerer prometheus.Registerer
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
	cfg       QueryServiceConfig
	waiter    *checkpointWaiter
	endpoints *wire.Dispatcher
}

// NewQueryService returns a service; Start makes it answer.
func NewQueryService(cfg QueryServiceConfig) (*QueryService, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("query service config: %w", err)
	}
	m, err := wire.NewRequestMetrics(cfg.Registerer, "query")
	if err != nil {
		return nil, fmt.Errorf("query service: %w", err)
	}
	s := &QueryService{cfg: cfg, waiter: newCheckpointWaiter(cfg.Store, cfg.MinSeqWait, cfg.Logger)}
	var eps []wire.Endpoint
	for _, ep := range queryEndpoints() {
		eps = append(eps, wire.Endpoint{Name: ep.name, Subject: s.endpointSubject(ep.name),
			Serve: func(ctx context.Context, req wire.Request) (any, *QueryError) { return s.serve(ctx, req, ep) }})
	}
	s.endpoints = wire.NewDispatcher(wire.DispatcherConfig{
		Conn: cfg.Conn,
		Service: micro.Config{
			Name:        QueryServiceName,
			Version:     cfg.Version,
			Description: "modledger queries: cases, histories, restrictions, expiries and statistics",
			QueueGroup:  cfg.QueueGroup,
			Metadata:    map[string]string{"prefix": cfg.Prefix, "schema": cfg.Queries.Schema()},
		},
		Endpoints:   eps,
		Kind:        "query",
		MaxInFlight: cfg.MaxInFlight,
		Logger:      cfg.Logger,
		Metrics:     m,
	})
	return s, nil
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
		endpointOf(QueryCaseNumbers, (*Queries).caseNumbers),
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
	if err := s.endpoints.Start(ctx); err != nil {
		return fmt.Errorf("query service: %w", err)
	}
	s.waiter.start()
	context.AfterFunc(ctx, func() { _ = s.Stop(context.Background()) })
	s.cfg.Logger.Info("query service started", "subjects", s.endpointSubject("*"), "schema", s.cfg.Queries.Schema())
	return nil
}

// Stop stops taking requests and waits, until ctx is done, for the queries
// in flight to finish; when ctx is done first, it cancels them and returns
// ctx's error. It may be called again.
func (s *QueryService) Stop(ctx context.Context) error {
	err := s.endpoints.Stop(ctx)
	s.waiter.stop()
	if err != nil {
		return fmt.Errorf("query service: stop: %w", err)
	}
	return nil
}

// Stopped is closed once Stop has been called.
func (s *QueryService) Stopped() <-chan struct{} { return s.endpoints.Stopped() }

func (s *QueryService) endpointSubject(query string) string {
	return s.cfg.Prefix + ".query.*." + query
}

// serve answers one request of endpoint ep.
func (s *QueryService) serve(ctx context.Context, req wire.Request, ep queryEndpoint) (any, *QueryError) {
	guild, qerr := s.guildOf(req.Subject, ep)
	if qerr != nil {
		return nil, qerr
	}
	// The wait for min_seq has its own bound; the database work has
	// QueryTimeout on top of it.
	ctx, cancel := context.WithTimeout(ctx, s.cfg.MinSeqWait+s.cfg.QueryTimeout)
	defer cancel()
	res, err := ep.serve(s, ctx, guild, req.Data)
	if err != nil {
		qe := toQueryError(err)
		switch {
		case qe.Code == CodeInternal:
			s.cfg.Logger.Error("query failed", "query", ep.name, "guild_id", guild, "error", err)
		case qe.Code == CodeUnavailable && !errors.Is(err, context.Canceled):
			s.cfg.Logger.Warn("query unavailable", "query", ep.name, "guild_id", guild, "error", err)
		}
		return nil, qe
	}
	return res, nil
}

// guildOf reads the guild from <prefix>.query.<guild>.<query>.
func (s *QueryService) guildOf(subject string, ep queryEndpoint) (events.Snowflake, *QueryError) {
	tok := strings.TrimSuffix(strings.TrimPrefix(subject, s.cfg.Prefix+".query."), "."+ep.name)
	if tok == QueryAllGuilds {
		if ep.allGuilds {
			return 0, nil
		}
		return 0, wire.Invalidf("guild_id", "query %s needs one guild, not %q", ep.name, QueryAllGuilds)
	}
	g, err := events.ParseSnowflake(tok)
	if err != nil {
		return 0, wire.Invalidf("guild_id", "subject %q: %v", subject, err)
	}
	return g, nil
}
