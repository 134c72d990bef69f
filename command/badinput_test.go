package command_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/command"
	"github.com/modledger/modledger/events"
)

// Invariant 7: bad input gets a clear, typed error reply and writes nothing.
// These tests speak the wire contract directly (raw NATS requests with raw
// JSON bodies), the way a bot in another language would.

// wireRaw is a JSON literal that a body builder puts in as it is.
type wireRaw string

// wireOmit removes a key from a body.
type wireOmit struct{}

// wireBody marshals base with over applied: wireOmit deletes a key, wireRaw
// puts a literal in as it is, anything else is marshalled.
func wireBody(t testing.TB, base, over map[string]any) []byte {
	t.Helper()
	m := maps.Clone(base)
	for k, v := range over {
		if _, ok := v.(wireOmit); ok {
			delete(m, k)
			continue
		}
		m[k] = v
	}
	for k, v := range m {
		if r, ok := v.(wireRaw); ok {
			m[k] = json.RawMessage(r)
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatalf("build body: %v", err)
	}
	return b
}

func wireCommandID() string { return uuid.Must(uuid.NewV7()).String() }

// wireOpenBody is a good WARN open with over applied.
func wireOpenBody(t testing.TB, over map[string]any) []byte {
	return wireBody(t, map[string]any{
		"command_id": wireCommandID(), "type": "WARN", "user_id": "1001", "moderator_id": "42", "reason": "be nice",
	}, over)
}

// wireChangeBody is a good change of case number with over applied.
func wireChangeBody(t testing.TB, number uint32, over map[string]any) []byte {
	return wireBody(t, map[string]any{"command_id": wireCommandID(), "actor_id": "42", "case_number": number}, over)
}

// wireChangeExtras are the fields that make each change command valid.
var wireChangeExtras = map[string]map[string]any{
	aggregate.CommandUpdate:              {"reason": "amended"},
	aggregate.CommandClose:               {"reason": "void"},
	aggregate.CommandReopen:              {},
	aggregate.CommandAddNote:             {"text": "a note"},
	aggregate.CommandLinkModLog:          {"mod_log_message_id": "777"},
	aggregate.CommandMarkExpiryProcessed: {},
	aggregate.CommandDelete:              {"reason": "gone"},
	aggregate.CommandRedact:              {"reason": "privacy request"},
}

// withKV returns a copy of m with the pairs k1, v1, k2, v2, ... set.
func withKV(m map[string]any, kv ...any) map[string]any {
	out := maps.Clone(m)
	if out == nil {
		out = map[string]any{}
	}
	for i := 0; i < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

// wireReply is the error body of the wire contract, decoded strictly.
type wireReply struct {
	status      string
	description string
	err         *command.Error
	raw         []byte
}

// wireRequest sends body to subject and returns the reply.
func wireRequest(t *testing.T, nc *nats.Conn, subject string, body []byte, timeout time.Duration) (*nats.Msg, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	return nc.RequestWithContext(ctx, subject, body)
}

// parseErrorReply checks the shape of an error reply: headers, and a body
// that is exactly {"error": {"code", "message", "field"?, "deleted"?}}.
func parseErrorReply(m *nats.Msg) (wireReply, []string) {
	r := wireReply{
		status:      m.Header.Get("Nats-Service-Error-Code"),
		description: m.Header.Get("Nats-Service-Error"),
		raw:         m.Data,
	}
	var problems []string
	if r.status == "" {
		return r, []string{fmt.Sprintf("no Nats-Service-Error-Code header: the command was accepted: %.300s", m.Data)}
	}
	if r.description == "" {
		problems = append(problems, "empty Nats-Service-Error header")
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(m.Data, &top); err != nil {
		return r, append(problems, fmt.Sprintf("error body is not a JSON object: %v: %.300s", err, m.Data))
	}
	if len(top) != 1 || top["error"] == nil {
		problems = append(problems, fmt.Sprintf("error body has keys %v, want only \"error\"", slices.Sorted(maps.Keys(top))))
	}
	var inner map[string]json.RawMessage
	if err := json.Unmarshal(top["error"], &inner); err != nil {
		return r, append(problems, fmt.Sprintf("\"error\" is not an object: %v", err))
	}
	for k := range inner {
		if !slices.Contains([]string{"code", "message", "field", "deleted"}, k) {
			problems = append(problems, fmt.Sprintf("error object has unexpected key %q", k))
		}
	}
	dec := json.NewDecoder(bytes.NewReader(top["error"]))
	dec.DisallowUnknownFields()
	var e command.Error
	if err := dec.Decode(&e); err != nil {
		return r, append(problems, fmt.Sprintf("error object does not decode: %v", err))
	}
	r.err = &e
	if strings.TrimSpace(e.Message) == "" {
		problems = append(problems, "empty error message")
	}
	return r, problems
}

// badInputCase is one bad request and the reply it must get.
type badInputCase struct {
	name    string
	subject string // defaults to the command's subject in badGuild
	command string
	body    func() []byte
	code    command.Code
	field   string
	deleted bool
	// timeout bounds the wait for the reply; defaults to 10s.
	timeout time.Duration
	// repeat sends the request this many times (for replies that may vary).
	repeat int
	// bug, when set, names a known bug: the case is skipped, with what was
	// wrong, while the reply differs from the contract, and fails once it
	// is right so that the mark gets removed.
	bug string
}

const badGuild events.Snowflake = 222222222222222222

// Case numbers of the fixture that badFixture sets up.
const (
	fxTempban uint32 = 1 // active TEMPBAN, expires in a day
	fxWarn    uint32 = 2 // active WARN
	fxDeleted uint32 = 3 // deleted WARN
	fxMissing uint32 = 999
)

// fxWarnOpenID is the command id that opened the fixture's fxWarn case.
var fxWarnOpenID = uuid.Must(uuid.NewV7())

func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// waitReady waits until the command service answers. Service.Start returns
// before the server has registered the endpoints' subscriptions, so a raw
// request sent at once may find no responders; the Go client retries that.
func waitReady(t *testing.T, b *testBundle) {
	t.Helper()
	if _, err := b.client.CaseOpen(t.Context(), readyGuild, warnParams(1)); err != nil {
		t.Fatalf("wait for the command service: %v", err)
	}
}

const readyGuild events.Snowflake = 333333333333333333

// badFixture opens the fixture's cases in badGuild.
func badFixture(t *testing.T, b *testBundle) {
	t.Helper()
	ctx := t.Context()
	if r, err := b.client.CaseOpen(ctx, badGuild, tempbanParams(b.clock, 501)); err != nil || r.Case.CaseNumber != fxTempban {
		t.Fatalf("fixture tempban: %+v %v", r, err)
	}
	warn := warnParams(502)
	warn.CommandID = fxWarnOpenID
	if r, err := b.client.CaseOpen(ctx, badGuild, warn); err != nil || r.Case.CaseNumber != fxWarn {
		t.Fatalf("fixture warn: %+v %v", r, err)
	}
	if r, err := b.client.CaseOpen(ctx, badGuild, warnParams(503)); err != nil || r.Case.CaseNumber != fxDeleted {
		t.Fatalf("fixture deleted: %+v %v", r, err)
	}
	if r, err := b.client.CaseDelete(ctx, badGuild, command.DeleteParams{Meta: meta(42), CaseRef: command.CaseRef{CaseNumber: fxDeleted}}); err != nil || !r.Case.Deleted {
		t.Fatalf("fixture delete: %+v %v", r, err)
	}
}

// runBadInputCase sends one bad request (repeat times) and checks its reply
// and that the stream did not change.
func runBadInputCase(t *testing.T, b *testBundle, tc badInputCase) {
	t.Helper()
	var (
		problems []string
		body     []byte
		got      string
	)
	for range max(tc.repeat, 1) {
		body = tc.body()
		msg, ps := sendBadInput(t, b, tc, body)
		for _, p := range ps {
			if !slices.Contains(problems, p) {
				problems = append(problems, p)
			}
		}
		if len(ps) > 0 || got == "" {
			got = msg
		}
	}
	switch {
	case tc.bug != "" && len(problems) > 0:
		t.Skipf("KNOWN BUG: %s\n  body %.200s\n  got %s\n  %s", tc.bug, body, got, strings.Join(problems, "\n  "))
	case tc.bug != "":
		t.Errorf("marked as known bug %q, but the reply is now right (%s): remove the mark", tc.bug, got)
	case len(problems) > 0:
		t.Errorf("body %.200s\n  got %s\n  %s", body, got, strings.Join(problems, "\n  "))
	default:
		t.Logf("%s", got)
	}
}

// sendBadInput sends body once and returns what came back and what is wrong
// with it.
func sendBadInput(t *testing.T, b *testBundle, tc badInputCase, body []byte) (string, []string) {
	t.Helper()
	subject := tc.subject
	if subject == "" {
		subject = events.Subjects{}.Command(badGuild, tc.command)
	}
	timeout := tc.timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	before := b.msgCount(t)
	m, err := wireRequest(t, b.nc, subject, body, timeout)
	var problems []string
	var r wireReply
	if err != nil {
		problems = append(problems, fmt.Sprintf("no reply within %s: %v", timeout, err))
	} else {
		r, problems = parseErrorReply(m)
	}
	if err == nil && r.status != "" {
		if want := strconv.Itoa(tc.code.Status()); r.status != want {
			problems = append(problems, fmt.Sprintf("Nats-Service-Error-Code %q, want %q", r.status, want))
		}
	}
	if r.err != nil {
		if r.err.Code != tc.code {
			problems = append(problems, fmt.Sprintf("code %q, want %q", r.err.Code, tc.code))
		}
		if r.err.Field != tc.field {
			problems = append(problems, fmt.Sprintf("field %q, want %q", r.err.Field, tc.field))
		}
		if r.err.Deleted != tc.deleted {
			problems = append(problems, fmt.Sprintf("deleted %v, want %v", r.err.Deleted, tc.deleted))
		}
	}
	if after := b.msgCount(t); after != before {
		problems = append(problems, fmt.Sprintf("the stream went from %d to %d messages", before, after))
	}
	msg := "<no reply>"
	if r.err != nil {
		msg = fmt.Sprintf("%s %s (field %q): %.200s", r.status, r.err.Code, r.err.Field, r.err.Message)
	} else if m != nil {
		msg = fmt.Sprintf("%.300s", m.Data)
	}
	return msg, problems
}

// nestedArrays returns n nested JSON arrays.
func nestedArrays(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }

func badInputCases(t *testing.T, b *testBundle) []badInputCase {
	now := b.clock.Now()
	future := now.Add(24 * time.Hour).Format(time.RFC3339Nano)
	past := now.Add(-time.Hour).Format(time.RFC3339Nano)
	tempban := func(exp any) []byte {
		over := map[string]any{"type": "TEMPBAN"}
		if exp != nil {
			over["expires_at"] = exp
		}
		return wireOpenBody(t, over)
	}
	good := func() []byte { return wireOpenBody(t, nil) }
	open := func(kv ...any) func() []byte { return func() []byte { return wireOpenBody(t, withKV(nil, kv...)) } }
	literal := func(s string) func() []byte { return func() []byte { return []byte(s) } }
	id := `"command_id":"` + wireCommandID() + `"`
	goodTail := `,"type":"WARN","user_id":"1001","moderator_id":"42"}`

	cases := []badInputCase{
		// Malformed bodies.
		{name: "malformed/truncated", command: "open", body: literal(`{"command_id": `), code: command.CodeInvalidArgument},
		{name: "malformed/unquoted key", command: "open", body: literal(`{command_id: 1}`), code: command.CodeInvalidArgument},
		{name: "malformed/single quotes", command: "open", body: literal(`{'command_id': '1'}`), code: command.CodeInvalidArgument},
		{name: "malformed/trailing comma", command: "open", body: literal(`{` + id + goodTail[:len(goodTail)-1] + `,}`), code: command.CodeInvalidArgument},
		{name: "malformed/raw newline in string", command: "open", body: literal(`{` + id + `,"reason":"a` + "\n" + `b"` + goodTail), code: command.CodeInvalidArgument},
		{name: "malformed/not JSON", command: "open", body: literal(`type=WARN&user_id=1`), code: command.CodeInvalidArgument},
		{name: "malformed/byte order mark", command: "open", body: func() []byte { return append([]byte("\xef\xbb\xbf"), good()...) }, code: command.CodeInvalidArgument},
		{name: "empty body", command: "open", body: literal(``), code: command.CodeInvalidArgument},
		{name: "whitespace body", command: "open", body: literal(" \n\t "), code: command.CodeInvalidArgument},
		{name: "trailing/second object", command: "open", body: func() []byte { return append(good(), `{"x":1}`...) }, code: command.CodeInvalidArgument},
		{name: "trailing/garbage", command: "open", body: func() []byte { return append(good(), " garbage"...) }, code: command.CodeInvalidArgument},
		{name: "trailing/second good object", command: "open", body: func() []byte { return append(good(), good()...) }, code: command.CodeInvalidArgument},
		{name: "trailing/close bracket", command: "open", body: func() []byte { return append(good(), ']') }, code: command.CodeInvalidArgument},
		{name: "trailing/close brace", command: "open", body: func() []byte { return append(good(), "}\n"...) }, code: command.CodeInvalidArgument},
		{name: "array instead of object", command: "open", body: func() []byte { return append(append([]byte("["), good()...), ']') }, code: command.CodeInvalidArgument},
		{name: "string instead of object", command: "open", body: literal(`"open"`), code: command.CodeInvalidArgument},
		{name: "number instead of object", command: "open", body: literal(`42`), code: command.CodeInvalidArgument},
		{name: "null instead of object", command: "open", body: literal(`null`), code: command.CodeInvalidArgument, field: "command_id"},
		{name: "deep nesting/10k arrays in metadata", command: "open", body: func() []byte {
			return []byte(`{` + id + `,"metadata":{"a":` + nestedArrays(10_000) + `}` + goodTail)
		}, code: command.CodeInvalidArgument},
		{name: "deep nesting/9k arrays in metadata", command: "open", body: func() []byte {
			return []byte(`{"command_id":"` + wireCommandID() + `","metadata":{"a":` + nestedArrays(9_000) + `}` + goodTail)
		}, code: command.CodeInvalidArgument, field: "metadata"},
		{name: "deep nesting/10k arrays as body", command: "open", body: literal(nestedArrays(10_000)), code: command.CodeInvalidArgument},
		{name: "deep nesting/10k arrays as user_id", command: "open", body: literal(`{` + id + `,"user_id":` + nestedArrays(10_001) + `}`), code: command.CodeInvalidArgument},

		// Types.
		{name: "type/unknown", command: "open", body: open("type", "YEET"), code: command.CodeInvalidArgument, field: "type"},
		{name: "type/lower case", command: "open", body: open("type", "ban"), code: command.CodeInvalidArgument, field: "type"},
		{name: "type/missing", command: "open", body: open("type", wireOmit{}), code: command.CodeInvalidArgument, field: "type"},
		{name: "type/empty", command: "open", body: open("type", ""), code: command.CodeInvalidArgument, field: "type"},
		{name: "type/number", command: "open", body: open("type", 5), code: command.CodeInvalidArgument, field: "type"},
		{name: "type/internal expire command name", command: "open", body: open("type", "EXPIRE"), code: command.CodeInvalidArgument, field: "type"},

		// Snowflakes.
		{name: "snowflake/zero string", command: "open", body: open("user_id", "0"), code: command.CodeInvalidArgument, field: "user_id"},
		{name: "snowflake/zero number", command: "open", body: open("user_id", wireRaw("0")), code: command.CodeInvalidArgument, field: "user_id"},
		{name: "snowflake/null", command: "open", body: open("user_id", nil), code: command.CodeInvalidArgument, field: "user_id"},
		{name: "snowflake/missing", command: "open", body: open("user_id", wireOmit{}), code: command.CodeInvalidArgument, field: "user_id"},
		{name: "snowflake/moderator zero", command: "open", body: open("moderator_id", "0"), code: command.CodeInvalidArgument, field: "moderator_id"},
		{name: "snowflake/negative number", command: "open", body: open("user_id", wireRaw("-5")), code: command.CodeInvalidArgument, field: "user_id"},
		{name: "snowflake/negative string", command: "open", body: open("user_id", "-5"), code: command.CodeInvalidArgument, field: "user_id"},
		{name: "snowflake/float", command: "open", body: open("user_id", wireRaw("1.5")), code: command.CodeInvalidArgument, field: "user_id"},
		{name: "snowflake/integral float", command: "open", body: open("user_id", wireRaw("1001.0")), code: command.CodeInvalidArgument, field: "user_id"},
		{name: "snowflake/exponent", command: "open", body: open("user_id", wireRaw("1e3")), code: command.CodeInvalidArgument, field: "user_id"},
		{name: "snowflake/exponent string", command: "open", body: open("user_id", "1e3"), code: command.CodeInvalidArgument, field: "user_id"},
		{name: "snowflake/above int64", command: "open", body: open("user_id", "9223372036854775808"), code: command.CodeInvalidArgument, field: "user_id"},
		{name: "snowflake/above int64 number", command: "open", body: open("user_id", wireRaw("9223372036854775808")), code: command.CodeInvalidArgument, field: "user_id"},
		{name: "snowflake/above uint64", command: "open", body: open("user_id", "18446744073709551616"), code: command.CodeInvalidArgument, field: "user_id"},
		{name: "snowflake/non-numeric", command: "open", body: open("user_id", "abc"), code: command.CodeInvalidArgument, field: "user_id"},
		{name: "snowflake/hex", command: "open", body: open("user_id", "0x10"), code: command.CodeInvalidArgument, field: "user_id"},
		{name: "snowflake/plus sign", command: "open", body: open("user_id", "+1001"), code: command.CodeInvalidArgument, field: "user_id"},
		{name: "snowflake/spaces", command: "open", body: open("user_id", " 1001 "), code: command.CodeInvalidArgument, field: "user_id"},
		{name: "snowflake/empty string", command: "open", body: open("user_id", ""), code: command.CodeInvalidArgument, field: "user_id"},
		{name: "snowflake/true", command: "open", body: open("user_id", true), code: command.CodeInvalidArgument, field: "user_id"},
		{name: "snowflake/same text as reason", command: "open", body: open("user_id", "abc", "reason", "abc", "external_id", "abc"), code: command.CodeInvalidArgument, field: "user_id", repeat: 20,
			bug: "decode.go pathOf names the first scalar anywhere in the body whose text equals the bad value, walking maps in random order: a reason or external_id with the same text as a bad snowflake is named instead of the snowflake, at random"},
		{name: "snowflake/object", command: "open", body: open("user_id", map[string]any{}), code: command.CodeInvalidArgument, field: "user_id",
			bug: "decode.go pathOf only matches scalars, so a snowflake sent as an object or array gets no field"},
		{name: "snowflake/array", command: "open", body: open("user_id", []int{1001}), code: command.CodeInvalidArgument, field: "user_id",
			bug: "decode.go pathOf only matches scalars, so a snowflake sent as an object or array gets no field"},
		{name: "snowflake/actor not a number", command: "open", body: open("actor_id", "abc"), code: command.CodeInvalidArgument, field: "actor_id"},
		{name: "snowflake/actor above int64", command: "open", body: open("actor_id", "9223372036854775808"), code: command.CodeInvalidArgument, field: "actor_id"},
		{name: "snowflake/user role zero", command: "open", body: open("user_roles", []string{"5", "0"}), code: command.CodeInvalidArgument, field: "user_roles[1]"},
		{name: "snowflake/user role bad", command: "open", body: open("user_roles", []string{"5", "x"}), code: command.CodeInvalidArgument, field: "user_roles[1]"},
		{name: "snowflake/user roles not array", command: "open", body: open("user_roles", "5"), code: command.CodeInvalidArgument, field: "user_roles"},
		{name: "snowflake/too many roles", command: "open", body: open("user_roles", slices.Repeat([]string{"5"}, aggregate.MaxUserRoles+1)), code: command.CodeInvalidArgument, field: "user_roles"},

		// Text.
		{name: "reason/2001 characters", command: "open", body: open("reason", strings.Repeat("a", 2001)), code: command.CodeInvalidArgument, field: "reason"},
		{name: "reason/2001 multi-byte characters", command: "open", body: open("reason", strings.Repeat("é", 2001)), code: command.CodeInvalidArgument, field: "reason"},
		{name: "reason/2001 emoji", command: "open", body: open("reason", strings.Repeat("🔨", 2001)), code: command.CodeInvalidArgument, field: "reason"},
		{name: "reason/NUL", command: "open", body: open("reason", "spam\x00here"), code: command.CodeInvalidArgument, field: "reason"},
		{name: "reason/number", command: "open", body: open("reason", 5), code: command.CodeInvalidArgument, field: "reason"},
		{name: "external_id/201 bytes", command: "open", body: open("external_id", strings.Repeat("x", 201)), code: command.CodeInvalidArgument, field: "external_id"},
		{name: "external_id/NUL", command: "open", body: open("external_id", "a\x00b"), code: command.CodeInvalidArgument, field: "external_id"},
		{name: "source/unknown", command: "open", body: open("source", "webhook"), code: command.CodeInvalidArgument, field: "source"},

		// Expiry.
		{name: "expiry/tempban without expires_at", command: "open", body: func() []byte { return tempban(nil) }, code: command.CodeInvalidArgument, field: "expires_at"},
		{name: "expiry/tempban null expires_at", command: "open", body: func() []byte { return tempban(wireRaw("null")) }, code: command.CodeInvalidArgument, field: "expires_at"},
		{name: "expiry/in the past", command: "open", body: func() []byte { return tempban(past) }, code: command.CodeInvalidArgument, field: "expires_at"},
		{name: "expiry/now", command: "open", body: func() []byte { return tempban(now.Format(time.RFC3339Nano)) }, code: command.CodeInvalidArgument, field: "expires_at"},
		{name: "expiry/without zone", command: "open", body: func() []byte { return tempban("2030-01-01T00:00:00") }, code: command.CodeInvalidArgument, field: "expires_at"},
		{name: "expiry/date only", command: "open", body: func() []byte { return tempban("2030-01-01") }, code: command.CodeInvalidArgument, field: "expires_at"},
		{name: "expiry/space separator", command: "open", body: func() []byte { return tempban("2030-01-01 00:00:00Z") }, code: command.CodeInvalidArgument, field: "expires_at"},
		{name: "expiry/not a time", command: "open", body: func() []byte { return tempban("tomorrow") }, code: command.CodeInvalidArgument, field: "expires_at"},
		{name: "expiry/unix seconds", command: "open", body: func() []byte { return tempban(wireRaw("1893456000")) }, code: command.CodeInvalidArgument, field: "expires_at",
			bug: "decode.go jsonError: time.Time's \"input is not a JSON string\" error is neither a ParseError nor a type error, so a number for expires_at gets no field"},
		{name: "expiry/year 10000 in UTC", command: "open", body: func() []byte { return tempban("9999-12-31T23:30:00-01:00") }, code: command.CodeInvalidArgument, field: "expires_at"},
		{name: "expiry/timeout over 28 days", command: "open", body: open("type", "TIMEOUT", "expires_at", now.Add(aggregate.MaxTimeout+time.Second).Format(time.RFC3339Nano)), code: command.CodeInvalidArgument, field: "expires_at"},
		{name: "expiry/timeout without expiry", command: "open", body: open("type", "TIMEOUT"), code: command.CodeInvalidArgument, field: "expires_at"},
		{name: "expiry/on a BAN", command: "open", body: open("type", "BAN", "expires_at", future), code: command.CodeInvalidArgument, field: "expires_at"},
		{name: "expiry/on a WARN", command: "open", body: open("expires_at", future), code: command.CodeInvalidArgument, field: "expires_at"},

		// Metadata.
		{name: "metadata/array", command: "open", body: open("metadata", []int{1}), code: command.CodeInvalidArgument, field: "metadata"},
		{name: "metadata/string", command: "open", body: open("metadata", "{}"), code: command.CodeInvalidArgument, field: "metadata"},
		{name: "metadata/number", command: "open", body: open("metadata", 5), code: command.CodeInvalidArgument, field: "metadata"},
		{name: "metadata/over 8 KiB", command: "open", body: open("metadata", map[string]string{"a": strings.Repeat("x", 8<<10)}), code: command.CodeInvalidArgument, field: "metadata"},
		{name: "metadata/over 16 KiB", command: "open", body: open("metadata", map[string]string{"a": strings.Repeat("x", 20<<10)}), code: command.CodeInvalidArgument, field: "metadata"},
		{name: "metadata/NUL", command: "open", body: open("metadata", map[string]string{"a": "\x00"}), code: command.CodeInvalidArgument, field: "metadata"},

		// Fields.
		{name: "field/unknown", command: "open", body: open("colour", "red"), code: command.CodeInvalidArgument, field: "colour"},
		{name: "field/server-assigned case_id", command: "open", body: open("case_id", wireCommandID()), code: command.CodeInvalidArgument, field: "case_id"},
		{name: "field/server-assigned case_number", command: "open", body: open("case_number", 7), code: command.CodeInvalidArgument, field: "case_number"},
		{name: "field/wrong case", command: "open", body: open("USER_ID", "5"), code: command.CodeInvalidArgument, field: "USER_ID",
			bug: "decode.go decodeParams: encoding/json matches keys case-insensitively, so USER_ID (or Reason, Type, ...) is taken for user_id instead of being an unknown field"},
		{name: "field/duplicate key", command: "open", body: literal(`{` + id + `,"reason":"first","reason":"second"` + goodTail), code: command.CodeInvalidArgument, field: "reason",
			bug: "decode.go decodeParams: a repeated key is accepted and the last value wins; a strict decoder should refuse it (parsers disagree on which value wins)"},

		// Command ids.
		{name: "command_id/missing", command: "open", body: open("command_id", wireOmit{}), code: command.CodeInvalidArgument, field: "command_id"},
		{name: "command_id/nil UUID", command: "open", body: open("command_id", uuid.Nil.String()), code: command.CodeInvalidArgument, field: "command_id"},
		{name: "command_id/null", command: "open", body: open("command_id", nil), code: command.CodeInvalidArgument, field: "command_id"},
		{name: "command_id/not a UUID", command: "open", body: open("command_id", "not-a-uuid"), code: command.CodeInvalidArgument, field: "command_id"},
		{name: "command_id/empty", command: "open", body: open("command_id", ""), code: command.CodeInvalidArgument, field: "command_id"},
		{name: "command_id/number", command: "open", body: open("command_id", 5), code: command.CodeInvalidArgument, field: "command_id"},
		{name: "correlation_id/not a UUID", command: "open", body: open("correlation_id", "x"), code: command.CodeInvalidArgument, field: "correlation_id"},

		// Size.
		{name: "size/open over the limit", command: "open", body: func() []byte {
			b := good()
			return append(b[:len(b)-1], append(bytes.Repeat([]byte(" "), command.MaxSingleRequestBytes+1-len(b)), '}')...)
		}, code: command.CodeInvalidArgument},
		{name: "size/change over the limit", command: "close", body: func() []byte {
			b := wireChangeBody(t, fxWarn, nil)
			return append(b[:len(b)-1], append(bytes.Repeat([]byte(" "), command.MaxSingleRequestBytes+1-len(b)), '}')...)
		}, code: command.CodeInvalidArgument},

		// Guild in the subject.
		{name: "guild/zero", subject: "modledger.cmd.0.open", body: good, code: command.CodeInvalidArgument, field: "guild_id"},
		{name: "guild/not a number", subject: "modledger.cmd.abc.open", body: good, code: command.CodeInvalidArgument, field: "guild_id"},
		{name: "guild/negative", subject: "modledger.cmd.-1.open", body: good, code: command.CodeInvalidArgument, field: "guild_id"},
		{name: "guild/above int64", subject: "modledger.cmd.9223372036854775808.open", body: good, code: command.CodeInvalidArgument, field: "guild_id"},
		{name: "guild/change to zero guild", subject: "modledger.cmd.0.close", body: func() []byte { return wireChangeBody(t, 1, nil) }, code: command.CodeInvalidArgument, field: "guild_id"},
		{name: "guild/leading zero", subject: "modledger.cmd.0" + badGuild.String() + ".open", body: good, code: command.CodeInvalidArgument, field: "guild_id"},

		// open_many and import.
		{name: "open_many/empty cases", command: "open_many", body: func() []byte {
			return wireBody(t, map[string]any{"command_id": wireCommandID(), "cases": []any{}}, nil)
		}, code: command.CodeInvalidArgument, field: "cases"},
		{name: "open_many/no cases", command: "open_many", body: func() []byte { return wireBody(t, map[string]any{"command_id": wireCommandID()}, nil) }, code: command.CodeInvalidArgument, field: "cases"},
		{name: "open_many/null cases", command: "open_many", body: func() []byte { return wireBody(t, map[string]any{"command_id": wireCommandID(), "cases": nil}, nil) }, code: command.CodeInvalidArgument, field: "cases"},
		{name: "open_many/cases not array", command: "open_many", body: func() []byte {
			return wireBody(t, map[string]any{"command_id": wireCommandID(), "cases": map[string]any{"type": "WARN"}}, nil)
		}, code: command.CodeInvalidArgument, field: "cases"},
		{name: "open_many/repeated external_id", command: "open_many", body: func() []byte {
			c := map[string]any{"type": "BAN", "user_id": "9", "moderator_id": "42", "external_id": "audit-1"}
			return wireBody(t, map[string]any{"command_id": wireCommandID(), "cases": []any{c, withKV(c, "user_id", "10", "external_id", "audit-2"), withKV(c, "user_id", "11")}}, nil)
		}, code: command.CodeInvalidArgument, field: "cases[2].external_id"},
		{name: "open_many/bad type in one", command: "open_many", body: func() []byte {
			c := map[string]any{"type": "BAN", "user_id": "9", "moderator_id": "42"}
			return wireBody(t, map[string]any{"command_id": wireCommandID(), "cases": []any{c, withKV(c, "type", "YEET")}}, nil)
		}, code: command.CodeInvalidArgument, field: "cases[1].type"},
		{name: "open_many/bad snowflake in one", command: "open_many", body: func() []byte {
			c := map[string]any{"type": "BAN", "user_id": "9", "moderator_id": "42"}
			return wireBody(t, map[string]any{"command_id": wireCommandID(), "cases": []any{c, withKV(c, "user_id", "1.5")}}, nil)
		}, code: command.CodeInvalidArgument, field: "cases[1].user_id"},
		{name: "open_many/wrong JSON type in one", command: "open_many", body: func() []byte {
			c := map[string]any{"type": "BAN", "user_id": "9", "moderator_id": "42"}
			return wireBody(t, map[string]any{"command_id": wireCommandID(), "cases": []any{c, withKV(c, "type", 5)}}, nil)
		}, code: command.CodeInvalidArgument, field: "cases[1].type",
			bug: "decode.go jsonError uses UnmarshalTypeError.Field, which has no array index (cases.type), not the wire path cases[1].type"},
		{name: "open_many/unknown field in one", command: "open_many", body: func() []byte {
			c := map[string]any{"type": "BAN", "user_id": "9", "moderator_id": "42"}
			return wireBody(t, map[string]any{"command_id": wireCommandID(), "cases": []any{c, withKV(c, "colour", "red")}}, nil)
		}, code: command.CodeInvalidArgument, field: "cases[1].colour",
			bug: "decode.go jsonError names an unknown field without its path (colour, not cases[1].colour)"},
		{name: "open_many/expiry in the past in one", command: "open_many", body: func() []byte {
			c := map[string]any{"type": "TEMPBAN", "user_id": "9", "moderator_id": "42", "expires_at": future}
			return wireBody(t, map[string]any{"command_id": wireCommandID(), "cases": []any{c, withKV(c, "expires_at", past)}}, nil)
		}, code: command.CodeInvalidArgument, field: "cases[1].expires_at"},
		{name: "open_many/too many cases", command: "open_many", body: func() []byte {
			c := map[string]any{"type": "WARN", "user_id": "9", "moderator_id": "42"}
			return wireBody(t, map[string]any{"command_id": wireCommandID(), "cases": slices.Repeat([]any{c}, command.MaxCasesPerBatch+1)}, nil)
		}, code: command.CodeInvalidArgument, field: "cases"},
		{name: "open_many/missing command_id", command: "open_many", body: func() []byte {
			return wireBody(t, map[string]any{"cases": []any{map[string]any{"type": "WARN", "user_id": "9", "moderator_id": "42"}}}, nil)
		}, code: command.CodeInvalidArgument, field: "command_id"},
	}

	imp := func(numbers ...any) func() []byte {
		return func() []byte {
			var cs []any
			for _, n := range numbers {
				cs = append(cs, map[string]any{"type": "WARN", "user_id": "9", "moderator_id": "42", "case_number": n, "created_at": now.AddDate(-1, 0, 0)})
			}
			return wireBody(t, map[string]any{"command_id": wireCommandID(), "cases": cs}, nil)
		}
	}
	cases = append(cases,
		badInputCase{name: "import/decreasing numbers", command: "import", body: imp(20, 30, 25), code: command.CodeInvalidArgument, field: "cases[2].case_number"},
		badInputCase{name: "import/repeated number", command: "import", body: imp(20, 20), code: command.CodeInvalidArgument, field: "cases[1].case_number"},
		badInputCase{name: "import/zero number", command: "import", body: imp(0), code: command.CodeInvalidArgument, field: "cases[0].case_number"},
		badInputCase{name: "import/at or below the last case", command: "import", body: imp(fxDeleted), code: command.CodeInvalidArgument, field: "cases[0].case_number"},
		badInputCase{name: "import/empty", command: "import", body: imp(), code: command.CodeInvalidArgument, field: "cases"},
		badInputCase{name: "import/created in the future", command: "import", body: func() []byte {
			return wireBody(t, map[string]any{"command_id": wireCommandID(), "cases": []any{
				map[string]any{"type": "WARN", "user_id": "9", "moderator_id": "42", "case_number": 50, "created_at": now.Add(time.Hour)},
			}}, nil)
		}, code: command.CodeInvalidArgument, field: "cases[0].created_at"},
		badInputCase{name: "import/created_at without zone", command: "import", body: func() []byte {
			return wireBody(t, map[string]any{"command_id": wireCommandID(), "cases": []any{
				map[string]any{"type": "WARN", "user_id": "9", "moderator_id": "42", "case_number": 50, "created_at": "2020-01-01T00:00:00"},
			}}, nil)
		}, code: command.CodeInvalidArgument, field: "cases[0].created_at"},
	)

	// Every change command: the fields every change needs, and the cases it
	// cannot change.
	for _, name := range slices.Sorted(maps.Keys(wireChangeExtras)) {
		extra := wireChangeExtras[name]
		body := func(n uint32, kv ...any) func() []byte {
			return func() []byte { return wireChangeBody(t, n, withKV(extra, kv...)) }
		}
		cases = append(cases,
			badInputCase{name: name + "/without case_number", command: name, body: body(fxWarn, "case_number", wireOmit{}), code: command.CodeInvalidArgument, field: "case_number"},
			badInputCase{name: name + "/case_number zero", command: name, body: body(fxWarn, "case_number", 0), code: command.CodeInvalidArgument, field: "case_number"},
			badInputCase{name: name + "/case_number negative", command: name, body: body(fxWarn, "case_number", -1), code: command.CodeInvalidArgument, field: "case_number"},
			badInputCase{name: name + "/without actor_id", command: name, body: body(fxWarn, "actor_id", wireOmit{}), code: command.CodeInvalidArgument, field: "actor_id"},
			badInputCase{name: name + "/actor_id zero", command: name, body: body(fxWarn, "actor_id", "0"), code: command.CodeInvalidArgument, field: "actor_id"},
			badInputCase{name: name + "/actor_id not a number", command: name, body: body(fxWarn, "actor_id", "mod"), code: command.CodeInvalidArgument, field: "actor_id"},
			badInputCase{name: name + "/actor_id above int64", command: name, body: body(fxWarn, "actor_id", "9223372036854775808"), code: command.CodeInvalidArgument, field: "actor_id"},
			badInputCase{name: name + "/without command_id", command: name, body: body(fxWarn, "command_id", wireOmit{}), code: command.CodeInvalidArgument, field: "command_id"},
			badInputCase{name: name + "/unknown field", command: name, body: body(fxWarn, "user_id", "5"), code: command.CodeInvalidArgument, field: "user_id"},
			badInputCase{name: name + "/case does not exist", command: name, body: body(fxMissing), code: command.CodeNotFound},
			badInputCase{name: name + "/case number above any", command: name, body: body(1<<32 - 1), code: command.CodeNotFound},
			badInputCase{name: name + "/in a guild without cases", subject: events.Subjects{}.Command(badGuild+1, name), body: body(1), code: command.CodeNotFound},
		)
		if name != aggregate.CommandDelete && name != aggregate.CommandRedact {
			cases = append(cases, badInputCase{name: name + "/deleted case", command: name, body: body(fxDeleted), code: command.CodeNotFound, deleted: true})
		}
	}

	change := func(n uint32, kv ...any) func() []byte {
		return func() []byte { return wireChangeBody(t, n, withKV(nil, kv...)) }
	}
	cases = append(cases,
		badInputCase{name: "update/nothing to update", command: "update", body: change(fxWarn), code: command.CodeInvalidArgument},
		badInputCase{name: "update/only null reason", command: "update", body: change(fxWarn, "reason", nil), code: command.CodeInvalidArgument},
		badInputCase{name: "update/reason 2001 characters", command: "update", body: change(fxWarn, "reason", strings.Repeat("a", 2001)), code: command.CodeInvalidArgument, field: "reason"},
		badInputCase{name: "update/reason NUL", command: "update", body: change(fxWarn, "reason", "\x00"), code: command.CodeInvalidArgument, field: "reason"},
		badInputCase{name: "update/status unknown", command: "update", body: change(fxWarn, "status", "archived"), code: command.CodeInvalidArgument, field: "status"},
		badInputCase{name: "update/expiry on a WARN", command: "update", body: change(fxWarn, "expires_at", future), code: command.CodeInvalidArgument, field: "expires_at"},
		badInputCase{name: "update/expiry in the past", command: "update", body: change(fxTempban, "expires_at", past), code: command.CodeInvalidArgument, field: "expires_at"},
		badInputCase{name: "update/expiry without zone", command: "update", body: change(fxTempban, "expires_at", "2030-01-01T00:00:00"), code: command.CodeInvalidArgument, field: "expires_at"},
		badInputCase{name: "update/clear a required expiry", command: "update", body: change(fxTempban, "expires_at", nil), code: command.CodeInvalidArgument, field: "expires_at"},
		badInputCase{name: "update/expiry year 10000 in UTC", command: "update", body: change(fxTempban, "expires_at", "9999-12-31T23:30:00-01:00"), code: command.CodeInvalidArgument, field: "expires_at"},
		badInputCase{name: "update/metadata not an object", command: "update", body: change(fxWarn, "metadata", []int{1}), code: command.CodeInvalidArgument, field: "metadata"},
		badInputCase{name: "update/metadata over 8 KiB", command: "update", body: change(fxWarn, "metadata", map[string]string{"a": strings.Repeat("x", 8<<10)}), code: command.CodeInvalidArgument, field: "metadata"},
		badInputCase{name: "update/case_number as string", command: "update", body: change(fxWarn, "case_number", "2", "reason", "x"), code: command.CodeInvalidArgument, field: "case_number"},
		badInputCase{name: "update/case_id not a UUID", command: "update", body: change(fxWarn, "case_id", "2", "reason", "x"), code: command.CodeInvalidArgument, field: "case_id"},
		badInputCase{name: "update/case_id of another case", command: "update", body: change(fxWarn, "case_id", wireCommandID(), "reason", "x"), code: command.CodeConflict},
		badInputCase{name: "command_id/of a command on another case", command: "close", body: change(fxTempban, "command_id", fxWarnOpenID.String()), code: command.CodeConflict},
		badInputCase{name: "command_id/of another command on the same case", command: "close", body: change(fxWarn, "command_id", fxWarnOpenID.String(), "reason", "void"), code: command.CodeConflict},
		badInputCase{name: "add_note/empty text", command: "add_note", body: change(fxWarn, "text", ""), code: command.CodeInvalidArgument, field: "text"},
		badInputCase{name: "add_note/blank text", command: "add_note", body: change(fxWarn, "text", " \n\t"), code: command.CodeInvalidArgument, field: "text"},
		badInputCase{name: "add_note/no text", command: "add_note", body: change(fxWarn), code: command.CodeInvalidArgument, field: "text"},
		badInputCase{name: "add_note/text 2001 characters", command: "add_note", body: change(fxWarn, "text", strings.Repeat("ü", 2001)), code: command.CodeInvalidArgument, field: "text"},
		badInputCase{name: "add_note/javascript evidence", command: "add_note", body: change(fxWarn, "text", "x", "evidence_urls", []string{"https://x.test/a", "javascript:alert(1)"}), code: command.CodeInvalidArgument, field: "evidence_urls[1]"},
		badInputCase{name: "add_note/too much evidence", command: "add_note", body: change(fxWarn, "text", "x", "evidence_urls", slices.Repeat([]string{"https://x.test/a"}, aggregate.MaxEvidenceURLs+1)), code: command.CodeInvalidArgument, field: "evidence_urls"},
		badInputCase{name: "link_mod_log/no message id", command: "link_mod_log", body: change(fxWarn), code: command.CodeInvalidArgument, field: "mod_log_message_id"},
		badInputCase{name: "link_mod_log/message id zero", command: "link_mod_log", body: change(fxWarn, "mod_log_message_id", "0"), code: command.CodeInvalidArgument, field: "mod_log_message_id"},
		badInputCase{name: "link_mod_log/message id not a number", command: "link_mod_log", body: change(fxWarn, "mod_log_message_id", "https://discord.com/channels/1/2/3"), code: command.CodeInvalidArgument, field: "mod_log_message_id"},
		badInputCase{name: "link_mod_log/message id negative", command: "link_mod_log", body: change(fxWarn, "mod_log_message_id", wireRaw("-3")), code: command.CodeInvalidArgument, field: "mod_log_message_id"},
		badInputCase{name: "link_mod_log/message id above int64", command: "link_mod_log", body: change(fxWarn, "mod_log_message_id", "9223372036854775808"), code: command.CodeInvalidArgument, field: "mod_log_message_id"},
		badInputCase{name: "link_mod_log/channel id bad", command: "link_mod_log", body: change(fxWarn, "mod_log_message_id", "7", "mod_log_channel_id", "1.5"), code: command.CodeInvalidArgument, field: "mod_log_channel_id"},
		badInputCase{name: "mark_expiry_processed/no expiry", command: "mark_expiry_processed", body: change(fxWarn), code: command.CodeConflict},
		badInputCase{name: "mark_expiry_processed/not yet due", command: "mark_expiry_processed", body: change(fxTempban), code: command.CodeConflict},
		badInputCase{name: "close/reason 2001 characters", command: "close", body: change(fxWarn, "reason", strings.Repeat("a", 2001)), code: command.CodeInvalidArgument, field: "reason"},
		badInputCase{name: "reopen/reason NUL", command: "reopen", body: change(fxWarn, "reason", "\x00"), code: command.CodeInvalidArgument, field: "reason"},
		badInputCase{name: "delete/reason 2001 characters", command: "delete", body: change(fxWarn, "reason", strings.Repeat("a", 2001)), code: command.CodeInvalidArgument, field: "reason"},
		badInputCase{name: "redact/reason NUL", command: "redact", body: change(fxWarn, "reason", "\x00"), code: command.CodeInvalidArgument, field: "reason"},
	)
	return cases
}

func TestBadInputOverTheWire(t *testing.T) {
	t.Parallel()
	b := setup(t)
	badFixture(t, b)
	start := b.msgCount(t)
	for _, tc := range badInputCases(t, b) {
		t.Run(tc.name, func(t *testing.T) { runBadInputCase(t, b, tc) })
	}
	// The fixture is as it was, except for known bugs that appended.
	for _, n := range []uint32{fxTempban, fxWarn, fxDeleted} {
		evs := b.storedEvents(t, events.Subjects{}.CaseAll(badGuild, n))
		want := 1
		if n == fxDeleted {
			want = 2
		}
		if len(evs) != want {
			t.Errorf("fixture case %d has %d events, want %d", n, len(evs), want)
		}
	}
	// An unknown command has no endpoint: NATS says so at once.
	if _, err := wireRequest(t, b.nc, "modledger.cmd."+badGuild.String()+".purge", wireOpenBody(t, nil), 5*time.Second); !errors.Is(err, nats.ErrNoResponders) {
		t.Errorf("unknown command: err = %v, want no responders", err)
	}
	// The service still answers a good open.
	before := b.msgCount(t)
	m, err := wireRequest(t, b.nc, events.Subjects{}.Command(badGuild, "open"), wireOpenBody(t, nil), 10*time.Second)
	if err != nil {
		t.Fatalf("good open after bad input: %v", err)
	}
	if code := m.Header.Get("Nats-Service-Error-Code"); code != "" {
		t.Fatalf("good open after bad input: error %s: %s", code, m.Data)
	}
	var r command.Result
	if err := json.Unmarshal(m.Data, &r); err != nil || r.Appended != 1 || r.Case == nil {
		t.Fatalf("good open after bad input: %s (%v)", m.Data, err)
	}
	if after := b.msgCount(t); after != before+1 {
		t.Fatalf("good open: stream went from %d to %d messages", before, after)
	}
	t.Logf("stream: %d messages after the fixture, %d after the table", start, before)
}

// TestBadInputHugeValueStillGetsAReply sends bad values as large as a batch
// body may be. The error reply must still reach the caller: an echo of the
// value in the header and the body must not push it past the server's
// maximum payload.
func TestBadInputHugeValueStillGetsAReply(t *testing.T) {
	t.Parallel()
	b := setup(t)
	waitReady(t, b)
	huge := strings.Repeat("a", 700<<10)
	for _, tc := range []badInputCase{
		{name: "snowflake", command: "open_many", body: func() []byte {
			return wireBody(t, map[string]any{"command_id": wireCommandID(), "cases": []any{
				map[string]any{"type": "BAN", "user_id": huge, "moderator_id": "42"},
			}}, nil)
		}, code: command.CodeInvalidArgument, field: "cases[0].user_id", timeout: 2 * time.Second,
		},
		{name: "type", command: "open_many", body: func() []byte {
			return wireBody(t, map[string]any{"command_id": wireCommandID(), "cases": []any{
				map[string]any{"type": huge, "user_id": "9", "moderator_id": "42"},
			}}, nil)
		}, code: command.CodeInvalidArgument, field: "cases[0].type", timeout: 2 * time.Second,
		},
		{name: "reason in a 60 KiB open", command: "open", body: func() []byte {
			return wireOpenBody(t, map[string]any{"reason": strings.Repeat("a", 60<<10)})
		}, code: command.CodeInvalidArgument, field: "reason"},
	} {
		t.Run(tc.name, func(t *testing.T) { runBadInputCase(t, b, tc) })
	}
}

// TestBadInputNeighboursAreAccepted checks the good side of each boundary
// the table above tests from the bad side.
func TestBadInputNeighboursAreAccepted(t *testing.T) {
	t.Parallel()
	b := setup(t)
	badFixture(t, b)
	now := b.clock.Now()
	send := func(t *testing.T, name string, body []byte) *command.Result {
		t.Helper()
		before := b.msgCount(t)
		m, err := wireRequest(t, b.nc, events.Subjects{}.Command(badGuild, name), body, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if code := m.Header.Get("Nats-Service-Error-Code"); code != "" {
			t.Fatalf("error %s: %.300s", code, m.Data)
		}
		var r command.Result
		if err := json.Unmarshal(m.Data, &r); err != nil || r.Case == nil {
			t.Fatalf("reply %.300s: %v", m.Data, err)
		}
		if after := b.msgCount(t); after != before+uint64(r.Appended) {
			t.Fatalf("appended %d, but the stream went from %d to %d", r.Appended, before, after)
		}
		return &r
	}
	t.Run("reason of 2000 multi-byte characters", func(t *testing.T) {
		reason := strings.Repeat("é🔨", 1000)
		r := send(t, "open", wireOpenBody(t, map[string]any{"reason": reason}))
		if r.Case.Reason != reason || r.Appended != 1 {
			t.Fatalf("reason of %d bytes came back as %d bytes, appended %d", len(reason), len(r.Case.Reason), r.Appended)
		}
	})
	t.Run("body of exactly the size limit", func(t *testing.T) {
		body := wireOpenBody(t, nil)
		body = append(body[:len(body)-1], append(bytes.Repeat([]byte(" "), command.MaxSingleRequestBytes-len(body)), '}')...)
		if len(body) != command.MaxSingleRequestBytes {
			t.Fatalf("body is %d bytes", len(body))
		}
		send(t, "open", body)
	})
	t.Run("snowflakes as numbers and at the top of the range", func(t *testing.T) {
		r := send(t, "open", wireOpenBody(t, map[string]any{"user_id": wireRaw("9223372036854775807"), "moderator_id": wireRaw("42")}))
		if r.Case.UserID != 9223372036854775807 || r.Case.ModeratorID != 42 {
			t.Fatalf("case %+v", r.Case)
		}
	})
	t.Run("timeout of exactly 28 days with a zone offset", func(t *testing.T) {
		exp := now.Add(aggregate.MaxTimeout).In(time.FixedZone("", 2*3600))
		r := send(t, "open", wireOpenBody(t, map[string]any{"type": "TIMEOUT", "expires_at": exp.Format(time.RFC3339Nano)}))
		if r.Case.ExpiresAt == nil || !r.Case.ExpiresAt.Equal(exp) || r.Case.ExpiresAt.Location() != time.UTC {
			t.Fatalf("expires_at %v, want %v in UTC", r.Case.ExpiresAt, exp)
		}
	})
	t.Run("delete of a deleted case is a no-op", func(t *testing.T) {
		r := send(t, "delete", wireChangeBody(t, fxDeleted, map[string]any{"reason": "again"}))
		if r.Appended != 0 || !r.Case.Deleted {
			t.Fatalf("appended %d, deleted %v", r.Appended, r.Case.Deleted)
		}
	})
	t.Run("redact of a deleted case is allowed", func(t *testing.T) {
		r := send(t, "redact", wireChangeBody(t, fxDeleted, map[string]any{"reason": "privacy request"}))
		if r.Appended != 1 || !r.Case.Redacted || !r.Case.Deleted {
			t.Fatalf("appended %d, redacted %v, deleted %v", r.Appended, r.Case.Redacted, r.Case.Deleted)
		}
		again := send(t, "redact", wireChangeBody(t, fxDeleted, map[string]any{"reason": "privacy request"}))
		if again.Appended != 0 {
			t.Fatalf("second redact appended %d", again.Appended)
		}
	})
}

// TestClientErrorsMapToSentinels checks that the Go client's errors match
// the aggregate's sentinels and carry the wire error with its field.
func TestClientErrorsMapToSentinels(t *testing.T) {
	t.Parallel()
	b := setup(t)
	badFixture(t, b)
	ctx := t.Context()
	before := b.msgCount(t)
	ref := func(n uint32) command.CaseRef { return command.CaseRef{CaseNumber: n} }
	sentinels := []error{aggregate.ErrInvalidArgument, aggregate.ErrCaseNotFound, aggregate.ErrCaseDeleted, aggregate.ErrConflict, command.ErrUnavailable, command.ErrInternal}

	for _, tc := range []struct {
		name    string
		call    func() error
		code    command.Code
		field   string
		matches []error
	}{
		{"unknown type", func() error {
			p := warnParams(5)
			p.Type = "YEET"
			_, err := b.client.CaseOpen(ctx, badGuild, p)
			return err
		}, command.CodeInvalidArgument, "type", []error{aggregate.ErrInvalidArgument}},
		{"tempban without expiry", func() error {
			p := tempbanParams(b.clock, 5)
			p.ExpiresAt = nil
			_, err := b.client.CaseOpen(ctx, badGuild, p)
			return err
		}, command.CodeInvalidArgument, "expires_at", []error{aggregate.ErrInvalidArgument}},
		{"reason too long", func() error {
			p := warnParams(5)
			p.Reason = strings.Repeat("a", aggregate.MaxReasonLen+1)
			_, err := b.client.CaseOpen(ctx, badGuild, p)
			return err
		}, command.CodeInvalidArgument, "reason", []error{aggregate.ErrInvalidArgument}},
		{"zero user", func() error {
			p := warnParams(0)
			_, err := b.client.CaseOpen(ctx, badGuild, p)
			return err
		}, command.CodeInvalidArgument, "user_id", []error{aggregate.ErrInvalidArgument}},
		{"zero guild, refused by the client", func() error {
			_, err := b.client.CaseOpen(ctx, 0, warnParams(5))
			return err
		}, command.CodeInvalidArgument, "guild_id", []error{aggregate.ErrInvalidArgument}},
		{"open_many repeated external id", func() error {
			f := events.CaseFields{Type: aggregate.TypeBan, UserID: 5, ModeratorID: 42, ExternalID: "same"}
			_, err := b.client.CaseOpenMany(ctx, badGuild, command.OpenManyParams{Cases: []events.CaseFields{f, f}})
			return err
		}, command.CodeInvalidArgument, "cases[1].external_id", []error{aggregate.ErrInvalidArgument}},
		{"import decreasing", func() error {
			c := aggregate.ImportCase{CaseFields: events.CaseFields{Type: aggregate.TypeWarn, UserID: 5, ModeratorID: 42}, CaseNumber: 30, CreatedAt: b.clock.Now().Add(-time.Hour)}
			c2 := c
			c2.CaseNumber = 20
			_, err := b.client.CaseImport(ctx, badGuild, command.ImportParams{Cases: []aggregate.ImportCase{c, c2}})
			return err
		}, command.CodeInvalidArgument, "cases[1].case_number", []error{aggregate.ErrInvalidArgument}},
		{"change without actor", func() error {
			_, err := b.client.CaseClose(ctx, badGuild, command.CloseParams{CaseRef: ref(fxWarn)})
			return err
		}, command.CodeInvalidArgument, "actor_id", []error{aggregate.ErrInvalidArgument}},
		{"change without case number", func() error {
			_, err := b.client.CaseClose(ctx, badGuild, command.CloseParams{Meta: meta(42)})
			return err
		}, command.CodeInvalidArgument, "case_number", []error{aggregate.ErrInvalidArgument}},
		{"add_note empty", func() error {
			_, err := b.client.CaseAddNote(ctx, badGuild, command.AddNoteParams{Meta: meta(42), CaseRef: ref(fxWarn)})
			return err
		}, command.CodeInvalidArgument, "text", []error{aggregate.ErrInvalidArgument}},
		{"update nothing", func() error {
			_, err := b.client.CaseUpdate(ctx, badGuild, command.UpdateParams{Meta: meta(42), CaseRef: ref(fxWarn)})
			return err
		}, command.CodeInvalidArgument, "", []error{aggregate.ErrInvalidArgument}},
		{"update past expiry", func() error {
			_, err := b.client.CaseUpdate(ctx, badGuild, command.UpdateParams{Meta: meta(42), CaseRef: ref(fxTempban), ExpiresAt: command.SetTime(b.clock.Now().Add(-time.Minute))})
			return err
		}, command.CodeInvalidArgument, "expires_at", []error{aggregate.ErrInvalidArgument}},
		{"not found", func() error {
			_, err := b.client.CaseClose(ctx, badGuild, command.CloseParams{Meta: meta(42), CaseRef: ref(fxMissing)})
			return err
		}, command.CodeNotFound, "", []error{aggregate.ErrCaseNotFound}},
		{"deleted", func() error {
			_, err := b.client.CaseAddNote(ctx, badGuild, command.AddNoteParams{Meta: meta(42), CaseRef: ref(fxDeleted), Text: "x"})
			return err
		}, command.CodeNotFound, "", []error{aggregate.ErrCaseNotFound, aggregate.ErrCaseDeleted}},
		{"case id mismatch", func() error {
			_, err := b.client.CaseClose(ctx, badGuild, command.CloseParams{Meta: meta(42), CaseRef: command.CaseRef{CaseNumber: fxWarn, CaseID: uuid.New()}})
			return err
		}, command.CodeConflict, "", []error{aggregate.ErrConflict}},
		{"expiry not due", func() error {
			_, err := b.client.CaseMarkExpiryProcessed(ctx, badGuild, command.MarkExpiryProcessedParams{Meta: meta(42), CaseRef: ref(fxTempban)})
			return err
		}, command.CodeConflict, "", []error{aggregate.ErrConflict}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if err == nil {
				t.Fatal("no error")
			}
			var we *command.Error
			if !errors.As(err, &we) {
				t.Fatalf("errors.As(*command.Error) is false for %T %v", err, err)
			}
			if we.Code != tc.code || we.Field != tc.field || we.Message == "" {
				t.Fatalf("error %+v, want code %s field %q and a message", we, tc.code, tc.field)
			}
			for _, s := range sentinels {
				if got, want := errors.Is(err, s), slices.Contains(tc.matches, s); got != want {
					t.Errorf("errors.Is(err, %v) = %v, want %v (err %v)", s, got, want, err)
				}
			}
		})
	}
	if after := b.msgCount(t); after != before {
		t.Fatalf("the stream went from %d to %d messages", before, after)
	}
}

// wireOK sends a good command and returns its reply.
func wireOK(t *testing.T, b *testBundle, subject string, body []byte) *command.Result {
	t.Helper()
	m, err := wireRequest(t, b.nc, subject, body, 10*time.Second)
	if err != nil {
		t.Fatalf("%s: %v", subject, err)
	}
	if code := m.Header.Get("Nats-Service-Error-Code"); code != "" {
		t.Fatalf("%s: error %s: %.300s", subject, code, m.Data)
	}
	var r command.Result
	if err := json.Unmarshal(m.Data, &r); err != nil || r.Case == nil {
		t.Fatalf("%s: reply %.300s: %v", subject, m.Data, err)
	}
	return &r
}

// hostileTexts are valid inputs that break naive code: they must be stored
// and returned byte for byte.
var hostileTexts = []string{
	"'; DROP TABLE cases; --",
	`Robert'); DROP TABLE students;-- " OR 1=1 --`,
	"\u0001\u0002\t\n\r\u001b[31mred\u001b[0m\u007f",
	"🔨 banned 👋🏽 🏳️‍🌈 👨‍👩‍👧‍👦",
	"\u200fمرحبا\u202egnp.exe\u202c \u200e",
	"<script>alert(1)</script> &amp; &lt;",
	"line\u2028separator\u2029paragraph",
	"${jndi:ldap://x.test/a} {{.Secret}} %s %n %x",
	`\u0000 is a backslash and text, not NUL; "quotes" \\ \n`,
	"modledger.case.>.* $JS.API.> _INBOX.x",
	"Z̴̧͉̀a̶l̷g̸o̵ \ufeffBOM \ufffd replacement",
	" leading and trailing spaces ",
}

// TestHostileTextRoundTrips checks that hostile but valid text in a reason,
// an external id and a note comes back verbatim in the reply and in the
// stored events, and that the external id still identifies its case.
func TestHostileTextRoundTrips(t *testing.T) {
	t.Parallel()
	b := setup(t)
	waitReady(t, b)
	const guild = badGuild
	for i, s := range hostileTexts {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			ext := s
			if len(ext) > aggregate.MaxExternalIDLen {
				t.Fatalf("text %d is too long for an external id", i)
			}
			body := wireOpenBody(t, map[string]any{"reason": s, "external_id": ext, "source": "audit_log"})
			r := wireOK(t, b, events.Subjects{}.Command(guild, "open"), body)
			if r.Case.Reason != s || r.Case.ExternalID != ext || r.Appended != 1 {
				t.Fatalf("reply reason %q external id %q (appended %d), want %q", r.Case.Reason, r.Case.ExternalID, r.Appended, s)
			}
			n := r.Case.CaseNumber
			note := wireChangeBody(t, n, map[string]any{"text": s})
			nr := wireOK(t, b, events.Subjects{}.Command(guild, "add_note"), note)
			if len(nr.Case.Notes) != 1 || nr.Case.Notes[0].Text != s {
				t.Fatalf("reply notes %+v, want one with %q", nr.Case.Notes, s)
			}
			// The same external id again is the same case.
			again := wireOK(t, b, events.Subjects{}.Command(guild, "open"), wireOpenBody(t, map[string]any{"external_id": ext, "reason": "again"}))
			if again.Appended != 0 || again.Case.CaseNumber != n || again.Case.Reason != s {
				t.Fatalf("open with the same external id: case %d appended %d reason %q, want case %d appended 0", again.Case.CaseNumber, again.Appended, again.Case.Reason, n)
			}
			// The stored events hold the text verbatim.
			evs := b.storedEvents(t, events.Subjects{}.CaseAll(guild, n))
			if len(evs) != 2 {
				t.Fatalf("case %d has %d events, want 2", n, len(evs))
			}
			op, ok := evs[0].Data.(events.CaseOpened)
			if !ok || op.Reason != s || op.ExternalID != ext {
				t.Fatalf("stored open %#v", evs[0].Data)
			}
			na, ok := evs[1].Data.(events.CaseNoteAdded)
			if !ok || na.Text != s {
				t.Fatalf("stored note %#v", evs[1].Data)
			}
		})
	}
}
