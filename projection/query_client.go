package projection

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/modledger/modledger/events"
	"github.com/modledger/modledger/internal/wire"
)

// QueryClientTimeoutDefault bounds one query request when the caller's
// context has no earlier deadline. It exceeds the service's min_seq wait
// and query timeout, so that the service answers first.
const QueryClientTimeoutDefault = 20 * time.Second

// QueryClient sends queries to the query service over NATS and returns the
// same typed results and errors as Queries. Errors from the service are
// *QueryError values; no responder or a timeout is a *QueryError of code
// unavailable. It does not retry: queries are safe to retry, and the
// caller knows best when. It is safe for concurrent use.
type QueryClient struct {
	nc      *nats.Conn
	prefix  string
	timeout time.Duration
}

// QueryClientOpt configures a QueryClient.
type QueryClientOpt func(*QueryClient) error

// WithQueryPrefix sets the ledger's subject prefix. Defaults to "modledger".
func WithQueryPrefix(prefix string) QueryClientOpt {
	return func(c *QueryClient) error {
		if prefix == "" {
			return errors.New("empty subject prefix")
		}
		c.prefix = prefix
		return nil
	}
}

// WithQueryTimeout bounds each request. Defaults to 20s.
func WithQueryTimeout(d time.Duration) QueryClientOpt {
	return func(c *QueryClient) error {
		if d <= 0 {
			return errors.New("query timeout must be positive")
		}
		c.timeout = d
		return nil
	}
}

// NewQueryClient returns a client on nc.
func NewQueryClient(nc *nats.Conn, opts ...QueryClientOpt) (*QueryClient, error) {
	if nc == nil {
		return nil, errors.New("query client: nil NATS connection")
	}
	c := &QueryClient{nc: nc, prefix: events.DefaultPrefix, timeout: QueryClientTimeoutDefault}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, fmt.Errorf("query client: %w", err)
		}
	}
	return c, nil
}

// CaseGet gets a case by number. See Queries.CaseGet.
func (c *QueryClient) CaseGet(ctx context.Context, guild events.Snowflake, p CaseGetParams) (*CaseGetResult, error) {
	return request[CaseGetResult](ctx, c, guild, QueryCaseGet, &p)
}

// CaseGetByID gets a case by case id. See Queries.CaseGetByID.
func (c *QueryClient) CaseGetByID(ctx context.Context, guild events.Snowflake, p CaseGetByIDParams) (*CaseGetResult, error) {
	return request[CaseGetResult](ctx, c, guild, QueryCaseGetByID, &p)
}

// CaseExists reports whether a case exists. See Queries.CaseExists.
func (c *QueryClient) CaseExists(ctx context.Context, guild events.Snowflake, p CaseExistsParams) (*CaseExistsResult, error) {
	return request[CaseExistsResult](ctx, c, guild, QueryCaseExists, &p)
}

// CaseList lists the cases that match a filter. See Queries.CaseList.
func (c *QueryClient) CaseList(ctx context.Context, guild events.Snowflake, p CaseListParams) (*CaseListResult, error) {
	return request[CaseListResult](ctx, c, guild, QueryCaseList, &p)
}

// CaseCount counts the cases that match a filter. See Queries.CaseCount.
func (c *QueryClient) CaseCount(ctx context.Context, guild events.Snowflake, p CaseCountParams) (*CaseCountResult, error) {
	return request[CaseCountResult](ctx, c, guild, QueryCaseCount, &p)
}

// CaseHistory gets every event of a case. See Queries.CaseHistory.
func (c *QueryClient) CaseHistory(ctx context.Context, guild events.Snowflake, p CaseHistoryParams) (*CaseHistoryResult, error) {
	return request[CaseHistoryResult](ctx, c, guild, QueryCaseHistory, &p)
}

// CaseNotes gets the notes of a case. See Queries.CaseNotes.
func (c *QueryClient) CaseNotes(ctx context.Context, guild events.Snowflake, p CaseNotesParams) (*CaseNotesResult, error) {
	return request[CaseNotesResult](ctx, c, guild, QueryCaseNotes, &p)
}

// UserCases lists a member's cases. See Queries.UserCases.
func (c *QueryClient) UserCases(ctx context.Context, guild events.Snowflake, p UserCasesParams) (*CaseListResult, error) {
	return request[CaseListResult](ctx, c, guild, QueryUserCases, &p)
}

// UserActiveCases lists a member's active cases. See Queries.UserActiveCases.
func (c *QueryClient) UserActiveCases(ctx context.Context, guild events.Snowflake, p UserActiveCasesParams) (*CaseListResult, error) {
	return request[CaseListResult](ctx, c, guild, QueryUserActiveCases, &p)
}

// UserLatestCase gets a member's latest case. See Queries.UserLatestCase.
func (c *QueryClient) UserLatestCase(ctx context.Context, guild events.Snowflake, p UserLatestCaseParams) (*UserLatestCaseResult, error) {
	return request[UserLatestCaseResult](ctx, c, guild, QueryUserLatestCase, &p)
}

