package aggregate_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/events"
)

// benchOpen is a realistic open: a tempban with roles and metadata.
func benchOpen() aggregate.OpenCase {
	return aggregate.OpenCase{CaseFields: events.CaseFields{
		Type:        aggregate.TypeTempban,
		UserID:      userID,
		ModeratorID: moderatorID,
		Reason:      "spamming invite links in #general after two warnings",
		ExpiresAt:   ptr(t0.Add(7 * 24 * time.Hour)),
		UserRoles:   []events.Snowflake{roleA, roleB},
		Metadata:    json.RawMessage(`{"channel":"general","messages_deleted":14,"automod_rule":"invites"}`),
		Source:      aggregate.SourceAuditLog,
		ExternalID:  "1310594711937486858",
	}}
}

func BenchmarkDecideOpen(b *testing.B) {
	e := env(t0)
	cmd := benchOpen()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := aggregate.Decide(e, nil, cmd); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecideUpdate(b *testing.B) {
	l := opened(b, benchOpen())
	e := env(t0.Add(time.Hour))
	cmd := aggregate.UpdateCase{
		Reason:    ptr("spamming invite links; evaded with an alt"),
		ExpiresAt: ptr(t0.Add(14 * 24 * time.Hour)),
		Metadata:  json.RawMessage(`{"channel":"general","messages_deleted":15,"automod_rule":"invites","alt":true}`),
	}
	b.ReportAllocs()
	for b.Loop() {
		ps, err := aggregate.Decide(e, l.state, cmd)
		if err != nil || len(ps) != 3 {
			b.Fatal(names(ps), err)
		}
	}
}

// BenchmarkFold folds a case with 20 events, as a command handler does on
// a cache miss.
func BenchmarkFold(b *testing.B) {
	l := opened(b, benchOpen())
	for i := range 19 {
		e := env(t0.Add(time.Duration(i+1) * time.Minute))
		var cmd aggregate.Command
		switch i % 5 {
		case 0:
			cmd = aggregate.UpdateCase{Reason: ptr("reason " + string(rune('a'+i)))}
		case 1:
			cmd = aggregate.AddNote{NoteID: uuid.New(), Text: "see screenshot", EvidenceURLs: []string{"https://cdn.example.com/a.png"}}
		case 2:
			cmd = aggregate.CloseCase{}
		case 3:
			cmd = aggregate.ReopenCase{}
		case 4:
			cmd = aggregate.UpdateCase{Metadata: json.RawMessage(`{"step":` + string(rune('0'+i%10)) + `}`)}
		}
		if ps := l.must(e, cmd); len(ps) != 1 {
			b.Fatalf("step %d appended %d events", i, len(ps))
		}
	}
	if len(l.evs) != 20 {
		b.Fatalf("%d events, want 20", len(l.evs))
	}
	b.ReportAllocs()
	for b.Loop() {
		c, err := aggregate.Fold(l.evs)
		if err != nil || c.Events != 20 {
			b.Fatal(err)
		}
	}
}
