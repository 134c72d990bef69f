package events_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modledger/modledger/events"
)

func TestSamplePayloadsCoverEveryEvent(t *testing.T) {
	t.Parallel()

	var got []events.Name
	for _, p := range samplePayloads() {
		got = append(got, p.EventName())
	}
	if want := events.Names(); !slices.Equal(got, want) {
		t.Fatalf("sample payloads = %v, want one per name in order %v", got, want)
	}
}

func TestCodecRoundTrip(t *testing.T) {
	t.Parallel()

	codec := newCodec(t)
	for _, p := range samplePayloads() {
		t.Run(string(p.EventName()), func(t *testing.T) {
			t.Parallel()
			in := sampleEvent(p)
			b, err := codec.Encode(in)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			got, err := codec.Decode(b)
			if err != nil {
				t.Fatalf("Decode(%s): %v", b, err)
			}
			want := canonical(t, in)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("Decode(Encode(e)):\n got %#v\nwant %#v", got, want)
			}
			if got.OccurredAt.Location() != time.UTC {
				t.Fatalf("OccurredAt location = %v, want UTC", got.OccurredAt.Location())
			}
			// Encoding the decoded event gives the same bytes.
			again, err := codec.Encode(got)
			if err != nil {
				t.Fatalf("Encode(decoded): %v", err)
			}
			if !bytes.Equal(again, b) {
				t.Fatalf("Encode(Decode(b)) =\n%s\nwant\n%s", again, b)
			}
		})
	}
}

func TestCodecEncodeEnvelope(t *testing.T) {
	t.Parallel()

	codec := newCodec(t)
	in := sampleEvent(events.CaseClosed{Reason: "appeal accepted"})
	in.Event = "wrong"   // Encode takes the name from the payload
	in.SchemaVersion = 9 // and the version from the codec
	in.Seq = 1234        // Seq is not part of the event
	b, err := codec.Encode(in)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("Unmarshal(%s): %v", b, err)
	}
	want := map[string]string{
		"event_id":       `"01936c2e-7b5a-7c3d-9e41-5a2f8b6c1d30"`,
		"event":          `"closed"`,
		"schema_version": `1`,
		"guild_id":       `"1128457362048573440"`,
		"case_number":    `42`,
		"case_id":        `"01936c2e-7b4f-7a10-8d2c-3e9b1f0a6c55"`,
		"occurred_at":    `"2026-11-25T12:04:05.123456789Z"`,
		"actor_id":       `"272937604339466240"`,
		"command_id":     `"01936c2e-7a01-7f62-b1d4-0c8e2a7f9b13"`,
		"correlation_id": `"01936c2e-79f0-7b88-a3c5-6d1e4f2b8a97"`,
		"data":           `{"reason":"appeal accepted"}`,
	}
	if len(m) != len(want) {
		t.Fatalf("encoded fields = %v, want exactly %v", keys(m), keys(want))
	}
	for k, v := range want {
		if got, ok := m[k]; !ok || string(got) != v {
			t.Fatalf("field %s = %s, want %s (event %s)", k, got, v, b)
		}
	}
}

func TestCodecEncodeTimesUTC(t *testing.T) {
	t.Parallel()

	codec := newCodec(t)
	for _, p := range samplePayloads() {
		in := sampleEvent(p)
		b, err := codec.Encode(in)
		if err != nil {
			t.Fatalf("Encode %s: %v", p.EventName(), err)
		}
		if bytes.Contains(b, []byte("+01:00")) {
			t.Fatalf("Encode %s wrote a local time: %s", p.EventName(), b)
		}
		// The caller's event is not changed.
		if !reflect.DeepEqual(in, sampleEvent(p)) {
			t.Fatalf("Encode %s changed its argument", p.EventName())
		}
	}
	expires := time.Date(2026, 12, 2, 13, 0, 0, 0, cet)
	b, err := codec.Encode(sampleEvent(events.CaseExpiryChanged{ExpiresAt: &expires}))
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	if !bytes.Contains(b, []byte(`"data":{"expires_at":"2026-12-02T12:00:00Z"}`)) {
		t.Fatalf("Encode = %s, want expires_at in UTC", b)
	}
	if expires.Location() != cet {
		t.Fatalf("Encode changed the caller's time to %v", expires.Location())
	}
}

