package aggregate_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/events"
)

// changeCommands returns one valid command of every kind that changes an
// existing case.
func changeCommands() []aggregate.Command {
	return []aggregate.Command{
		aggregate.UpdateCase{Reason: ptr("new reason")},
		aggregate.CloseCase{Reason: "void"},
		aggregate.ReopenCase{Reason: "unvoid"},
		aggregate.AddNote{NoteID: noteID, Text: "note"},
		aggregate.LinkModLog{MessageID: messageID},
		aggregate.MarkExpiryProcessed{},
		aggregate.DeleteCase{Reason: "duplicate"},
		aggregate.RedactCase{Reason: "privacy request"},
		aggregate.ExpireCase{ExpiresAt: t0.Add(time.Hour)},
	}
}

// tempbanDue returns a ledger with a TEMPBAN opened at t0 expiring at
// t0+1h, and an env two hours later, when the expiry has passed.
func tempbanDue(tb testing.TB) (*ledger, aggregate.Env) {
	tb.Helper()
	cmd := openCmd("TEMPBAN")
	cmd.ExpiresAt = ptr(t0.Add(time.Hour))
	return opened(tb, cmd), env(t0.Add(2 * time.Hour))
}

func TestDecideChangeOnMissingCase(t *testing.T) {
	t.Parallel()
	for _, cmd := range changeCommands() {
		for _, c := range []*aggregate.Case{nil, {}} {
			ps, err := aggregate.Decide(env(t0), c, cmd)
			if !errors.Is(err, aggregate.ErrCaseNotFound) || ps != nil {
				t.Errorf("%s on a missing case: %v, %v; want ErrCaseNotFound", cmd.CommandName(), names(ps), err)
			}
			if errors.Is(err, aggregate.ErrInvalidArgument) || errors.Is(err, aggregate.ErrConflict) {
				t.Errorf("%s: ErrCaseNotFound is also another category: %v", cmd.CommandName(), err)
			}
		}
	}
	// Not even actor validation comes first: a missing case is not found.
	if _, err := aggregate.Decide(aggregate.Env{Now: t0}, nil, aggregate.CloseCase{}); !errors.Is(err, aggregate.ErrCaseNotFound) {
		t.Fatalf("got %v, want ErrCaseNotFound", err)
	}
}

func TestDecideOnDeletedCase(t *testing.T) {
	t.Parallel()
	for _, cmd := range changeCommands() {
		t.Run(cmd.CommandName(), func(t *testing.T) {
			t.Parallel()
			l, later := tempbanDue(t)
			l.must(env(t0.Add(time.Minute)), aggregate.DeleteCase{Reason: "mistake"})
			before := l.state.Clone()
			if cmd, ok := cmd.(aggregate.ExpireCase); ok {
				cmd.ExpiresAt = *l.state.ExpiresAt
			}
			ps, err := aggregate.Decide(later, l.state, cmd)
			switch cmd.(type) {
			case aggregate.DeleteCase, aggregate.ExpireCase:
				wantNoop(t, ps, err)
			case aggregate.RedactCase:
				if err != nil || !slices.Equal(names(ps), []events.Name{events.NameCaseRedacted}) {
					t.Fatalf("redact of a deleted case: %v, %v; want CaseRedacted", names(ps), err)
				}
				l.apply(later, ps)
				if !l.state.Redacted || !l.state.Deleted {
					t.Fatal("redacted deleted case is not both")
				}
				return
			default:
				if !errors.Is(err, aggregate.ErrCaseDeleted) || ps != nil {
					t.Fatalf("got %v, %v; want ErrCaseDeleted", names(ps), err)
				}
			}
			sameState(t, l.state, before)
		})
	}
}

func TestDecideDeleteFold(t *testing.T) {
	t.Parallel()
	l := opened(t, openCmd("BAN"))
	at := env(t0.Add(time.Hour))
	ps := l.must(at, aggregate.DeleteCase{Reason: "duplicate of #41"})
	if !reflect.DeepEqual(ps, []events.Payload{events.CaseDeleted{Reason: "duplicate of #41"}}) {
		t.Fatalf("payloads %+v", ps)
	}
	c := l.state
	if !c.Deleted || c.DeletedAt == nil || !c.DeletedAt.Equal(at.Now) || c.CaseNumber != 42 || c.Reason != "spamming invite links" {
		t.Fatalf("deleted case %+v", c)
	}
	if aggregate.Restriction(nil, aggregate.FamilyBan, []*aggregate.Case{c}) != nil {
		t.Fatal("a deleted ban restricts")
	}
}

func TestDecideActorRequired(t *testing.T) {
	t.Parallel()
	for _, actor := range []events.Snowflake{0, tooBig} {
		for _, cmd := range changeCommands() {
			if _, ok := cmd.(aggregate.ExpireCase); ok {
				continue // the ledger's own command
			}
			for _, del := range []bool{false, true} {
				l, _ := tempbanDue(t)
				if del {
					l.must(env(t0), aggregate.DeleteCase{})
				}
				before := l.state.Clone()
				ps, err := aggregate.Decide(aggregate.Env{Now: t0.Add(2 * time.Hour), ActorID: actor}, l.state, cmd)
				if ps != nil {
					t.Fatalf("%s with actor %d: payloads %v", cmd.CommandName(), actor, names(ps))
				}
				wantField(t, err, "actor_id")
				sameState(t, l.state, before)
			}
		}
	}
	// The expiry scheduler needs no actor.
	l, later := tempbanDue(t)
	ps, err := aggregate.Decide(aggregate.Env{Now: later.Now}, l.state, aggregate.ExpireCase{ExpiresAt: t0.Add(time.Hour)})
	if err != nil || len(ps) != 1 {
		t.Fatalf("ExpireCase without actor: %v, %v", names(ps), err)
	}
}

