package command_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/command"
	"github.com/modledger/modledger/events"
	"github.com/modledger/modledger/events/shred"
)

// secretCase opens a case whose personal fields all hold text with secret
// in it, amends its reason and adds a note, and returns its number.
func secretCase(t *testing.T, b *testBundle, user events.Snowflake) uint32 {
	t.Helper()
	ctx := t.Context()
	p := command.OpenParams{Meta: meta(42), CaseFields: events.CaseFields{Type: aggregate.TypeJail, UserID: user, ModeratorID: 42,
		Reason: "secret reason", UserRoles: []events.Snowflake{918273645501234567}, Metadata: json.RawMessage(`{"handle":"secret handle"}`)}}
	r, err := b.client.CaseOpen(ctx, testGuild, p)
	if err != nil {
		t.Fatal(err)
	}
	n := r.Case.CaseNumber
	amended := "secret amended"
	if _, err := b.client.CaseUpdate(ctx, testGuild, command.UpdateParams{Meta: meta(42), CaseRef: command.CaseRef{CaseNumber: n}, Reason: &amended}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.client.CaseAddNote(ctx, testGuild, command.AddNoteParams{Meta: meta(42), CaseRef: command.CaseRef{CaseNumber: n},
		Text: "secret note", EvidenceURLs: []string{"https://evidence.test/secret.png"}}); err != nil {
		t.Fatal(err)
	}
	return n
}

// rawEvents returns the case's events as stored, not opened.
func (b *testBundle) rawEvents(t *testing.T, n uint32) ([]events.Event, [][]byte) {
	t.Helper()
	s, err := b.js.Stream(t.Context(), command.StreamNameDefault)
	if err != nil {
		t.Fatal(err)
	}
	var evs []events.Event
	var raw [][]byte
	last := s.CachedInfo().State.LastSeq
	for seq := uint64(1); seq <= last; seq++ {
		m, err := s.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatal(err)
		}
		cs, err := events.Subjects{}.ParseCase(m.Subject)
		if err != nil || cs.GuildID != testGuild || cs.CaseNumber != n {
			continue
		}
		e, err := b.codec.Decode(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		evs, raw = append(evs, e), append(raw, m.Data)
	}
	return evs, raw
}

// keyStored reports whether the key id is in the key stream: its block's
// latest version has it.
func (b *testBundle) keyStored(t *testing.T, id uuid.UUID) bool {
	t.Helper()
	s, err := b.js.Stream(t.Context(), shred.StreamName(command.StreamNameDefault))
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(t.Context(), shred.Subject(events.DefaultPrefix, id))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return shred.KeyInBlock(m.Data, id) != nil
}

// caseKeyOf returns the one key the case's stored events are sealed with.
func (b *testBundle) caseKeyOf(t *testing.T, n uint32) uuid.UUID {
	t.Helper()
	evs, raw := b.rawEvents(t, n)
	var id uuid.UUID
	for i, e := range evs {
		if bytes.Contains(raw[i], []byte("secret")) || bytes.Contains(raw[i], []byte("918273645501234567")) {
			t.Fatalf("stored %s event holds personal text: %s", e.Event, raw[i])
		}
		if e.KeyID == uuid.Nil {
			continue
		}
		if id != uuid.Nil && e.KeyID != id {
			t.Fatalf("case %d is sealed with keys %s and %s", n, id, e.KeyID)
		}
		id = e.KeyID
	}
	if id == uuid.Nil {
		t.Fatalf("case %d has no sealed event", n)
	}
	return id
}

// noSecret fails when v, as JSON, holds personal text.
func noSecret(t *testing.T, what string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte("secret")) || bytes.Contains(b, []byte("918273645501234567")) {
		t.Fatalf("%s holds personal text: %s", what, b)
	}
}