// UserCaseCount counts a member's cases. See Queries.UserCaseCount.
func (c *QueryClient) UserCaseCount(ctx context.Context, guild events.Snowflake, p UserCaseCountParams) (*CaseCountResult, error) {
	return request[CaseCountResult](ctx, c, guild, QueryUserCaseCount, &p)
}

// UserRestriction reports whether a member is under a restriction family.
// See Queries.UserRestriction.
func (c *QueryClient) UserRestriction(ctx context.Context, guild events.Snowflake, p UserRestrictionParams) (*UserRestrictionResult, error) {
	return request[UserRestrictionResult](ctx, c, guild, QueryUserRestriction, &p)
}

// UserRestrictions lists a member's restrictions. See Queries.UserRestrictions.
func (c *QueryClient) UserRestrictions(ctx context.Context, guild events.Snowflake, p UserRestrictionsParams) (*UserRestrictionsResult, error) {
	return request[UserRestrictionsResult](ctx, c, guild, QueryUserRestrictions, &p)
}

// ModeratorCases lists the cases a moderator opened. See Queries.ModeratorCases.
func (c *QueryClient) ModeratorCases(ctx context.Context, guild events.Snowflake, p ModeratorCasesParams) (*CaseListResult, error) {
	return request[CaseListResult](ctx, c, guild, QueryModeratorCases, &p)
}

// TypeCases lists the cases of one type. See Queries.TypeCases.
func (c *QueryClient) TypeCases(ctx context.Context, guild events.Snowflake, p TypeCasesParams) (*CaseListResult, error) {
	return request[CaseListResult](ctx, c, guild, QueryTypeCases, &p)
}

// GuildCases lists every case of a guild. See Queries.GuildCases.
func (c *QueryClient) GuildCases(ctx context.Context, guild events.Snowflake, p GuildCasesParams) (*CaseListResult, error) {
	return request[CaseListResult](ctx, c, guild, QueryGuildCases, &p)
}

// GuildCaseCount counts the cases of a guild. See Queries.GuildCaseCount.
func (c *QueryClient) GuildCaseCount(ctx context.Context, guild events.Snowflake, p GuildCaseCountParams) (*CaseCountResult, error) {
	return request[CaseCountResult](ctx, c, guild, QueryGuildCaseCount, &p)
}

// GuildStatistics gets a guild's statistics. See Queries.GuildStatistics.
func (c *QueryClient) GuildStatistics(ctx context.Context, guild events.Snowflake, p GuildStatisticsParams) (*GuildStatisticsResult, error) {
	return request[GuildStatisticsResult](ctx, c, guild, QueryGuildStatistics, &p)
}

// RecentCases lists the cases of the last hours. See Queries.RecentCases.
func (c *QueryClient) RecentCases(ctx context.Context, guild events.Snowflake, p RecentCasesParams) (*CaseListResult, error) {
	return request[CaseListResult](ctx, c, guild, QueryRecentCases, &p)
}

// DueExpiries lists due, unprocessed expiries in guild, or in every guild
// when guild is zero. See Queries.DueExpiries.
func (c *QueryClient) DueExpiries(ctx context.Context, guild events.Snowflake, p DueExpiriesParams) (*CaseListResult, error) {
	return request[CaseListResult](ctx, c, guild, QueryDueExpiries, &p)
}

// subject returns <prefix>.query.<guild>.<query>; guild zero is "all".
func (c *QueryClient) subject(guild events.Snowflake, query string) string {
	tok := QueryAllGuilds
	if guild != 0 {
		tok = strconv.FormatUint(uint64(guild), 10)
	}
	return c.prefix + ".query." + tok + "." + query
}

// request sends one query and decodes its reply into R.
func request[R any](ctx context.Context, c *QueryClient, guild events.Snowflake, query string, p any) (*R, error) {
	if guild != 0 || query != QueryDueExpiries {
		if err := guild.Validate(); err != nil {
			return nil, &QueryError{Code: CodeInvalidArgument, Field: "guild_id", Message: err.Error()}
		}
	}
	body, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("query %s: encode: %w", query, err)
	}
	rctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	msg, err := c.nc.RequestWithContext(rctx, c.subject(guild, query), body)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("query %s: %w", query, ctx.Err())
		}
		if errors.Is(err, nats.ErrNoResponders) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) {
			return nil, &QueryError{Code: CodeUnavailable, Message: fmt.Sprintf("query %s: %v", query, err)}
		}
		return nil, fmt.Errorf("query %s: %w", query, err)
	}
	if e := wire.ReplyError(msg); e != nil {
		return nil, e
	}
	var r R
	if err := json.Unmarshal(msg.Data, &r); err != nil {
		return nil, fmt.Errorf("query %s: unreadable reply: %w", query, err)
	}
	return &r, nil
}
