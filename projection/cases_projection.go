package projection

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/events"
)

// CasesName is the name of the projection that keeps every read model of
// cases: cases, case_events, case_notes, restrictions and statistics. One
// projection keeps them all so that a query sees them at one stream
// position.
const CasesName = "cases"

// CasesVersion is the code version of the cases projection. Raising it makes
// projectors rebuild the projection into a new generation and swap it in.
const CasesVersion = 1

// Projection turns case events into read-model rows. The runtime calls
// Apply inside a transaction whose search_path is the generation's schema,
// and writes the checkpoint in the same transaction.
type Projection interface {
	// Name is the projection's stable name.
	Name() string
	// Version is the projection's code version; a generation built with an
	// older one is rebuilt.
	Version() int
	// Migrations holds the tern migrations that create a generation's
	// tables; {{.schema}} is the generation's schema.
	Migrations() fs.FS
	// Tables lists the tables the control schema shows as views.
	Tables() []string
	// Apply applies events, in stream order, all with Seq set.
	Apply(ctx context.Context, tx pgx.Tx, evs []events.Event) error
}

// CasesProjection keeps the read models of cases.
type CasesProjection struct {
	registry *aggregate.Registry
}

// NewCasesProjection returns the cases projection; reg holds the case types
// (nil: the built-in ones), which the restriction rule needs.
func NewCasesProjection(reg *aggregate.Registry) *CasesProjection {
	if reg == nil {
		reg = aggregate.DefaultRegistry()
	}
	return &CasesProjection{registry: reg}
}

// Name returns "cases".
func (p *CasesProjection) Name() string { return CasesName }

// Version returns CasesVersion.
func (p *CasesProjection) Version() int { return CasesVersion }

// Migrations returns the DDL of a generation.
func (p *CasesProjection) Migrations() fs.FS {
	sub, err := fs.Sub(migrationFiles, "migrations/cases")
	if err != nil {
		panic(err) // embedded at build time
	}
	return sub
}

// Tables returns the read-model tables.
func (p *CasesProjection) Tables() []string {
	return []string{"checkpoint", "cases", "case_events", "case_notes", "restrictions",
		"stats_guild", "stats_type", "stats_user", "stats_moderator", "stats_day"}
}

// caseKey identifies a case.
type caseKey struct {
	guild  events.Snowflake
	number uint32
}

// contribution is what a case adds to the statistics.
type contribution struct{ total, active int64 }

func contributionOf(c *aggregate.Case) contribution {
	if !c.Exists() || c.Deleted {
		return contribution{}
	}
	if c.Status == aggregate.StatusActive {
		return contribution{1, 1}
	}
	return contribution{1, 0}
}

// touched is a case a batch changes, with its state before the batch.
type touched struct {
	state  *aggregate.Case
	before contribution
}

