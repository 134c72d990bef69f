package events_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/modledger/modledger/events"
)

// Realistic ids used across the tests.
const (
	guildID     events.Snowflake = 1128457362048573440
	userID      events.Snowflake = 934871256019738654
	moderatorID events.Snowflake = 272937604339466240
	botID       events.Snowflake = 1097204518803394560
	roleA       events.Snowflake = 1128459011873853470
	roleB       events.Snowflake = 1131920475628843049
	messageID   events.Snowflake = 1310594827103211571
	channelID   events.Snowflake = 1128460376495259688
)

var (
	eventID       = uuid.MustParse("01936c2e-7b5a-7c3d-9e41-5a2f8b6c1d30")
	caseID        = uuid.MustParse("01936c2e-7b4f-7a10-8d2c-3e9b1f0a6c55")
	commandID     = uuid.MustParse("01936c2e-7a01-7f62-b1d4-0c8e2a7f9b13")
	correlationID = uuid.MustParse("01936c2e-79f0-7b88-a3c5-6d1e4f2b8a97")
	noteID        = uuid.MustParse("01936c2f-0c12-7e4a-9b37-2f5d8c1a6e04")
)

// cet is a non-UTC zone, so that the tests see the codec normalise times.
var cet = time.FixedZone("CET", 3600)

// samplePayloads returns one payload of every event with every field set.
// Times are in a non-UTC zone on purpose.
func samplePayloads() []events.Payload {
	expires := time.Date(2026, 12, 2, 13, 0, 0, 0, cet)
	created := time.Date(2023, 4, 17, 21, 4, 55, 120000000, cet)
	fields := events.CaseFields{
		Type:        "TEMPBAN",
		UserID:      userID,
		ModeratorID: moderatorID,
		Reason:      "spamming invite links in #general",
		ExpiresAt:   &expires,
		UserRoles:   []events.Snowflake{roleA, roleB},
		Metadata:    json.RawMessage(`{"channel":"general","messages_deleted":14}`),
		Source:      "audit_log",
		ExternalID:  "1310594711937486858",
	}
	return []events.Payload{
		events.CaseOpened{CaseFields: fields},
		events.CaseImported{
			CaseFields:      fields,
			CreatedAt:       created,
			Closed:          true,
			ExpiryProcessed: true,
			ModLogMessageID: messageID,
			ImportedFrom:    "tux",
		},
		events.CaseReasonAmended{Reason: "spamming invite links; alt account of a banned user"},
		events.CaseNoteAdded{
			NoteID:       noteID,
			AuthorID:     moderatorID,
			Text:         "Same invite as the raid on 2026-11-20.",
			EvidenceURLs: []string{"https://discord.com/channels/1128457362048573440/1128460376495259688/1310594827103211571"},
		},
		events.CaseExpiryChanged{ExpiresAt: &expires},
		events.CaseClosed{Reason: "appeal accepted"},
		events.CaseReopened{Reason: "appeal was made by an alt"},
		events.ModLogMessageLinked{MessageID: messageID, ChannelID: channelID},
		events.CaseMetadataUpdated{Metadata: json.RawMessage(`{"appeal":{"ticket":4821}}`)},
		events.CaseExpired{ExpiresAt: expires},
		events.CaseExpiryProcessed{},
		events.CaseDeleted{Reason: "opened on the wrong user"},
		events.CaseRedacted{Reason: "GDPR erasure request 2026-118"},
	}
}

// sampleEvent wraps p in an envelope with every field set.
func sampleEvent(p events.Payload) events.Event {
	return events.Event{
		Envelope: events.Envelope{
			EventID:       eventID,
			Event:         p.EventName(),
			SchemaVersion: events.CurrentVersion,
			GuildID:       guildID,
			CaseNumber:    42,
			CaseID:        caseID,
			OccurredAt:    time.Date(2026, 11, 25, 13, 4, 5, 123456789, cet),
			ActorID:       moderatorID,
			CommandID:     commandID,
			CorrelationID: correlationID,
		},
		Data: p,
	}
}

// newCodec returns the default codec or fails the test.
func newCodec(tb testing.TB, extra ...events.Upcaster) *events.Codec {
	tb.Helper()
	c, err := events.NewCodec(extra...)
	if err != nil {
		tb.Fatalf("NewCodec: %v", err)
	}
	return c
}

// canonical returns e as the codec gives it back after an Encode and a
// Decode: times in UTC, metadata compacted and HTML-escaped as encoding/json
// writes it, empty optional lists dropped (they are omitempty), and a nil
// metadata object in CaseMetadataUpdated written as null.
func canonical(tb testing.TB, e events.Event) events.Event {
	tb.Helper()
	utc := func(t *time.Time) *time.Time {
		if t == nil {
			return nil
		}
		u := t.UTC()
		return &u
	}
	raw := func(m json.RawMessage, keepNil bool) json.RawMessage {
		if m == nil {
			if keepNil {
				return nil
			}
			return json.RawMessage("null")
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, m); err != nil {
			tb.Fatalf("compact %q: %v", m, err)
		}
		var esc bytes.Buffer
		json.HTMLEscape(&esc, buf.Bytes())
		return json.RawMessage(esc.Bytes())
	}
	fields := func(f events.CaseFields) events.CaseFields {
		f.ExpiresAt = utc(f.ExpiresAt)
		f.Metadata = raw(f.Metadata, true)
		if len(f.UserRoles) == 0 {
			f.UserRoles = nil
		}
		return f
	}
	e.OccurredAt = e.OccurredAt.UTC()
	switch p := e.Data.(type) {
	case events.CaseOpened:
		p.CaseFields = fields(p.CaseFields)
		e.Data = p
	case events.CaseImported:
		p.CaseFields = fields(p.CaseFields)
		p.CreatedAt = p.CreatedAt.UTC()
		e.Data = p
	case events.CaseNoteAdded:
		if len(p.EvidenceURLs) == 0 {
			p.EvidenceURLs = nil
		}
		e.Data = p
	case events.CaseExpiryChanged:
		p.ExpiresAt = utc(p.ExpiresAt)
		e.Data = p
	case events.CaseExpired:
		p.ExpiresAt = p.ExpiresAt.UTC()
		e.Data = p
	case events.CaseMetadataUpdated:
		p.Metadata = raw(p.Metadata, false)
		e.Data = p
	}
	return e
}

// matchSubject reports whether a NATS subject matches a filter with the
// wildcards * (one token) and > (one or more trailing tokens).
func matchSubject(filter, subject string) bool {
	f := strings.Split(filter, ".")
	s := strings.Split(subject, ".")
	for i, tok := range f {
		if tok == ">" {
			return len(s) > i
		}
		if i >= len(s) || (tok != "*" && tok != s[i]) {
			return false
		}
	}
	return len(f) == len(s)
}
