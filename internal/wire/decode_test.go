package wire

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/events"
)

// Meta and Fields are embedded in testParams, as command.Meta and
// events.CaseFields are in command params: encoding/json reports their
// fields as Meta.command_id and Fields.type.
type Meta struct {
	CommandID     uuid.UUID        `json:"command_id"`
	CorrelationID uuid.UUID        `json:"correlation_id,omitzero"`
	ActorID       events.Snowflake `json:"actor_id,omitzero"`
}

type Fields struct {
	Type      string             `json:"type"`
	UserID    events.Snowflake   `json:"user_id,omitzero"`
	ExpiresAt *time.Time         `json:"expires_at,omitempty"`
	UserRoles []events.Snowflake `json:"user_roles,omitempty"`
}

type testStatus string

type testParams struct {
	Meta
	Fields
	CaseID   uuid.UUID      `json:"case_id,omitzero"`
	Status   testStatus     `json:"status,omitempty"`
	Limit    int            `json:"limit,omitzero"`
	Flag     *bool          `json:"flag,omitempty"`
	Ratio    float64        `json:"ratio,omitzero"`
	Metadata map[string]any `json:"metadata,omitempty"`
	Cases    []Fields       `json:"cases,omitempty"`
}

const (
	testCommandID = "0192f1a0-0000-7000-8000-000000000001"
	testCaseID    = "0192f1a0-0000-7000-8000-000000000002"
)

func TestDecode(t *testing.T) {
	t.Parallel()
	uuids := &DecodeOpts{UUIDFields: []string{"command_id", "correlation_id", "case_id"}}
	empty := &DecodeOpts{EmptyIsObject: true}
	for _, tc := range []struct {
		name  string
		body  string
		limit int // 0: 1024
		opts  *DecodeOpts
		// ok: the body decodes; otherwise an invalid_argument error naming
		// field, its message containing msg.
		ok    bool
		field string
		msg   string
	}{
		{name: "good", ok: true, opts: uuids,
			body: `{"command_id":"` + testCommandID + `","actor_id":"7","type":"BAN","user_id":1001,"expires_at":"2030-01-02T03:04:05Z",` +
				`"user_roles":["1","2"],"case_id":"` + testCaseID + `","status":"active","limit":5,"flag":true,"ratio":0.5,"metadata":{"a":[1]}}`},
		{name: "good with trailing space", body: "{}\n\t ", ok: true},

		// Size.
		{name: "over the limit", body: `{"type":"` + strings.Repeat("x", 20) + `"}`, limit: 20, msg: "request is 31 bytes, at most 20"},
		{name: "blank over the limit with EmptyIsObject", body: strings.Repeat(" ", 21), limit: 20, opts: empty, msg: "at most 20"},

		// Empty bodies.
		{name: "empty", body: ``, msg: "empty or truncated JSON body"},
		{name: "blank", body: " \n", msg: "empty or truncated JSON body"},
		{name: "empty is the object", body: ``, opts: empty, ok: true},
		{name: "blank is the object", body: " \r\n\t", opts: empty, ok: true},

		// Malformed and trailing data.
		{name: "truncated", body: `{"type":`, msg: "empty or truncated JSON body"},
		{name: "syntax", body: `{"type" "BAN"}`, msg: "malformed JSON at byte"},
		{name: "single quotes", body: `{'type':'BAN'}`, msg: "malformed JSON"},
		{name: "second object", body: `{}{"type":"BAN"}`, msg: "trailing data after the JSON object"},
		{name: "stray bracket", body: `{}]`, msg: "trailing data after the JSON object"},
		{name: "stray brace", body: "{}}\n", msg: "trailing data after the JSON object"},
		{name: "garbage", body: `{} garbage`, msg: "trailing data after the JSON object"},

		// The request as a whole.
		{name: "array instead of object", body: `[{}]`, msg: "must be an object, not JSON array"},
		{name: "string instead of object", body: `"open"`, msg: "must be an object, not JSON string"},
		{name: "number instead of object", body: `42`, msg: "must be an object, not JSON number"},

		// Field names: embedded Go structs are dropped, arrays get indexes.
		{name: "unknown field", body: `{"colour":"red"}`, field: "colour", msg: "unknown field"},
		{name: "embedded field type", body: `{"type":5}`, field: "type", msg: "must be a string, not JSON number"},
		{name: "named string type", body: `{"status":5}`, field: "status", msg: "must be a string, not JSON number"},
		{name: "whole number", body: `{"limit":"5"}`, field: "limit", msg: "must be a whole number in range, not JSON string"},
		{name: "whole number out of range", body: `{"limit":1e100}`, field: "limit", msg: "must be a whole number in range"},
		{name: "pointer to bool", body: `{"flag":"yes"}`, field: "flag", msg: "must be true or false, not JSON string"},
		{name: "number", body: `{"ratio":"half"}`, field: "ratio", msg: "must be a number, not JSON string"},
		{name: "object", body: `{"metadata":[1]}`, field: "metadata", msg: "must be an object, not JSON array"},
		{name: "array", body: `{"user_roles":"5"}`, field: "user_roles", msg: "must be an array, not JSON string"},
		{name: "array of objects", body: `{"cases":{"type":"BAN"}}`, field: "cases", msg: "must be an array, not JSON object"},
		{name: "object in an array", body: `{"cases":["BAN"]}`, field: "cases", msg: "must be an object, not JSON string"},

		// Snowflakes and times are named by the path of their value.
		{name: "bad snowflake", body: `{"user_id":"abc"}`, field: "user_id", msg: "is not a decimal snowflake"},
		{name: "bad embedded snowflake", body: `{"actor_id":true}`, field: "actor_id", msg: "is not a decimal snowflake"},
		{name: "bad snowflake in an array", body: `{"user_roles":["5","x"]}`, field: "user_roles[1]", msg: "is not a decimal snowflake"},
		{name: "bad snowflake in an array of objects", body: `{"cases":[{"type":"BAN","user_id":"9"},{"type":"BAN","user_id":"1.5"}]}`,
			field: "cases[1].user_id", msg: "is not a decimal snowflake"},
		{name: "bad time", body: `{"type":"BAN","expires_at":"tomorrow"}`, field: "expires_at", msg: "must be an RFC 3339 time with a zone"},
		{name: "time without zone", body: `{"expires_at":"2030-01-01T00:00:00"}`, field: "expires_at", msg: "must be an RFC 3339 time"},

		// UUIDs are named by the first listed field that does not parse.
		{name: "bad command id", body: `{"command_id":"not-a-uuid"}`, opts: uuids, field: "command_id", msg: "must be a UUID like"},
		{name: "empty command id", body: `{"command_id":""}`, opts: uuids, field: "command_id", msg: "must be a UUID like"},
		{name: "bad correlation id", body: `{"command_id":"` + testCommandID + `","correlation_id":"x"}`, opts: uuids, field: "correlation_id", msg: "must be a UUID"},
		{name: "bad case id", body: `{"command_id":"` + testCommandID + `","case_id":"x"}`, opts: uuids, field: "case_id", msg: "must be a UUID"},
		{name: "bad case id, only listed", body: `{"case_id":"x"}`, opts: &DecodeOpts{UUIDFields: []string{"case_id"}}, field: "case_id", msg: "must be a UUID"},
		{name: "bad uuid, none listed", body: `{"case_id":"x"}`, field: "", msg: "must be a UUID"},
		{name: "uuid as a number", body: `{"command_id":5}`, opts: uuids, field: "command_id", msg: "must be a UUID string, not JSON number"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			limit := tc.limit
			if limit == 0 {
				limit = 1024
			}
			var p testParams
			werr := Decode([]byte(tc.body), limit, &p, tc.opts)
			if tc.ok {
				if werr != nil {
					t.Fatalf("Decode(%s) = %v, want it to decode", tc.body, werr)
				}
				return
			}
			if werr == nil {
				t.Fatalf("Decode(%s) decoded %+v, want an error", tc.body, p)
			}
			if werr.Code != CodeInvalidArgument || werr.Field != tc.field || !strings.Contains(werr.Message, tc.msg) {
				t.Fatalf("Decode(%s) = %+v, want invalid_argument on field %q with a message containing %q", tc.body, werr, tc.field, tc.msg)
			}
			if !errors.Is(werr, aggregate.ErrInvalidArgument) {
				t.Fatalf("%v does not match ErrInvalidArgument", werr)
			}
		})
	}
}

