package aggregate_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/events"
)

// fuzzSeconds bounds a fuzzed offset to about ±270 years, so that the
// times stay meaningful.
func fuzzSeconds(s int64) time.Duration { return time.Duration(s%(1<<33)) * time.Second }

// FuzzDecide fuzzes the fields of an OpenCase (or ImportCase) and of one
// change that follows it. Decide must never panic, its errors must be
// typed, and any payloads it returns must fold.
func FuzzDecide(f *testing.F) {
	f.Add("BAN", uint64(userID), uint64(moderatorID), uint64(0), "spam", int64(0), "", uint64(roleA), "", "", uint8(0), "new reason", int64(60), uint64(messageID))
	f.Add("TEMPBAN", uint64(userID), uint64(moderatorID), uint64(botID), "raid", int64(3600), `{"a":1}`, uint64(roleA), "audit_log", "131059", uint8(6), "", int64(7200), uint64(0))
	f.Add("TIMEOUT", uint64(1), uint64(maxSnowflake), uint64(tooBig), "ö", int64(28*24*3600+1), `[]`, uint64(0), "automod", "", uint8(2), "https://example.com/a.png", int64(-1), uint64(1))
	f.Add("JAIL", uint64(userID), uint64(moderatorID), uint64(moderatorID), "\xff", int64(-5), `{"k":"\u0000"}`, uint64(tooBig), "import", "x", uint8(14), "jail note", int64(3600), uint64(channelID))
	f.Add("", uint64(0), uint64(0), uint64(0), "", int64(0), "{", uint64(0), "bogus", "", uint8(9), "", int64(0), uint64(0))
	f.Fuzz(func(t *testing.T, typ string, user, mod, actor uint64, reason string, expiryOffset int64, metadata string,
		role uint64, source, externalID string, change uint8, changeText string, changeOffset int64, changeID uint64) {
		fields := events.CaseFields{
			Type:        typ,
			UserID:      events.Snowflake(user),
			ModeratorID: events.Snowflake(mod),
			Reason:      reason,
			Source:      source,
			ExternalID:  externalID,
		}
		if expiryOffset != 0 {
			fields.ExpiresAt = ptr(t0.Add(fuzzSeconds(expiryOffset)))
		}
		if metadata != "" {
			fields.Metadata = json.RawMessage(metadata)
		}
		if role != 0 {
			fields.UserRoles = []events.Snowflake{events.Snowflake(role)}
		}
		var create aggregate.Command = aggregate.OpenCase{CaseFields: fields}
		if change >= 200 {
			create = aggregate.ImportCase{CaseFields: fields, CaseNumber: uint32(changeID), CreatedAt: t0.Add(-fuzzSeconds(changeOffset)),
				Closed: change&1 == 1, ExpiryProcessed: change&2 == 2, ModLogMessageID: events.Snowflake(changeID), ImportedFrom: changeText}
		}
		l := newLedger(t)
		e := aggregate.Env{Now: t0, ActorID: events.Snowflake(actor)}
		ps, err := decideSafely(t, e, l.state, create, "create")
		checkTyped(t, err)
		l.apply(e, ps)

		later := aggregate.Env{Now: t0.Add(fuzzSeconds(changeOffset)), ActorID: events.Snowflake(actor)}
		if later.Now.Before(t0) {
			later.Now = t0.Add(-fuzzSeconds(changeOffset))
		}
		at := ptr(later.Now.Add(fuzzSeconds(changeOffset)))
		var cmd aggregate.Command
		switch change % 15 {
		case 0:
			cmd = aggregate.UpdateCase{Reason: &changeText}
		case 1:
			cmd = aggregate.UpdateCase{ExpiresAt: at, Metadata: json.RawMessage(changeText)}
		case 2:
			cmd = aggregate.AddNote{NoteID: uuid.UUID{byte(changeID)}, Text: changeText, EvidenceURLs: []string{changeText}}
		case 3:
			cmd = aggregate.UpdateCase{ClearExpiry: true, Status: ptr(aggregate.Status(changeText))}
		case 4:
			cmd = aggregate.CloseCase{Reason: changeText}
		case 5:
			cmd = aggregate.ReopenCase{Reason: changeText}
		case 6:
			cmd = aggregate.MarkExpiryProcessed{}
		case 7:
			cmd = aggregate.LinkModLog{MessageID: events.Snowflake(changeID), ChannelID: events.Snowflake(user)}
		case 8:
			cmd = aggregate.DeleteCase{Reason: changeText}
		case 9:
			cmd = aggregate.RedactCase{Reason: changeText}
		case 10:
			cmd = aggregate.ExpireCase{ExpiresAt: *at}
		case 11:
			if l.state.ExpiresAt != nil {
				cmd = aggregate.ExpireCase{ExpiresAt: *l.state.ExpiresAt}
			} else {
				cmd = aggregate.ExpireCase{}
			}
		case 12:
			cmd = aggregate.UpdateCase{Reason: &changeText, Status: ptr(aggregate.StatusClosed), ExpiresAt: at, Metadata: json.RawMessage(metadata)}
		case 13:
			cmd = aggregate.OpenCase{CaseFields: fields}
		default:
			cmd = aggregate.UpdateCase{ExpiresAt: l.state.ExpiresAt, Reason: &reason}
		}
		before := l.state.Clone()
		ps, err = decideSafely(t, later, l.state, cmd, "change")
		checkTyped(t, err)
		if err != nil || len(ps) == 0 {
			sameState(t, l.state, before)
		}
		l.apply(later, ps)
		if len(l.evs) > 0 {
			folded, err := aggregate.Fold(l.evs)
			if err != nil {
				t.Fatal(err)
			}
			sameState(t, folded, l.state)
		}
	})
}

// checkTyped fails the test for an error that is none of Decide's kinds.
func checkTyped(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var ve *aggregate.ValidationError
	if errors.As(err, &ve) || errors.Is(err, aggregate.ErrCaseNotFound) || errors.Is(err, aggregate.ErrCaseDeleted) || errors.Is(err, aggregate.ErrConflict) {
		return
	}
	t.Fatalf("untyped error %T: %v", err, err)
}
