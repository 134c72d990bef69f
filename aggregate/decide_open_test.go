package aggregate_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/events"
)

// expiryNever lists every built-in type that cannot expire.
var expiryNever = []string{"BAN", "HACKBAN", "KICK", "WARN", "NOTE", "UNBAN", "UNTIMEOUT", "UNJAIL", "SNIPPETUNBAN", "POLLUNBAN"}

func TestDecideOpenValidation(t *testing.T) {
	t.Parallel()
	type openTest struct {
		name   string
		typ    string                              // default BAN
		change func(*events.CaseFields)            // applied to a valid OpenCase
		env    func(*aggregate.Env)                // applied to env(t0)
		field  string                              // the invalid field; "-" for valid
		check  func(*testing.T, events.CaseOpened) // for valid cases
	}
	at := func(d time.Duration) func(*events.CaseFields) {
		return func(f *events.CaseFields) { f.ExpiresAt = ptr(t0.Add(d)) }
	}
	roles := func(n int) []events.Snowflake {
		out := make([]events.Snowflake, n)
		for i := range out {
			out[i] = roleA + events.Snowflake(i)
		}
		return out
	}
	tests := []openTest{
		{name: "valid ban", field: "-"},
		{name: "unknown type", change: func(f *events.CaseFields) { f.Type = "MUTE" }, field: "type"},
		{name: "empty type", change: func(f *events.CaseFields) { f.Type = "" }, field: "type"},
		{name: "lower-case type", change: func(f *events.CaseFields) { f.Type = "ban" }, field: "type"},
		{name: "user_id zero", change: func(f *events.CaseFields) { f.UserID = 0 }, field: "user_id"},
		{name: "user_id above MaxInt64", change: func(f *events.CaseFields) { f.UserID = tooBig }, field: "user_id"},
		{name: "user_id MaxUint64", change: func(f *events.CaseFields) { f.UserID = ^events.Snowflake(0) }, field: "user_id"},
		{name: "user_id MaxInt64", change: func(f *events.CaseFields) { f.UserID = maxSnowflake }, field: "-"},
		{name: "user_id 1", change: func(f *events.CaseFields) { f.UserID = 1 }, field: "-"},
		{name: "moderator_id zero", change: func(f *events.CaseFields) { f.ModeratorID = 0 }, field: "moderator_id"},
		{name: "moderator_id above MaxInt64", change: func(f *events.CaseFields) { f.ModeratorID = tooBig }, field: "moderator_id"},
		{name: "actor_id zero defaults to the moderator", env: func(e *aggregate.Env) { e.ActorID = 0 }, field: "-"},
		{name: "actor_id above MaxInt64", env: func(e *aggregate.Env) { e.ActorID = tooBig }, field: "actor_id"},
		{name: "actor_id a bot", env: func(e *aggregate.Env) { e.ActorID = botID }, field: "-"},
		{name: "empty reason", change: func(f *events.CaseFields) { f.Reason = "" }, field: "-"},
		{name: "reason 2000 ASCII", change: func(f *events.CaseFields) { f.Reason = runes('a', 2000) }, field: "-"},
		{name: "reason 2001 ASCII", change: func(f *events.CaseFields) { f.Reason = runes('a', 2001) }, field: "reason"},
		{name: "reason 2000 two-byte runes", change: func(f *events.CaseFields) { f.Reason = runes('é', 2000) }, field: "-"},
		{name: "reason 2001 two-byte runes", change: func(f *events.CaseFields) { f.Reason = runes('é', 2001) }, field: "reason"},
		{name: "reason 2000 four-byte runes", change: func(f *events.CaseFields) { f.Reason = runes('🔨', 2000) }, field: "-"},
		{name: "reason 2001 four-byte runes", change: func(f *events.CaseFields) { f.Reason = runes('🔨', 2001) }, field: "reason"},
		{name: "reason with NUL", change: func(f *events.CaseFields) { f.Reason = "spam\x00" }, field: "reason"},
		{name: "reason invalid UTF-8", change: func(f *events.CaseFields) { f.Reason = "spam \xff\xfe" }, field: "reason"},
		{name: "reason truncated UTF-8", change: func(f *events.CaseFields) { f.Reason = "\xe2\x82" }, field: "reason"},
		{name: "tempban without expiry", typ: "TEMPBAN", change: func(f *events.CaseFields) { f.ExpiresAt = nil }, field: "expires_at"},
		{name: "timeout without expiry", typ: "TIMEOUT", change: func(f *events.CaseFields) { f.ExpiresAt = nil }, field: "expires_at"},
		{name: "tempban expiry in the past", typ: "TEMPBAN", change: at(-time.Second), field: "expires_at"},
		{name: "tempban expiry equal to now", typ: "TEMPBAN", change: at(0), field: "expires_at"},
		{name: "tempban expiry 1µs ahead (the stored precision)", typ: "TEMPBAN", change: at(time.Microsecond), field: "-"},
		{name: "tempban expiry in a year", typ: "TEMPBAN", change: at(365 * 24 * time.Hour), field: "-"},
		{name: "tempban expiry zero time", typ: "TEMPBAN", change: func(f *events.CaseFields) { f.ExpiresAt = &time.Time{} }, field: "expires_at"},
		{name: "timeout 28 days", typ: "TIMEOUT", change: at(aggregate.MaxTimeout), field: "-"},
		{name: "timeout 28 days + 1s", typ: "TIMEOUT", change: at(aggregate.MaxTimeout + time.Second), field: "expires_at"},
		{name: "timeout expiry in the past", typ: "TIMEOUT", change: at(-time.Hour), field: "expires_at"},
		{name: "jail without expiry", typ: "JAIL", field: "-"},
		{name: "jail with expiry", typ: "JAIL", change: at(time.Hour), field: "-"},
		{name: "jail with expiry in the past", typ: "JAIL", change: at(-time.Hour), field: "expires_at"},
		{name: "snippetban with and without", typ: "SNIPPETBAN", change: at(time.Hour), field: "-"},
		{name: "pollban without expiry", typ: "POLLBAN", field: "-"},
		{name: "expiry normalised to UTC", typ: "TEMPBAN", change: func(f *events.CaseFields) { f.ExpiresAt = ptr(t0.Add(time.Hour).In(cet)) }, field: "-",
			check: func(t *testing.T, p events.CaseOpened) {
				if p.ExpiresAt.Location() != time.UTC || !p.ExpiresAt.Equal(t0.Add(time.Hour)) {
					t.Fatalf("expires_at = %v, want %v in UTC", p.ExpiresAt, t0.Add(time.Hour))
				}
			}},
		{name: "metadata array", change: func(f *events.CaseFields) { f.Metadata = json.RawMessage(`[1,2]`) }, field: "metadata"},
		{name: "metadata string", change: func(f *events.CaseFields) { f.Metadata = json.RawMessage(`"x"`) }, field: "metadata"},
		{name: "metadata number", change: func(f *events.CaseFields) { f.Metadata = json.RawMessage(`42`) }, field: "metadata"},
		{name: "metadata null", change: func(f *events.CaseFields) { f.Metadata = json.RawMessage(`null`) }, field: "metadata"},
		{name: "metadata invalid JSON", change: func(f *events.CaseFields) { f.Metadata = json.RawMessage(`{"a":`) }, field: "metadata"},
		{name: "metadata two values", change: func(f *events.CaseFields) { f.Metadata = json.RawMessage(`{} {}`) }, field: "metadata"},
		{name: "metadata empty bytes", change: func(f *events.CaseFields) { f.Metadata = json.RawMessage{} }, field: "metadata"},
		{name: "metadata invalid UTF-8", change: func(f *events.CaseFields) { f.Metadata = json.RawMessage("{\"a\":\"\xff\"}") }, field: "metadata"},
		{name: "metadata NUL escape", change: func(f *events.CaseFields) { f.Metadata = json.RawMessage(`{"a":"x\u0000y"}`) }, field: "metadata"},
		{name: "metadata escaped backslash before u0000", change: func(f *events.CaseFields) { f.Metadata = json.RawMessage(`{"path":"C:\\u0000x"}`) }, field: "-"},
		{name: "metadata NUL escape after an escaped backslash", change: func(f *events.CaseFields) { f.Metadata = json.RawMessage(`{"a":"\\\u0000"}`) }, field: "metadata"},
		{name: "metadata NUL escape in a key", change: func(f *events.CaseFields) { f.Metadata = json.RawMessage(`{"\u0000":1}`) }, field: "metadata"},
		{name: "metadata other escapes", change: func(f *events.CaseFields) { f.Metadata = json.RawMessage(`{"a":"\u0001\u00e9\n\"\\"}`) }, field: "-"},
		{name: "metadata exactly 8 KiB", change: func(f *events.CaseFields) { f.Metadata = metadataOfSize(8 << 10) }, field: "-"},
		{name: "metadata 8 KiB + 1", change: func(f *events.CaseFields) { f.Metadata = metadataOfSize(8<<10 + 1) }, field: "metadata"},
		{name: "metadata larger than 8 KiB before compaction", change: func(f *events.CaseFields) {
			f.Metadata = json.RawMessage(`{"a":1,` + strings.Repeat(" ", 9000) + `"b":2}`)
		}, field: "-", check: func(t *testing.T, p events.CaseOpened) {
			if string(p.Metadata) != `{"a":1,"b":2}` {
				t.Fatalf("metadata = %s, want it compacted", p.Metadata)
			}
		}},
		{name: "metadata far larger than 8 KiB before compaction", change: func(f *events.CaseFields) {
			f.Metadata = json.RawMessage(`{` + strings.Repeat(" ", 20000) + `}`)
		}, field: "metadata"},
		{name: "metadata compacted", change: func(f *events.CaseFields) {
			f.Metadata = json.RawMessage("\n { \"channel\" : \"general\",\n\t\"count\": [1, 2] }\n")
		}, field: "-", check: func(t *testing.T, p events.CaseOpened) {
			if string(p.Metadata) != `{"channel":"general","count":[1,2]}` {
				t.Fatalf("metadata = %s, want it compacted", p.Metadata)
			}
		}},
		{name: "user_roles 250", change: func(f *events.CaseFields) { f.UserRoles = roles(250) }, field: "-"},
		{name: "user_roles 251", change: func(f *events.CaseFields) { f.UserRoles = roles(251) }, field: "user_roles"},
		{name: "user_roles with zero", change: func(f *events.CaseFields) { f.UserRoles = []events.Snowflake{roleA, 0} }, field: "user_roles[1]"},
		{name: "user_roles above MaxInt64", change: func(f *events.CaseFields) { f.UserRoles = []events.Snowflake{tooBig} }, field: "user_roles[0]"},
		{name: "source empty becomes command", field: "-", check: func(t *testing.T, p events.CaseOpened) {
			if p.Source != aggregate.SourceCommand {
				t.Fatalf("source = %q, want command", p.Source)
			}
		}},
		{name: "source command", change: func(f *events.CaseFields) { f.Source = "command" }, field: "-"},
		{name: "source audit_log", change: func(f *events.CaseFields) { f.Source = "audit_log" }, field: "-"},
		{name: "source automod", change: func(f *events.CaseFields) { f.Source = "automod" }, field: "-"},
		{name: "source import", change: func(f *events.CaseFields) { f.Source = "import" }, field: "-"},
		{name: "source upper case", change: func(f *events.CaseFields) { f.Source = "COMMAND" }, field: "source"},
		{name: "source unknown", change: func(f *events.CaseFields) { f.Source = "webhook" }, field: "source"},
		{name: "external_id 200 bytes", change: func(f *events.CaseFields) { f.ExternalID = runes('1', 200) }, field: "-"},
		{name: "external_id 201 bytes", change: func(f *events.CaseFields) { f.ExternalID = runes('1', 201) }, field: "external_id"},
		{name: "external_id 67 three-byte runes is 201 bytes", change: func(f *events.CaseFields) { f.ExternalID = runes('€', 67) }, field: "external_id"},
		{name: "external_id with NUL", change: func(f *events.CaseFields) { f.ExternalID = "a\x00" }, field: "external_id"},
		{name: "external_id invalid UTF-8", change: func(f *events.CaseFields) { f.ExternalID = "\xc0" }, field: "external_id"},
	}
	for _, typ := range expiryNever {
		tests = append(tests, openTest{name: "expiry on " + typ, typ: typ, change: at(time.Hour), field: "expires_at"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			typ := tt.typ
			if typ == "" {
				typ = "BAN"
			}
			cmd := openCmd(typ)
			if tt.change != nil {
				tt.change(&cmd.CaseFields)
			}
			e := env(t0)
			if tt.env != nil {
				tt.env(&e)
			}
			before := cmd.CaseFields
			for _, c := range []*aggregate.Case{nil, {}} {
				ps, err := aggregate.Decide(e, c, cmd)
				if tt.field != "-" {
					wantField(t, err, tt.field)
					if ps != nil {
						t.Fatalf("got payloads %v with the error", names(ps))
					}
					continue
				}
				if err != nil {
					t.Fatalf("Decide: %v", err)
				}
				if len(ps) != 1 {
					t.Fatalf("got %d payloads, want 1", len(ps))
				}
				p, ok := ps[0].(events.CaseOpened)
				if !ok {
					t.Fatalf("payload is %T, want CaseOpened", ps[0])
				}
				if p.Type != typ || p.UserID != cmd.UserID || p.ModeratorID != cmd.ModeratorID || p.Reason != cmd.Reason {
					t.Fatalf("payload %+v does not carry the command's fields %+v", p, cmd.CaseFields)
				}
				if tt.check != nil {
					tt.check(t, p)
				}
				// The payload folds.
				l := newLedger(t)
				l.apply(e, ps)
			}
			if cmd.CaseFields.Source != before.Source || cmd.CaseFields.ExpiresAt != before.ExpiresAt {
				t.Fatal("Decide changed the caller's command")
			}
		})
	}
}