func TestRedactDestroysTheCaseKey(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	open := command.OpenParams{Meta: meta(42), CaseFields: events.CaseFields{Type: aggregate.TypeWarn, UserID: 5, ModeratorID: 42, Reason: "secret first"}}
	first, err := b.client.CaseOpen(ctx, testGuild, open)
	if err != nil {
		t.Fatal(err)
	}
	n := secretCase(t, b, 6)
	key := b.caseKeyOf(t, n)
	if !b.keyStored(t, key) {
		t.Fatal("the case's key is not in the key stream")
	}
	// Every case has its own key.
	if other := b.caseKeyOf(t, first.Case.CaseNumber); other == key {
		t.Fatal("two cases share a key")
	}
	// The stream holds ciphertext, and opens to the text.
	opened := b.storedEvents(t, events.Subjects{}.CaseAll(testGuild, n))
	if op := opened[0].Data.(events.CaseOpened); op.Reason != "secret reason" || len(op.UserRoles) != 1 || !strings.Contains(string(op.Metadata), "secret handle") {
		t.Fatalf("opened event %+v", op)
	}

	redact := command.RedactParams{Meta: meta(42), CaseRef: command.CaseRef{CaseNumber: n}, Reason: "erasure request"}
	r, err := b.client.CaseRedact(ctx, testGuild, redact)
	if err != nil {
		t.Fatal(err)
	}
	noSecret(t, "the redact reply", r)
	if b.keyStored(t, key) {
		t.Fatal("the key is still in the key stream after the redaction")
	}
	// The other case keeps its key.
	if !b.keyStored(t, b.caseKeyOf(t, first.Case.CaseNumber)) {
		t.Fatal("another case's key was destroyed")
	}
	noSecret(t, "the redacted case's stored events", b.storedEvents(t, events.Subjects{}.CaseAll(testGuild, n)))
	// The redaction retried, and every earlier command of the case
	// replayed, answer without the text, from the cache and from a fresh
	// service alike.
	again, err := b.client.CaseRedact(ctx, testGuild, redact)
	if err != nil || again.Appended != 1 || again.Seq != r.Seq {
		t.Fatalf("redaction retried: %+v, %v", again, err)
	}
	noSecret(t, "the retried redaction's reply", again)
	for range 2 {
		res, err := b.client.CaseRedactMany(ctx, testGuild, command.RedactManyParams{SetParams: command.SetParams{Meta: meta(42), CaseNumbers: []uint32{n}}})
		if err != nil {
			t.Fatal(err)
		}
		noSecret(t, "redact_many's reply", res)
		b.startService(t)
	}

	// Text written after the redaction gets a new key.
	later := "secret later"
	if _, err := b.client.CaseUpdate(ctx, testGuild, command.UpdateParams{Meta: meta(42), CaseRef: command.CaseRef{CaseNumber: n}, Reason: &later}); err != nil {
		t.Fatal(err)
	}
	evs, _ := b.rawEvents(t, n)
	last := evs[len(evs)-1]
	if last.KeyID == uuid.Nil || last.KeyID == key || !b.keyStored(t, last.KeyID) {
		t.Fatalf("reason after the redaction sealed with key %s (the destroyed one was %s)", last.KeyID, key)
	}
}

func TestRedactManyDestroysTheKeys(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var numbers []uint32
	var keys []uuid.UUID
	for u := range 3 {
		n := secretCase(t, b, events.Snowflake(100+u))
		numbers = append(numbers, n)
		keys = append(keys, b.caseKeyOf(t, n))
	}
	res, err := b.client.CaseRedactMany(t.Context(), testGuild, command.RedactManyParams{SetParams: command.SetParams{Meta: meta(42), CaseNumbers: numbers[:2]}})
	if err != nil || len(res.Changed) != 2 {
		t.Fatalf("redact_many: %+v, %v", res, err)
	}
	for i, k := range keys {
		if want := i == 2; b.keyStored(t, k) != want {
			t.Fatalf("case %d: key stored %t, want %t", numbers[i], !want, want)
		}
	}
}

// TestRedactionStoredWithoutKeyDeletionIsRepairedOnLoad simulates a crash
// between a redaction's append and its key's deletion: the redaction is
// appended straight to the stream. The next command service that loads
// the case destroys the key.
func TestRedactionStoredWithoutKeyDeletionIsRepairedOnLoad(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	n := secretCase(t, b, 7)
	key := b.caseKeyOf(t, n)
	evs, _ := b.rawEvents(t, n)
	e := events.Event{Envelope: evs[0].Envelope, Data: events.CaseRedacted{Reason: "erasure request"}}
	e.EventID, e.CommandID, e.CorrelationID, e.Command = uuid.Must(uuid.NewV7()), uuid.New(), uuid.New(), aggregate.CommandRedact
	e.KeyID, e.Sealed = uuid.Nil, nil
	data, err := b.codec.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg(events.Subjects{}.Case(testGuild, n, events.NameCaseRedacted))
	m.Data = data
	m.Header.Set(command.HeaderEvent, string(events.NameCaseRedacted))
	if _, err := b.js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	if !b.keyStored(t, key) {
		t.Fatal("the key went with the bare append")
	}
	// A fresh service (nothing cached) loads the case for a close.
	b.startService(t)
	if err := b.svc.Stop(ctx); err != nil { // the fresh one answers from now on
		t.Fatal(err)
	}
	r, err := b.client.CaseClose(ctx, testGuild, command.CloseParams{Meta: meta(42), CaseRef: command.CaseRef{CaseNumber: n}})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Case.Redacted {
		t.Fatalf("case after the close: %+v", r.Case)
	}
	noSecret(t, "the close reply", r)
	if b.keyStored(t, key) {
		t.Fatal("loading the redacted case did not destroy its key")
	}
}

func TestKeyMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	b := setup(t, func(c *command.Config) { c.Registerer = reg })
	n := secretCase(t, b, 8)
	if _, err := b.client.CaseRedact(t.Context(), testGuild, command.RedactParams{Meta: meta(42), CaseRef: command.CaseRef{CaseNumber: n}}); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			got[mf.GetName()] = m.GetCounter().GetValue()
		}
	}
	if got["modledger_keys_destroyed_total"] != 1 {
		t.Fatalf("keys destroyed %v, want 1", got["modledger_keys_destroyed_total"])
	}
	if _, ok := got["modledger_key_pool_waits_total"]; !ok {
		t.Fatal("no modledger_key_pool_waits_total")
	}
}
