package aggregate_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/events"
)

// fullHistory returns a ledger whose case has been through most events:
// open, reason, notes, link, metadata, expiry change, close, reopen, expiry,
// processing. Each step is an hour after the previous one.
func fullHistory(tb testing.TB) *ledger {
	tb.Helper()
	open := openCmd("JAIL")
	open.ExpiresAt = ptr(t0.Add(2 * time.Hour))
	open.UserRoles = []events.Snowflake{roleA, roleB}
	open.Metadata = json.RawMessage(`{"channel":"general"}`)
	open.ExternalID = "1310594711937486858"
	open.Source = aggregate.SourceAuditLog
	l := opened(tb, open)
	at := func(h int) aggregate.Env { return env(t0.Add(time.Duration(h) * time.Hour)) }
	l.must(at(1), aggregate.UpdateCase{Reason: ptr("raiding")})
	l.must(at(1), aggregate.AddNote{NoteID: noteID, Text: "see screenshot", EvidenceURLs: []string{"https://cdn.example.com/a.png"}})
	l.must(at(1), aggregate.LinkModLog{MessageID: messageID, ChannelID: channelID})
	l.must(at(1), aggregate.UpdateCase{Metadata: json.RawMessage(`{"channel":"memes"}`)})
	l.must(at(1), aggregate.UpdateCase{ExpiresAt: ptr(t0.Add(3 * time.Hour))})
	l.must(at(2), aggregate.CloseCase{Reason: "wrong user"})
	l.must(at(2), aggregate.ReopenCase{Reason: "right user after all"})
	l.must(aggregate.Env{Now: t0.Add(3 * time.Hour)}, aggregate.ExpireCase{ExpiresAt: t0.Add(3 * time.Hour)})
	l.must(aggregate.Env{Now: t0.Add(4 * time.Hour), ActorID: botID}, aggregate.MarkExpiryProcessed{})
	l.must(at(5), aggregate.AddNote{NoteID: uuid.MustParse("01936c2f-0c12-7e4a-9b37-2f5d8c1a6e05"), Text: "second note"})
	return l
}

func TestFoldFullHistory(t *testing.T) {
	t.Parallel()
	l := fullHistory(t)
	c := l.state
	if c.Events != len(l.evs) || c.Events != 11 {
		t.Fatalf("Events = %d, want %d", c.Events, len(l.evs))
	}
	if c.Version != l.evs[len(l.evs)-1].Seq {
		t.Fatalf("Version = %d, want the last Seq %d", c.Version, l.evs[len(l.evs)-1].Seq)
	}
	if c.GuildID != guildID || c.CaseNumber != 42 || c.CaseID != caseID || c.Type != "JAIL" || c.UserID != userID || c.ModeratorID != moderatorID {
		t.Fatalf("identity changed: %+v", c)
	}
	if !c.CreatedAt.Equal(t0) || !c.UpdatedAt.Equal(t0.Add(5*time.Hour)) {
		t.Fatalf("created_at %v updated_at %v, want %v and %v", c.CreatedAt, c.UpdatedAt, t0, t0.Add(5*time.Hour))
	}
	if c.Reason != "raiding" || c.Status != aggregate.StatusActive {
		t.Fatalf("reason %q status %s", c.Reason, c.Status)
	}
	wantHistory := []aggregate.ReasonChange{
		{Reason: "spamming invite links", ChangedBy: moderatorID, ChangedAt: t0},
		{Reason: "raiding", ChangedBy: moderatorID, ChangedAt: t0.Add(time.Hour)},
	}
	if !reflect.DeepEqual(c.ReasonHistory, wantHistory) {
		t.Fatalf("reason history %+v, want %+v", c.ReasonHistory, wantHistory)
	}
	if len(c.Notes) != 2 || c.Notes[0].NoteID != noteID || c.Notes[0].AuthorID != moderatorID || c.Notes[0].Text != "see screenshot" ||
		!slices.Equal(c.Notes[0].EvidenceURLs, []string{"https://cdn.example.com/a.png"}) || !c.Notes[0].CreatedAt.Equal(t0.Add(time.Hour)) ||
		c.Notes[1].Text != "second note" || c.Notes[1].EvidenceURLs != nil {
		t.Fatalf("notes %+v", c.Notes)
	}
	if c.ModLogMessageID != messageID || c.ModLogChannelID != channelID {
		t.Fatalf("mod log %d/%d", c.ModLogMessageID, c.ModLogChannelID)
	}
	if string(c.Metadata) != `{"channel":"memes"}` || !slices.Equal(c.UserRoles, []events.Snowflake{roleA, roleB}) {
		t.Fatalf("metadata %s roles %v", c.Metadata, c.UserRoles)
	}
	if c.ExpiresAt == nil || !c.ExpiresAt.Equal(t0.Add(3*time.Hour)) || c.ExpiredAt == nil || !c.ExpiredAt.Equal(t0.Add(3*time.Hour)) {
		t.Fatalf("expires_at %v expired_at %v", c.ExpiresAt, c.ExpiredAt)
	}
	if !c.ExpiryProcessed || !c.ExpiryProcessedAt.Equal(t0.Add(4*time.Hour)) || c.ExpiryProcessedBy != botID {
		t.Fatalf("processed %v at %v by %d", c.ExpiryProcessed, c.ExpiryProcessedAt, c.ExpiryProcessedBy)
	}
	if c.Source != aggregate.SourceAuditLog || c.ExternalID != "1310594711937486858" || c.Deleted || c.Redacted {
		t.Fatalf("source %q external %q deleted %v redacted %v", c.Source, c.ExternalID, c.Deleted, c.Redacted)
	}
	// Fold of all the events equals the state applied one at a time.
	folded, err := aggregate.Fold(l.evs)
	if err != nil {
		t.Fatal(err)
	}
	sameState(t, folded, c)
}