func TestDecideNoops(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		open  aggregate.OpenCase
		setup []aggregate.Command // decided at t0+1m, in order
		cmd   aggregate.Command   // decided at t0+2h
	}{
		{"close a closed case", openCmd("BAN"), []aggregate.Command{aggregate.CloseCase{}}, aggregate.CloseCase{Reason: "again"}},
		{"reopen an active case", openCmd("BAN"), nil, aggregate.ReopenCase{Reason: "why"}},
		{"reopen after reopen", openCmd("BAN"), []aggregate.Command{aggregate.CloseCase{}, aggregate.ReopenCase{}}, aggregate.ReopenCase{}},
		{"status active on an active case", openCmd("BAN"), nil, aggregate.UpdateCase{Status: ptr(aggregate.StatusActive)}},
		{"status closed on a closed case", openCmd("BAN"), []aggregate.Command{aggregate.CloseCase{}}, aggregate.UpdateCase{Status: ptr(aggregate.StatusClosed)}},
		{"same reason", openCmd("BAN"), nil, aggregate.UpdateCase{Reason: ptr("spamming invite links")}},
		{"same amended reason", openCmd("BAN"), []aggregate.Command{aggregate.UpdateCase{Reason: ptr("raid")}}, aggregate.UpdateCase{Reason: ptr("raid")}},
		{"same empty reason", withReason(openCmd("BAN"), ""), nil, aggregate.UpdateCase{Reason: ptr("")}},
		{"same expiry", withExpiry(openCmd("TEMPBAN"), t0.Add(48*time.Hour)), nil, aggregate.UpdateCase{ExpiresAt: ptr(t0.Add(48 * time.Hour))}},
		{"same expiry in another zone", withExpiry(openCmd("TEMPBAN"), t0.Add(48*time.Hour)), nil, aggregate.UpdateCase{ExpiresAt: ptr(t0.Add(48 * time.Hour).In(cet))}},
		{"same changed expiry", withExpiry(openCmd("JAIL"), t0.Add(48*time.Hour)), []aggregate.Command{aggregate.UpdateCase{ExpiresAt: ptr(t0.Add(72 * time.Hour))}},
			aggregate.UpdateCase{ExpiresAt: ptr(t0.Add(72 * time.Hour))}},
		{"clear an expiry that is not set", openCmd("JAIL"), nil, aggregate.UpdateCase{ClearExpiry: true}},
		{"clear an expiry already cleared", withExpiry(openCmd("JAIL"), t0.Add(48*time.Hour)), []aggregate.Command{aggregate.UpdateCase{ClearExpiry: true}}, aggregate.UpdateCase{ClearExpiry: true}},
		{"same metadata, other key order and spaces", withMetadata(openCmd("BAN"), `{"a":1,"b":[1,2],"c":{"x":"y","z":null}}`), nil,
			aggregate.UpdateCase{Metadata: json.RawMessage(" {\n \"c\": {\"z\": null, \"x\": \"y\"},\t\"b\": [1, 2], \"a\": 1 }\n")}},
		{"empty metadata on a case opened without", openCmd("BAN"), nil, aggregate.UpdateCase{Metadata: json.RawMessage(`{ }`)}},
		{"same metadata after an update", openCmd("BAN"), []aggregate.Command{aggregate.UpdateCase{Metadata: json.RawMessage(`{"k":"v"}`)}}, aggregate.UpdateCase{Metadata: json.RawMessage(`{"k": "v"}`)}},
		{"every field the same", withMetadata(withExpiry(openCmd("TEMPBAN"), t0.Add(48*time.Hour)), `{"k":1}`), nil,
			aggregate.UpdateCase{Reason: ptr("spamming invite links"), Status: ptr(aggregate.StatusActive), ExpiresAt: ptr(t0.Add(48 * time.Hour)), Metadata: json.RawMessage(`{"k":1}`)}},
		{"same mod log link", openCmd("BAN"), []aggregate.Command{aggregate.LinkModLog{MessageID: messageID, ChannelID: channelID}}, aggregate.LinkModLog{MessageID: messageID, ChannelID: channelID}},
		{"same mod log message without channel", openCmd("BAN"), []aggregate.Command{aggregate.LinkModLog{MessageID: messageID}}, aggregate.LinkModLog{MessageID: messageID}},
		{"redact twice", openCmd("BAN"), []aggregate.Command{aggregate.RedactCase{}}, aggregate.RedactCase{Reason: "again"}},
		{"processed twice", withExpiry(openCmd("TEMPBAN"), t0.Add(time.Minute)), []aggregate.Command{}, aggregate.MarkExpiryProcessed{}},
		{"delete twice", openCmd("BAN"), []aggregate.Command{aggregate.DeleteCase{}}, aggregate.DeleteCase{Reason: "again"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := opened(t, tt.open)
			for _, cmd := range tt.setup {
				if ps := l.must(env(t0.Add(time.Minute)), cmd); len(ps) == 0 {
					t.Fatalf("setup %s appended nothing", cmd.CommandName())
				}
			}
			later := env(t0.Add(2 * time.Hour))
			if _, ok := tt.cmd.(aggregate.MarkExpiryProcessed); ok {
				l.must(later, tt.cmd) // the first one counts
			}
			before := l.state.Clone()
			ps, err := aggregate.Decide(later, l.state, tt.cmd)
			wantNoop(t, ps, err)
			sameState(t, l.state, before)
		})
	}
}

func withReason(c aggregate.OpenCase, r string) aggregate.OpenCase { c.Reason = r; return c }
func withExpiry(c aggregate.OpenCase, at time.Time) aggregate.OpenCase {
	c.ExpiresAt = &at
	return c
}
func withMetadata(c aggregate.OpenCase, m string) aggregate.OpenCase {
	c.Metadata = json.RawMessage(m)
	return c
}

