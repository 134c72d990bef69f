package projection

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/events"
)

// Query defaults and limits.
const (
	// ListLimitDefault is the page size of a list whose limit is zero.
	ListLimitDefault = 50
	// ListLimitMax is the largest page; a bigger limit is invalid_argument.
	ListLimitMax = 1000
	// RecentCasesHoursDefault is the window of RecentCases whose hours is zero.
	RecentCasesHoursDefault = 24
	// RecentCasesHoursMax is the widest window of RecentCases (366 days).
	RecentCasesHoursMax = 24 * 366
	// StatisticsDaysDefault is how many days GuildStatistics reports by day
	// when no range is given, ending today.
	StatisticsDaysDefault = 30
	// StatisticsDaysMax is the widest day range of GuildStatistics.
	StatisticsDaysMax = 366
	// SearchMaxChars bounds a full-text search of reasons.
	SearchMaxChars = 256
	// FilterTypesMax bounds the case types of one filter.
	FilterTypesMax = 32
	// FilterRolesMax bounds the roles of one user_roles filter.
	FilterRolesMax = aggregate.MaxUserRoles
)

// SortOrder orders lists by case number.
type SortOrder string

// The sort orders; the empty order is SortDesc.
const (
	// SortDesc lists newest (highest number) first. It is the default.
	SortDesc SortOrder = "desc"
	// SortAsc lists oldest (lowest number) first.
	SortAsc SortOrder = "asc"
)

// queryParams is implemented by every <Op>Params through its QueryMeta.
type queryParams interface {
	queryMeta() *QueryMeta
	// validate checks the params for a query in guild (zero: every guild,
	// which only some queries accept) and fills in defaults.
	validate(q *Queries, guild events.Snowflake) error
}

// QueryMeta holds the fields every query may carry.
type QueryMeta struct {
	// MinSeq makes the query wait until the cases projection has applied
	// the stream up to this sequence (the seq of a command reply), so that
	// a bot reads its own writes. When that takes longer than the wait
	// bound (QueriesOpts.MinSeqWait, QueryServiceConfig.MinSeqWait) the
	// query fails with ErrUnavailable. Zero does not wait.
	MinSeq uint64 `json:"min_seq,omitzero"`
}

func (m *QueryMeta) queryMeta() *QueryMeta { return m }

// PageParams are the paging fields of list queries. Pages are keyset
// pages: the cursor holds the last case number seen, so a page never
// repeats or skips a case when cases are added meanwhile.
type PageParams struct {
	// Limit is the page size, 1 to ListLimitMax. Defaults to ListLimitDefault.
	Limit int `json:"limit,omitzero"`
	// Cursor is the NextCursor of the previous page; empty for the first.
	// It must be used with the same order.
	Cursor string `json:"cursor,omitempty"`
	// Order is "desc" (newest first) or "asc". Defaults to "desc".
	Order SortOrder `json:"order,omitempty"`

	after uint32 // decoded cursor; 0 for the first page
}

func (p *PageParams) validate() error {
	switch {
	case p.Limit == 0:
		p.Limit = ListLimitDefault
	case p.Limit < 0 || p.Limit > ListLimitMax:
		return invalidParam("limit", "must be 1 to %d", ListLimitMax)
	}
	switch p.Order {
	case "":
		p.Order = SortDesc
	case SortDesc, SortAsc:
	default:
		return invalidParam("order", `must be "desc" or "asc"`)
	}
	p.after = 0
	if p.Cursor != "" {
		c, err := decodeCursor(p.Cursor)
		if err != nil || c.Kind != cursorCases || c.Number == 0 {
			return invalidParam("cursor", "is not a cursor of a case list")
		}
		if c.Order != p.Order {
			return invalidParam("cursor", "was made for order %q, not %q", c.Order, p.Order)
		}
		p.after = c.Number
	}
	return nil
}

