package events_test

import (
	"testing"

	"github.com/modledger/modledger/events"
)

// TestSubjectAllocs fails when building or parsing a case subject, which
// every appended and every projected event does, allocates more than it
// needs to: building allocates only the subject, parsing nothing. It does
// not run in parallel: testing.AllocsPerRun counts the allocations of the
// whole process.
func TestSubjectAllocs(t *testing.T) {
	var s events.Subjects
	subject := s.Case(guildID, 4821, events.NameCaseReasonAmended)
	tests := []struct {
		name string
		max  float64
		fn   func()
	}{
		{name: "Case", max: 1, fn: func() { _ = s.Case(guildID, 4821, events.NameCaseReasonAmended) }},
		{name: "CaseAll", max: 1, fn: func() { _ = s.CaseAll(guildID, 4821) }},
		{name: "GuildOpened", max: 1, fn: func() { _ = s.GuildOpened(guildID) }},
		{name: "ParseCase", max: 0, fn: func() {
			if _, err := s.ParseCase(subject); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		if got := testing.AllocsPerRun(100, tt.fn); got > tt.max {
			t.Errorf("%s: %v allocations, want at most %v", tt.name, got, tt.max)
		}
	}
}

// TestCodecAllocs fails when encoding or decoding an event allocates more
// than it needs to: Encode its buffer, Decode the reason and the payload.
// Not in parallel, as TestSubjectAllocs.
func TestCodecAllocs(t *testing.T) {
	codec := newCodec(t)
	e := sampleEvent(events.CaseClosed{Reason: "appeal accepted"})
	e.OccurredAt = e.OccurredAt.UTC()
	b, err := codec.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	if got := testing.AllocsPerRun(100, func() { _, _ = codec.Encode(e) }); got > 1 {
		t.Errorf("Encode: %v allocations, want at most 1", got)
	}
	if got := testing.AllocsPerRun(100, func() { _, _ = codec.Decode(b) }); got > 2 {
		t.Errorf("Decode: %v allocations, want at most 2", got)
	}
}

// TestSealedCodecAllocs is TestCodecAllocs for a sealed event: Encode still
// allocates once, and Decode the sealed bytes and the payload (the reason
// is empty). Not in parallel, as TestSubjectAllocs.
func TestSealedCodecAllocs(t *testing.T) {
	codec := newCodec(t)
	e := sampleEvent(events.CaseClosed{})
	e.OccurredAt = e.OccurredAt.UTC()
	e.KeyID = e.CaseID
	e.Sealed = make([]byte, 60)
	b, err := codec.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	d, err := codec.Decode(b)
	if err != nil || d.KeyID != e.KeyID || len(d.Sealed) != 60 {
		t.Fatalf("decoded %+v, %v", d, err)
	}
	if got := testing.AllocsPerRun(100, func() { _, _ = codec.Encode(e) }); got > 1 {
		t.Errorf("Encode: %v allocations, want at most 1", got)
	}
	if got := testing.AllocsPerRun(100, func() { _, _ = codec.Decode(b) }); got > 2 {
		t.Errorf("Decode: %v allocations, want at most 2", got)
	}
}