// TestDecideUpdateOrder checks that an UpdateCase with several fields gives
// its events in the documented order: reason, expiry, metadata, status.
func TestDecideUpdateOrder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		setup  []aggregate.Command
		update aggregate.UpdateCase
		want   []events.Name
	}{
		{"every field", nil, aggregate.UpdateCase{
			Status: ptr(aggregate.StatusClosed), Metadata: json.RawMessage(`{"a":1}`),
			ExpiresAt: ptr(t0.Add(72 * time.Hour)), Reason: ptr("new"),
		}, []events.Name{events.NameCaseReasonAmended, events.NameCaseExpiryChanged, events.NameCaseMetadataUpdated, events.NameCaseClosed}},
		{"reopen with a reason", []aggregate.Command{aggregate.CloseCase{}}, aggregate.UpdateCase{Status: ptr(aggregate.StatusActive), Reason: ptr("new")},
			[]events.Name{events.NameCaseReasonAmended, events.NameCaseReopened}},
		{"only what changes", nil, aggregate.UpdateCase{Reason: ptr("spamming invite links"), Status: ptr(aggregate.StatusClosed), Metadata: json.RawMessage(`{}`)},
			[]events.Name{events.NameCaseClosed}},
		{"clear expiry and metadata", nil, aggregate.UpdateCase{ClearExpiry: true, Metadata: json.RawMessage(`{"b":2}`)},
			[]events.Name{events.NameCaseExpiryChanged, events.NameCaseMetadataUpdated}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := opened(t, withExpiry(openCmd("JAIL"), t0.Add(48*time.Hour)))
			for _, cmd := range tt.setup {
				l.must(env(t0), cmd)
			}
			version := l.state.Version
			ps := l.must(env(t0.Add(time.Hour)), tt.update)
			if got := names(ps); !slices.Equal(got, tt.want) {
				t.Fatalf("events %v, want %v", got, tt.want)
			}
			c := l.state
			if tt.update.Reason != nil && c.Reason != *tt.update.Reason {
				t.Errorf("reason %q", c.Reason)
			}
			if tt.update.Status != nil && c.Status != *tt.update.Status {
				t.Errorf("status %s", c.Status)
			}
			if tt.update.ExpiresAt != nil && !c.ExpiresAt.Equal(*tt.update.ExpiresAt) {
				t.Errorf("expires_at %v", c.ExpiresAt)
			}
			if tt.update.ClearExpiry && c.ExpiresAt != nil {
				t.Errorf("expires_at %v, want cleared", c.ExpiresAt)
			}
			if tt.update.Metadata != nil && string(c.Metadata) != string(tt.update.Metadata) {
				t.Errorf("metadata %s", c.Metadata)
			}
			if c.CaseNumber != 42 || c.Version <= version {
				t.Errorf("number %d version %d", c.CaseNumber, c.Version)
			}
		})
	}
}

func TestDecideUpdateInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		update aggregate.UpdateCase
		field  string
	}{
		{"nothing to update", aggregate.UpdateCase{}, ""},
		{"set and clear the expiry", aggregate.UpdateCase{ExpiresAt: ptr(t0.Add(72 * time.Hour)), ClearExpiry: true}, "expires_at"},
		{"unknown status", aggregate.UpdateCase{Status: ptr(aggregate.Status("open"))}, "status"},
		{"empty status", aggregate.UpdateCase{Status: ptr(aggregate.Status(""))}, "status"},
		{"valid reason and bad status", aggregate.UpdateCase{Reason: ptr("fine"), Status: ptr(aggregate.Status("ACTIVE"))}, "status"},
		{"reason 2001", aggregate.UpdateCase{Reason: ptr(runes('ж', 2001)), Status: ptr(aggregate.StatusClosed)}, "reason"},
		{"reason NUL", aggregate.UpdateCase{Reason: ptr("a\x00b")}, "reason"},
		{"reason invalid UTF-8", aggregate.UpdateCase{Reason: ptr("\xff")}, "reason"},
		{"metadata array", aggregate.UpdateCase{Metadata: json.RawMessage(`[]`)}, "metadata"},
		{"metadata invalid", aggregate.UpdateCase{Metadata: json.RawMessage(`{`)}, "metadata"},
		{"metadata empty", aggregate.UpdateCase{Metadata: json.RawMessage{}}, "metadata"},
		{"metadata too large", aggregate.UpdateCase{Reason: ptr("fine"), Metadata: metadataOfSize(8<<10 + 1)}, "metadata"},
		{"expiry in the past", aggregate.UpdateCase{Reason: ptr("fine"), ExpiresAt: ptr(t0)}, "expires_at"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := opened(t, withExpiry(openCmd("JAIL"), t0.Add(48*time.Hour)))
			before := l.state.Clone()
			ps, err := aggregate.Decide(env(t0.Add(time.Hour)), l.state, tt.update)
			wantField(t, err, tt.field)
			if ps != nil {
				t.Fatalf("payloads %v with the error", names(ps))
			}
			sameState(t, l.state, before)
		})
	}
	// Metadata of exactly 8 KiB is accepted by an update too.
	l := opened(t, openCmd("BAN"))
	if ps := l.must(env(t0), aggregate.UpdateCase{Metadata: metadataOfSize(8 << 10)}); len(ps) != 1 {
		t.Fatalf("8 KiB metadata: %v", names(ps))
	}
}

