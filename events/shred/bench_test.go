package shred_test

import (
	"encoding/json"
	"testing"

	"github.com/modledger/modledger/events"
	"github.com/modledger/modledger/events/shred"
)

// BenchmarkSeal and BenchmarkOpen measure the per-event cost sealing adds
// to the command service's encode path and to every reader's decode path,
// for a typical open (reason, roles, metadata).
func BenchmarkSeal(b *testing.B) {
	k := newKey(&testing.T{})
	e := event(events.CaseOpened{CaseFields: events.CaseFields{Type: "WARN", UserID: 1, ModeratorID: 2,
		Reason: "spamming invite links in #general", UserRoles: []events.Snowflake{1128459011873853470},
		Metadata: json.RawMessage(`{"channel_id":"1128460376495259688"}`)}})
	b.ReportAllocs()
	for b.Loop() {
		s := e
		if err := shred.Seal(&s, k); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	k := newKey(&testing.T{})
	e := event(events.CaseOpened{CaseFields: events.CaseFields{Type: "WARN", UserID: 1, ModeratorID: 2,
		Reason: "spamming invite links in #general", UserRoles: []events.Snowflake{1128459011873853470},
		Metadata: json.RawMessage(`{"channel_id":"1128460376495259688"}`)}})
	if err := shred.Seal(&e, k); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		s := e
		if err := shred.Open(&s, k); err != nil {
			b.Fatal(err)
		}
	}
}