// CaseFilter selects cases of a guild. Every field that is set must hold;
// zero fields do not filter. Deleted cases are left out unless
// IncludeDeleted is set.
type CaseFilter struct {
	// UserID selects the cases of one member.
	UserID events.Snowflake `json:"user_id,omitzero"`
	// ModeratorID selects the cases one moderator opened.
	ModeratorID events.Snowflake `json:"moderator_id,omitzero"`
	// Types selects cases of any of these types (at most FilterTypesMax).
	Types []string `json:"types,omitempty"`
	// Status selects active or closed cases.
	Status aggregate.Status `json:"status,omitempty"`
	// CreatedAfter selects cases created at or after it.
	CreatedAfter time.Time `json:"created_after,omitzero"`
	// CreatedBefore selects cases created before it.
	CreatedBefore time.Time `json:"created_before,omitzero"`
	// ExpiresBefore selects cases with an expiry before it.
	ExpiresBefore time.Time `json:"expires_before,omitzero"`
	// HasExpiry selects cases with (true) or without (false) an expiry.
	HasExpiry *bool `json:"has_expiry,omitempty"`
	// ExpiryProcessed selects cases whose expiry was (true) or was not
	// (false) processed.
	ExpiryProcessed *bool `json:"expiry_processed,omitempty"`
	// UserRoles selects cases whose user_roles contain every one of these
	// roles.
	UserRoles []events.Snowflake `json:"user_roles,omitempty"`
	// Metadata selects cases whose metadata contains this JSON object
	// (PostgreSQL's jsonb @>): {"tags": ["raid"]} matches a case whose
	// metadata has a "tags" array holding "raid", among other keys.
	Metadata json.RawMessage `json:"metadata,omitempty"`
	// Search selects cases whose reason matches these words, in web search
	// syntax: words (all must match), "quoted phrases", or, -word.
	// Matching is by whole word, case-insensitive, without stemming.
	Search string `json:"search,omitempty"`
	// IncludeDeleted includes deleted cases.
	IncludeDeleted bool `json:"include_deleted,omitzero"`
}

func (f *CaseFilter) validate(q *Queries) error {
	if err := optionalSnowflake("user_id", f.UserID); err != nil {
		return err
	}
	if err := optionalSnowflake("moderator_id", f.ModeratorID); err != nil {
		return err
	}
	if len(f.Types) > FilterTypesMax {
		return invalidParam("types", "at most %d types", FilterTypesMax)
	}
	for i, t := range f.Types {
		if err := q.validType(fmt.Sprintf("types[%d]", i), t); err != nil {
			return err
		}
	}
	if err := validStatus(f.Status); err != nil {
		return err
	}
	if !f.CreatedAfter.IsZero() && !f.CreatedBefore.IsZero() && !f.CreatedAfter.Before(f.CreatedBefore) {
		return invalidParam("created_before", "must be after created_after")
	}
	if !f.ExpiresBefore.IsZero() && f.HasExpiry != nil && !*f.HasExpiry {
		return invalidParam("has_expiry", "false contradicts expires_before")
	}
	if len(f.UserRoles) > FilterRolesMax {
		return invalidParam("user_roles", "at most %d roles", FilterRolesMax)
	}
	for i, r := range f.UserRoles {
		if err := r.Validate(); err != nil {
			return invalidParam(fmt.Sprintf("user_roles[%d]", i), "%v", err)
		}
	}
	if f.Metadata != nil {
		m, err := aggregate.ValidMetadata(f.Metadata)
		if err != nil {
			return err
		}
		f.Metadata = m
	}
	if f.Search != "" {
		if err := validText("search", f.Search, SearchMaxChars); err != nil {
			return err
		}
		if strings.TrimSpace(f.Search) == "" {
			return invalidParam("search", "has no words")
		}
	}
	return nil
}

// CaseGetParams gets a case by its number in the guild.
type CaseGetParams struct {
	QueryMeta
	// CaseNumber is the case's number in the guild. Required.
	CaseNumber uint32 `json:"case_number"`
	// IncludeDeleted returns a deleted case (with deleted set) instead of
	// failing with ErrNotFound.
	IncludeDeleted bool `json:"include_deleted,omitzero"`
}

