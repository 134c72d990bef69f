package events

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// The codec writes and reads the events it knows without reflection
// (codec_append.go, codec_parse.go) and keeps encoding/json for the rest.
// These tests check the two ways against each other on random events: the
// same bytes from Encode, the same event (or a fallback) from Decode.

// pieces are the parts random strings are made of, every case that JSON
// escapes among them.
var pieces = []string{"", "spam", "invite links in #general", "<b>", "&", ">", `"`, `\`, "/", "\n", "\r", "\t", "\b", "\f",
	"\x00", "\x1f", "\x7f", "é", "日本", "😀", "\u2028", "\u2029", "\ufffd", "\xff", "\xe2\x80", "\xed\xa0\x80", "ſ", "K"}

type randomEvents struct{ r *rand.Rand }

func (g randomEvents) str() string {
	var b strings.Builder
	for range g.r.IntN(4) {
		b.WriteString(pieces[g.r.IntN(len(pieces))])
	}
	return b.String()
}

func (g randomEvents) snowflake() Snowflake {
	switch g.r.IntN(4) {
	case 0:
		return 0
	case 1:
		return Snowflake(g.r.Uint64())
	}
	return Snowflake(g.r.Int64N(1<<62) + 1)
}

func (g randomEvents) time() time.Time {
	zones := []*time.Location{time.UTC, time.FixedZone("CET", 3600), time.FixedZone("", -5*3600-1800)}
	t := time.Date(1+g.r.IntN(9998), time.Month(1+g.r.IntN(12)), 1+g.r.IntN(28), g.r.IntN(24), g.r.IntN(60), g.r.IntN(60),
		[]int{0, 1000, 123456789, 500000000}[g.r.IntN(4)], zones[g.r.IntN(len(zones))])
	switch g.r.IntN(20) {
	case 0:
		t = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	case 1:
		t = time.Date(0, 1, 1, 0, 30, 0, 0, time.FixedZone("", 3600))
	case 2:
		t = time.Time{}
	case 3:
		t = time.Now() // with a monotonic reading
	}
	return t
}

func (g randomEvents) timePtr() *time.Time {
	if g.r.IntN(3) == 0 {
		return nil
	}
	t := g.time()
	return &t
}

func (g randomEvents) metadata() json.RawMessage {
	all := []string{"", `{}`, `{"a":1}`, ` {"a" : "<b>"} `, `{"s":"x y","n":[1,2.5e3,-0]}`, "{\"u\":\"\u2028\"}", `[1,2]`,
		`{"a":`, `null`, `{"a":"\u003c"}`, `{"k":"\"quoted\" and \\ back"}`, "{\"t\":\"a\tb\"}", `{"a":{"b":[true,false,null]}}`, "{\"x\":\"\xff\"}"}
	s := all[g.r.IntN(len(all))]
	if s == "" && g.r.IntN(2) == 0 {
		return nil
	}
	return json.RawMessage(s)
}

func (g randomEvents) fields() CaseFields {
	f := CaseFields{Type: []string{"BAN", "TEMPBAN", "CUSTOM_1", g.str()}[g.r.IntN(4)], UserID: g.snowflake(), ModeratorID: g.snowflake(),
		Reason: g.str(), ExpiresAt: g.timePtr(), Metadata: g.metadata(), Source: g.str(), ExternalID: g.str()}
	switch g.r.IntN(3) {
	case 0:
		f.UserRoles = []Snowflake{}
	case 1:
		for range 1 + g.r.IntN(3) {
			f.UserRoles = append(f.UserRoles, g.snowflake())
		}
	}
	return f
}

func (g randomEvents) payload() Payload {
	switch g.r.IntN(15) {
	case 0:
		return CaseOpened{CaseFields: g.fields()}
	case 1:
		return CaseImported{CaseFields: g.fields(), CreatedAt: g.time(), Closed: g.r.IntN(2) == 0, ExpiryProcessed: g.r.IntN(2) == 0,
			ModLogMessageID: g.snowflake(), ImportedFrom: g.str()}
	case 2:
		return CaseReasonAmended{Reason: g.str()}
	case 3:
		var urls []string
		switch g.r.IntN(3) {
		case 0:
			urls = []string{}
		case 1:
			urls = []string{g.str(), "https://cdn.example.com/a.png?x=1&y=<2>"}
		}
		return CaseNoteAdded{NoteID: uuid.New(), AuthorID: g.snowflake(), Text: g.str(), EvidenceURLs: urls}
	case 4:
		return CaseExpiryChanged{ExpiresAt: g.timePtr()}
	case 5:
		return CaseClosed{Reason: g.str()}
	case 6:
		return CaseReopened{Reason: g.str()}
	case 7:
		return ModLogMessageLinked{MessageID: g.snowflake(), ChannelID: g.snowflake()}
	case 8:
		return CaseMetadataUpdated{Metadata: g.metadata()}
	case 9:
		return CaseExpired{ExpiresAt: g.time()}
	case 10:
		return CaseExpiryProcessed{}
	case 11:
		return CaseDeleted{Reason: g.str()}
	case 12:
		return CaseRedacted{Reason: g.str()}
	case 13:
		return &CaseClosed{Reason: g.str()} // a pointer: encoding/json's way
	}
	return CaseExpired{ExpiresAt: g.time()}
}

func (g randomEvents) event() Event {
	id := func() uuid.UUID {
		if g.r.IntN(5) == 0 {
			return uuid.Nil
		}
		return uuid.Must(uuid.NewV7())
	}
	e := Event{
		Envelope: Envelope{EventID: id(), Event: "ignored", SchemaVersion: 7, GuildID: g.snowflake(), CaseNumber: g.r.Uint32(),
			CaseID: id(), OccurredAt: g.time(), ActorID: g.snowflake(), CommandID: id(),
			Command: []string{"", "open", "update_many", g.str()}[g.r.IntN(4)], CorrelationID: id()},
		Data: g.payload(),
		Seq:  g.r.Uint64(),
	}
	if g.r.IntN(2) == 0 { // a sealed event: a key id and ciphertext
		e.KeyID = id()
		e.Sealed = make([]byte, g.r.IntN(80))
		for i := range e.Sealed {
			e.Sealed[i] = byte(g.r.Uint32())
		}
		if len(e.Sealed) == 0 {
			e.Sealed = nil
		}
	}
	return e
}

func TestEncodeMatchesEncodingJSON(t *testing.T) {
	t.Parallel()

	codec, err := NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	g := randomEvents{rand.New(rand.NewPCG(1, 2))}
	fast := 0
	for i := range 5000 {
		e := g.event()
		got, gotErr := codec.Encode(e)
		want, wantErr := codec.encodeReflect(e, e.Data.EventName())
		if (gotErr == nil) != (wantErr == nil) || (gotErr != nil && gotErr.Error() != wantErr.Error()) {
			t.Fatalf("event %d %#v:\nEncode error %v\nencoding/json error %v", i, e, gotErr, wantErr)
		}
		if string(got) != string(want) {
			t.Fatalf("event %d %#v:\nEncode        %s\nencoding/json %s", i, e, got, want)
		}
		if _, ok := appendEvent(nil, &e, e.Data.EventName(), codec.current[e.Data.EventName()]); ok {
			fast++
		}
	}
	if fast < 1500 {
		t.Fatalf("only %d of 5000 events were written without encoding/json", fast)
	}
}

// checkParse fails the test when parseEvent accepts b but reads it
// otherwise than the encoding/json path, or accepts what that rejects.
func checkParse(t *testing.T, codec *Codec, b []byte) bool {
	t.Helper()
	got, ok := codec.parseEvent(b)
	if !ok {
		return false
	}
	want, err := codec.decodeReflect(b)
	if err != nil {
		t.Fatalf("parseEvent accepts %q, encoding/json rejects it: %v", b, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("parseEvent(%q) =\n%#v\nencoding/json reads\n%#v", b, got, want)
	}
	return true
}

// mutate returns b with a random edit of the kinds that make parseEvent
// and encoding/json part ways, if any would.
func mutate(r *rand.Rand, b []byte) []byte {
	out := append([]byte(nil), b...)
	i := r.IntN(len(out) + 1)
	inserts := []string{" ", "\n", ",", ":", "}", "]", "{", "[", `"`, `\`, "null", "true", "0", "-", "1e3", ".5", `"x"`, `"event":"closed",`,
		`"data":{},`, `"Reason":"a",`, `"reason":"b",`, `"schema_version":1,`, `"extra":1,`, "\xff", "\u2028", `\u0041`, "E", "+",
		`\ud83d\ude00`, `\ud800`, `\udc00\ud800`, `\u00e9`, `\/`, `\'`, `\x`}
	switch r.IntN(6) {
	case 0: // delete a byte or a few
		if len(out) > 0 && i < len(out) {
			j := min(len(out), i+1+r.IntN(4))
			out = append(out[:i], out[j:]...)
		}
	case 1, 2: // insert
		s := inserts[r.IntN(len(inserts))]
		out = append(out[:i], append([]byte(s), out[i:]...)...)
	case 3: // change a letter's case
		for k := i; k < len(out); k++ {
			if c := out[k]; 'a' <= c && c <= 'z' {
				out[k] = c - 'a' + 'A'
				break
			}
		}
	case 4: // replace a byte
		if i < len(out) {
			const bytes = "{}[],:\"\\ 0123456789abcdefnulltrue-+.eE\x00\x1f"
			out[i] = bytes[r.IntN(len(bytes))]
		}
	case 5: // repeat a part
		if len(out) > 0 && i < len(out) {
			j := min(len(out), i+r.IntN(40))
			out = append(out[:j], append(append([]byte(nil), out[i:j]...), out[j:]...)...)
		}
	}
	return out
}