func TestDecideExpiryChange(t *testing.T) {
	t.Parallel()
	now := t0.Add(time.Hour)
	type want struct {
		field   string // a validation error on this field
		err     error  // or this error
		events  int    // or this many events (0: a no-op)
		expires *time.Time
	}
	tests := []struct {
		name   string
		open   aggregate.OpenCase
		setup  func(*testing.T, *ledger)
		update aggregate.UpdateCase
		want   want
	}{
		{"ban cannot expire", openCmd("BAN"), nil, aggregate.UpdateCase{ExpiresAt: ptr(now.Add(time.Hour))}, want{field: "expires_at"}},
		{"ban cannot clear", openCmd("BAN"), nil, aggregate.UpdateCase{ClearExpiry: true}, want{field: "expires_at"}},
		{"warn cannot expire", openCmd("WARN"), nil, aggregate.UpdateCase{ExpiresAt: ptr(now.Add(time.Hour))}, want{field: "expires_at"}},
		{"unban cannot expire", openCmd("UNBAN"), nil, aggregate.UpdateCase{ExpiresAt: ptr(now.Add(time.Hour))}, want{field: "expires_at"}},
		{"tempban extended", openCmd("TEMPBAN"), nil, aggregate.UpdateCase{ExpiresAt: ptr(now.Add(30 * 24 * time.Hour))}, want{events: 1, expires: ptr(now.Add(30 * 24 * time.Hour))}},
		{"tempban shortened", openCmd("TEMPBAN"), nil, aggregate.UpdateCase{ExpiresAt: ptr(now.Add(time.Minute))}, want{events: 1, expires: ptr(now.Add(time.Minute))}},
		{"tempban to the past", openCmd("TEMPBAN"), nil, aggregate.UpdateCase{ExpiresAt: ptr(now.Add(-time.Second))}, want{field: "expires_at"}},
		{"tempban to now", openCmd("TEMPBAN"), nil, aggregate.UpdateCase{ExpiresAt: ptr(now)}, want{field: "expires_at"}},
		{"tempban cannot clear a required expiry", openCmd("TEMPBAN"), nil, aggregate.UpdateCase{ClearExpiry: true}, want{field: "expires_at"}},
		{"timeout cannot clear a required expiry", openCmd("TIMEOUT"), nil, aggregate.UpdateCase{ClearExpiry: true}, want{field: "expires_at"}},
		{"timeout to 28 days from now", openCmd("TIMEOUT"), nil, aggregate.UpdateCase{ExpiresAt: ptr(now.Add(aggregate.MaxTimeout))}, want{events: 1, expires: ptr(now.Add(aggregate.MaxTimeout))}},
		{"timeout to 28 days + 1s from now", openCmd("TIMEOUT"), nil, aggregate.UpdateCase{ExpiresAt: ptr(now.Add(aggregate.MaxTimeout + time.Second))}, want{field: "expires_at"}},
		{"jail clears an optional expiry", withExpiry(openCmd("JAIL"), t0.Add(48*time.Hour)), nil, aggregate.UpdateCase{ClearExpiry: true}, want{events: 1}},
		{"jail gets an expiry", openCmd("JAIL"), nil, aggregate.UpdateCase{ExpiresAt: ptr(now.Add(time.Hour))}, want{events: 1, expires: ptr(now.Add(time.Hour))}},
		{"snippetban clears", withExpiry(openCmd("SNIPPETBAN"), t0.Add(48*time.Hour)), nil, aggregate.UpdateCase{ClearExpiry: true}, want{events: 1}},
		{"closed case can change expiry", openCmd("TEMPBAN"), func(t *testing.T, l *ledger) { l.must(env(t0), aggregate.CloseCase{}) },
			aggregate.UpdateCase{ExpiresAt: ptr(now.Add(time.Hour))}, want{events: 1, expires: ptr(now.Add(time.Hour))}},
		{"after processed", withExpiry(openCmd("TEMPBAN"), t0.Add(time.Minute)), func(t *testing.T, l *ledger) {
			l.must(env(t0.Add(time.Minute)), aggregate.MarkExpiryProcessed{})
		}, aggregate.UpdateCase{ExpiresAt: ptr(now.Add(time.Hour))}, want{err: aggregate.ErrConflict}},
		{"clear after processed", withExpiry(openCmd("JAIL"), t0.Add(time.Minute)), func(t *testing.T, l *ledger) {
			l.must(env(t0.Add(time.Minute)), aggregate.MarkExpiryProcessed{})
		}, aggregate.UpdateCase{ClearExpiry: true}, want{err: aggregate.ErrConflict}},
		{"in another zone", openCmd("TEMPBAN"), nil, aggregate.UpdateCase{ExpiresAt: ptr(now.Add(time.Hour).In(cet))}, want{events: 1, expires: ptr(now.Add(time.Hour))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := opened(t, tt.open)
			if tt.setup != nil {
				tt.setup(t, l)
			}
			before := l.state.Clone()
			ps, err := l.decide(env(now), tt.update)
			switch {
			case tt.want.field != "":
				wantField(t, err, tt.want.field)
				sameState(t, l.state, before)
			case tt.want.err != nil:
				if !errors.Is(err, tt.want.err) || errors.Is(err, aggregate.ErrInvalidArgument) {
					t.Fatalf("got %v, want %v", err, tt.want.err)
				}
				sameState(t, l.state, before)
			default:
				if err != nil || len(ps) != tt.want.events {
					t.Fatalf("got %v, %v; want %d events", names(ps), err, tt.want.events)
				}
				p := ps[0].(events.CaseExpiryChanged)
				switch {
				case tt.want.expires == nil && (p.ExpiresAt != nil || l.state.ExpiresAt != nil):
					t.Fatalf("expiry %v / state %v, want cleared", p.ExpiresAt, l.state.ExpiresAt)
				case tt.want.expires != nil && (!p.ExpiresAt.Equal(*tt.want.expires) || p.ExpiresAt.Location() != time.UTC):
					t.Fatalf("payload expiry %v, want %v in UTC", p.ExpiresAt, tt.want.expires)
				case tt.want.expires != nil && !l.state.ExpiresAt.Equal(*tt.want.expires):
					t.Fatalf("state expiry %v, want %v", l.state.ExpiresAt, tt.want.expires)
				}
			}
		})
	}
}

// TestDecideSameExpiryIsNoop checks that sending back the expiry a case
// already has alters nothing, even once it has passed or been processed: a
// whole-case update that changes only the reason must not fail on it.
func TestDecideSameExpiryIsNoop(t *testing.T) {
	t.Parallel()
	for _, step := range []string{"passed", "expired", "processed"} {
		t.Run(step, func(t *testing.T) {
			t.Parallel()
			l, later := tempbanDue(t)
			switch step {
			case "expired":
				l.must(later, aggregate.ExpireCase{ExpiresAt: *l.state.ExpiresAt})
			case "processed":
				l.must(later, aggregate.MarkExpiryProcessed{})
			}
			same := ptr(l.state.ExpiresAt.In(cet))
			before := l.state.Clone()
			ps, err := aggregate.Decide(later, l.state, aggregate.UpdateCase{ExpiresAt: same})
			wantNoop(t, ps, err)
			sameState(t, l.state, before)
			ps = l.must(later, aggregate.UpdateCase{Reason: ptr("evading a ban"), ExpiresAt: same, Status: ptr(aggregate.StatusActive)})
			if !slices.Equal(names(ps), []events.Name{events.NameCaseReasonAmended}) {
				t.Fatalf("whole-case update gave %v, want only the reason", names(ps))
			}
			// A different expiry is still refused.
			_, err = aggregate.Decide(later, l.state, aggregate.UpdateCase{ExpiresAt: ptr(l.state.ExpiresAt.Add(time.Second))})
			if step == "processed" {
				if !errors.Is(err, aggregate.ErrConflict) {
					t.Fatalf("another expiry after processing: %v, want ErrConflict", err)
				}
			} else {
				wantField(t, err, "expires_at") // still in the past
			}
		})
	}
	// The same expiry of a processed JAIL is a no-op too.
	l := opened(t, withExpiry(openCmd("JAIL"), t0.Add(time.Minute)))
	l.must(env(t0.Add(time.Hour)), aggregate.MarkExpiryProcessed{})
	ps, err := aggregate.Decide(env(t0.Add(time.Hour)), l.state, aggregate.UpdateCase{ExpiresAt: ptr(t0.Add(time.Minute))})
	wantNoop(t, ps, err)
}