func (p *CaseGetParams) validate(_ *Queries, guild events.Snowflake) error {
	if err := validGuild(guild); err != nil {
		return err
	}
	return validCaseNumber(p.CaseNumber)
}

// CaseGetByIDParams gets a case of the guild by its case id.
type CaseGetByIDParams struct {
	QueryMeta
	// CaseID is the case's global id. Required.
	CaseID uuid.UUID `json:"case_id"`
	// IncludeDeleted returns a deleted case instead of failing with
	// ErrNotFound.
	IncludeDeleted bool `json:"include_deleted,omitzero"`
}

func (p *CaseGetByIDParams) validate(_ *Queries, guild events.Snowflake) error {
	if err := validGuild(guild); err != nil {
		return err
	}
	if p.CaseID == uuid.Nil {
		return invalidParam("case_id", "is required")
	}
	return nil
}

// CaseGetResult is the reply of CaseGet and CaseGetByID: the case with its
// notes.
type CaseGetResult struct {
	Case *aggregate.Case `json:"case"`
}

// CaseExistsParams asks whether a case exists, by number or by case id
// (exactly one).
type CaseExistsParams struct {
	QueryMeta
	CaseNumber uint32    `json:"case_number,omitzero"`
	CaseID     uuid.UUID `json:"case_id,omitzero"`
	// IncludeDeleted counts a deleted case as existing.
	IncludeDeleted bool `json:"include_deleted,omitzero"`
}

func (p *CaseExistsParams) validate(_ *Queries, guild events.Snowflake) error {
	if err := validGuild(guild); err != nil {
		return err
	}
	if (p.CaseNumber == 0) == (p.CaseID == uuid.Nil) {
		return invalidParam("case_number", "give either case_number or case_id")
	}
	return nil
}

// CaseExistsResult is the reply of CaseExists.
type CaseExistsResult struct {
	Exists bool `json:"exists"`
}

// CaseListParams lists the cases of a guild that match a filter.
type CaseListParams struct {
	QueryMeta
	CaseFilter
	PageParams
}

func (p *CaseListParams) validate(q *Queries, guild events.Snowflake) error {
	if err := validGuild(guild); err != nil {
		return err
	}
	if err := p.CaseFilter.validate(q); err != nil {
		return err
	}
	return p.PageParams.validate()
}

// CaseListResult is one page of a list of cases: CaseList and every other
// list query reply with it. Cases in lists carry no notes (Notes is empty);
// CaseGet and CaseNotes return them.
type CaseListResult struct {
	Cases []aggregate.Case `json:"cases"`
	// Total is how many cases match the query, on every page.
	Total int64 `json:"total"`
	// NextCursor fetches the next page; empty on the last page.
	NextCursor string `json:"next_cursor,omitempty"`
}

// UserCasesParams lists a member's cases.
type UserCasesParams struct {
	QueryMeta
	UserID events.Snowflake `json:"user_id"`
	PageParams
}

func (p *UserCasesParams) validate(_ *Queries, guild events.Snowflake) error {
	return validUserPage(guild, p.UserID, &p.PageParams)
}

// UserActiveCasesParams lists a member's active (not closed) cases.
type UserActiveCasesParams struct {
	QueryMeta
	UserID events.Snowflake `json:"user_id"`
	PageParams
}

func (p *UserActiveCasesParams) validate(_ *Queries, guild events.Snowflake) error {
	return validUserPage(guild, p.UserID, &p.PageParams)
}

// UserLatestCaseParams gets a member's latest case (highest number).
type UserLatestCaseParams struct {
	QueryMeta
	UserID events.Snowflake `json:"user_id"`
}

func (p *UserLatestCaseParams) validate(_ *Queries, guild events.Snowflake) error {
	if err := validGuild(guild); err != nil {
		return err
	}
	return requiredSnowflake("user_id", p.UserID)
}