func TestDecodeFillsValues(t *testing.T) {
	t.Parallel()
	body := `{"command_id":"` + testCommandID + `","type":"BAN","user_id":"1001","user_roles":[1,"2"],"expires_at":"2030-01-02T04:04:05+01:00","cases":[{"type":"WARN"}]}`
	var p testParams
	if werr := Decode([]byte(body), 1024, &p, nil); werr != nil {
		t.Fatal(werr)
	}
	want := testParams{
		Meta:   Meta{CommandID: uuid.MustParse(testCommandID)},
		Fields: Fields{Type: "BAN", UserID: 1001, UserRoles: []events.Snowflake{1, 2}},
		Cases:  []Fields{{Type: "WARN"}},
	}
	if p.ExpiresAt == nil || !p.ExpiresAt.Equal(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Fatalf("expires_at = %v", p.ExpiresAt)
	}
	p.ExpiresAt = nil
	if !reflect.DeepEqual(p, want) {
		t.Fatalf("decoded %+v, want %+v", p, want)
	}
}

func TestTypeName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		typ  reflect.Type
		want string
	}{
		{reflect.TypeFor[string](), "a string"},
		{reflect.TypeFor[testStatus](), "a string"},
		{reflect.TypeFor[*string](), "a string"},
		{reflect.TypeFor[bool](), "true or false"},
		{reflect.TypeFor[*bool](), "true or false"},
		{reflect.TypeFor[int](), "a whole number in range"},
		{reflect.TypeFor[uint32](), "a whole number in range"},
		{reflect.TypeFor[uint64](), "a whole number in range"},
		{reflect.TypeFor[float64](), "a number"},
		{reflect.TypeFor[events.Snowflake](), "a snowflake string"},
		{reflect.TypeFor[*events.Snowflake](), "a snowflake string"},
		{reflect.TypeFor[[]events.Snowflake](), "an array"},
		{reflect.TypeFor[[]string](), "an array"},
		{reflect.TypeFor[[2]int](), "an array"},
		{reflect.TypeFor[uuid.UUID](), "a UUID string"},
		{reflect.TypeFor[time.Time](), "an RFC 3339 time string"},
		{reflect.TypeFor[*time.Time](), "an RFC 3339 time string"},
		{reflect.TypeFor[map[string]any](), "an object"},
		{reflect.TypeFor[Fields](), "an object"},
		{reflect.TypeFor[chan int](), "of type chan int"},
		{nil, "of another type"},
	} {
		if got := typeName(tc.typ); got != tc.want {
			t.Errorf("typeName(%v) = %q, want %q", tc.typ, got, tc.want)
		}
	}
}