// Apply folds the events into the cases they belong to, with the same
// aggregate.Case.Apply the command side uses, and writes the rows: cases,
// the audit log, notes, redactions, statistics and restrictions.
func (p *CasesProjection) Apply(ctx context.Context, tx pgx.Tx, evs []events.Event) error {
	if len(evs) == 0 {
		return nil
	}
	var keys []caseKey
	seen := map[caseKey]bool{}
	for _, e := range evs {
		k := caseKey{e.GuildID, e.CaseNumber}
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	cases, err := loadCases(ctx, tx, keys)
	if err != nil {
		return err
	}
	var (
		notes      [][]any
		redactions []events.Event
	)
	for _, e := range evs {
		k := caseKey{e.GuildID, e.CaseNumber}
		t := cases[k]
		if err := t.state.Apply(e); err != nil {
			return fmt.Errorf("apply %s at sequence %d to case %d of guild %d: %w", e.Event, e.Seq, e.CaseNumber, e.GuildID, err)
		}
		switch d := e.Data.(type) {
		case events.CaseNoteAdded:
			notes = append(notes, []any{int64(e.GuildID), int64(e.CaseNumber), d.NoteID, int64(d.AuthorID), d.Text,
				nonNil(d.EvidenceURLs), e.OccurredAt, int64(e.Seq)})
		case events.CaseRedacted:
			redactions = append(redactions, e)
		}
	}
	if err := copyEvents(ctx, tx, evs); err != nil {
		return err
	}
	if len(notes) > 0 {
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"case_notes"},
			[]string{"guild_id", "case_number", "note_id", "author_id", "text", "evidence_urls", "created_at", "seq"},
			pgx.CopyFromRows(notes)); err != nil {
			return fmt.Errorf("insert notes: %w", err)
		}
	}
	if err := upsertCases(ctx, tx, keys, cases); err != nil {
		return err
	}
	batch := &pgx.Batch{}
	for _, e := range redactions {
		batch.Queue(sqlRedactEvents, int64(e.GuildID), int64(e.CaseNumber), int64(e.Seq))
		batch.Queue(sqlRedactNotes, int64(e.GuildID), int64(e.CaseNumber), int64(e.Seq))
	}
	queueStats(batch, keys, cases)
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("write redactions and statistics: %w", err)
	}
	return p.updateRestrictions(ctx, tx, keys, cases)
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// caseColumns are the columns loadCases reads and upsertCase writes, in
// order.
const caseColumns = `guild_id, case_number, case_id, type, user_id, moderator_id, reason, status,
	expires_at, expired_at, expiry_processed, expiry_processed_at, expiry_processed_by, user_roles,
	mod_log_message_id, mod_log_channel_id, metadata, source, external_id, created_at, updated_at,
	deleted, deleted_at, redacted, reason_history, note_count, version, events`

// caseRow holds one cases row as PostgreSQL types.
type caseRow struct {
	guildID, caseNumber              int64
	caseID                           uuid.UUID
	typ                              string
	userID, moderatorID              int64
	reason, status                   string
	expiresAt, expiredAt             *time.Time
	expiryProcessed                  bool
	expiryProcessedAt                *time.Time
	expiryProcessedBy                *int64
	userRoles                        []int64
	modLogMessageID, modLogChannelID *int64
	metadata                         []byte
	source                           string
	externalID                       *string
	createdAt, updatedAt             time.Time
	deleted                          bool
	deletedAt                        *time.Time
	redacted                         bool
	reasonHistory                    []byte
	noteCount                        int32
	version                          int64
	eventCount                       int32
}

func (r *caseRow) scanTargets() []any {
	return []any{&r.guildID, &r.caseNumber, &r.caseID, &r.typ, &r.userID, &r.moderatorID, &r.reason, &r.status,
		&r.expiresAt, &r.expiredAt, &r.expiryProcessed, &r.expiryProcessedAt, &r.expiryProcessedBy, &r.userRoles,
		&r.modLogMessageID, &r.modLogChannelID, &r.metadata, &r.source, &r.externalID, &r.createdAt, &r.updatedAt,
		&r.deleted, &r.deletedAt, &r.redacted, &r.reasonHistory, &r.noteCount, &r.version, &r.eventCount}
}

