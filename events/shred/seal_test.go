package shred_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/modledger/modledger/events"
	"github.com/modledger/modledger/events/shred"
)

func newKey(t testing.TB) *shred.Key {
	t.Helper()
	raw := make([]byte, shred.KeySize)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	k, err := shred.NewKey(uuid.New(), raw)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func event(p events.Payload) events.Event {
	return events.Event{
		Envelope: events.Envelope{EventID: uuid.Must(uuid.NewV7()), Event: p.EventName(), SchemaVersion: 1,
			GuildID: 1234, CaseNumber: 7, CaseID: uuid.Must(uuid.NewV7()), OccurredAt: time.Now().UTC(),
			ActorID: 42, CommandID: uuid.New(), CorrelationID: uuid.New()},
		Data: p,
	}
}

// personalPayloads are payloads of every event that carries personal text.
func personalPayloads() []events.Payload {
	f := events.CaseFields{Type: "WARN", UserID: 1, ModeratorID: 2, Reason: "secret reason",
		UserRoles: []events.Snowflake{33, 44}, Metadata: json.RawMessage(`{"msg":"secret metadata"}`), Source: "command"}
	return []events.Payload{
		events.CaseOpened{CaseFields: f},
		events.CaseImported{CaseFields: f, CreatedAt: time.Now().UTC().Truncate(time.Microsecond), ImportedFrom: "bot"},
		events.CaseReasonAmended{Reason: "secret amended"},
		events.CaseNoteAdded{NoteID: uuid.New(), AuthorID: 9, Text: "secret note", EvidenceURLs: []string{"https://x.test/secret.png"}},
		events.CaseMetadataUpdated{Metadata: json.RawMessage(`{"secret":true}`)},
		events.CaseClosed{Reason: "secret close"},
		events.CaseReopened{Reason: "secret reopen"},
		events.CaseDeleted{Reason: "secret delete"},
	}
}

func TestSealOpenRoundTrip(t *testing.T) {
	t.Parallel()
	codec, err := events.NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	k := newKey(t)
	for _, p := range personalPayloads() {
		t.Run(string(p.EventName()), func(t *testing.T) {
			orig := event(p)
			e := orig
			if err := shred.Seal(&e, k); err != nil {
				t.Fatal(err)
			}
			if e.KeyID != k.ID || len(e.Sealed) == 0 {
				t.Fatalf("sealed event has key %s and %d sealed bytes", e.KeyID, len(e.Sealed))
			}
			b, err := codec.Encode(e)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(b, []byte("secret")) || bytes.Contains(b, []byte(`"33"`)) {
				t.Fatalf("encoded sealed event holds personal text: %s", b)
			}
			got, err := codec.Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			if err := shred.Open(&got, k); err != nil {
				t.Fatal(err)
			}
			want := orig
			want.KeyID = k.ID
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("opened event\n%#v\nwant\n%#v", got, want)
			}
		})
	}
}

func TestSealLeavesEventsWithoutPersonalText(t *testing.T) {
	t.Parallel()
	k := newKey(t)
	for _, p := range []events.Payload{events.CaseReasonAmended{}, events.CaseExpiryProcessed{},
		events.ModLogMessageLinked{MessageID: 5}, events.CaseRedacted{Reason: "erasure request"}} {
		e := event(p)
		if err := shred.Seal(&e, k); err != nil {
			t.Fatal(err)
		}
		if e.KeyID != uuid.Nil || e.Sealed != nil || !reflect.DeepEqual(e.Data, p) {
			t.Fatalf("%s: sealed to %#v", p.EventName(), e)
		}
	}
}