func TestParseEventMatchesEncodingJSON(t *testing.T) {
	t.Parallel()

	renameWhy := Upcaster{Event: NameCaseClosed, From: 1, Up: func(data json.RawMessage) (json.RawMessage, error) { return data, nil }}
	for _, extra := range [][]Upcaster{nil, {renameWhy}} {
		codec, err := NewCodec(extra...)
		if err != nil {
			t.Fatal(err)
		}
		g := randomEvents{rand.New(rand.NewPCG(3, 4))}
		parsed, mutants := 0, 0
		for range 5000 {
			e := g.event()
			b, err := codec.Encode(e)
			if err != nil {
				continue
			}
			if checkParse(t, codec, b) {
				parsed++
			}
			for range 5 {
				b = mutate(g.r, b)
				if checkParse(t, codec, b) {
					mutants++
				}
			}
		}
		if parsed < 2500 {
			t.Fatalf("parseEvent read only %d of the encoded events", parsed)
		}
		t.Logf("parseEvent read %d encoded events and %d edited ones", parsed, mutants)
	}
}

// FuzzParseEvent checks parseEvent against the encoding/json path on any
// input: it may leave an event to encoding/json, but what it reads, it
// reads the same.
func FuzzParseEvent(f *testing.F) {
	codec, err := NewCodec()
	if err != nil {
		f.Fatal(err)
	}
	g := randomEvents{rand.New(rand.NewPCG(5, 6))}
	for range 30 {
		if b, err := codec.Encode(g.event()); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"event":"expiry_changed","schema_version":1,"data":{"expires_at":null}}`))
	f.Add([]byte(`{"event":"opened","schema_version":1,"data":{"type":"BAN","user_roles":[],"metadata":{ "a" : "<b>" }}}`))
	f.Add([]byte(` {"event":"closed","schema_version":1,"guild_id":12,"data":{"reason":"a\nb"}} `))
	f.Add([]byte(`{"event":"closed","schema_version":1,"data":{"reason":"\ud83d\ude00 \ud800 \ud800\u0041 \u00e9\/\u003c@1\u003e"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		checkParse(t, codec, b)
	})
}