// toCase turns a row into the aggregate's state. Notes are not loaded: the
// projection only appends them, and redaction blanks them in SQL.
func (r *caseRow) toCase() (*aggregate.Case, error) {
	c := &aggregate.Case{
		GuildID: events.Snowflake(r.guildID), CaseNumber: uint32(r.caseNumber), CaseID: r.caseID, Type: r.typ,
		UserID: events.Snowflake(r.userID), ModeratorID: events.Snowflake(r.moderatorID), Reason: r.reason,
		Status: aggregate.Status(r.status), ExpiresAt: utcPtr(r.expiresAt), ExpiredAt: utcPtr(r.expiredAt),
		ExpiryProcessed: r.expiryProcessed, ExpiryProcessedAt: utcPtr(r.expiryProcessedAt),
		ExpiryProcessedBy: snowflakePtr(r.expiryProcessedBy), UserRoles: make([]events.Snowflake, len(r.userRoles)),
		ModLogMessageID: snowflakePtr(r.modLogMessageID), ModLogChannelID: snowflakePtr(r.modLogChannelID),
		Metadata: json.RawMessage(r.metadata), Source: r.source, CreatedAt: r.createdAt.UTC(), UpdatedAt: r.updatedAt.UTC(),
		Deleted: r.deleted, DeletedAt: utcPtr(r.deletedAt), Redacted: r.redacted, NoteCount: int(r.noteCount),
		Version: uint64(r.version), Events: int(r.eventCount),
	}
	for i, role := range r.userRoles {
		c.UserRoles[i] = events.Snowflake(role)
	}
	if r.externalID != nil {
		c.ExternalID = *r.externalID
	}
	if err := json.Unmarshal(r.reasonHistory, &c.ReasonHistory); err != nil {
		return nil, fmt.Errorf("case %d of guild %d: reason history: %w", r.caseNumber, r.guildID, err)
	}
	return c, nil
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func snowflakePtr(v *int64) events.Snowflake {
	if v == nil {
		return 0
	}
	return events.Snowflake(*v)
}

func int64Ptr(s events.Snowflake) *int64 {
	if s == 0 {
		return nil
	}
	v := int64(s)
	return &v
}

// loadCases reads the touched cases; a case not in the table starts empty.
func loadCases(ctx context.Context, tx pgx.Tx, keys []caseKey) (map[caseKey]*touched, error) {
	guilds := make([]int64, len(keys))
	numbers := make([]int64, len(keys))
	for i, k := range keys {
		guilds[i], numbers[i] = int64(k.guild), int64(k.number)
	}
	rows, err := tx.Query(ctx, `SELECT `+caseColumns+` FROM cases
		WHERE (guild_id, case_number) IN (SELECT * FROM unnest($1::bigint[], $2::bigint[]))`, guilds, numbers)
	if err != nil {
		return nil, fmt.Errorf("load cases: %w", err)
	}
	defer rows.Close()
	out := make(map[caseKey]*touched, len(keys))
	for rows.Next() {
		var r caseRow
		if err := rows.Scan(r.scanTargets()...); err != nil {
			return nil, fmt.Errorf("load cases: %w", err)
		}
		c, err := r.toCase()
		if err != nil {
			return nil, err
		}
		out[caseKey{c.GuildID, c.CaseNumber}] = &touched{state: c, before: contributionOf(c)}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load cases: %w", err)
	}
	for _, k := range keys {
		if out[k] == nil {
			out[k] = &touched{state: &aggregate.Case{}}
		}
	}
	return out, nil
}

// copyEvents appends the events to the audit log.
func copyEvents(ctx context.Context, tx pgx.Tx, evs []events.Event) error {
	rows := make([][]any, len(evs))
	for i, e := range evs {
		data, err := json.Marshal(e.Data)
		if err != nil {
			return fmt.Errorf("encode event %d: %w", e.Seq, err)
		}
		var cmd *string
		if e.Command != "" {
			cmd = &e.Command
		}
		rows[i] = []any{int64(e.Seq), int64(e.GuildID), int64(e.CaseNumber), e.CaseID, string(e.Event), e.EventID,
			int32(e.SchemaVersion), int64(e.ActorID), e.CommandID, cmd, e.CorrelationID, e.OccurredAt, data}
	}
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"case_events"},
		[]string{"seq", "guild_id", "case_number", "case_id", "event", "event_id", "schema_version", "actor_id",
			"command_id", "command", "correlation_id", "occurred_at", "data"},
		pgx.CopyFromRows(rows))
	if err != nil {
		return fmt.Errorf("insert events: %w", err)
	}
	return nil
}

