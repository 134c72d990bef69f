package projection

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/events"
)

// MinSeqWaitDefault bounds how long a query with min_seq waits for the
// projection to reach it.
const MinSeqWaitDefault = 5 * time.Second

// The wire names of the queries: the last token of
// <prefix>.query.<guild>.<query>.
const (
	QueryCaseGet          = "case_get"
	QueryCaseGetByID      = "case_get_by_id"
	QueryCaseExists       = "case_exists"
	QueryCaseList         = "case_list"
	QueryCaseCount        = "case_count"
	QueryCaseHistory      = "case_history"
	QueryCaseNotes        = "case_notes"
	QueryUserCases        = "user_cases"
	QueryUserActiveCases  = "user_active_cases"
	QueryUserLatestCase   = "user_latest_case"
	QueryUserCaseCount    = "user_case_count"
	QueryUserRestriction  = "user_restriction"
	QueryUserRestrictions = "user_restrictions"
	QueryModeratorCases   = "moderator_cases"
	QueryTypeCases        = "type_cases"
	QueryGuildCases       = "guild_cases"
	QueryGuildCaseCount   = "guild_case_count"
	QueryGuildStatistics  = "guild_statistics"
	QueryRecentCases      = "recent_cases"
	QueryDueExpiries      = "due_expiries"
)

// QueriesOpts are optional settings of Queries; nil means defaults.
type QueriesOpts struct {
	// Registry holds the case types, which type filters are checked
	// against and restriction families come from. Defaults to the
	// built-in types.
	Registry *aggregate.Registry
	// Codec decodes the events of case histories. Defaults to
	// events.NewCodec().
	Codec *events.Codec
	// Now is the clock of RecentCases, DueExpiries and GuildStatistics
	// defaults. Defaults to time.Now.
	Now func() time.Time
	// MinSeqWait bounds the wait of a query with min_seq. Defaults to 5s.
	MinSeqWait time.Duration
	// Logger receives the min_seq listener's logs. Defaults to discarding
	// them.
	Logger *slog.Logger
}

// Queries answers the read side's questions (DOMAIN.md's operations) from
// the cases projection's read models, through the views of the control
// schema, so that a rebuild's swap is invisible to it. It is safe for
// concurrent use.
//
// Every method takes the guild the query is about: reads never cross
// guilds, except DueExpiries, which reads every guild when guild is zero.
//
// Deleted cases leave every list and count. CaseGet, CaseGetByID,
// CaseExists and CaseNotes treat a deleted case as not found (the error
// also matches aggregate.ErrCaseDeleted) unless the params include deleted
// cases; CaseHistory returns a deleted case's history, which records the
// deletion.
//
// A query whose params carry MinSeq first waits for the projection to reach
// it; the first such wait starts a LISTEN connection, which Close ends.
type Queries struct {
	pool       *pgxpool.Pool
	schema     string
	sql        querySQL
	registry   *aggregate.Registry
	families   map[aggregate.Family]bool
	codec      *events.Codec
	now        func() time.Time
	minSeqWait time.Duration
	logger     *slog.Logger

	mu     sync.Mutex
	waiter *checkpointWaiter
	closed bool
}