func TestFoldEmpty(t *testing.T) {
	t.Parallel()
	c, err := aggregate.Fold(nil)
	if err != nil || c == nil || c.Exists() {
		t.Fatalf("Fold(nil) = %+v, %v; want an empty case", c, err)
	}
	var nilCase *aggregate.Case
	if nilCase.Exists() {
		t.Fatal("a nil case exists")
	}
}

// TestFoldTimesInUTC checks that created_at and updated_at come from the
// events and are never naive or in another zone.
func TestFoldTimesInUTC(t *testing.T) {
	t.Parallel()
	l := newLedger(t)
	l.must(env(t0.In(cet)), openCmd("WARN"))
	l.must(env(t0.Add(time.Minute).In(cet)), aggregate.CloseCase{})
	c := l.state
	if c.CreatedAt.Location() != time.UTC || c.UpdatedAt.Location() != time.UTC {
		t.Fatalf("times not in UTC: %v %v", c.CreatedAt, c.UpdatedAt)
	}
	if !c.CreatedAt.Equal(t0) || !c.UpdatedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("created %v updated %v", c.CreatedAt, c.UpdatedAt)
	}
}

func TestApplyRejects(t *testing.T) {
	t.Parallel()
	l := opened(t, openCmd("BAN"))
	openEv := l.evs[0]
	change := l.wrap(env(t0), []events.Payload{events.CaseClosed{}})[0]

	otherNumber := change
	otherNumber.CaseNumber = 43
	otherGuild := change
	otherGuild.GuildID = guildID + 1
	noPayload := change
	noPayload.Data = nil
	type unknownPayload struct{ events.CaseClosed }
	unknown := change
	unknown.Data = unknownPayload{}
	pointer := change
	pointer.Data = &events.CaseClosed{}
	importEv := l.wrap(env(t0), []events.Payload{events.CaseImported{CaseFields: events.CaseFields{Type: "BAN"}, CreatedAt: t0}})[0]

	tests := []struct {
		name  string
		state func() *aggregate.Case
		ev    events.Event
	}{
		{"change before open", func() *aggregate.Case { return &aggregate.Case{} }, change},
		{"second open", func() *aggregate.Case { return l.state.Clone() }, openEv},
		{"import over an open case", func() *aggregate.Case { return l.state.Clone() }, importEv},
		{"event of another case number", func() *aggregate.Case { return l.state.Clone() }, otherNumber},
		{"event of another guild", func() *aggregate.Case { return l.state.Clone() }, otherGuild},
		{"no payload", func() *aggregate.Case { return l.state.Clone() }, noPayload},
		{"unknown payload type", func() *aggregate.Case { return l.state.Clone() }, unknown},
		{"pointer payload", func() *aggregate.Case { return l.state.Clone() }, pointer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := tt.state()
			before := c.Clone()
			if err := c.Apply(tt.ev); !errors.Is(err, aggregate.ErrBadEvent) {
				t.Fatalf("Apply = %v, want ErrBadEvent", err)
			}
			if tt.name != "unknown payload type" && tt.name != "pointer payload" {
				sameState(t, c, before)
			}
		})
	}
	// Fold stops at the first bad event and returns no state.
	if c, err := aggregate.Fold([]events.Event{openEv, otherNumber}); !errors.Is(err, aggregate.ErrBadEvent) || c != nil {
		t.Fatalf("Fold = %v, %v; want nil, ErrBadEvent", c, err)
	}
	if c, err := aggregate.Fold([]events.Event{change}); !errors.Is(err, aggregate.ErrBadEvent) || c != nil {
		t.Fatalf("Fold of a change alone = %v, %v; want nil, ErrBadEvent", c, err)
	}
}