// TestDecideMetadataNumbers checks that metadata equality never mistakes
// two large ids for one: float64 holds 53 bits, Discord ids need 63.
func TestDecideMetadataNumbers(t *testing.T) {
	t.Parallel()
	l := opened(t, withMetadata(openCmd("BAN"), `{"message_id":1310594827103211571,"n":[1,2]}`))
	ps := l.must(env(t0), aggregate.UpdateCase{Metadata: json.RawMessage(`{"message_id":1310594827103211572,"n":[1,2]}`)})
	if len(ps) != 1 || string(l.state.Metadata) != `{"message_id":1310594827103211572,"n":[1,2]}` {
		t.Fatalf("a changed 63-bit id was taken for the same: %v, metadata %s", names(ps), l.state.Metadata)
	}
	ps, err := aggregate.Decide(env(t0), l.state, aggregate.UpdateCase{Metadata: json.RawMessage(`{ "n": [1, 2], "message_id": 1310594827103211572 }`)})
	wantNoop(t, ps, err)
	// Values that differ only in how a number is written may append an
	// event; they must never fail.
	if _, err := aggregate.Decide(env(t0), l.state, aggregate.UpdateCase{Metadata: json.RawMessage(`{"message_id":1.310594827103211572e18,"n":[1,2]}`)}); err != nil {
		t.Fatal(err)
	}
}

// TestDecideMetadataOverUnreadableState checks a state whose metadata is
// not JSON (a hand-built or corrupt cache): an update replaces it.
func TestDecideMetadataOverUnreadableState(t *testing.T) {
	t.Parallel()
	l := opened(t, openCmd("BAN"))
	l.state.Metadata = json.RawMessage(`{"broken":`)
	ps, err := aggregate.Decide(env(t0), l.state, aggregate.UpdateCase{Metadata: json.RawMessage(`{}`)})
	if err != nil || !slices.Equal(names(ps), []events.Name{events.NameCaseMetadataUpdated}) {
		t.Fatalf("got %v, %v; want CaseMetadataUpdated", names(ps), err)
	}
}

// TestDecideExpiryMovedAfterExpired checks that moving the expiry of a case
// whose expiry passed but was not processed starts it over.
func TestDecideExpiryMovedAfterExpired(t *testing.T) {
	t.Parallel()
	l, later := tempbanDue(t)
	l.must(aggregate.Env{Now: later.Now}, aggregate.ExpireCase{ExpiresAt: t0.Add(time.Hour)})
	if l.state.ExpiredAt == nil {
		t.Fatal("CaseExpired did not set ExpiredAt")
	}
	newExpiry := later.Now.Add(24 * time.Hour)
	l.must(later, aggregate.UpdateCase{ExpiresAt: &newExpiry})
	if l.state.ExpiredAt != nil || !l.state.ExpiresAt.Equal(newExpiry) || l.state.ExpiryProcessed {
		t.Fatalf("expires %v expired %v processed %v", l.state.ExpiresAt, l.state.ExpiredAt, l.state.ExpiryProcessed)
	}
	// Now it is not yet due again: processing is a conflict, and the old
	// expiry's scheduler request is a no-op.
	if _, err := aggregate.Decide(later, l.state, aggregate.MarkExpiryProcessed{}); !errors.Is(err, aggregate.ErrConflict) {
		t.Fatalf("MarkExpiryProcessed before the new expiry: %v, want ErrConflict", err)
	}
	ps, err := aggregate.Decide(later, l.state, aggregate.ExpireCase{ExpiresAt: t0.Add(time.Hour)})
	wantNoop(t, ps, err)
	// The case still restricts.
	if aggregate.Restriction(nil, aggregate.FamilyBan, []*aggregate.Case{l.state}) == nil {
		t.Fatal("the moved tempban does not restrict")
	}
}

func TestDecideExpiryChangeUnregisteredType(t *testing.T) {
	t.Parallel()
	reg, err := aggregate.NewRegistry(aggregate.TypeSpec{Name: "MUTE", Restricts: "mute", Expiry: aggregate.ExpiryOptional})
	if err != nil {
		t.Fatal(err)
	}
	l := newLedger(t)
	l.must(aggregate.Env{Now: t0, ActorID: moderatorID, Registry: reg}, openCmd("MUTE"))
	// A deployment that dropped the type can still close the case, but
	// not change its expiry.
	_, err = aggregate.Decide(env(t0), l.state, aggregate.UpdateCase{ExpiresAt: ptr(t0.Add(time.Hour))})
	wantField(t, err, "type")
	if ps := l.must(env(t0), aggregate.CloseCase{}); len(ps) != 1 {
		t.Fatal("close of a case of an unregistered type")
	}
}

