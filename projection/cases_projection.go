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

// touched is a case a batch changes, with what it was before the batch.
type touched struct {
	state *aggregate.Case
	// stored reports that the case has a row already; a case the batch
	// opens has none.
	stored bool
	before contribution
	// rule is what the restriction rule read of the case before the batch.
	rule ruleInputs
	// history is the reason history as its row holds it, when the batch
	// neither amends the reason nor redacts: then state.ReasonHistory is
	// not read (nil) and the row keeps these bytes.
	history []byte
}

// ruleInputs are the fields of a case that the restriction rule and the
// restrictions table read: a change to any of them may change the user's
// restrictions, a change to anything else (a reason, a note, a mod-log
// link) cannot.
type ruleInputs struct {
	exists, deleted, expiryProcessed bool
	status                           aggregate.Status
	expiresAt                        time.Time
}

func ruleInputsOf(c *aggregate.Case) ruleInputs {
	r := ruleInputs{exists: c.Exists(), deleted: c.Deleted, expiryProcessed: c.ExpiryProcessed, status: c.Status}
	if c.ExpiresAt != nil {
		r.expiresAt = *c.ExpiresAt
	}
	return r
}

// casesBatch is what one batch touches, in the order of first touch. It
// lives for one batch only, so a projector's memory is bounded by its
// batch size.
type casesBatch struct {
	keys  []caseKey
	cases map[caseKey]*touched
}

// Apply folds the events into the cases they belong to, with the same
// aggregate.Case.Apply the command side uses, and writes the rows: cases,
// the audit log, notes, redactions, statistics and restrictions. Each case
// is read at most once (only when the batch does not open it) and written
// once; new cases are copied into the table, changed ones staged with COPY
// and updated with one statement.
func (p *CasesProjection) Apply(ctx context.Context, tx pgx.Tx, evs []events.Event) error {
	return p.apply(ctx, tx, evs, false)
}

// ApplyBulk applies events to a generation being built in bulk: it writes
// cases, the audit log and notes, and leaves redactions, statistics and
// restrictions to FinishBulk.
func (p *CasesProjection) ApplyBulk(ctx context.Context, tx pgx.Tx, evs []events.Event) error {
	return p.apply(ctx, tx, evs, true)
}