// TestFoldDefaultSource checks the source of events written without one
// (by an older producer): command for an open, import for an import.
func TestFoldDefaultSource(t *testing.T) {
	t.Parallel()
	fields := events.CaseFields{Type: "BAN", UserID: userID, ModeratorID: moderatorID}
	tests := []struct {
		payload events.Payload
		want    string
	}{
		{events.CaseOpened{CaseFields: fields}, aggregate.SourceCommand},
		{events.CaseImported{CaseFields: fields, CreatedAt: t0}, aggregate.SourceImport},
		{events.CaseImported{CaseFields: events.CaseFields{Type: "BAN", Source: aggregate.SourceAuditLog}, CreatedAt: t0}, aggregate.SourceAuditLog},
	}
	for _, tt := range tests {
		l := newLedger(t)
		l.apply(env(t0), []events.Payload{tt.payload})
		if l.state.Source != tt.want {
			t.Errorf("%s without a source folds to source %q, want %q", tt.payload.EventName(), l.state.Source, tt.want)
		}
	}
}

func TestRedactionFold(t *testing.T) {
	t.Parallel()
	l := fullHistory(t)
	before := l.state.Clone()
	later := env(t0.Add(10 * time.Hour))
	if ps := l.must(later, aggregate.RedactCase{Reason: "GDPR request"}); len(ps) != 1 {
		t.Fatalf("redact gave %v", names(ps))
	}
	c := l.state
	if !c.Redacted || c.Reason != "" || string(c.Metadata) != "{}" || c.UserRoles == nil || len(c.UserRoles) != 0 {
		t.Fatalf("personal text kept: redacted %v reason %q metadata %s roles %v", c.Redacted, c.Reason, c.Metadata, c.UserRoles)
	}
	if len(c.ReasonHistory) != len(before.ReasonHistory) {
		t.Fatalf("reason history has %d entries, want %d", len(c.ReasonHistory), len(before.ReasonHistory))
	}
	for i, h := range c.ReasonHistory {
		if h.Reason != "" || h.ChangedBy != before.ReasonHistory[i].ChangedBy || !h.ChangedAt.Equal(before.ReasonHistory[i].ChangedAt) {
			t.Fatalf("reason history entry %d = %+v, want blank reason and kept author and time", i, h)
		}
	}
	if len(c.Notes) != len(before.Notes) {
		t.Fatalf("notes %d, want %d", len(c.Notes), len(before.Notes))
	}
	for i, n := range c.Notes {
		b := before.Notes[i]
		if n.Text != "" || n.EvidenceURLs != nil || n.NoteID != b.NoteID || n.AuthorID != b.AuthorID || !n.CreatedAt.Equal(b.CreatedAt) {
			t.Fatalf("note %d = %+v, want blank text and evidence, kept id, author and time", i, n)
		}
	}
	// What stays: number, type, user, moderator, times, status, expiry, link.
	if c.CaseNumber != before.CaseNumber || c.CaseID != before.CaseID || c.GuildID != before.GuildID || c.Type != before.Type ||
		c.UserID != before.UserID || c.ModeratorID != before.ModeratorID || !c.CreatedAt.Equal(before.CreatedAt) ||
		c.Status != before.Status || !c.ExpiresAt.Equal(*before.ExpiresAt) || c.ExpiryProcessed != before.ExpiryProcessed ||
		c.ModLogMessageID != before.ModLogMessageID || c.ExternalID != before.ExternalID || c.Source != before.Source {
		t.Fatalf("redaction changed what stays:\n%+v\n%+v", c, before)
	}
	if !c.UpdatedAt.Equal(later.Now) || c.Events != before.Events+1 {
		t.Fatalf("updated_at %v events %d", c.UpdatedAt, c.Events)
	}
	// Redacting again is a no-op; so is it after deletion.
	ps, err := aggregate.Decide(later, c, aggregate.RedactCase{})
	wantNoop(t, ps, err)
	l.must(later, aggregate.DeleteCase{})
	ps, err = aggregate.Decide(later, c, aggregate.RedactCase{})
	wantNoop(t, ps, err)
}