func TestDecideOpenOnExistingCase(t *testing.T) {
	t.Parallel()
	l := opened(t, openCmd("BAN"))
	before := l.state.Clone()
	_, err := aggregate.Decide(env(t0), l.state, openCmd("WARN"))
	if !errors.Is(err, aggregate.ErrConflict) {
		t.Fatalf("got %v, want ErrConflict", err)
	}
	_, err = aggregate.Decide(env(t0), l.state, importCmd("BAN"))
	if !errors.Is(err, aggregate.ErrConflict) {
		t.Fatalf("import over a case: got %v, want ErrConflict", err)
	}
	sameState(t, l.state, before)
	// Even a deleted case keeps its number: opening over it is a conflict.
	l.must(env(t0), aggregate.DeleteCase{})
	if _, err := aggregate.Decide(env(t0), l.state, openCmd("BAN")); !errors.Is(err, aggregate.ErrConflict) {
		t.Fatalf("open over a deleted case: got %v, want ErrConflict", err)
	}
}

func TestDecideOpenCustomType(t *testing.T) {
	t.Parallel()
	reg, err := aggregate.NewRegistry(
		aggregate.TypeSpec{Name: "MUTE", Restricts: "mute", Expiry: aggregate.ExpiryRequired, MaxDuration: time.Hour},
		aggregate.TypeSpec{Name: "PRAISE"},
	)
	if err != nil {
		t.Fatal(err)
	}
	e := env(t0)
	e.Registry = reg
	mute := openCmd("MUTE")
	if _, err := aggregate.Decide(e, nil, mute); err == nil {
		t.Fatal("MUTE without its required expiry was accepted")
	} else {
		wantField(t, err, "expires_at")
	}
	mute.ExpiresAt = ptr(t0.Add(time.Hour))
	if _, err := aggregate.Decide(e, nil, mute); err != nil {
		t.Fatalf("MUTE for its max duration: %v", err)
	}
	mute.ExpiresAt = ptr(t0.Add(time.Hour + time.Second))
	_, err = aggregate.Decide(e, nil, mute)
	wantField(t, err, "expires_at")
	if _, err := aggregate.Decide(e, nil, openCmd("PRAISE")); err != nil {
		t.Fatalf("PRAISE: %v", err)
	}
	// Built-in types stay accepted beside custom ones.
	if _, err := aggregate.Decide(e, nil, openCmd("BAN")); err != nil {
		t.Fatalf("BAN with a custom registry: %v", err)
	}
	// The default registry does not know them.
	_, err = aggregate.Decide(env(t0), nil, openCmd("PRAISE"))
	wantField(t, err, "type")
}