// NewQueries returns the queries on pool, reading the views of the control
// schema (SchemaDefault when empty). pool may be shared with other users:
// statements name the schema; they do not rely on search_path.
func NewQueries(pool *pgxpool.Pool, schema string, opts *QueriesOpts) (*Queries, error) {
	if pool == nil {
		return nil, errors.New("queries: nil pool")
	}
	if schema == "" {
		schema = SchemaDefault
	}
	if err := ValidateSchema(schema); err != nil {
		return nil, fmt.Errorf("queries: %w", err)
	}
	var o QueriesOpts
	if opts != nil {
		o = *opts
	}
	if o.Registry == nil {
		o.Registry = aggregate.DefaultRegistry()
	}
	if o.Codec == nil {
		c, err := events.NewCodec()
		if err != nil {
			return nil, fmt.Errorf("queries: %w", err)
		}
		o.Codec = c
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MinSeqWait == 0 {
		o.MinSeqWait = MinSeqWaitDefault
	}
	if o.MinSeqWait < 0 {
		return nil, errors.New("queries: negative min_seq wait")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	families := map[aggregate.Family]bool{}
	for _, f := range o.Registry.Families() {
		families[f] = true
	}
	return &Queries{pool: pool, schema: schema, sql: newQuerySQL(schema), registry: o.Registry,
		families: families, codec: o.Codec, now: o.Now, minSeqWait: o.MinSeqWait, logger: o.Logger}, nil
}

// Schema returns the control schema the queries read.
func (q *Queries) Schema() string { return q.schema }

// Close stops the LISTEN connection of min_seq waits, if one was started.
// Queries with MinSeq fail with ErrUnavailable afterwards; others work.
func (q *Queries) Close() {
	q.mu.Lock()
	w := q.waiter
	q.waiter, q.closed = nil, true
	q.mu.Unlock()
	if w != nil {
		w.stop()
	}
}

// waitMinSeq waits for the cases projection to reach seq, starting the
// waiter on first use.
func (q *Queries) waitMinSeq(ctx context.Context, seq uint64) error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return fmt.Errorf("%w: queries closed", ErrUnavailable)
	}
	if q.waiter == nil {
		store := &Store{pool: q.pool, schema: q.schema}
		q.waiter = newCheckpointWaiter(store, q.minSeqWait, q.logger)
		q.waiter.start()
	}
	w := q.waiter
	q.mu.Unlock()
	return w.wait(ctx, seq)
}

// runQuery validates p, waits for its min_seq with wait, and runs fn.
func runQuery[P any, PP interface {
	*P
	queryParams
}, R any](ctx context.Context, q *Queries, name string, wait func(context.Context, uint64) error,
	guild events.Snowflake, p PP, fn func(*Queries, context.Context, events.Snowflake, PP) (*R, error)) (*R, error) {
	if err := p.validate(q, guild); err != nil {
		return nil, fmt.Errorf("query %s in guild %d: %w", name, guild, err)
	}
	if seq := p.queryMeta().MinSeq; seq > 0 {
		if err := wait(ctx, seq); err != nil {
			return nil, fmt.Errorf("query %s in guild %d: %w", name, guild, err)
		}
	}
	r, err := fn(q, ctx, guild, p)
	if err != nil {
		return nil, fmt.Errorf("query %s in guild %d: %w", name, guild, interpretError(err))
	}
	return r, nil
}

// CaseGet returns a case of the guild by number, with its notes. A deleted
// case is not found unless p.IncludeDeleted is set.
func (q *Queries) CaseGet(ctx context.Context, guild events.Snowflake, p CaseGetParams) (*CaseGetResult, error) {
	return runQuery(ctx, q, QueryCaseGet, q.waitMinSeq, guild, &p, (*Queries).caseGet)
}

// CaseGetByID returns a case of the guild by case id, with its notes. A
// case of another guild is not found.
func (q *Queries) CaseGetByID(ctx context.Context, guild events.Snowflake, p CaseGetByIDParams) (*CaseGetResult, error) {
	return runQuery(ctx, q, QueryCaseGetByID, q.waitMinSeq, guild, &p, (*Queries).caseGetByID)
}

// CaseExists reports whether a case exists in the guild, by number or id.
func (q *Queries) CaseExists(ctx context.Context, guild events.Snowflake, p CaseExistsParams) (*CaseExistsResult, error) {
	return runQuery(ctx, q, QueryCaseExists, q.waitMinSeq, guild, &p, (*Queries).caseExists)
}

// CaseList lists the cases that match a filter, a page at a time.
func (q *Queries) CaseList(ctx context.Context, guild events.Snowflake, p CaseListParams) (*CaseListResult, error) {
	return runQuery(ctx, q, QueryCaseList, q.waitMinSeq, guild, &p, (*Queries).caseList)
}

// CaseCount counts the cases that match a filter.
func (q *Queries) CaseCount(ctx context.Context, guild events.Snowflake, p CaseCountParams) (*CaseCountResult, error) {
	return runQuery(ctx, q, QueryCaseCount, q.waitMinSeq, guild, &p, (*Queries).caseCount)
}

// CaseHistory returns every event of a case, oldest first.
func (q *Queries) CaseHistory(ctx context.Context, guild events.Snowflake, p CaseHistoryParams) (*CaseHistoryResult, error) {
	return runQuery(ctx, q, QueryCaseHistory, q.waitMinSeq, guild, &p, (*Queries).caseHistory)
}