func TestDecideMarkExpiryProcessed(t *testing.T) {
	t.Parallel()
	expiry := t0.Add(time.Hour)
	tests := []struct {
		name  string
		open  aggregate.OpenCase
		setup []aggregate.Command
		now   time.Time
		err   error // nil: one event
	}{
		{"ban has no expiry", openCmd("BAN"), nil, expiry, aggregate.ErrConflict},
		{"warn has no expiry", openCmd("WARN"), nil, expiry, aggregate.ErrConflict},
		{"jail without expiry", openCmd("JAIL"), nil, expiry, aggregate.ErrConflict},
		{"jail whose expiry was cleared", withExpiry(openCmd("JAIL"), expiry), []aggregate.Command{aggregate.UpdateCase{ClearExpiry: true}}, expiry, aggregate.ErrConflict},
		{"not yet", withExpiry(openCmd("TEMPBAN"), expiry), nil, expiry.Add(-time.Nanosecond), aggregate.ErrConflict},
		{"at the expiry", withExpiry(openCmd("TEMPBAN"), expiry), nil, expiry, nil},
		{"after the expiry", withExpiry(openCmd("TEMPBAN"), expiry), nil, expiry.Add(time.Hour), nil},
		{"timeout after the expiry", withExpiry(openCmd("TIMEOUT"), expiry), nil, expiry.Add(time.Hour), nil},
		{"closed case after the expiry", withExpiry(openCmd("TEMPBAN"), expiry), []aggregate.Command{aggregate.CloseCase{}}, expiry.Add(time.Hour), nil},
		// Once the ledger recorded the expiry, a bot whose clock is behind
		// may still process it.
		{"expired, clock behind", withExpiry(openCmd("TEMPBAN"), expiry), []aggregate.Command{aggregate.ExpireCase{ExpiresAt: expiry}}, expiry.Add(-time.Minute), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := opened(t, tt.open)
			for _, cmd := range tt.setup {
				l.must(env(expiry), cmd)
			}
			before := l.state.Clone()
			actor := aggregate.Env{Now: tt.now, ActorID: botID}
			ps, err := l.decide(actor, aggregate.MarkExpiryProcessed{})
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("got %v, want %v", err, tt.err)
				}
				sameState(t, l.state, before)
				return
			}
			if err != nil || !reflect.DeepEqual(ps, []events.Payload{events.CaseExpiryProcessed{}}) {
				t.Fatalf("got %v, %v; want CaseExpiryProcessed", names(ps), err)
			}
			c := l.state
			if !c.ExpiryProcessed || !c.ExpiryProcessedAt.Equal(tt.now) || c.ExpiryProcessedBy != botID {
				t.Fatalf("processed %v at %v by %d", c.ExpiryProcessed, c.ExpiryProcessedAt, c.ExpiryProcessedBy)
			}
			if aggregate.Restriction(nil, aggregate.FamilyBan, []*aggregate.Case{c}) != nil {
				t.Fatal("a processed tempban still restricts")
			}
			// A second request is a no-op, whoever sends it.
			again := l.state.Clone()
			ps, err = aggregate.Decide(env(tt.now.Add(time.Hour)), l.state, aggregate.MarkExpiryProcessed{})
			wantNoop(t, ps, err)
			sameState(t, l.state, again)
		})
	}
}

func TestDecideExpireCase(t *testing.T) {
	t.Parallel()
	expiry := t0.Add(time.Hour)
	tests := []struct {
		name  string
		open  aggregate.OpenCase
		setup []aggregate.Command // at expiry - 1m
		cmd   aggregate.ExpireCase
		now   time.Time
		err   error
		event bool // false: a no-op
	}{
		{"not due", withExpiry(openCmd("TEMPBAN"), expiry), nil, aggregate.ExpireCase{ExpiresAt: expiry}, expiry.Add(-time.Nanosecond), aggregate.ErrConflict, false},
		{"due exactly", withExpiry(openCmd("TEMPBAN"), expiry), nil, aggregate.ExpireCase{ExpiresAt: expiry}, expiry, nil, true},
		{"overdue", withExpiry(openCmd("TIMEOUT"), expiry), nil, aggregate.ExpireCase{ExpiresAt: expiry}, expiry.Add(time.Hour), nil, true},
		{"expiry in another zone", withExpiry(openCmd("JAIL"), expiry), nil, aggregate.ExpireCase{ExpiresAt: expiry.In(cet)}, expiry, nil, true},
		{"moved expiry", withExpiry(openCmd("TEMPBAN"), expiry), []aggregate.Command{aggregate.UpdateCase{ExpiresAt: ptr(expiry.Add(time.Hour))}},
			aggregate.ExpireCase{ExpiresAt: expiry}, expiry, nil, false},
		{"cleared expiry", withExpiry(openCmd("JAIL"), expiry), []aggregate.Command{aggregate.UpdateCase{ClearExpiry: true}},
			aggregate.ExpireCase{ExpiresAt: expiry}, expiry, nil, false},
		{"no expiry at all", openCmd("BAN"), nil, aggregate.ExpireCase{ExpiresAt: expiry}, expiry, nil, false},
		{"closed", withExpiry(openCmd("TEMPBAN"), expiry), []aggregate.Command{aggregate.CloseCase{}}, aggregate.ExpireCase{ExpiresAt: expiry}, expiry, nil, false},
		{"deleted", withExpiry(openCmd("TEMPBAN"), expiry), []aggregate.Command{aggregate.DeleteCase{}}, aggregate.ExpireCase{ExpiresAt: expiry}, expiry, nil, false},
		{"closed, not due", withExpiry(openCmd("TEMPBAN"), expiry), []aggregate.Command{aggregate.CloseCase{}}, aggregate.ExpireCase{ExpiresAt: expiry}, t0, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := opened(t, tt.open)
			for _, cmd := range tt.setup {
				l.must(env(expiry.Add(-time.Minute)), cmd)
			}
			before := l.state.Clone()
			scheduler := aggregate.Env{Now: tt.now}
			ps, err := l.decide(scheduler, tt.cmd)
			switch {
			case tt.err != nil:
				if !errors.Is(err, tt.err) || ps != nil {
					t.Fatalf("got %v, %v; want %v", names(ps), err, tt.err)
				}
				sameState(t, l.state, before)
			case !tt.event:
				wantNoop(t, ps, err)
				sameState(t, l.state, before)
			default:
				if err != nil || len(ps) != 1 {
					t.Fatalf("got %v, %v; want CaseExpired", names(ps), err)
				}
				p := ps[0].(events.CaseExpired)
				if !p.ExpiresAt.Equal(expiry) || p.ExpiresAt.Location() != time.UTC {
					t.Fatalf("CaseExpired.ExpiresAt = %v, want %v in UTC", p.ExpiresAt, expiry)
				}
				if l.state.ExpiredAt == nil || !l.state.ExpiredAt.Equal(tt.now) || l.state.ExpiryProcessed {
					t.Fatalf("expired_at %v processed %v", l.state.ExpiredAt, l.state.ExpiryProcessed)
				}
				// Twice, after the fold: a no-op. After processing: a no-op.
				ps, err = aggregate.Decide(scheduler, l.state, tt.cmd)
				wantNoop(t, ps, err)
				l.must(env(tt.now), aggregate.MarkExpiryProcessed{})
				ps, err = aggregate.Decide(scheduler, l.state, tt.cmd)
				wantNoop(t, ps, err)
			}
		})
	}
}