// importCmd returns a valid ImportCase of type typ, created a day before t0.
func importCmd(typ string) aggregate.ImportCase {
	o := openCmd(typ)
	if o.ExpiresAt != nil {
		o.ExpiresAt = ptr(t0.Add(-23 * time.Hour))
	}
	return aggregate.ImportCase{CaseFields: o.CaseFields, CaseNumber: 7, CreatedAt: t0.Add(-24 * time.Hour), ImportedFrom: "tux"}
}

func TestDecideImportValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		typ    string
		change func(*aggregate.ImportCase)
		field  string // "-" for valid
	}{
		{name: "valid ban", typ: "BAN", field: "-"},
		{name: "valid tempban with a passed expiry", typ: "TEMPBAN", field: "-"},
		{name: "case number zero", typ: "BAN", change: func(c *aggregate.ImportCase) { c.CaseNumber = 0 }, field: "case_number"},
		{name: "case number max", typ: "BAN", change: func(c *aggregate.ImportCase) { c.CaseNumber = ^uint32(0) }, field: "-"},
		{name: "created_at zero", typ: "BAN", change: func(c *aggregate.ImportCase) { c.CreatedAt = time.Time{} }, field: "created_at"},
		{name: "created_at in the future", typ: "BAN", change: func(c *aggregate.ImportCase) { c.CreatedAt = t0.Add(time.Second) }, field: "created_at"},
		{name: "created_at now", typ: "BAN", change: func(c *aggregate.ImportCase) { c.CreatedAt = t0 }, field: "-"},
		{name: "created_at years ago", typ: "BAN", change: func(c *aggregate.ImportCase) { c.CreatedAt = t0.AddDate(-6, 0, 0) }, field: "-"},
		{name: "tempban without expiry", typ: "TEMPBAN", change: func(c *aggregate.ImportCase) { c.ExpiresAt = nil }, field: "expires_at"},
		{name: "expiry on a ban", typ: "BAN", change: func(c *aggregate.ImportCase) { c.ExpiresAt = ptr(t0.Add(time.Hour)) }, field: "expires_at"},
		{name: "tempban expiring in the future", typ: "TEMPBAN", change: func(c *aggregate.ImportCase) { c.ExpiresAt = ptr(t0.Add(time.Hour)) }, field: "-"},
		{name: "timeout of 28 days from creation", typ: "TIMEOUT", change: func(c *aggregate.ImportCase) { c.ExpiresAt = ptr(c.CreatedAt.Add(aggregate.MaxTimeout)) }, field: "-"},
		{name: "timeout of 28 days + 1s from creation", typ: "TIMEOUT", change: func(c *aggregate.ImportCase) {
			c.ExpiresAt = ptr(c.CreatedAt.Add(aggregate.MaxTimeout + time.Second))
		}, field: "expires_at"},
		{name: "bad user", typ: "BAN", change: func(c *aggregate.ImportCase) { c.UserID = 0 }, field: "user_id"},
		{name: "unknown type", typ: "BAN", change: func(c *aggregate.ImportCase) { c.Type = "LEGACY" }, field: "type"},
		{name: "reason 2001", typ: "BAN", change: func(c *aggregate.ImportCase) { c.Reason = runes('ß', 2001) }, field: "reason"},
		{name: "mod log message", typ: "BAN", change: func(c *aggregate.ImportCase) { c.ModLogMessageID = messageID }, field: "-"},
		{name: "mod log message above MaxInt64", typ: "BAN", change: func(c *aggregate.ImportCase) { c.ModLogMessageID = tooBig }, field: "mod_log_message_id"},
		{name: "imported_from 100", typ: "BAN", change: func(c *aggregate.ImportCase) { c.ImportedFrom = runes('x', 100) }, field: "-"},
		{name: "imported_from 101", typ: "BAN", change: func(c *aggregate.ImportCase) { c.ImportedFrom = runes('x', 101) }, field: "imported_from"},
		{name: "imported_from NUL", typ: "BAN", change: func(c *aggregate.ImportCase) { c.ImportedFrom = "\x00" }, field: "imported_from"},
		{name: "source audit_log kept", typ: "BAN", change: func(c *aggregate.ImportCase) { c.Source = "audit_log" }, field: "-"},
		{name: "source unknown", typ: "BAN", change: func(c *aggregate.ImportCase) { c.Source = "csv" }, field: "source"},
		{name: "expiry at creation", typ: "TEMPBAN", change: func(c *aggregate.ImportCase) { c.ExpiresAt = ptr(c.CreatedAt) }, field: "expires_at"},
		{name: "expiry before creation", typ: "TEMPBAN", change: func(c *aggregate.ImportCase) { c.ExpiresAt = ptr(c.CreatedAt.Add(-time.Hour)) }, field: "expires_at"},
		{name: "expiry 1µs after creation", typ: "JAIL", change: func(c *aggregate.ImportCase) { c.ExpiresAt = ptr(c.CreatedAt.Add(time.Microsecond)) }, field: "-"},
		{name: "processed without an expiry", typ: "BAN", change: func(c *aggregate.ImportCase) { c.ExpiryProcessed = true }, field: "expiry_processed"},
		{name: "processed jail without an expiry", typ: "JAIL", change: func(c *aggregate.ImportCase) { c.ExpiryProcessed = true }, field: "expiry_processed"},
		{name: "closed ban", typ: "BAN", change: func(c *aggregate.ImportCase) { c.Closed = true }, field: "-"},
		{name: "closed and processed", typ: "TEMPBAN", change: func(c *aggregate.ImportCase) { c.Closed, c.ExpiryProcessed = true, true }, field: "-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cmd := importCmd(tt.typ)
			if tt.change != nil {
				tt.change(&cmd)
			}
			ps, err := aggregate.Decide(env(t0), nil, cmd)
			if tt.field != "-" {
				wantField(t, err, tt.field)
				return
			}
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			if len(ps) != 1 {
				t.Fatalf("got %d payloads, want 1", len(ps))
			}
			p, ok := ps[0].(events.CaseImported)
			if !ok {
				t.Fatalf("payload is %T, want CaseImported", ps[0])
			}
			if !p.CreatedAt.Equal(cmd.CreatedAt) || p.Closed != cmd.Closed || p.ExpiryProcessed != cmd.ExpiryProcessed ||
				p.ModLogMessageID != cmd.ModLogMessageID || p.ImportedFrom != cmd.ImportedFrom {
				t.Fatalf("payload %+v does not carry the command %+v", p, cmd)
			}
			wantSource := cmd.Source
			if wantSource == "" {
				wantSource = aggregate.SourceImport
			}
			if p.Source != wantSource {
				t.Fatalf("source = %q, want %q", p.Source, wantSource)
			}
			l := newLedger(t)
			l.number = cmd.CaseNumber
			l.apply(env(t0), ps)
		})
	}
}