// UserLatestCaseResult is the reply of UserLatestCase. Case is nil (null)
// when the member has no case: that is an answer, not an error.
type UserLatestCaseResult struct {
	Case *aggregate.Case `json:"case"`
}

// UserCaseCountParams counts a member's cases.
type UserCaseCountParams struct {
	QueryMeta
	UserID events.Snowflake `json:"user_id"`
}

func (p *UserCaseCountParams) validate(_ *Queries, guild events.Snowflake) error {
	if err := validGuild(guild); err != nil {
		return err
	}
	return requiredSnowflake("user_id", p.UserID)
}

// ModeratorCasesParams lists the cases a moderator opened.
type ModeratorCasesParams struct {
	QueryMeta
	ModeratorID events.Snowflake `json:"moderator_id"`
	PageParams
}

func (p *ModeratorCasesParams) validate(_ *Queries, guild events.Snowflake) error {
	if err := validGuild(guild); err != nil {
		return err
	}
	if err := requiredSnowflake("moderator_id", p.ModeratorID); err != nil {
		return err
	}
	return p.PageParams.validate()
}

// TypeCasesParams lists the cases of one type.
type TypeCasesParams struct {
	QueryMeta
	Type string `json:"type"`
	PageParams
}

func (p *TypeCasesParams) validate(q *Queries, guild events.Snowflake) error {
	if err := validGuild(guild); err != nil {
		return err
	}
	if err := q.validType("type", p.Type); err != nil {
		return err
	}
	return p.PageParams.validate()
}

// GuildCasesParams lists every case of the guild.
type GuildCasesParams struct {
	QueryMeta
	PageParams
}

func (p *GuildCasesParams) validate(_ *Queries, guild events.Snowflake) error {
	if err := validGuild(guild); err != nil {
		return err
	}
	return p.PageParams.validate()
}

// RecentCasesParams lists the cases created in the last hours.
type RecentCasesParams struct {
	QueryMeta
	// Hours is the window, 1 to RecentCasesHoursMax. Defaults to 24.
	Hours int `json:"hours,omitzero"`
	PageParams
}

func (p *RecentCasesParams) validate(_ *Queries, guild events.Snowflake) error {
	if err := validGuild(guild); err != nil {
		return err
	}
	switch {
	case p.Hours == 0:
		p.Hours = RecentCasesHoursDefault
	case p.Hours < 0 || p.Hours > RecentCasesHoursMax:
		return invalidParam("hours", "must be 1 to %d", RecentCasesHoursMax)
	}
	return p.PageParams.validate()
}

// CaseCountParams counts the cases that match a filter. It reads the
// statistics tables when the filter allows (at most one of user,
// moderator and a single type, with any status, without deleted cases),
// and counts the cases otherwise.
type CaseCountParams struct {
	QueryMeta
	CaseFilter
}

func (p *CaseCountParams) validate(q *Queries, guild events.Snowflake) error {
	if err := validGuild(guild); err != nil {
		return err
	}
	return p.CaseFilter.validate(q)
}

// GuildCaseCountParams counts the cases of a guild.
type GuildCaseCountParams struct {
	QueryMeta
}

func (p *GuildCaseCountParams) validate(_ *Queries, guild events.Snowflake) error {
	return validGuild(guild)
}

// CaseCountResult is the reply of the count queries. Deleted cases are not
// counted (unless a CaseCount filter includes them).
type CaseCountResult struct {
	// Total is how many cases match.
	Total int64 `json:"total"`
	// Active is how many of them are active (not closed).
	Active int64 `json:"active"`
}

// UserRestrictionParams asks whether a member is under a restriction
// family (ban, timeout, jail, snippet, poll or a custom one).
type UserRestrictionParams struct {
	QueryMeta
	UserID events.Snowflake `json:"user_id"`
	Family aggregate.Family `json:"family"`
}

func (p *UserRestrictionParams) validate(q *Queries, guild events.Snowflake) error {
	if err := validGuild(guild); err != nil {
		return err
	}
	if err := requiredSnowflake("user_id", p.UserID); err != nil {
		return err
	}
	if p.Family == aggregate.FamilyNone {
		return invalidParam("family", "is required")
	}
	if !q.families[p.Family] {
		return invalidParam("family", "unknown restriction family %q", p.Family)
	}
	return nil
}