func TestClone(t *testing.T) {
	t.Parallel()
	var nilCase *aggregate.Case
	if nilCase.Clone() != nil {
		t.Fatal("Clone of nil is not nil")
	}
	for _, tc := range []struct {
		name string
		c    func() *aggregate.Case
	}{
		{"empty", func() *aggregate.Case { return &aggregate.Case{} }},
		{"just opened", func() *aggregate.Case { return opened(t, openCmd("BAN")).state }},
		{"full history", func() *aggregate.Case { return fullHistory(t).state }},
		{"deleted", func() *aggregate.Case {
			l := fullHistory(t)
			l.must(env(t0.Add(9*time.Hour)), aggregate.DeleteCase{})
			return l.state
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			orig := tc.c()
			want := tc.c()
			clone := orig.Clone()
			sameState(t, clone, orig)
			ob, _ := json.Marshal(orig)
			cb, _ := json.Marshal(clone)
			if string(ob) != string(cb) {
				t.Fatalf("JSON of the clone differs:\n%s\n%s", cb, ob)
			}
			// Change everything the clone holds, through every pointer.
			if clone.ExpiresAt != nil {
				*clone.ExpiresAt = time.Time{}
			}
			if clone.ExpiredAt != nil {
				*clone.ExpiredAt = time.Time{}
			}
			if clone.ExpiryProcessedAt != nil {
				*clone.ExpiryProcessedAt = time.Time{}
			}
			if clone.DeletedAt != nil {
				*clone.DeletedAt = time.Time{}
			}
			for i := range clone.UserRoles {
				clone.UserRoles[i] = 1
			}
			for i := range clone.Metadata {
				clone.Metadata[i] = ' '
			}
			for i := range clone.Notes {
				clone.Notes[i].Text = "changed"
				for j := range clone.Notes[i].EvidenceURLs {
					clone.Notes[i].EvidenceURLs[j] = "changed"
				}
			}
			for i := range clone.ReasonHistory {
				clone.ReasonHistory[i].Reason = "changed"
			}
			clone.Reason = "changed"
			clone.UserRoles = append(clone.UserRoles, 2)
			clone.Notes = append(clone.Notes, aggregate.Note{Text: "new"})
			// Folding more events into the clone leaves the original too.
			if clone.Exists() {
				l := newLedger(t)
				l.state = clone
				l.seq = clone.Version
				l.must(env(t0.Add(20*time.Hour)), aggregate.RedactCase{})
			}
			sameState(t, orig, want)
		})
	}
}

// TestJSONShape checks the case's JSON: lists are never null after a fold.
func TestJSONShape(t *testing.T) {
	t.Parallel()
	l := opened(t, openCmd("WARN"))
	var m map[string]any
	b, err := json.Marshal(l.state)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"user_roles", "notes", "reason_history"} {
		if _, ok := m[k].([]any); !ok {
			t.Errorf("%s = %v, want a JSON array", k, m[k])
		}
	}
	if obj, ok := m["metadata"].(map[string]any); !ok || len(obj) != 0 {
		t.Errorf("metadata = %v, want {}", m["metadata"])
	}
	if m["user_id"] != userID.String() || m["status"] != "active" {
		t.Errorf("user_id %v status %v", m["user_id"], m["status"])
	}
}