// TestImportFold checks how an imported case folds: its own number and
// creation time, and its closed and processed flags.
func TestImportFold(t *testing.T) {
	t.Parallel()
	created := time.Date(2022, 11, 5, 8, 30, 0, 0, cet)
	tests := []struct {
		name            string
		closed          bool
		processed       bool
		wantStatus      aggregate.Status
		wantRestricting bool
	}{
		{"active", false, false, aggregate.StatusActive, true},
		{"closed", true, false, aggregate.StatusClosed, false},
		{"processed", false, true, aggregate.StatusActive, false},
		{"closed and processed", true, true, aggregate.StatusClosed, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cmd := importCmd("TEMPBAN")
			cmd.CaseNumber = 311
			cmd.CreatedAt = created
			cmd.ExpiresAt = ptr(created.Add(7 * 24 * time.Hour))
			cmd.Closed, cmd.ExpiryProcessed = tt.closed, tt.processed
			cmd.ModLogMessageID = messageID
			l := newLedger(t)
			l.number = 311
			e := aggregate.Env{Now: t0, ActorID: botID}
			l.must(e, cmd)
			c := l.state
			if c.CaseNumber != 311 || c.Type != "TEMPBAN" || c.UserID != userID || c.ModeratorID != moderatorID {
				t.Fatalf("imported case %+v", c)
			}
			if !c.CreatedAt.Equal(created) || c.CreatedAt.Location() != time.UTC || !c.UpdatedAt.Equal(created) {
				t.Fatalf("created_at %v updated_at %v, want both %v in UTC", c.CreatedAt, c.UpdatedAt, created)
			}
			if c.Status != tt.wantStatus {
				t.Fatalf("status = %s, want %s", c.Status, tt.wantStatus)
			}
			if c.ExpiryProcessed != tt.processed {
				t.Fatalf("expiry_processed = %v, want %v", c.ExpiryProcessed, tt.processed)
			}
			if tt.processed && (c.ExpiryProcessedAt == nil || !c.ExpiryProcessedAt.Equal(t0) || c.ExpiryProcessedBy != botID) {
				t.Fatalf("expiry processed at %v by %d, want at the import (%v) by the importer", c.ExpiryProcessedAt, c.ExpiryProcessedBy, t0)
			}
			if !tt.processed && (c.ExpiryProcessedAt != nil || c.ExpiryProcessedBy != 0) {
				t.Fatal("unprocessed import has a processing time or actor")
			}
			if c.Source != aggregate.SourceImport || c.ModLogMessageID != messageID {
				t.Fatalf("source %q mod log %d", c.Source, c.ModLogMessageID)
			}
			if got := aggregate.Restriction(nil, aggregate.FamilyBan, []*aggregate.Case{c}) != nil; got != tt.wantRestricting {
				t.Fatalf("restricting = %v, want %v", got, tt.wantRestricting)
			}
			if len(c.ReasonHistory) != 1 || !c.ReasonHistory[0].ChangedAt.Equal(created) {
				t.Fatalf("reason history %+v, want one entry at creation", c.ReasonHistory)
			}
			// A processed import cannot be processed again; an unprocessed
			// one whose expiry passed can.
			ps, err := aggregate.Decide(env(t0), c, aggregate.MarkExpiryProcessed{})
			if tt.processed {
				wantNoop(t, ps, err)
			} else if err != nil || len(ps) != 1 {
				t.Fatalf("MarkExpiryProcessed after a passed imported expiry: %v %v", names(ps), err)
			}
		})
	}
}