// Restriction is a restriction a member is under, and the case that put
// them there. The one restriction rule (aggregate.Restriction) decides it:
// a restriction whose expiry has passed still holds until its expiry is
// processed.
type Restriction struct {
	Family     aggregate.Family `json:"family"`
	CaseNumber uint32           `json:"case_number"`
	Type       string           `json:"type"`
	ExpiresAt  *time.Time       `json:"expires_at,omitempty"`
	// Since is when the restricting case was created.
	Since time.Time `json:"since"`
}

// UserRestrictionResult is the reply of UserRestriction.
type UserRestrictionResult struct {
	Restricted bool `json:"restricted"`
	// Restriction is the restriction, nil when Restricted is false.
	Restriction *Restriction `json:"restriction"`
}

// UserRestrictionsParams lists every restriction a member is under.
type UserRestrictionsParams struct {
	QueryMeta
	UserID events.Snowflake `json:"user_id"`
}

func (p *UserRestrictionsParams) validate(_ *Queries, guild events.Snowflake) error {
	if err := validGuild(guild); err != nil {
		return err
	}
	return requiredSnowflake("user_id", p.UserID)
}

// UserRestrictionsResult is the reply of UserRestrictions, by family.
type UserRestrictionsResult struct {
	Restrictions []Restriction `json:"restrictions"`
}

// DueExpiriesParams lists due, unprocessed expiries: active, undeleted
// cases whose expiry is at or before a time and has not been processed,
// soonest first. It may span every guild (guild zero in the Go API, the
// subject token "all" on the wire).
type DueExpiriesParams struct {
	QueryMeta
	// Before is the time the expiries are due by. Defaults to now.
	Before time.Time `json:"before,omitzero"`
	// Types selects cases of these types (["TEMPBAN"] for tempbans only);
	// empty means any type.
	Types []string `json:"types,omitempty"`
	// Limit is the page size, 1 to ListLimitMax. Defaults to ListLimitDefault.
	Limit int `json:"limit,omitzero"`
	// Cursor is the NextCursor of the previous page.
	Cursor string `json:"cursor,omitempty"`

	after *pageCursor
}

func (p *DueExpiriesParams) validate(q *Queries, guild events.Snowflake) error {
	if guild != 0 {
		if err := validGuild(guild); err != nil {
			return err
		}
	}
	if p.Before.IsZero() {
		p.Before = q.now()
	}
	if len(p.Types) > FilterTypesMax {
		return invalidParam("types", "at most %d types", FilterTypesMax)
	}
	for i, t := range p.Types {
		if err := q.validType(fmt.Sprintf("types[%d]", i), t); err != nil {
			return err
		}
	}
	switch {
	case p.Limit == 0:
		p.Limit = ListLimitDefault
	case p.Limit < 0 || p.Limit > ListLimitMax:
		return invalidParam("limit", "must be 1 to %d", ListLimitMax)
	}
	p.after = nil
	if p.Cursor != "" {
		c, err := decodeCursor(p.Cursor)
		if err != nil || c.Kind != cursorDue || c.Number == 0 || c.GuildID == 0 || c.ExpiresAt.IsZero() {
			return invalidParam("cursor", "is not a cursor of due expiries")
		}
		p.after = &c
	}
	return nil
}

// CaseHistoryParams gets every event of a case, in stream order: the
// audit trail. A deleted case's history is returned too (its last events
// record the deletion); that is what the history is kept for.
type CaseHistoryParams struct {
	QueryMeta
	CaseNumber uint32 `json:"case_number"`
}

func (p *CaseHistoryParams) validate(_ *Queries, guild events.Snowflake) error {
	if err := validGuild(guild); err != nil {
		return err
	}
	return validCaseNumber(p.CaseNumber)
}