func TestDecideAddNote(t *testing.T) {
	t.Parallel()
	urls := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("https://cdn.discordapp.com/attachments/1/%d/shot.png", i)
		}
		return out
	}
	long := "https://example.com/" + strings.Repeat("a", aggregate.MaxURLLen-len("https://example.com/"))
	tests := []struct {
		name  string
		note  aggregate.AddNote
		field string // "-" for valid
	}{
		{"valid", aggregate.AddNote{NoteID: noteID, Text: "posted slurs, see screenshots", EvidenceURLs: urls(2)}, "-"},
		{"no evidence", aggregate.AddNote{NoteID: noteID, Text: "x"}, "-"},
		{"ten links", aggregate.AddNote{NoteID: noteID, Text: "x", EvidenceURLs: urls(10)}, "-"},
		{"http link", aggregate.AddNote{NoteID: noteID, Text: "x", EvidenceURLs: []string{"http://example.com/a"}}, "-"},
		{"link of 2048 bytes", aggregate.AddNote{NoteID: noteID, Text: "x", EvidenceURLs: []string{long}}, "-"},
		{"text of 2000 runes", aggregate.AddNote{NoteID: noteID, Text: runes('ř', 2000)}, "-"},
		{"empty text", aggregate.AddNote{NoteID: noteID, Text: ""}, "text"},
		{"blank text", aggregate.AddNote{NoteID: noteID, Text: " \n\t "}, "text"},
		{"text of 2001 runes", aggregate.AddNote{NoteID: noteID, Text: runes('ř', 2001)}, "text"},
		{"text with NUL", aggregate.AddNote{NoteID: noteID, Text: "a\x00"}, "text"},
		{"text invalid UTF-8", aggregate.AddNote{NoteID: noteID, Text: "a\xff"}, "text"},
		{"eleven links", aggregate.AddNote{NoteID: noteID, Text: "x", EvidenceURLs: urls(11)}, "evidence_urls"},
		{"ftp link", aggregate.AddNote{NoteID: noteID, Text: "x", EvidenceURLs: []string{"ftp://example.com/a"}}, "evidence_urls[0]"},
		{"javascript link", aggregate.AddNote{NoteID: noteID, Text: "x", EvidenceURLs: []string{"javascript:alert(1)"}}, "evidence_urls[0]"},
		{"no scheme", aggregate.AddNote{NoteID: noteID, Text: "x", EvidenceURLs: []string{"example.com/a.png"}}, "evidence_urls[0]"},
		{"relative", aggregate.AddNote{NoteID: noteID, Text: "x", EvidenceURLs: []string{"/a.png"}}, "evidence_urls[0]"},
		{"no host", aggregate.AddNote{NoteID: noteID, Text: "x", EvidenceURLs: []string{"https://"}}, "evidence_urls[0]"},
		{"empty link", aggregate.AddNote{NoteID: noteID, Text: "x", EvidenceURLs: []string{""}}, "evidence_urls[0]"},
		{"unparsable", aggregate.AddNote{NoteID: noteID, Text: "x", EvidenceURLs: []string{"https://exa mple.com/%zz"}}, "evidence_urls[0]"},
		{"second link bad", aggregate.AddNote{NoteID: noteID, Text: "x", EvidenceURLs: []string{"https://ok.example", "nope"}}, "evidence_urls[1]"},
		{"link of 2049 bytes", aggregate.AddNote{NoteID: noteID, Text: "x", EvidenceURLs: []string{long + "a"}}, "evidence_urls[0]"},
		{"link with NUL", aggregate.AddNote{NoteID: noteID, Text: "x", EvidenceURLs: []string{"https://example.com/\x00"}}, "evidence_urls[0]"},
		{"link invalid UTF-8", aggregate.AddNote{NoteID: noteID, Text: "x", EvidenceURLs: []string{"https://example.com/\xff"}}, "evidence_urls[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := opened(t, openCmd("WARN"))
			l.must(env(t0), aggregate.CloseCase{}) // notes go on closed cases too
			before := l.state.Clone()
			// The author is whoever sends the command, not the case's moderator.
			author := aggregate.Env{Now: t0.Add(time.Hour), ActorID: botID}
			ps, err := l.decide(author, tt.note)
			if tt.field != "-" {
				wantField(t, err, tt.field)
				sameState(t, l.state, before)
				return
			}
			if err != nil || len(ps) != 1 {
				t.Fatalf("got %v, %v; want one CaseNoteAdded", names(ps), err)
			}
			p := ps[0].(events.CaseNoteAdded)
			if p.AuthorID != botID || p.NoteID != noteID || p.Text != tt.note.Text || !slices.Equal(p.EvidenceURLs, tt.note.EvidenceURLs) {
				t.Fatalf("payload %+v", p)
			}
			// The payload does not share the command's slice.
			if len(tt.note.EvidenceURLs) > 0 && &p.EvidenceURLs[0] == &tt.note.EvidenceURLs[0] {
				t.Fatal("payload shares the command's evidence slice")
			}
			n := l.state.Notes[len(l.state.Notes)-1]
			if n.AuthorID != botID || n.Text != tt.note.Text || !n.CreatedAt.Equal(author.Now) || len(l.state.Notes) != 1 {
				t.Fatalf("note %+v", n)
			}
			if l.state.Status != aggregate.StatusClosed || l.state.Reason != before.Reason {
				t.Fatal("a note changed the case")
			}
		})
	}
}