func TestOpenFailsWithTheWrongKeyOrEvent(t *testing.T) {
	t.Parallel()
	k := newKey(t)
	sealed := event(events.CaseReasonAmended{Reason: "secret"})
	if err := shred.Seal(&sealed, k); err != nil {
		t.Fatal(err)
	}
	cases := map[string]func(e *events.Event) *shred.Key{
		"another key": func(e *events.Event) *shred.Key {
			other := newKey(t)
			e.KeyID = other.ID
			return other
		},
		"key id mismatch": func(e *events.Event) *shred.Key { return newKey(t) },
		"another case":    func(e *events.Event) *shred.Key { e.CaseID = uuid.Must(uuid.NewV7()); return k },
		"another guild":   func(e *events.Event) *shred.Key { e.GuildID++; return k },
		"another event":   func(e *events.Event) *shred.Key { e.EventID = uuid.Must(uuid.NewV7()); return k },
		"another name": func(e *events.Event) *shred.Key {
			e.Data = events.CaseClosed{}
			return k
		},
		"tampered ciphertext": func(e *events.Event) *shred.Key {
			e.Sealed = bytes.Clone(e.Sealed)
			e.Sealed[len(e.Sealed)-20] ^= 1
			return k
		},
		"tampered nonce": func(e *events.Event) *shred.Key {
			e.Sealed = bytes.Clone(e.Sealed)
			e.Sealed[0] ^= 1
			return k
		},
		"truncated": func(e *events.Event) *shred.Key {
			e.Sealed = e.Sealed[:10]
			return k
		},
	}
	for name, edit := range cases {
		t.Run(name, func(t *testing.T) {
			e := sealed
			key := edit(&e)
			err := shred.Open(&e, key)
			if !errors.Is(err, shred.ErrSealBroken) {
				t.Fatalf("open: %v, want ErrSealBroken", err)
			}
		})
	}
}

func TestOpenWithoutKeyLeavesPersonalFieldsEmpty(t *testing.T) {
	t.Parallel()
	k := newKey(t)
	for _, p := range personalPayloads() {
		e := event(p)
		if err := shred.Seal(&e, k); err != nil {
			t.Fatal(err)
		}
		if err := shred.Open(&e, nil); err != nil {
			t.Fatal(err)
		}
		if e.Sealed != nil || shred.Personal(e.Data) {
			t.Fatalf("%s opened without its key: %#v", p.EventName(), e)
		}
		// Strip gives the same as a key that is gone.
		s := event(p)
		shred.Strip(&s)
		if !reflect.DeepEqual(s.Data, e.Data) {
			t.Fatalf("%s: strip %#v, open without key %#v", p.EventName(), s.Data, e.Data)
		}
	}
}

func TestPersonalAgreesWithSeal(t *testing.T) { // not parallel: AllocsPerRun
	k := newKey(t)
	payloads := append(personalPayloads(), events.CaseReasonAmended{}, events.CaseNoteAdded{NoteID: uuid.New()},
		events.CaseMetadataUpdated{Metadata: json.RawMessage(`{}`)}, events.CaseOpened{}, events.CaseImported{},
		events.CaseClosed{}, events.CaseExpired{}, events.CaseRedacted{Reason: "x"})
	for _, p := range payloads {
		e := event(p)
		if err := shred.Seal(&e, k); err != nil {
			t.Fatal(err)
		}
		if sealed := len(e.Sealed) > 0; sealed != shred.Personal(p) {
			t.Fatalf("%#v: Personal %t, sealed %t", p, shred.Personal(p), sealed)
		}
		if got := testing.AllocsPerRun(10, func() { shred.Personal(p) }); got != 0 {
			t.Fatalf("Personal allocates %.0f times", got)
		}
	}
}

// TestSealRoundTripsHostileText: whatever text an event holds, it opens
// back as encoding/json would have read it from the event itself.
func TestSealRoundTripsHostileText(t *testing.T) {
	t.Parallel()
	codec, err := events.NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	k := newKey(t)
	for i, s := range []string{
		`"quotes" \backslash\ \\u0000 \n`, "\x01\x02\t\n\r\x1b[31mred\x1b[0m\x7f", "line\u2028separator\u2029",
		"<script>alert(1)</script> &amp;", "🔨 👋🏽 🏳️\u200d🌈", "\u200fمرحبا\u202e", "bad \xff utf-8", "\x00nul",
	} {
		p := events.CaseNoteAdded{NoteID: uuid.New(), AuthorID: 1, Text: s, EvidenceURLs: []string{"https://x.test/" + s}}
		e := event(p)
		plainEv, err := codec.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		want, err := codec.Decode(plainEv) // what the text reads as without sealing
		if err != nil {
			t.Fatal(err)
		}
		if err := shred.Seal(&e, k); err != nil {
			t.Fatal(err)
		}
		b, err := codec.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := codec.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		if err := shred.Open(&got, k); err != nil {
			t.Fatalf("text %d: %v", i, err)
		}
		if !reflect.DeepEqual(got.Data, want.Data) {
			t.Fatalf("text %d opened as %#v, want %#v", i, got.Data, want.Data)
		}
	}
}