// CaseNotesParams gets the notes of a case, oldest first.
type CaseNotesParams struct {
	QueryMeta
	CaseNumber uint32 `json:"case_number"`
	// IncludeDeleted returns the notes of a deleted case instead of
	// failing with ErrNotFound.
	IncludeDeleted bool `json:"include_deleted,omitzero"`
}

func (p *CaseNotesParams) validate(_ *Queries, guild events.Snowflake) error {
	if err := validGuild(guild); err != nil {
		return err
	}
	return validCaseNumber(p.CaseNumber)
}

// CaseNotesResult is the reply of CaseNotes.
type CaseNotesResult struct {
	Notes []aggregate.Note `json:"notes"`
}

// GuildStatisticsParams asks for a guild's statistics: totals, by type, by
// moderator, and by day over a range of UTC days.
type GuildStatisticsParams struct {
	QueryMeta
	// From is a time in the first day of the range. Defaults to the day
	// StatisticsDaysDefault-1 days before To.
	From time.Time `json:"from,omitzero"`
	// To is a time in the last day of the range. Defaults to now.
	To time.Time `json:"to,omitzero"`

	fromDay, toDay time.Time
}

func (p *GuildStatisticsParams) validate(q *Queries, guild events.Snowflake) error {
	if err := validGuild(guild); err != nil {
		return err
	}
	to := p.To
	if to.IsZero() {
		to = q.now()
	}
	p.toDay = utcDay(to)
	if p.From.IsZero() {
		p.fromDay = p.toDay.AddDate(0, 0, -(StatisticsDaysDefault - 1))
	} else {
		p.fromDay = utcDay(p.From)
	}
	if p.fromDay.After(p.toDay) {
		return invalidParam("from", "must not be after to")
	}
	if days := int(p.toDay.Sub(p.fromDay)/(24*time.Hour)) + 1; days > StatisticsDaysMax {
		return invalidParam("from", "the range is %d days, at most %d", days, StatisticsDaysMax)
	}
	return nil
}

// GuildStatisticsResult is the reply of GuildStatistics. Counts leave
// deleted cases out; Active counts those not closed.
type GuildStatisticsResult struct {
	Total  int64 `json:"total"`
	Active int64 `json:"active"`
	// ByType has a row per type with cases, most cases first.
	ByType []TypeCount `json:"by_type"`
	// ByModerator has a row per moderator with cases, most cases first.
	ByModerator []ModeratorCount `json:"by_moderator"`
	// From and To are the first and last day of ByDay (YYYY-MM-DD, UTC).
	From string `json:"from"`
	To   string `json:"to"`
	// ByDay has a row for every day of the range, oldest first, days
	// without cases included.
	ByDay []DayCount `json:"by_day"`
}

// TypeCount counts the cases of one type.
type TypeCount struct {
	Type   string `json:"type"`
	Total  int64  `json:"total"`
	Active int64  `json:"active"`
}

// ModeratorCount counts the cases one moderator opened.
type ModeratorCount struct {
	ModeratorID events.Snowflake `json:"moderator_id"`
	Total       int64            `json:"total"`
	Active      int64            `json:"active"`
}

// DayCount counts the cases created on one UTC day.
type DayCount struct {
	// Day is the date, YYYY-MM-DD.
	Day    string `json:"day"`
	Total  int64  `json:"total"`
	Active int64  `json:"active"`
	// ByType splits the day's cases by type, in type order.
	ByType []TypeCount `json:"by_type"`
}

// CaseHistoryResult is the reply of CaseHistory: the case's events, oldest
// first, each with its stream sequence (Seq). Text removed by a redaction
// is absent from the payloads.
//
// On the wire each event is its JSON envelope (docs/events.md) with the
// payload in "data" and the stream sequence in "seq".
type CaseHistoryResult struct {
	Events []events.Event
}

// historyEvent is the wire form of one event of a history.
type historyEvent struct {
	Seq uint64 `json:"seq"`
	events.Envelope
	Data json.RawMessage `json:"data"`
}