func TestWireField(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ goPath, want string }{
		{"", ""},
		{"type", "type"},
		{"Meta.command_id", "command_id"},
		{"CaseFields.type", "type"},
		{"QueryMeta.min_seq", "min_seq"},
		{"cases.type", "cases.type"},
		{"cases.CaseFields.user_id", "cases.user_id"},
		{"Outer.Inner.x", "x"},
	} {
		if got := wireField(tc.goPath); got != tc.want {
			t.Errorf("wireField(%q) = %q, want %q", tc.goPath, got, tc.want)
		}
	}
}

func TestPathOf(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, body, literal, want string
	}{
		{"top-level string", `{"user_id":"abc"}`, `"abc"`, "user_id"},
		{"unquoted text of a string", `{"user_id":"abc"}`, `abc`, "user_id"},
		{"number", `{"user_id":1.5}`, `1.5`, "user_id"},
		{"number as written", `{"user_id":1e3}`, `1e3`, "user_id"},
		{"bool", `{"user_id":true}`, `true`, "user_id"},
		{"null", `{"user_id":null}`, `null`, "user_id"},
		{"in an array", `{"roles":["1","x"]}`, `"x"`, "roles[1]"},
		{"in an array of objects", `{"cases":[{"a":"1"},{"a":"x"}]}`, `"x"`, "cases[1].a"},
		{"nested objects", `{"a":{"b":{"c":"x"}}}`, `"x"`, "a.b.c"},
		{"first in sorted key order", `{"user_id":"x","reason":"x","external_id":"x"}`, `"x"`, "external_id"},
		{"not there", `{"a":"b"}`, `"x"`, ""},
		{"not JSON", `{"a":`, `"x"`, ""},
		{"objects and arrays are not scalars", `{"a":{},"b":[]}`, `{}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// Sorted keys make the answer the same every time.
			for range 20 {
				if got := pathOf([]byte(tc.body), tc.literal); got != tc.want {
					t.Fatalf("pathOf(%s, %s) = %q, want %q", tc.body, tc.literal, got, tc.want)
				}
			}
		})
	}
}

func TestBadUUIDField(t *testing.T) {
	t.Parallel()
	fields := []string{"command_id", "correlation_id", "case_id"}
	for _, tc := range []struct {
		name, body, want string
	}{
		{"first bad", `{"command_id":"x","case_id":"y"}`, "command_id"},
		{"in list order", `{"case_id":"y","correlation_id":"x","command_id":"` + testCommandID + `"}`, "correlation_id"},
		{"not a string", `{"command_id":5}`, "command_id"},
		{"null", `{"command_id":null}`, "command_id"},
		{"all good", `{"command_id":"` + testCommandID + `","case_id":"` + testCaseID + `"}`, ""},
		{"not listed", `{"note_id":"x"}`, ""},
		{"not an object", `[1]`, ""},
	} {
		if got := badUUIDField([]byte(tc.body), fields); got != tc.want {
			t.Errorf("%s: badUUIDField(%s) = %q, want %q", tc.name, tc.body, got, tc.want)
		}
	}
	if got := badUUIDField([]byte(`{"command_id":"x"}`), nil); got != "" {
		t.Errorf("no fields listed: %q", got)
	}
}

// TestDecodeErrorsEncode checks that every decode error is a well-formed
// error reply, whatever the body quotes.
func TestDecodeErrorsEncode(t *testing.T) {
	t.Parallel()
	for _, body := range []string{`{"user_id":"\u0000\n"}`, "{\"type\":\"\xff\"", `{"user_roles":["` + strings.Repeat("9", 5000) + `"]}`} {
		var p testParams
		werr := Decode([]byte(body), 1<<20, &p, nil)
		if werr == nil {
			t.Fatalf("Decode(%q) decoded", body)
		}
		b, err := json.Marshal(ErrorReply{Error: werr})
		if err != nil {
			t.Fatalf("error of %q does not encode: %v", body, err)
		}
		if back, ok := DecodeErrorReply(b); !ok || back.Code != CodeInvalidArgument {
			t.Fatalf("error reply %s reads back as %+v", b, back)
		}
	}
}