// CaseNotes returns the notes of a case, oldest first.
func (q *Queries) CaseNotes(ctx context.Context, guild events.Snowflake, p CaseNotesParams) (*CaseNotesResult, error) {
	return runQuery(ctx, q, QueryCaseNotes, q.waitMinSeq, guild, &p, (*Queries).caseNotes)
}

// UserCases lists a member's cases.
func (q *Queries) UserCases(ctx context.Context, guild events.Snowflake, p UserCasesParams) (*CaseListResult, error) {
	return runQuery(ctx, q, QueryUserCases, q.waitMinSeq, guild, &p, (*Queries).userCases)
}

// UserActiveCases lists a member's active (not closed) cases.
func (q *Queries) UserActiveCases(ctx context.Context, guild events.Snowflake, p UserActiveCasesParams) (*CaseListResult, error) {
	return runQuery(ctx, q, QueryUserActiveCases, q.waitMinSeq, guild, &p, (*Queries).userActiveCases)
}

// UserLatestCase returns a member's latest case with its notes, or a nil
// case when the member has none.
func (q *Queries) UserLatestCase(ctx context.Context, guild events.Snowflake, p UserLatestCaseParams) (*UserLatestCaseResult, error) {
	return runQuery(ctx, q, QueryUserLatestCase, q.waitMinSeq, guild, &p, (*Queries).userLatestCase)
}

// UserCaseCount counts a member's cases, from the statistics tables.
func (q *Queries) UserCaseCount(ctx context.Context, guild events.Snowflake, p UserCaseCountParams) (*CaseCountResult, error) {
	return runQuery(ctx, q, QueryUserCaseCount, q.waitMinSeq, guild, &p, (*Queries).userCaseCount)
}

// UserRestriction reports whether a member is under a restriction family:
// one index lookup in the restrictions table.
func (q *Queries) UserRestriction(ctx context.Context, guild events.Snowflake, p UserRestrictionParams) (*UserRestrictionResult, error) {
	return runQuery(ctx, q, QueryUserRestriction, q.waitMinSeq, guild, &p, (*Queries).userRestriction)
}

// UserRestrictions lists every restriction a member is under.
func (q *Queries) UserRestrictions(ctx context.Context, guild events.Snowflake, p UserRestrictionsParams) (*UserRestrictionsResult, error) {
	return runQuery(ctx, q, QueryUserRestrictions, q.waitMinSeq, guild, &p, (*Queries).userRestrictions)
}

// ModeratorCases lists the cases a moderator opened.
func (q *Queries) ModeratorCases(ctx context.Context, guild events.Snowflake, p ModeratorCasesParams) (*CaseListResult, error) {
	return runQuery(ctx, q, QueryModeratorCases, q.waitMinSeq, guild, &p, (*Queries).moderatorCases)
}

// TypeCases lists the cases of one type.
func (q *Queries) TypeCases(ctx context.Context, guild events.Snowflake, p TypeCasesParams) (*CaseListResult, error) {
	return runQuery(ctx, q, QueryTypeCases, q.waitMinSeq, guild, &p, (*Queries).typeCases)
}

// GuildCases lists every case of the guild.
func (q *Queries) GuildCases(ctx context.Context, guild events.Snowflake, p GuildCasesParams) (*CaseListResult, error) {
	return runQuery(ctx, q, QueryGuildCases, q.waitMinSeq, guild, &p, (*Queries).guildCases)
}

// GuildCaseCount counts the cases of the guild, from the statistics tables.
func (q *Queries) GuildCaseCount(ctx context.Context, guild events.Snowflake, p GuildCaseCountParams) (*CaseCountResult, error) {
	return runQuery(ctx, q, QueryGuildCaseCount, q.waitMinSeq, guild, &p, (*Queries).guildCaseCount)
}

// GuildStatistics returns the guild's statistics: totals, by type, by
// moderator and by day, from the statistics tables.
func (q *Queries) GuildStatistics(ctx context.Context, guild events.Snowflake, p GuildStatisticsParams) (*GuildStatisticsResult, error) {
	return runQuery(ctx, q, QueryGuildStatistics, q.waitMinSeq, guild, &p, (*Queries).guildStatistics)
}

