package events_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/modledger/modledger/events"
)

// The benchmarks below measure the codec and the subjects, which every
// command and every projected event goes through. Their setup is small so
// that the suite can run each of them once (-benchtime 1x); the figures are
// in docs/benchmarks.md ("Domain and codec micro-benchmarks").

// largePayloads returns, for every event whose size varies, a payload at
// the ledger's limits: 2000-character texts, 250 roles, 10 evidence links,
// 8 KiB of metadata. Events of a fixed size are left out.
func largePayloads() []events.Payload {
	text := strings.Repeat("spam ", 400) // 2000 characters
	roles := make([]events.Snowflake, 250)
	for i := range roles {
		roles[i] = roleA + events.Snowflake(i)
	}
	var md strings.Builder
	md.WriteString(`{"messages":[`)
	for i := 0; md.Len() < 8000; i++ {
		if i > 0 {
			md.WriteByte(',')
		}
		fmt.Fprintf(&md, `{"id":"%d","content":"join discord.gg/free-nitro now <3"}`, uint64(messageID)+uint64(i))
	}
	md.WriteString(`]}`)
	urls := make([]string, 10)
	for i := range urls {
		urls[i] = fmt.Sprintf("https://discord.com/channels/1128457362048573440/1128460376495259688/%d", uint64(messageID)+uint64(i))
	}
	expires := time.Date(2026, 12, 2, 13, 0, 0, 0, time.UTC)
	fields := events.CaseFields{
		Type:        "TEMPBAN",
		UserID:      userID,
		ModeratorID: moderatorID,
		Reason:      text,
		ExpiresAt:   &expires,
		UserRoles:   roles,
		Metadata:    json.RawMessage(md.String()),
		Source:      "audit_log",
		ExternalID:  "1310594711937486858",
	}
	return []events.Payload{
		events.CaseOpened{CaseFields: fields},
		events.CaseImported{CaseFields: fields, CreatedAt: expires.Add(-time.Hour), ModLogMessageID: messageID, ImportedFrom: "tux"},
		events.CaseReasonAmended{Reason: text},
		events.CaseNoteAdded{NoteID: noteID, AuthorID: moderatorID, Text: text, EvidenceURLs: urls},
		events.CaseClosed{Reason: text},
		events.CaseReopened{Reason: text},
		events.CaseMetadataUpdated{Metadata: fields.Metadata},
		events.CaseDeleted{Reason: text},
		events.CaseRedacted{Reason: text},
	}
}

// codecBench is one event to encode and decode in a benchmark.
type codecBench struct {
	name  string // <event>/size=small|large
	event events.Event
}

// codecBenches returns every event with typical contents (samplePayloads,
// in UTC as the ledger writes them) and, where the size varies, at its
// limits.
func codecBenches() []codecBench {
	var out []codecBench
	add := func(size string, ps []events.Payload) {
		for _, p := range ps {
			e := sampleEvent(p)
			e.OccurredAt = e.OccurredAt.UTC()
			out = append(out, codecBench{name: string(p.EventName()) + "/size=" + size, event: e})
		}
	}
	add("small", utcPayloads(samplePayloads()))
	add("large", largePayloads())
	return out
}

// utcPayloads returns ps with their times in UTC, as Decide makes them.
func utcPayloads(ps []events.Payload) []events.Payload {
	out := make([]events.Payload, len(ps))
	for i, p := range ps {
		switch q := p.(type) {
		case events.CaseOpened:
			q.ExpiresAt = ptrUTC(q.ExpiresAt)
			p = q
		case events.CaseImported:
			q.ExpiresAt = ptrUTC(q.ExpiresAt)
			q.CreatedAt = q.CreatedAt.UTC()
			p = q
		case events.CaseExpiryChanged:
			q.ExpiresAt = ptrUTC(q.ExpiresAt)
			p = q
		case events.CaseExpired:
			q.ExpiresAt = q.ExpiresAt.UTC()
			p = q
		}
		out[i] = p
	}
	return out
}

func ptrUTC(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func BenchmarkCodecEncode(b *testing.B) {
	codec := newCodec(b)
	for _, cb := range codecBenches() {
		b.Run(cb.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := codec.Encode(cb.event); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkCodecDecode(b *testing.B) {
	codec := newCodec(b)
	for _, cb := range codecBenches() {
		b.Run(cb.name, func(b *testing.B) {
			data, err := codec.Encode(cb.event)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := codec.Decode(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSubjects(b *testing.B) {
	var s events.Subjects
	subject := s.Case(guildID, 4821, events.NameCaseReasonAmended)
	benches := []struct {
		name string
		fn   func() string
	}{
		{name: "case", fn: func() string { return s.Case(guildID, 4821, events.NameCaseReasonAmended) }},
		{name: "case_all", fn: func() string { return s.CaseAll(guildID, 4821) }},
		{name: "guild_opened", fn: func() string { return s.GuildOpened(guildID) }},
		{name: "external_id_claim", fn: func() string {
			return s.ExternalIDClaim(guildID, "kq3v5xq2b7tfoc4xj2r6a4iqe4")
		}},
		{name: "command", fn: func() string { return s.Command(guildID, "open") }},
	}
	for _, bb := range benches {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if bb.fn() == "" {
					b.Fatal("empty subject")
				}
			}
		})
	}
	b.Run("parse_case", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if cs, err := s.ParseCase(subject); err != nil || cs.CaseNumber != 4821 {
				b.Fatal(cs, err)
			}
		}
	})
}