// MarshalJSON writes {"events": [...]}.
func (r CaseHistoryResult) MarshalJSON() ([]byte, error) {
	out := struct {
		Events []historyEvent `json:"events"`
	}{Events: make([]historyEvent, len(r.Events))}
	for i, e := range r.Events {
		if e.Data == nil {
			return nil, fmt.Errorf("event %s at sequence %d has no payload", e.EventID, e.Seq)
		}
		data, err := json.Marshal(e.Data)
		if err != nil {
			return nil, fmt.Errorf("encode event %d: %w", e.Seq, err)
		}
		out.Events[i] = historyEvent{Seq: e.Seq, Envelope: e.Envelope, Data: data}
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads {"events": [...]}, decoding each payload with a
// codec of this build (events.NewCodec).
func (r *CaseHistoryResult) UnmarshalJSON(b []byte) error {
	codec, err := events.NewCodec()
	if err != nil {
		return err
	}
	var in struct {
		Events []json.RawMessage `json:"events"`
	}
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	r.Events = make([]events.Event, len(in.Events))
	for i, raw := range in.Events {
		var seq struct {
			Seq uint64 `json:"seq"`
		}
		if err := json.Unmarshal(raw, &seq); err != nil {
			return err
		}
		e, err := codec.Decode(raw)
		if err != nil {
			return fmt.Errorf("event %d of the history: %w", i, err)
		}
		e.Seq = seq.Seq
		r.Events[i] = e
	}
	return nil
}

// cursorKind tells the lists whose cursors a cursor is.
type cursorKind string

const (
	cursorCases cursorKind = "c"
	cursorDue   cursorKind = "d"
)

// pageCursor is the content of an opaque page cursor: base64url of its JSON.
type pageCursor struct {
	Kind      cursorKind       `json:"k"`
	Order     SortOrder        `json:"o,omitempty"`
	Number    uint32           `json:"n"`
	GuildID   events.Snowflake `json:"g,omitzero"`
	ExpiresAt time.Time        `json:"e,omitzero"`
}

func (c pageCursor) encode() string {
	b, _ := json.Marshal(c) // cannot fail: plain fields
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (pageCursor, error) {
	var c pageCursor
	if len(s) > 256 {
		return c, fmt.Errorf("cursor too long")
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return c, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, err
	}
	return c, nil
}

func validGuild(guild events.Snowflake) error {
	if err := guild.Validate(); err != nil {
		return invalidParam("guild_id", "%v", err)
	}
	return nil
}

func validCaseNumber(n uint32) error {
	if n == 0 {
		return invalidParam("case_number", "is required: a case number from 1")
	}
	return nil
}

func requiredSnowflake(field string, id events.Snowflake) error {
	if id == 0 {
		return invalidParam(field, "is required")
	}
	return optionalSnowflake(field, id)
}

func optionalSnowflake(field string, id events.Snowflake) error {
	if id == 0 {
		return nil
	}
	if err := id.Validate(); err != nil {
		return invalidParam(field, "%v", err)
	}
	return nil
}

func validUserPage(guild, user events.Snowflake, p *PageParams) error {
	if err := validGuild(guild); err != nil {
		return err
	}
	if err := requiredSnowflake("user_id", user); err != nil {
		return err
	}
	return p.validate()
}

func validStatus(s aggregate.Status) error {
	switch s {
	case "", aggregate.StatusActive, aggregate.StatusClosed:
		return nil
	}
	return invalidParam("status", `must be "active" or "closed"`)
}

// validText checks that s is valid UTF-8 of at most max characters without
// NUL, which PostgreSQL's text cannot hold.
func validText(field, s string, max int) error {
	if !utf8.ValidString(s) {
		return invalidParam(field, "is not valid UTF-8")
	}
	if strings.IndexByte(s, 0) >= 0 {
		return invalidParam(field, "contains a NUL character")
	}
	if n := utf8.RuneCountInString(s); n > max {
		return invalidParam(field, "is %d characters, at most %d", n, max)
	}
	return nil
}

func utcDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}