func (p *CasesProjection) apply(ctx context.Context, tx pgx.Tx, evs []events.Event, bulk bool) error {
	if len(evs) == 0 {
		return nil
	}
	b := casesBatch{cases: make(map[caseKey]*touched, len(evs))}
	var load []caseKey
	histories := map[caseKey]bool{} // loaded cases whose reason history the batch changes
	for _, e := range evs {
		k := caseKey{e.GuildID, e.CaseNumber}
		if b.cases[k] == nil {
			// A case whose first event here opens it has no row: the
			// stream opens a case once (if it had one, the event is bad,
			// and the insert of its row fails on the primary key).
			b.cases[k] = &touched{state: &aggregate.Case{}}
			b.keys = append(b.keys, k)
			if !e.Event.Creates() {
				load = append(load, k)
			}
		}
		if e.Event == events.NameCaseReasonAmended || e.Event == events.NameCaseRedacted {
			histories[k] = true
		}
	}
	if err := loadCases(ctx, tx, load, b.cases, histories); err != nil {
		return err
	}
	var (
		notes      *copyBuffer
		redactions []events.Event
	)
	for _, e := range evs {
		t := b.cases[caseKey{e.GuildID, e.CaseNumber}]
		if err := t.state.Apply(e); err != nil {
			return fmt.Errorf("apply %s at sequence %d to case %d of guild %d: %w", e.Event, e.Seq, e.CaseNumber, e.GuildID, err)
		}
		switch d := e.Data.(type) {
		case events.CaseNoteAdded:
			if notes == nil {
				notes = newCopyBuffer(8, 64, 256)
			}
			notes.row()
			notes.int8(int64(e.GuildID))
			notes.int8(int64(e.CaseNumber))
			notes.uuid(d.NoteID)
			notes.int8(int64(d.AuthorID))
			notes.text(d.Text)
			notes.textArray(d.EvidenceURLs)
			notes.timestamptz(e.OccurredAt)
			notes.int8(int64(e.Seq))
		case events.CaseRedacted:
			if !bulk {
				redactions = append(redactions, e)
			}
		}
	}
	if err := copyEvents(ctx, tx, evs); err != nil {
		return err
	}
	if notes != nil {
		if err := notes.copyTo(ctx, tx, sqlCopyNotes); err != nil {
			return fmt.Errorf("insert notes: %w", err)
		}
	}
	staged, err := writeCases(ctx, tx, &b)
	if err != nil {
		return err
	}
	if bulk {
		if staged {
			if _, err := tx.Exec(ctx, sqlUpdateCases); err != nil {
				return fmt.Errorf("write cases: %w", err)
			}
		}
		return nil
	}
	// One round trip for the rest: the update of the staged cases, the
	// redactions, the statistics, and the restriction rule's reads.
	batch := &pgx.Batch{}
	if staged {
		batch.Queue(sqlUpdateCases)
	}
	for _, e := range redactions {
		batch.Queue(sqlRedactEvents, int64(e.GuildID), int64(e.CaseNumber), int64(e.Seq))
		batch.Queue(sqlRedactNotes, int64(e.GuildID), int64(e.CaseNumber), int64(e.Seq))
	}
	queueStats(batch, &b)
	users := p.restrictionUsers(&b)
	if len(users.guilds) > 0 {
		batch.Queue(sqlClearRestrictions, users.guilds, users.users)
		batch.Queue(sqlUsersCases, users.guilds, users.users)
	}
	results := tx.SendBatch(ctx, batch)
	for range batch.Len() - min(1, len(users.guilds)) {
		if _, err := results.Exec(); err != nil {
			results.Close()
			return fmt.Errorf("write cases, redactions and statistics: %w", err)
		}
	}
	var restrictions *copyBuffer
	if len(users.guilds) > 0 {
		if restrictions, err = p.restrictionRows(results, users); err != nil {
			results.Close()
			return err
		}
	}
	if err := results.Close(); err != nil {
		return fmt.Errorf("write cases, redactions and statistics: %w", err)
	}
	if restrictions == nil || restrictions.rows == 0 {
		return nil
	}
	if err := restrictions.copyTo(ctx, tx, sqlCopyRestrictions); err != nil {
		return fmt.Errorf("write restrictions: %w", err)
	}
	return nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// caseColumns are the columns of a case row that loadCases and queries
// read, in order.
const caseColumns = `guild_id, case_number, case_id, type, user_id, moderator_id, reason, status,
	expires_at, expired_at, expiry_processed, expiry_processed_at, expiry_processed_by, user_roles,
	mod_log_message_id, mod_log_channel_id, metadata, source, external_id, created_at, updated_at,
	deleted, deleted_at, redacted, reason_history, note_count, version, events`

// caseColumnsOfC is caseColumns of the table aliased c.
const caseColumnsOfC = `c.guild_id, c.case_number, c.case_id, c.type, c.user_id, c.moderator_id, c.reason, c.status,
	c.expires_at, c.expired_at, c.expiry_processed, c.expiry_processed_at, c.expiry_processed_by, c.user_roles,
	c.mod_log_message_id, c.mod_log_channel_id, c.metadata, c.source, c.external_id, c.created_at, c.updated_at,
	c.deleted, c.deleted_at, c.redacted, c.reason_history, c.note_count, c.version, c.events`

// caseRow holds one cases row as PostgreSQL types.
type caseRow struct {
	guildID, caseNumber              int64
	caseID                           [16]byte // scanned as bytes: see copyEvents
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
		GuildID: events.Snowflake(r.guildID), CaseNumber: uint32(r.caseNumber), CaseID: uuid.UUID(r.caseID), Type: r.typ,
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

// loadCases reads the rows of keys into cases (whose entries exist), and
// records what each counted and how it stood before the batch. A key
// without a row keeps its empty case. Reason histories are decoded only for
// the cases in histories; the others keep their row's bytes (touched).
func loadCases(ctx context.Context, tx pgx.Tx, keys []caseKey, cases map[caseKey]*touched, histories map[caseKey]bool) error {
	if len(keys) == 0 {
		return nil
	}
	guilds := make([]int64, len(keys))
	numbers := make([]int64, len(keys))
	for i, k := range keys {
		guilds[i], numbers[i] = int64(k.guild), int64(k.number)
	}
	rows, err := tx.Query(ctx, sqlLoadCases, guilds, numbers)
	if err != nil {
		return fmt.Errorf("load cases: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r caseRow
		if err := rows.Scan(r.scanTargets()...); err != nil {
			return fmt.Errorf("load cases: %w", err)
		}
		k := caseKey{events.Snowflake(r.guildID), uint32(r.caseNumber)}
		keep := !histories[k]
		var history []byte
		if keep {
			history, r.reasonHistory = r.reasonHistory, []byte("null")
		}
		c, err := r.toCase()
		if err != nil {
			return err
		}
		t := cases[k]
		t.state, t.stored, t.before, t.rule, t.history = c, true, contributionOf(c), ruleInputsOf(c), history
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load cases: %w", err)
	}
	return nil
}

// The COPY statements of the rows the projection writes, in the order
// copyBuffer's users write the fields.
const (
	sqlCopyEvents = `COPY case_events (seq, guild_id, case_number, case_id, event, event_id, schema_version, actor_id,
		command_id, command, correlation_id, occurred_at, data) FROM STDIN (FORMAT binary)`
	sqlCopyNotes = `COPY case_notes (guild_id, case_number, note_id, author_id, text, evidence_urls, created_at, seq)
		FROM STDIN (FORMAT binary)`
	sqlCopyCases        = `COPY cases (` + caseColumns + `) FROM STDIN (FORMAT binary)`
	sqlCopyCaseStage    = `COPY cases_stage (` + caseColumns + `) FROM STDIN (FORMAT binary)`
	sqlCopyRestrictions = `COPY restrictions (guild_id, user_id, family, case_number, type, expires_at, since)
		FROM STDIN (FORMAT binary)`
)

// copyEvents appends the events to the audit log.
func copyEvents(ctx context.Context, tx pgx.Tx, evs []events.Event) error {
	rows := newCopyBuffer(13, len(evs), 512)
	for _, e := range evs {
		data, err := json.Marshal(e.Data)
		if err != nil {
			return fmt.Errorf("encode event %d: %w", e.Seq, err)
		}
		rows.row()
		rows.int8(int64(e.Seq))
		rows.int8(int64(e.GuildID))
		rows.int8(int64(e.CaseNumber))
		rows.uuid(e.CaseID)
		rows.text(string(e.Event))
		rows.uuid(e.EventID)
		rows.int4(int32(e.SchemaVersion))
		rows.int8(int64(e.ActorID))
		rows.uuid(e.CommandID)
		rows.textOrNull(e.Command)
		rows.uuid(e.CorrelationID)
		rows.timestamptz(e.OccurredAt)
		rows.jsonb(data)
	}
	if err := rows.copyTo(ctx, tx, sqlCopyEvents); err != nil {
		return fmt.Errorf("insert events: %w", err)
	}
	return nil
}

// Cases a batch opens are copied into the table; cases it changes are
// staged with COPY and updated with one statement.
const (
	sqlLoadCases = `SELECT ` + caseColumnsOfC + ` FROM unnest($1::bigint[], $2::bigint[]) AS k(guild_id, case_number)
		JOIN cases c ON c.guild_id = k.guild_id AND c.case_number = k.case_number`
	sqlCreateCaseStage = `CREATE TEMP TABLE IF NOT EXISTS cases_stage (
		guild_id bigint, case_number bigint, case_id uuid, type text, user_id bigint, moderator_id bigint,
		reason text, status text, expires_at timestamptz, expired_at timestamptz, expiry_processed boolean,
		expiry_processed_at timestamptz, expiry_processed_by bigint, user_roles bigint[], mod_log_message_id bigint,
		mod_log_channel_id bigint, metadata jsonb, source text, external_id text, created_at timestamptz,
		updated_at timestamptz, deleted boolean, deleted_at timestamptz, redacted boolean, reason_history jsonb,
		note_count integer, version bigint, events integer) ON COMMIT DELETE ROWS`
	sqlUpdateCases = `UPDATE cases c SET
		reason = s.reason, status = s.status, expires_at = s.expires_at,
		expired_at = s.expired_at, expiry_processed = s.expiry_processed,
		expiry_processed_at = s.expiry_processed_at, expiry_processed_by = s.expiry_processed_by,
		user_roles = s.user_roles, mod_log_message_id = s.mod_log_message_id,
		mod_log_channel_id = s.mod_log_channel_id, metadata = s.metadata,
		updated_at = s.updated_at, deleted = s.deleted, deleted_at = s.deleted_at,
		redacted = s.redacted, reason_history = s.reason_history,
		note_count = s.note_count, version = s.version, events = s.events
		FROM cases_stage s WHERE c.guild_id = s.guild_id AND c.case_number = s.case_number`
)

// writeCases copies the batch's new cases into the table and its changed
// ones into the staging table; staged reports that sqlUpdateCases must run.
func writeCases(ctx context.Context, tx pgx.Tx, b *casesBatch) (staged bool, err error) {
	var fresh, changed *copyBuffer
	for _, k := range b.keys {
		t := b.cases[k]
		buf := &fresh
		if t.stored {
			buf = &changed
		}
		if *buf == nil {
			*buf = newCopyBuffer(28, len(b.keys), 640)
		}
		if err := writeCaseRow(*buf, t); err != nil {
			return false, err
		}
	}
	if fresh != nil {
		if err := fresh.copyTo(ctx, tx, sqlCopyCases); err != nil {
			return false, fmt.Errorf("insert cases: %w", err)
		}
	}
	if changed == nil {
		return false, nil
	}
	if _, err := tx.Exec(ctx, sqlCreateCaseStage); err != nil {
		return false, fmt.Errorf("stage cases: %w", err)
	}
	if err := changed.copyTo(ctx, tx, sqlCopyCaseStage); err != nil {
		return false, fmt.Errorf("stage cases: %w", err)
	}
	return true, nil
}

// writeCaseRow writes a touched case's row, in caseColumns order.
func writeCaseRow(w *copyBuffer, t *touched) error {
	c := t.state
	history := t.history
	if history == nil {
		var err error
		if history, err = json.Marshal(nonNil(c.ReasonHistory)); err != nil {
			return fmt.Errorf("case %d of guild %d: reason history: %w", c.CaseNumber, c.GuildID, err)
		}
	}
	w.row()
	w.int8(int64(c.GuildID))
	w.int8(int64(c.CaseNumber))
	w.uuid(c.CaseID)
	w.text(c.Type)
	w.int8(int64(c.UserID))
	w.int8(int64(c.ModeratorID))
	w.text(c.Reason)
	w.text(string(c.Status))
	w.timestamptzOrNull(c.ExpiresAt)
	w.timestamptzOrNull(c.ExpiredAt)
	w.bool(c.ExpiryProcessed)
	w.timestamptzOrNull(c.ExpiryProcessedAt)
	w.int8OrNull(int64(c.ExpiryProcessedBy))
	int8Array(w, c.UserRoles)
	w.int8OrNull(int64(c.ModLogMessageID))
	w.int8OrNull(int64(c.ModLogChannelID))
	if c.Metadata == nil {
		w.null() // refused by the column, as it should be
	} else {
		w.jsonb(c.Metadata)
	}
	w.text(c.Source)
	w.textOrNull(c.ExternalID)
	w.timestamptz(c.CreatedAt)
	w.timestamptz(c.UpdatedAt)
	w.bool(c.Deleted)
	w.timestamptzOrNull(c.DeletedAt)
	w.bool(c.Redacted)
	w.jsonb(history)
	w.int4(int32(c.NoteCount))
	w.int8(int64(c.Version))
	w.int4(int32(c.Events))
	return nil
}

// Redaction blanks the personal text of a case's earlier events and notes.
// A bulk load blanks them all at the end, each case's up to its last
// redaction: the same rows as redaction by redaction.
const (
	sqlRedactEvents = `UPDATE case_events
		SET data = data - 'reason' - 'text' - 'evidence_urls' - 'metadata' - 'user_roles'
		WHERE guild_id = $1 AND case_number = $2 AND seq < $3 AND event <> 'redacted'`
	sqlRedactNotes = `UPDATE case_notes SET text = '', evidence_urls = '{}'
		WHERE guild_id = $1 AND case_number = $2 AND seq < $3`
	sqlRedactedCases = `SELECT guild_id, case_number, max(seq) AS seq FROM case_events
		WHERE event = 'redacted' GROUP BY guild_id, case_number`
	sqlRedactEventsBulk = `UPDATE case_events e
		SET data = e.data - 'reason' - 'text' - 'evidence_urls' - 'metadata' - 'user_roles'
		FROM (` + sqlRedactedCases + `) r
		WHERE e.guild_id = r.guild_id AND e.case_number = r.case_number AND e.seq < r.seq AND e.event <> 'redacted'`
	sqlRedactNotesBulk = `UPDATE case_notes n SET text = '', evidence_urls = '{}'
		FROM (` + sqlRedactedCases + `) r
		WHERE n.guild_id = r.guild_id AND n.case_number = r.case_number AND n.seq < r.seq`
)