// RecentCases lists the cases created in the last p.Hours hours.
func (q *Queries) RecentCases(ctx context.Context, guild events.Snowflake, p RecentCasesParams) (*CaseListResult, error) {
	return runQuery(ctx, q, QueryRecentCases, q.waitMinSeq, guild, &p, (*Queries).recentCases)
}

// DueExpiries lists due, unprocessed expiries, soonest first, in guild or,
// when guild is zero, in every guild. It reads the partial index
// cases_due_expiry.
func (q *Queries) DueExpiries(ctx context.Context, guild events.Snowflake, p DueExpiriesParams) (*CaseListResult, error) {
	return runQuery(ctx, q, QueryDueExpiries, q.waitMinSeq, guild, &p, (*Queries).dueExpiries)
}

// snapshot runs fn in a read-only repeatable-read transaction, so that the
// statements of one answer (a page and its total) see one state.
// snapshotBatch sends the statements queue puts in a batch as one read-only
// repeatable-read transaction, in one round trip: the transaction's BEGIN
// and COMMIT travel in the batch with them (pgx.BeginTxFunc would cost two
// more round trips). When a statement fails, the server skips the rest of the
// batch, COMMIT included, and the pool discards the connection, whose
// transaction is still open.
func (q *Queries) snapshotBatch(ctx context.Context, queue func(b *pgx.Batch)) error {
	b := &pgx.Batch{}
	b.Queue("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
	queue(b)
	b.Queue("COMMIT")
	return q.pool.SendBatch(ctx, b).Close()
}

// validType checks that name is a registered case type.
func (q *Queries) validType(field, name string) error {
	if name == "" {
		return invalidParam(field, "is required")
	}
	if _, ok := q.registry.Lookup(name); !ok {
		return invalidParam(field, "unknown case type %q", name)
	}
	return nil
}

// scanCaseWithNotes reads a row of caseColumns followed by the notes JSON.
func scanCaseWithNotes(row pgx.Row) (*aggregate.Case, error) {
	var r caseRow
	var notes []byte
	if err := row.Scan(append(r.scanTargets(), &notes)...); err != nil {
		return nil, err
	}
	c, err := r.toCase()
	if err != nil {
		return nil, err
	}
	if c.Notes, err = decodeNotes(notes); err != nil {
		return nil, fmt.Errorf("case %d: %w", c.CaseNumber, err)
	}
	return c, nil
}

// decodeNotes reads the notes JSON of sqlNotesJSON.
func decodeNotes(b []byte) ([]aggregate.Note, error) {
	notes := []aggregate.Note{}
	if err := json.Unmarshal(b, &notes); err != nil {
		return nil, fmt.Errorf("notes: %w", err)
	}
	for i := range notes {
		notes[i].CreatedAt = notes[i].CreatedAt.UTC()
		if len(notes[i].EvidenceURLs) == 0 {
			notes[i].EvidenceURLs = nil // as the fold leaves a note without evidence
		}
	}
	return notes, nil
}

// getCase returns the case of the single-case statement sql, or a not
// found error naming it.
func (q *Queries) getCase(ctx context.Context, what string, includeDeleted bool, sql string, args ...any) (*aggregate.Case, error) {
	c, err := scanCaseWithNotes(q.pool.QueryRow(ctx, sql, args...))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	if c.Deleted && !includeDeleted {
		return nil, fmt.Errorf("%s: %w: %w", what, ErrNotFound, aggregate.ErrCaseDeleted)
	}
	return c, nil
}

func (q *Queries) caseGet(ctx context.Context, guild events.Snowflake, p *CaseGetParams) (*CaseGetResult, error) {
	c, err := q.getCase(ctx, fmt.Sprintf("case %d", p.CaseNumber), p.IncludeDeleted, q.sql.caseGet, int64(guild), int64(p.CaseNumber))
	if err != nil {
		return nil, err
	}
	return &CaseGetResult{Case: c}, nil
}

func (q *Queries) caseGetByID(ctx context.Context, guild events.Snowflake, p *CaseGetByIDParams) (*CaseGetResult, error) {
	c, err := q.getCase(ctx, "case "+p.CaseID.String(), p.IncludeDeleted, q.sql.caseGetByID, int64(guild), p.CaseID)
	if err != nil {
		return nil, err
	}
	return &CaseGetResult{Case: c}, nil
}

func (q *Queries) userLatestCase(ctx context.Context, guild events.Snowflake, p *UserLatestCaseParams) (*UserLatestCaseResult, error) {
	c, err := scanCaseWithNotes(q.pool.QueryRow(ctx, q.sql.userLatestCase, int64(guild), int64(p.UserID)))
	if errors.Is(err, pgx.ErrNoRows) {
		return &UserLatestCaseResult{}, nil
	}
	if err != nil {
		return nil, err
	}
	return &UserLatestCaseResult{Case: c}, nil
}

func (q *Queries) caseExists(ctx context.Context, guild events.Snowflake, p *CaseExistsParams) (*CaseExistsResult, error) {
	var row pgx.Row
	if p.CaseNumber != 0 {
		row = q.pool.QueryRow(ctx, q.sql.caseExistsByNumber, int64(guild), int64(p.CaseNumber))
	} else {
		row = q.pool.QueryRow(ctx, q.sql.caseExistsByID, int64(guild), p.CaseID)
	}
	var deleted bool
	err := row.Scan(&deleted)
	if errors.Is(err, pgx.ErrNoRows) {
		return &CaseExistsResult{}, nil
	}
	if err != nil {
		return nil, err
	}
	return &CaseExistsResult{Exists: !deleted || p.IncludeDeleted}, nil
}

func (q *Queries) caseNotes(ctx context.Context, guild events.Snowflake, p *CaseNotesParams) (*CaseNotesResult, error) {
	var (
		deleted bool
		raw     []byte
	)
	err := q.pool.QueryRow(ctx, q.sql.caseNotes, int64(guild), int64(p.CaseNumber)).Scan(&deleted, &raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("case %d: %w", p.CaseNumber, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	if deleted && !p.IncludeDeleted {
		return nil, fmt.Errorf("case %d: %w: %w", p.CaseNumber, ErrNotFound, aggregate.ErrCaseDeleted)
	}
	notes, err := decodeNotes(raw)
	if err != nil {
		return nil, err
	}
	return &CaseNotesResult{Notes: notes}, nil
}

func (q *Queries) caseHistory(ctx context.Context, guild events.Snowflake, p *CaseHistoryParams) (*CaseHistoryResult, error) {
	rows, err := q.pool.Query(ctx, q.sql.caseHistory, int64(guild), int64(p.CaseNumber))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var evs []events.Event
	for rows.Next() {
		var (
			seq, g, n, actor int64
			w                historyEvent
			name             string
		)
		if err := rows.Scan(&seq, &w.EventID, &name, &w.SchemaVersion, &g, &n, &w.CaseID, &w.OccurredAt,
			&actor, &w.CommandID, &w.Command, &w.CorrelationID, &w.Data); err != nil {
			return nil, err
		}
		w.Event, w.GuildID, w.CaseNumber, w.ActorID = events.Name(name), events.Snowflake(g), uint32(n), events.Snowflake(actor)
		// Through the codec, so that rows written by an older build are
		// upcast like events read from the stream.
		b, err := json.Marshal(struct {
			events.Envelope
			Data json.RawMessage `json:"data"`
		}{w.Envelope, w.Data})
		if err != nil {
			return nil, err
		}
		e, err := q.codec.Decode(b)
		if err != nil {
			return nil, fmt.Errorf("event at sequence %d: %w", seq, err)
		}
		e.Seq = uint64(seq)
		evs = append(evs, e)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(evs) == 0 {
		return nil, fmt.Errorf("case %d: %w", p.CaseNumber, ErrNotFound)
	}
	return &CaseHistoryResult{Events: evs}, nil
}

func (q *Queries) userRestriction(ctx context.Context, guild events.Snowflake, p *UserRestrictionParams) (*UserRestrictionResult, error) {
	rows, err := q.pool.Query(ctx, q.sql.userRestriction, int64(guild), int64(p.UserID), string(p.Family))
	if err != nil {
		return nil, err
	}
	rs, err := scanRestrictions(rows)
	if err != nil {
		return nil, err
	}
	if len(rs) == 0 {
		return &UserRestrictionResult{}, nil
	}
	return &UserRestrictionResult{Restricted: true, Restriction: &rs[0]}, nil
}

func (q *Queries) userRestrictions(ctx context.Context, guild events.Snowflake, p *UserRestrictionsParams) (*UserRestrictionsResult, error) {
	rows, err := q.pool.Query(ctx, q.sql.userRestrictions, int64(guild), int64(p.UserID))
	if err != nil {
		return nil, err
	}
	rs, err := scanRestrictions(rows)
	if err != nil {
		return nil, err
	}
	return &UserRestrictionsResult{Restrictions: rs}, nil
}

func scanRestrictions(rows pgx.Rows) ([]Restriction, error) {
	defer rows.Close()
	out := []Restriction{}
	for rows.Next() {
		var (
			r      Restriction
			family string
			n      int64
		)
		if err := rows.Scan(&family, &n, &r.Type, &r.ExpiresAt, &r.Since); err != nil {
			return nil, err
		}
		r.Family, r.CaseNumber, r.ExpiresAt, r.Since = aggregate.Family(family), uint32(n), utcPtr(r.ExpiresAt), r.Since.UTC()
		out = append(out, r)
	}
	return out, rows.Err()
}

// countSQL returns the statement that counts the cases of guild matching
// f, as (total, active). It reads a statistics table when one holds the
// answer: without deleted cases, with at most one of user, moderator and
// one type, and any status (applied by applyStatus).
func (q *Queries) countSQL(guild events.Snowflake, f *CaseFilter) (string, []any, bool) {
	rest := *f
	rest.UserID, rest.ModeratorID, rest.Types, rest.Status = 0, 0, nil, ""
	dims := 0
	for _, set := range []bool{f.UserID != 0, f.ModeratorID != 0, len(f.Types) > 0} {
		if set {
			dims++
		}
	}
	if !f.IncludeDeleted && len(f.Types) <= 1 && dims <= 1 && isZeroFilter(&rest) {
		g := int64(guild)
		switch {
		case f.UserID != 0:
			return q.sql.countUser, []any{g, int64(f.UserID)}, true
		case f.ModeratorID != 0:
			return q.sql.countModerator, []any{g, int64(f.ModeratorID)}, true
		case len(f.Types) == 1:
			return q.sql.countType, []any{g, f.Types[0]}, true
		default:
			return q.sql.countGuild, []any{g}, true
		}
	}
	b := caseFilterSQL(int64(guild), f)
	return q.sql.countCases + b.sql(), b.args, false
}

func isZeroFilter(f *CaseFilter) bool {
	return f.UserID == 0 && f.ModeratorID == 0 && len(f.Types) == 0 && f.Status == "" &&
		f.CreatedAfter.IsZero() && f.CreatedBefore.IsZero() && f.ExpiresBefore.IsZero() &&
		f.HasExpiry == nil && f.ExpiryProcessed == nil && len(f.UserRoles) == 0 && f.Metadata == nil &&
		f.Search == "" && !f.IncludeDeleted
}

// applyStatus narrows statistics counts (total, active) to a status.
func applyStatus(status aggregate.Status, total, active int64) (int64, int64) {
	switch status {
	case aggregate.StatusActive:
		return active, active
	case aggregate.StatusClosed:
		return total - active, 0
	}
	return total, active
}

func (q *Queries) caseCount(ctx context.Context, guild events.Snowflake, p *CaseCountParams) (*CaseCountResult, error) {
	sql, args, fromStats := q.countSQL(guild, &p.CaseFilter)
	var r CaseCountResult
	if err := q.pool.QueryRow(ctx, sql, args...).Scan(&r.Total, &r.Active); err != nil {
		return nil, err
	}
	if fromStats {
		r.Total, r.Active = applyStatus(p.Status, r.Total, r.Active)
	}
	return &r, nil
}

func (q *Queries) guildCaseCount(ctx context.Context, guild events.Snowflake, _ *GuildCaseCountParams) (*CaseCountResult, error) {
	return q.caseCount(ctx, guild, &CaseCountParams{})
}

func (q *Queries) userCaseCount(ctx context.Context, guild events.Snowflake, p *UserCaseCountParams) (*CaseCountResult, error) {
	return q.caseCount(ctx, guild, &CaseCountParams{CaseFilter: CaseFilter{UserID: p.UserID}})
}

// listCases returns a page of the cases of guild matching f, with the total
// read in the same snapshot.
func (q *Queries) listCases(ctx context.Context, guild events.Snowflake, f *CaseFilter, page *PageParams) (*CaseListResult, error) {
	countSQL, countArgs, fromStats := q.countSQL(guild, f)
	b := caseFilterSQL(int64(guild), f)
	order := "DESC"
	if page.Order == SortAsc {
		order = "ASC"
	}
	if page.after != 0 {
		op := " < "
		if page.Order == SortAsc {
			op = " > "
		}
		b.add("case_number" + op + b.arg(int64(page.after)))
	}
	pageSQL := q.sql.listCases + b.sql() + " ORDER BY case_number " + order + " LIMIT " + b.arg(page.Limit+1)

	res := &CaseListResult{Cases: []aggregate.Case{}}
	err := q.snapshotBatch(ctx, func(batch *pgx.Batch) {
		batch.Queue(countSQL, countArgs...).QueryRow(func(row pgx.Row) error {
			var total, active int64
			if err := row.Scan(&total, &active); err != nil {
				return err
			}
			if fromStats {
				total, _ = applyStatus(f.Status, total, active)
			}
			res.Total = total
			return nil
		})
		batch.Queue(pageSQL, b.args...).Query(func(rows pgx.Rows) error {
			cs, err := scanCases(rows)
			res.Cases = cs
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	if len(res.Cases) > page.Limit {
		res.Cases = res.Cases[:page.Limit]
		last := res.Cases[len(res.Cases)-1]
		res.NextCursor = pageCursor{Kind: cursorCases, Order: page.Order, Number: last.CaseNumber}.encode()
	}
	return res, nil
}

func scanCases(rows pgx.Rows) ([]aggregate.Case, error) {
	defer rows.Close()
	out := []aggregate.Case{}
	for rows.Next() {
		var r caseRow
		if err := rows.Scan(r.scanTargets()...); err != nil {
			return nil, err
		}
		c, err := r.toCase()
		if err != nil {
			return nil, err
		}
		out = append(out, *c)
	}
	return out, rows.Err()
}

func (q *Queries) caseList(ctx context.Context, guild events.Snowflake, p *CaseListParams) (*CaseListResult, error) {
	return q.listCases(ctx, guild, &p.CaseFilter, &p.PageParams)
}

func (q *Queries) userCases(ctx context.Context, guild events.Snowflake, p *UserCasesParams) (*CaseListResult, error) {
	return q.listCases(ctx, guild, &CaseFilter{UserID: p.UserID}, &p.PageParams)
}

func (q *Queries) userActiveCases(ctx context.Context, guild events.Snowflake, p *UserActiveCasesParams) (*CaseListResult, error) {
	return q.listCases(ctx, guild, &CaseFilter{UserID: p.UserID, Status: aggregate.StatusActive}, &p.PageParams)
}

func (q *Queries) moderatorCases(ctx context.Context, guild events.Snowflake, p *ModeratorCasesParams) (*CaseListResult, error) {
	return q.listCases(ctx, guild, &CaseFilter{ModeratorID: p.ModeratorID}, &p.PageParams)
}

func (q *Queries) typeCases(ctx context.Context, guild events.Snowflake, p *TypeCasesParams) (*CaseListResult, error) {
	return q.listCases(ctx, guild, &CaseFilter{Types: []string{p.Type}}, &p.PageParams)
}

func (q *Queries) guildCases(ctx context.Context, guild events.Snowflake, p *GuildCasesParams) (*CaseListResult, error) {
	return q.listCases(ctx, guild, &CaseFilter{}, &p.PageParams)
}

func (q *Queries) recentCases(ctx context.Context, guild events.Snowflake, p *RecentCasesParams) (*CaseListResult, error) {
	since := q.now().Add(-time.Duration(p.Hours) * time.Hour)
	return q.listCases(ctx, guild, &CaseFilter{CreatedAfter: since}, &p.PageParams)
}

func (q *Queries) dueExpiries(ctx context.Context, guild events.Snowflake, p *DueExpiriesParams) (*CaseListResult, error) {
	b := &whereBuilder{}
	b.add(sqlDueExpiry)
	b.add("expires_at <= " + b.arg(p.Before))
	if guild != 0 {
		b.add("guild_id = " + b.arg(int64(guild)))
	}
	switch len(p.Types) {
	case 0:
	case 1:
		b.add("type = " + b.arg(p.Types[0]))
	default:
		b.add("type = ANY(" + b.arg(p.Types) + "::text[])")
	}
	count := b.clone()
	if c := p.after; c != nil {
		b.add("(expires_at, guild_id, case_number) > (" + b.arg(c.ExpiresAt) + ", " + b.arg(int64(c.GuildID)) + ", " + b.arg(int64(c.Number)) + ")")
	}
	pageSQL := q.sql.listCases + b.sql() + " ORDER BY expires_at, guild_id, case_number LIMIT " + b.arg(p.Limit+1)
	res := &CaseListResult{Cases: []aggregate.Case{}}
	err := q.snapshotBatch(ctx, func(batch *pgx.Batch) {
		batch.Queue(q.sql.countCases+count.sql(), count.args...).QueryRow(func(row pgx.Row) error {
			var active int64
			return row.Scan(&res.Total, &active)
		})
		batch.Queue(pageSQL, b.args...).Query(func(rows pgx.Rows) error {
			cs, err := scanCases(rows)
			res.Cases = cs
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	if len(res.Cases) > p.Limit {
		res.Cases = res.Cases[:p.Limit]
		last := res.Cases[len(res.Cases)-1]
		res.NextCursor = pageCursor{Kind: cursorDue, Number: last.CaseNumber, GuildID: last.GuildID, ExpiresAt: *last.ExpiresAt}.encode()
	}
	return res, nil
}

func (q *Queries) guildStatistics(ctx context.Context, guild events.Snowflake, p *GuildStatisticsParams) (*GuildStatisticsResult, error) {
	g := int64(guild)
	res := &GuildStatisticsResult{ByType: []TypeCount{}, ByModerator: []ModeratorCount{}, ByDay: []DayCount{},
		From: p.fromDay.Format(time.DateOnly), To: p.toDay.Format(time.DateOnly)}
	byDay := map[time.Time][]TypeCount{}
	err := q.snapshotBatch(ctx, func(batch *pgx.Batch) {
		batch.Queue(q.sql.countGuild, g).QueryRow(func(row pgx.Row) error {
			return row.Scan(&res.Total, &res.Active)
		})
		batch.Queue(q.sql.statsByType, g).Query(func(rows pgx.Rows) error {
			defer rows.Close()
			for rows.Next() {
				var t TypeCount
				if err := rows.Scan(&t.Type, &t.Total, &t.Active); err != nil {
					return err
				}
				res.ByType = append(res.ByType, t)
			}
			return rows.Err()
		})
		batch.Queue(q.sql.statsByMod, g).Query(func(rows pgx.Rows) error {
			defer rows.Close()
			for rows.Next() {
				var (
					m  ModeratorCount
					id int64
				)
				if err := rows.Scan(&id, &m.Total, &m.Active); err != nil {
					return err
				}
				m.ModeratorID = events.Snowflake(id)
				res.ByModerator = append(res.ByModerator, m)
			}
			return rows.Err()
		})
		batch.Queue(q.sql.statsByDay, g, p.fromDay, p.toDay).Query(func(rows pgx.Rows) error {
			defer rows.Close()
			for rows.Next() {
				var (
					day time.Time
					t   TypeCount
				)
				if err := rows.Scan(&day, &t.Type, &t.Total, &t.Active); err != nil {
					return err
				}
				d := utcDay(day)
				byDay[d] = append(byDay[d], t)
			}
			return rows.Err()
		})
	})
	if err != nil {
		return nil, err
	}
	for d := p.fromDay; !d.After(p.toDay); d = d.AddDate(0, 0, 1) {
		dc := DayCount{Day: d.Format(time.DateOnly), ByType: []TypeCount{}}
		for _, t := range byDay[d] {
			dc.Total += t.Total
			dc.Active += t.Active
			dc.ByType = append(dc.ByType, t)
		}
		res.ByDay = append(res.ByDay, dc)
	}
	return res, nil
}