// The cases a batch touched are staged with COPY and upserted with one
// statement.
const (
	sqlCreateCaseStage = `CREATE TEMP TABLE IF NOT EXISTS cases_stage (
		guild_id bigint, case_number bigint, case_id uuid, type text, user_id bigint, moderator_id bigint,
		reason text, status text, expires_at timestamptz, expired_at timestamptz, expiry_processed boolean,
		expiry_processed_at timestamptz, expiry_processed_by bigint, user_roles bigint[], mod_log_message_id bigint,
		mod_log_channel_id bigint, metadata jsonb, source text, external_id text, created_at timestamptz,
		updated_at timestamptz, deleted boolean, deleted_at timestamptz, redacted boolean, reason_history jsonb,
		note_count integer, version bigint, events integer) ON COMMIT DELETE ROWS`
	sqlUpsertCases = `WITH staged AS (DELETE FROM cases_stage RETURNING *)
	INSERT INTO cases (` + caseColumns + `) SELECT ` + caseColumns + ` FROM staged
	ON CONFLICT (guild_id, case_number) DO UPDATE SET
		reason = excluded.reason, status = excluded.status, expires_at = excluded.expires_at,
		expired_at = excluded.expired_at, expiry_processed = excluded.expiry_processed,
		expiry_processed_at = excluded.expiry_processed_at, expiry_processed_by = excluded.expiry_processed_by,
		user_roles = excluded.user_roles, mod_log_message_id = excluded.mod_log_message_id,
		mod_log_channel_id = excluded.mod_log_channel_id, metadata = excluded.metadata,
		updated_at = excluded.updated_at, deleted = excluded.deleted, deleted_at = excluded.deleted_at,
		redacted = excluded.redacted, reason_history = excluded.reason_history,
		note_count = excluded.note_count, version = excluded.version, events = excluded.events`
)

// caseStageColumns are the staging table's columns, in COPY order.
var caseStageColumns = []string{"guild_id", "case_number", "case_id", "type", "user_id", "moderator_id", "reason",
	"status", "expires_at", "expired_at", "expiry_processed", "expiry_processed_at", "expiry_processed_by",
	"user_roles", "mod_log_message_id", "mod_log_channel_id", "metadata", "source", "external_id", "created_at",
	"updated_at", "deleted", "deleted_at", "redacted", "reason_history", "note_count", "version", "events"}

// upsertCases writes the touched cases' rows.
func upsertCases(ctx context.Context, tx pgx.Tx, keys []caseKey, cases map[caseKey]*touched) error {
	if _, err := tx.Exec(ctx, sqlCreateCaseStage); err != nil {
		return fmt.Errorf("stage cases: %w", err)
	}
	rows := make([][]any, len(keys))
	for i, k := range keys {
		rows[i] = caseRowValues(cases[k])
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"cases_stage"}, caseStageColumns, pgx.CopyFromRows(rows)); err != nil {
		return fmt.Errorf("stage cases: %w", err)
	}
	if _, err := tx.Exec(ctx, sqlUpsertCases); err != nil {
		return fmt.Errorf("write cases: %w", err)
	}
	return nil
}

// caseRowValues returns a touched case's row, in caseStageColumns order.
func caseRowValues(t *touched) []any {
	c := t.state
	roles := make([]int64, len(c.UserRoles))
	for i, r := range c.UserRoles {
		roles[i] = int64(r)
	}
	var ext *string
	if c.ExternalID != "" {
		ext = &c.ExternalID
	}
	history, _ := json.Marshal(nonNil(c.ReasonHistory))
	return []any{int64(c.GuildID), int64(c.CaseNumber), c.CaseID, c.Type, int64(c.UserID),
		int64(c.ModeratorID), c.Reason, string(c.Status), c.ExpiresAt, c.ExpiredAt, c.ExpiryProcessed,
		c.ExpiryProcessedAt, int64Ptr(c.ExpiryProcessedBy), roles, int64Ptr(c.ModLogMessageID),
		int64Ptr(c.ModLogChannelID), json.RawMessage(c.Metadata), c.Source, ext, c.CreatedAt, c.UpdatedAt, c.Deleted,
		c.DeletedAt, c.Redacted, json.RawMessage(history), int32(c.NoteCount), int64(c.Version), int32(c.Events)}
}

// Redaction blanks the personal text of a case's earlier events and notes.
const (
	sqlRedactEvents = `UPDATE case_events
		SET data = data - 'reason' - 'text' - 'evidence_urls' - 'metadata' - 'user_roles'
		WHERE guild_id = $1 AND case_number = $2 AND seq < $3 AND event <> 'redacted'`
	sqlRedactNotes = `UPDATE case_notes SET text = '', evidence_urls = '{}'
		WHERE guild_id = $1 AND case_number = $2 AND seq < $3`
)