// TestCodecPayloadFieldNames pins the wire names of every payload field:
// they are the public contract and are never renamed.
func TestCodecPayloadFieldNames(t *testing.T) {
	t.Parallel()

	caseFields := []string{"type", "user_id", "moderator_id", "reason", "expires_at", "user_roles", "metadata", "source", "external_id"}
	want := map[events.Name][]string{
		events.NameCaseOpened:          caseFields,
		events.NameCaseImported:        append(slices.Clone(caseFields), "created_at", "closed", "expiry_processed", "mod_log_message_id", "imported_from"),
		events.NameCaseReasonAmended:   {"reason"},
		events.NameCaseNoteAdded:       {"note_id", "author_id", "text", "evidence_urls"},
		events.NameCaseExpiryChanged:   {"expires_at"},
		events.NameCaseClosed:          {"reason"},
		events.NameCaseReopened:        {"reason"},
		events.NameModLogMessageLinked: {"message_id", "channel_id"},
		events.NameCaseMetadataUpdated: {"metadata"},
		events.NameCaseExpired:         {"expires_at"},
		events.NameCaseExpiryProcessed: {},
		events.NameCaseDeleted:         {"reason"},
		events.NameCaseRedacted:        {"reason"},
	}
	codec := newCodec(t)
	for _, p := range samplePayloads() {
		b, err := codec.Encode(sampleEvent(p))
		if err != nil {
			t.Fatalf("Encode %s: %v", p.EventName(), err)
		}
		var w struct {
			Data map[string]json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(b, &w); err != nil {
			t.Fatalf("Unmarshal(%s): %v", b, err)
		}
		got := keys(w.Data)
		exp := slices.Sorted(slices.Values(want[p.EventName()]))
		if !slices.Equal(got, exp) {
			t.Fatalf("%s data fields = %v, want %v", p.EventName(), got, exp)
		}
		for _, k := range []string{"user_id", "moderator_id", "author_id", "message_id", "channel_id", "mod_log_message_id"} {
			if v, ok := w.Data[k]; ok && v[0] != '"' {
				t.Fatalf("%s %s = %s, want a JSON string", p.EventName(), k, v)
			}
		}
	}
}

func TestCodecOptionalFieldsOmitted(t *testing.T) {
	t.Parallel()

	codec := newCodec(t)
	tests := []struct {
		in   events.Payload
		want string
	}{
		{in: events.CaseOpened{CaseFields: events.CaseFields{Type: "WARN", UserID: userID, ModeratorID: moderatorID}},
			want: `{"type":"WARN","user_id":"934871256019738654","moderator_id":"272937604339466240"}`},
		{in: events.CaseClosed{}, want: `{}`},
		{in: events.CaseExpiryChanged{}, want: `{"expires_at":null}`},
		{in: events.ModLogMessageLinked{MessageID: messageID}, want: `{"message_id":"1310594827103211571"}`},
		{in: events.CaseExpiryProcessed{}, want: `{}`},
	}
	for _, tt := range tests {
		b, err := codec.Encode(sampleEvent(tt.in))
		if err != nil {
			t.Fatalf("Encode %s: %v", tt.in.EventName(), err)
		}
		var w struct {
			Data json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(b, &w); err != nil {
			t.Fatalf("Unmarshal: %v", err)
		}
		if string(w.Data) != tt.want {
			t.Fatalf("%s data = %s, want %s", tt.in.EventName(), w.Data, tt.want)
		}
		got, err := codec.Decode(b)
		if err != nil {
			t.Fatalf("Decode(%s): %v", b, err)
		}
		if !reflect.DeepEqual(got.Data, tt.in) {
			t.Fatalf("Decode data = %#v, want %#v", got.Data, tt.in)
		}
	}
}

func TestCodecEncodeErrors(t *testing.T) {
	t.Parallel()

	codec := newCodec(t)
	e := sampleEvent(events.CaseClosed{})
	e.Data = nil
	if _, err := codec.Encode(e); !errors.Is(err, events.ErrMalformedEvent) {
		t.Fatalf("Encode without payload: error = %v, want ErrMalformedEvent", err)
	}
	e = sampleEvent(events.CaseClosed{})
	e.OccurredAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := codec.Encode(e); !errors.Is(err, events.ErrMalformedEvent) {
		t.Fatalf("Encode year 10000: error = %v, want ErrMalformedEvent", err)
	}
	late := time.Date(9999, 12, 31, 23, 30, 0, 0, time.FixedZone("", -3600))
	if _, err := codec.Encode(sampleEvent(events.CaseExpired{ExpiresAt: late})); !errors.Is(err, events.ErrMalformedEvent) {
		t.Fatalf("Encode expiry in year 10000 UTC: error = %v, want ErrMalformedEvent", err)
	}
	e = sampleEvent(events.CaseMetadataUpdated{Metadata: json.RawMessage(`{"a":`)})
	if _, err := codec.Encode(e); err == nil {
		t.Fatal("Encode with invalid metadata JSON: no error")
	}
}

// validEvent is a well-formed encoded event; the decode tests edit it.
const validEvent = `{"event_id":"01936c2e-7b5a-7c3d-9e41-5a2f8b6c1d30","event":"closed","schema_version":1,` +
	`"guild_id":"1128457362048573440","case_number":42,"case_id":"01936c2e-7b4f-7a10-8d2c-3e9b1f0a6c55",` +
	`"occurred_at":"2026-11-25T12:04:05Z","actor_id":"272937604339466240",` +
	`"command_id":"01936c2e-7a01-7f62-b1d4-0c8e2a7f9b13","correlation_id":"01936c2e-79f0-7b88-a3c5-6d1e4f2b8a97",` +
	`"data":{"reason":"appeal accepted"}}`

// edit returns validEvent with the first occurrence of old replaced.
func edit(t *testing.T, old, new string) string {
	t.Helper()
	if !strings.Contains(validEvent, old) {
		t.Fatalf("validEvent has no %q", old)
	}
	return strings.Replace(validEvent, old, new, 1)
}

func TestCodecDecodeAccepts(t *testing.T) {
	t.Parallel()

	codec := newCodec(t)
	tests := []struct {
		name  string
		in    string
		check func(t *testing.T, e events.Event)
	}{
		{name: "valid", in: validEvent, check: func(t *testing.T, e events.Event) {
			if e.Data != (events.CaseClosed{Reason: "appeal accepted"}) || e.GuildID != guildID || e.CaseNumber != 42 {
				t.Fatalf("got %+v", e)
			}
		}},
		{name: "surrounding whitespace", in: " \n\t" + validEvent + "\r\n "},
		{name: "guild as number", in: edit(t, `"guild_id":"1128457362048573440"`, `"guild_id":1128457362048573440`), check: func(t *testing.T, e events.Event) {
			if e.GuildID != guildID {
				t.Fatalf("GuildID = %d", e.GuildID)
			}
		}},
		{name: "offset time", in: edit(t, `"2026-11-25T12:04:05Z"`, `"2026-11-25T13:04:05+01:00"`), check: func(t *testing.T, e events.Event) {
			if want := time.Date(2026, 11, 25, 12, 4, 5, 0, time.UTC); e.OccurredAt != want {
				t.Fatalf("OccurredAt = %v, want %v", e.OccurredAt, want)
			}
		}},
		{name: "unknown fields ignored", in: edit(t, `"data":{`, `"future":true,"data":{"also":1,`)},
		{name: "data missing", in: edit(t, `,"data":{"reason":"appeal accepted"}`, ``), check: func(t *testing.T, e events.Event) {
			if e.Data != (events.CaseClosed{}) {
				t.Fatalf("Data = %#v", e.Data)
			}
		}},
		{name: "data null", in: edit(t, `{"reason":"appeal accepted"}`, `null`), check: func(t *testing.T, e events.Event) {
			if e.Data != (events.CaseClosed{}) {
				t.Fatalf("Data = %#v", e.Data)
			}
		}},
		{name: "edge years", in: strings.Replace(edit(t, `"2026-11-25T12:04:05Z"`, `"0000-01-01T00:00:00Z"`),
			`"event":"closed"`, `"event":"expired"`, 1), check: func(t *testing.T, e events.Event) {
			if e.OccurredAt.Year() != 0 {
				t.Fatalf("OccurredAt = %v", e.OccurredAt)
			}
		}},
		{name: "imported", in: edit(t, `"event":"closed"`, `"event":"imported"`), check: func(t *testing.T, e events.Event) {
			if _, ok := e.Data.(events.CaseImported); !ok || e.Event != events.NameCaseImported {
				t.Fatalf("got %s %T", e.Event, e.Data)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, err := codec.Decode([]byte(tt.in))
			if err != nil {
				t.Fatalf("Decode(%s): %v", tt.in, err)
			}
			if tt.check != nil {
				tt.check(t, e)
			}
		})
	}
}

func TestCodecDecodeErrors(t *testing.T) {
	t.Parallel()

	codec := newCodec(t)
	tests := []struct {
		name string
		in   string
		want error
	}{
		{name: "empty", in: ``, want: events.ErrMalformedEvent},
		{name: "whitespace", in: "  \n", want: events.ErrMalformedEvent},
		{name: "not JSON", in: `event: closed`, want: events.ErrMalformedEvent},
		{name: "truncated", in: validEvent[:len(validEvent)-1], want: events.ErrMalformedEvent},
		{name: "array", in: `[` + validEvent + `]`, want: events.ErrMalformedEvent},
		{name: "string", in: `"closed"`, want: events.ErrMalformedEvent},
		{name: "null", in: `null`, want: events.ErrUnknownEvent},
		{name: "trailing object", in: validEvent + `{}`, want: events.ErrMalformedEvent},
		{name: "trailing event", in: validEvent + "\n" + validEvent, want: events.ErrMalformedEvent},
		{name: "trailing garbage", in: validEvent + ` x`, want: events.ErrMalformedEvent},
		{name: "trailing number", in: validEvent + `1`, want: events.ErrMalformedEvent},
		{name: "trailing close brace", in: validEvent + `}`, want: events.ErrMalformedEvent},
		{name: "trailing close bracket", in: validEvent + ` ]`, want: events.ErrMalformedEvent},
		{name: "trailing comma", in: validEvent + `,`, want: events.ErrMalformedEvent},
		{name: "unknown event", in: edit(t, `"event":"closed"`, `"event":"banned"`), want: events.ErrUnknownEvent},
		{name: "event name in Go spelling", in: edit(t, `"event":"closed"`, `"event":"CaseClosed"`), want: events.ErrUnknownEvent},
		{name: "event missing", in: edit(t, `"event":"closed",`, ``), want: events.ErrUnknownEvent},
		{name: "event empty", in: edit(t, `"event":"closed"`, `"event":""`), want: events.ErrUnknownEvent},
		{name: "event not a string", in: edit(t, `"event":"closed"`, `"event":7`), want: events.ErrMalformedEvent},
		{name: "version 0", in: edit(t, `"schema_version":1`, `"schema_version":0`), want: events.ErrUnsupportedVersion},
		{name: "version missing", in: edit(t, `"schema_version":1,`, ``), want: events.ErrUnsupportedVersion},
		{name: "version negative", in: edit(t, `"schema_version":1`, `"schema_version":-1`), want: events.ErrUnsupportedVersion},
		{name: "version newer", in: edit(t, `"schema_version":1`, `"schema_version":2`), want: events.ErrUnsupportedVersion},
		{name: "version string", in: edit(t, `"schema_version":1`, `"schema_version":"1"`), want: events.ErrMalformedEvent},
		{name: "version float", in: edit(t, `"schema_version":1`, `"schema_version":1.5`), want: events.ErrMalformedEvent},
		{name: "guild float", in: edit(t, `"guild_id":"1128457362048573440"`, `"guild_id":1.5`), want: events.ErrMalformedEvent},
		{name: "guild negative", in: edit(t, `"guild_id":"1128457362048573440"`, `"guild_id":-5`), want: events.ErrMalformedEvent},
		{name: "guild letters", in: edit(t, `"guild_id":"1128457362048573440"`, `"guild_id":"guild"`), want: events.ErrMalformedEvent},
		{name: "case number negative", in: edit(t, `"case_number":42`, `"case_number":-1`), want: events.ErrMalformedEvent},
		{name: "case number above uint32", in: edit(t, `"case_number":42`, `"case_number":4294967296`), want: events.ErrMalformedEvent},
		{name: "case number string", in: edit(t, `"case_number":42`, `"case_number":"42"`), want: events.ErrMalformedEvent},
		{name: "bad event id", in: edit(t, `"event_id":"01936c2e-7b5a-7c3d-9e41-5a2f8b6c1d30"`, `"event_id":"not-a-uuid"`), want: events.ErrMalformedEvent},
		{name: "bad time", in: edit(t, `"2026-11-25T12:04:05Z"`, `"yesterday"`), want: events.ErrMalformedEvent},
		{name: "naive time", in: edit(t, `"2026-11-25T12:04:05Z"`, `"2026-11-25T12:04:05"`), want: events.ErrMalformedEvent},
		{name: "time before year 0 in UTC", in: edit(t, `"2026-11-25T12:04:05Z"`, `"0000-01-01T00:00:00+01:00"`), want: events.ErrMalformedEvent},
		{name: "data time after year 9999 in UTC", in: strings.Replace(edit(t, `"event":"closed"`, `"event":"expired"`),
			`{"reason":"appeal accepted"}`, `{"expires_at":"9999-12-31T23:30:00-01:00"}`, 1), want: events.ErrMalformedEvent},
		{name: "data array", in: edit(t, `{"reason":"appeal accepted"}`, `[]`), want: events.ErrMalformedEvent},
		{name: "data string", in: edit(t, `{"reason":"appeal accepted"}`, `"appeal accepted"`), want: events.ErrMalformedEvent},
		{name: "data field wrong type", in: edit(t, `{"reason":"appeal accepted"}`, `{"reason":5}`), want: events.ErrMalformedEvent},
		{name: "data snowflake float", in: strings.Replace(edit(t, `"event":"closed"`, `"event":"mod_log_linked"`),
			`{"reason":"appeal accepted"}`, `{"message_id":1.5}`, 1), want: events.ErrMalformedEvent},
		{name: "data time wrong", in: strings.Replace(edit(t, `"event":"closed"`, `"event":"expired"`),
			`{"reason":"appeal accepted"}`, `{"expires_at":1732536245}`, 1), want: events.ErrMalformedEvent},
		{name: "data roles not a list", in: strings.Replace(edit(t, `"event":"closed"`, `"event":"opened"`),
			`{"reason":"appeal accepted"}`, `{"type":"BAN","user_roles":"1"}`, 1), want: events.ErrMalformedEvent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, err := codec.Decode([]byte(tt.in))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Decode(%s) = %+v, %v; want error wrapping %v", tt.in, e, err, tt.want)
			}
		})
	}
}

// renameWhy is a version-1 to version-2 upcaster for closed events: version 1
// called the reason "why".
func renameWhy(data json.RawMessage) (json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	if why, ok := m["why"]; ok {
		m["reason"] = why
		delete(m, "why")
	}
	return json.Marshal(m)
}

var errUpcast = errors.New("test upcaster failed")

func TestCodecUpcaster(t *testing.T) {
	t.Parallel()

	codec := newCodec(t, events.Upcaster{Event: events.NameCaseClosed, From: 1, Up: renameWhy})

	if got := codec.Version(events.NameCaseClosed); got != 2 {
		t.Fatalf("Version(closed) = %d, want 2", got)
	}
	if got := codec.Version(events.NameCaseReopened); got != events.CurrentVersion {
		t.Fatalf("Version(reopened) = %d, want %d", got, events.CurrentVersion)
	}

	// A version-1 event decodes into today's type, with the field moved.
	v1 := edit(t, `{"reason":"appeal accepted"}`, `{"why":"appeal accepted"}`)
	e, err := codec.Decode([]byte(v1))
	if err != nil {
		t.Fatalf("Decode v1: %v", err)
	}
	if e.Data != (events.CaseClosed{Reason: "appeal accepted"}) {
		t.Fatalf("Decode v1 data = %#v", e.Data)
	}
	if e.SchemaVersion != 2 {
		t.Fatalf("Decode v1 SchemaVersion = %d, want 2 (upcast)", e.SchemaVersion)
	}

	// Version 2 is what the codec writes, and it reads it without upcasting.
	b, err := codec.Encode(e)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	if !bytes.Contains(b, []byte(`"schema_version":2`)) || !bytes.Contains(b, []byte(`"data":{"reason":"appeal accepted"}`)) {
		t.Fatalf("Encode = %s, want schema_version 2 and the reason field", b)
	}
	v2 := edit(t, `"schema_version":1,`, `"schema_version":2,`)
	if e2, err := codec.Decode([]byte(v2)); err != nil || e2.Data != (events.CaseClosed{Reason: "appeal accepted"}) {
		t.Fatalf("Decode v2 = %#v, %v", e2.Data, err)
	}
	// A version-2 payload that still says "why" is not upcast again.
	v2why := edit(t, `"schema_version":1,`, `"schema_version":2,`)
	v2why = strings.Replace(v2why, `{"reason":"appeal accepted"}`, `{"why":"appeal accepted"}`, 1)
	if e2, err := codec.Decode([]byte(v2why)); err != nil || e2.Data != (events.CaseClosed{}) {
		t.Fatalf("Decode v2 with old field = %#v, %v; want an empty reason", e2.Data, err)
	}

	v3 := edit(t, `"schema_version":1,`, `"schema_version":3,`)
	if _, err := codec.Decode([]byte(v3)); !errors.Is(err, events.ErrUnsupportedVersion) {
		t.Fatalf("Decode v3: error = %v, want ErrUnsupportedVersion", err)
	}

	// Other events are untouched.
	if _, err := newCodec(t).Decode([]byte(v1)); err != nil {
		t.Fatalf("default codec Decode v1: %v", err)
	}
}

func TestCodecUpcasterChain(t *testing.T) {
	t.Parallel()

	var calls []int
	step := func(from int, old, new string) events.Upcaster {
		return events.Upcaster{Event: events.NameCaseClosed, From: from, Up: func(data json.RawMessage) (json.RawMessage, error) {
			calls = append(calls, from)
			return json.RawMessage(strings.Replace(string(data), old, new, 1)), nil
		}}
	}
	// Given out of order on purpose.
	codec := newCodec(t, step(2, `"cause"`, `"reason"`), step(1, `"why"`, `"cause"`))
	if got := codec.Version(events.NameCaseClosed); got != 3 {
		t.Fatalf("Version = %d, want 3", got)
	}
	v1 := edit(t, `{"reason":"appeal accepted"}`, `{"why":"appeal accepted"}`)
	e, err := codec.Decode([]byte(v1))
	if err != nil {
		t.Fatalf("Decode v1: %v", err)
	}
	if e.Data != (events.CaseClosed{Reason: "appeal accepted"}) || e.SchemaVersion != 3 {
		t.Fatalf("Decode v1 = version %d %#v", e.SchemaVersion, e.Data)
	}
	if !slices.Equal(calls, []int{1, 2}) {
		t.Fatalf("upcasters ran from versions %v, want [1 2]", calls)
	}
}

func TestCodecUpcasterError(t *testing.T) {
	t.Parallel()

	codec := newCodec(t, events.Upcaster{Event: events.NameCaseClosed, From: 1, Up: func(json.RawMessage) (json.RawMessage, error) {
		return nil, errUpcast
	}})
	_, err := codec.Decode([]byte(validEvent))
	if !errors.Is(err, errUpcast) {
		t.Fatalf("Decode: error = %v, want the upcaster's error", err)
	}
	// A current-version event does not run the upcaster.
	if _, err := codec.Decode([]byte(edit(t, `"schema_version":1,`, `"schema_version":2,`))); err != nil {
		t.Fatalf("Decode v2: %v", err)
	}
}

func TestNewCodecErrors(t *testing.T) {
	t.Parallel()

	closed := func(from int) events.Upcaster {
		return events.Upcaster{Event: events.NameCaseClosed, From: from, Up: renameWhy}
	}
	tests := []struct {
		name    string
		extra   []events.Upcaster
		wantErr error // nil: any error
	}{
		{name: "missing intermediate", extra: []events.Upcaster{closed(2)}},
		{name: "gap", extra: []events.Upcaster{closed(1), closed(3)}},
		{name: "duplicate", extra: []events.Upcaster{closed(1), closed(1)}},
		{name: "unknown event", extra: []events.Upcaster{{Event: "banned", From: 1, Up: renameWhy}}, wantErr: events.ErrUnknownEvent},
		{name: "empty event", extra: []events.Upcaster{{From: 1, Up: renameWhy}}, wantErr: events.ErrUnknownEvent},
		{name: "from zero", extra: []events.Upcaster{closed(0)}},
		{name: "from negative", extra: []events.Upcaster{closed(-1)}},
		{name: "nil function", extra: []events.Upcaster{{Event: events.NameCaseClosed, From: 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := events.NewCodec(tt.extra...)
			if err == nil {
				t.Fatalf("NewCodec = %v, nil; want an error", c)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("NewCodec error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestNewCodecDefaultVersions(t *testing.T) {
	t.Parallel()

	codec := newCodec(t)
	for _, n := range events.Names() {
		if got := codec.Version(n); got != events.CurrentVersion {
			t.Fatalf("Version(%s) = %d, want %d", n, got, events.CurrentVersion)
		}
	}
	if got := codec.Version("banned"); got != 0 {
		t.Fatalf("Version(banned) = %d, want 0", got)
	}
}

func TestCodecConcurrentUse(t *testing.T) {
	t.Parallel()

	codec := newCodec(t, events.Upcaster{Event: events.NameCaseClosed, From: 1, Up: renameWhy})
	v1 := []byte(edit(t, `{"reason":"appeal accepted"}`, `{"why":"appeal accepted"}`))
	done := make(chan error)
	for i := range 8 {
		go func() {
			var err error
			for range 200 {
				p := samplePayloads()[i%len(samplePayloads())]
				var b []byte
				if b, err = codec.Encode(sampleEvent(p)); err != nil {
					break
				}
				if _, err = codec.Decode(b); err != nil {
					break
				}
				if _, err = codec.Decode(v1); err != nil {
					break
				}
			}
			done <- err
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

func keys[V any](m map[string]V) []string {
	return slices.Sorted(func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	})
}