func TestDecideLinkModLog(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		link  aggregate.LinkModLog
		field string
	}{
		{"message and channel", aggregate.LinkModLog{MessageID: messageID, ChannelID: channelID}, "-"},
		{"message only", aggregate.LinkModLog{MessageID: messageID}, "-"},
		{"message MaxInt64", aggregate.LinkModLog{MessageID: maxSnowflake}, "-"},
		{"no message", aggregate.LinkModLog{ChannelID: channelID}, "mod_log_message_id"},
		{"message above MaxInt64", aggregate.LinkModLog{MessageID: tooBig}, "mod_log_message_id"},
		{"channel above MaxInt64", aggregate.LinkModLog{MessageID: messageID, ChannelID: tooBig}, "mod_log_channel_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := opened(t, openCmd("KICK"))
			ps, err := l.decide(env(t0), tt.link)
			if tt.field != "-" {
				wantField(t, err, tt.field)
				return
			}
			if err != nil || !reflect.DeepEqual(ps, []events.Payload{events.ModLogMessageLinked{MessageID: tt.link.MessageID, ChannelID: tt.link.ChannelID}}) {
				t.Fatalf("got %+v, %v", ps, err)
			}
			if l.state.ModLogMessageID != tt.link.MessageID || l.state.ModLogChannelID != tt.link.ChannelID || l.state.CaseNumber != 42 {
				t.Fatalf("state %d/%d", l.state.ModLogMessageID, l.state.ModLogChannelID)
			}
			// Relinking to another message or channel appends again.
			if ps := l.must(env(t0), aggregate.LinkModLog{MessageID: tt.link.MessageID - 1, ChannelID: tt.link.ChannelID}); len(ps) != 1 {
				t.Fatal("relink to another message appended nothing")
			}
			if ps := l.must(env(t0), aggregate.LinkModLog{MessageID: tt.link.MessageID - 1, ChannelID: channelID + 1}); len(ps) != 1 {
				t.Fatal("relink to another channel appended nothing")
			}
		})
	}
}

// TestDecideTextReasons checks the reason of close, reopen, delete and
// redact, and that it reaches the event.
func TestDecideTextReasons(t *testing.T) {
	t.Parallel()
	mk := []func(string) aggregate.Command{
		func(r string) aggregate.Command { return aggregate.CloseCase{Reason: r} },
		func(r string) aggregate.Command { return aggregate.ReopenCase{Reason: r} },
		func(r string) aggregate.Command { return aggregate.DeleteCase{Reason: r} },
		func(r string) aggregate.Command { return aggregate.RedactCase{Reason: r} },
	}
	for _, f := range mk {
		name := f("").CommandName()
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			l := opened(t, openCmd("BAN"))
			if name == aggregate.CommandReopen {
				l.must(env(t0), aggregate.CloseCase{})
			}
			for _, bad := range []string{runes('ü', 2001), "x\x00", "\xff"} {
				_, err := aggregate.Decide(env(t0), l.state, f(bad))
				wantField(t, err, "reason")
			}
			ps, err := aggregate.Decide(env(t0), l.state, f(runes('ü', 2000)))
			if err != nil || len(ps) != 1 {
				t.Fatalf("got %v, %v", names(ps), err)
			}
			got := reflect.ValueOf(ps[0]).FieldByName("Reason").String()
			if got != runes('ü', 2000) {
				t.Fatalf("event reason %q", got)
			}
			l.apply(env(t0), ps)
			if name == aggregate.CommandClose && l.state.Status != aggregate.StatusClosed ||
				name == aggregate.CommandReopen && l.state.Status != aggregate.StatusActive {
				t.Fatalf("status %s after %s", l.state.Status, name)
			}
			// The case's own reason is not the close/delete reason.
			if name != aggregate.CommandRedact && l.state.Reason != "spamming invite links" {
				t.Fatalf("case reason %q changed by %s", l.state.Reason, name)
			}
		})
	}
}

type unknownCommand struct{}

func (unknownCommand) CommandName() string { return "unknown" }

func TestDecideUnknownCommand(t *testing.T) {
	t.Parallel()
	l := opened(t, openCmd("BAN"))
	_, err := aggregate.Decide(env(t0), l.state, unknownCommand{})
	wantField(t, err, "")
	_, err = aggregate.Decide(env(t0), l.state, nil)
	wantField(t, err, "")
	if _, err := aggregate.Decide(env(t0), nil, nil); !errors.Is(err, aggregate.ErrCaseNotFound) {
		t.Fatalf("nil command on no case: %v", err)
	}
}

func TestCommandNames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		cmd  aggregate.Command
		name string
	}{
		{aggregate.OpenCase{}, "open"}, {aggregate.ImportCase{}, "import"}, {aggregate.UpdateCase{}, "update"},
		{aggregate.CloseCase{}, "close"}, {aggregate.ReopenCase{}, "reopen"}, {aggregate.AddNote{}, "add_note"},
		{aggregate.LinkModLog{}, "link_mod_log"}, {aggregate.MarkExpiryProcessed{}, "mark_expiry_processed"},
		{aggregate.DeleteCase{}, "delete"}, {aggregate.RedactCase{}, "redact"}, {aggregate.ExpireCase{}, "expire"},
	}
	for _, tt := range tests {
		if got := tt.cmd.CommandName(); got != tt.name {
			t.Errorf("%T.CommandName() = %q, want %q", tt.cmd, got, tt.name)
		}
	}
}

func TestValidationError(t *testing.T) {
	t.Parallel()
	e := &aggregate.ValidationError{Field: "reason", Message: "is too long"}
	if e.Error() != "reason: is too long" {
		t.Fatalf("Error() = %q", e.Error())
	}
	if (&aggregate.ValidationError{Message: "no command"}).Error() != "no command" {
		t.Fatal("Error() without a field")
	}
	if !errors.Is(e, aggregate.ErrInvalidArgument) || errors.Unwrap(e) != aggregate.ErrInvalidArgument {
		t.Fatal("ValidationError does not unwrap to ErrInvalidArgument")
	}
	wrapped := fmt.Errorf("open case in guild %d: %w", guildID, e)
	var got *aggregate.ValidationError
	if !errors.As(wrapped, &got) || got.Field != "reason" || !errors.Is(wrapped, aggregate.ErrInvalidArgument) {
		t.Fatal("a wrapped ValidationError is lost")
	}
	// The sentinels are distinct.
	sentinels := []error{aggregate.ErrInvalidArgument, aggregate.ErrCaseNotFound, aggregate.ErrCaseDeleted, aggregate.ErrConflict, aggregate.ErrBadEvent}
	for i, a := range sentinels {
		for j, b := range sentinels {
			if (i == j) != errors.Is(a, b) {
				t.Errorf("errors.Is(%v, %v) = %v", a, b, errors.Is(a, b))
			}
		}
	}
	// A real error from Decide names the field in its text.
	_, err := aggregate.Decide(env(t0), nil, withReason(openCmd("BAN"), runes('x', 2001)))
	if err == nil || !strings.HasPrefix(err.Error(), "reason: ") || !strings.Contains(err.Error(), "2001") {
		t.Fatalf("error %v", err)
	}
}
