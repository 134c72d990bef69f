package events_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/modledger/modledger/events"
)

// FuzzDecode checks that Decode never panics, that every error wraps one of
// the package's sentinels, and that an event it accepts encodes and decodes
// again to the same event and the same bytes.
func FuzzDecode(f *testing.F) {
	codec := newCodec(f)
	for _, p := range samplePayloads() {
		b, err := codec.Encode(sampleEvent(p))
		if err != nil {
			f.Fatalf("Encode %s: %v", p.EventName(), err)
		}
		f.Add(b)
	}
	f.Add([]byte(validEvent))
	f.Add([]byte(`{"event":"expiry_processed","schema_version":1,"guild_id":1128457362048573440,"case_number":3}`))
	f.Add([]byte(`{"event":"opened","schema_version":1,"data":{"type":"BAN","user_roles":[],"metadata":{ "a" : "<b>" }}}`))
	f.Add([]byte(`{"event":"closed","schema_version":2,"data":{}}`))
	f.Add([]byte(`{"event":"banned","schema_version":1}`))
	f.Add([]byte(validEvent + `}`))
	f.Add([]byte(`null`))
	f.Add([]byte(``))

	f.Fuzz(func(t *testing.T, b []byte) {
		e1, err := codec.Decode(b)
		if err != nil {
			if !errors.Is(err, events.ErrMalformedEvent) && !errors.Is(err, events.ErrUnknownEvent) && !errors.Is(err, events.ErrUnsupportedVersion) {
				t.Fatalf("Decode(%q) error %v wraps no sentinel", b, err)
			}
			return
		}
		b2, err := codec.Encode(e1)
		if err != nil {
			t.Fatalf("Decode(%q) = %#v, but Encode fails: %v", b, e1, err)
		}
		e2, err := codec.Decode(b2)
		if err != nil {
			t.Fatalf("Decode(Encode(Decode(%q))) = %v; encoded %s", b, err, b2)
		}
		if want := canonical(t, e1); !reflect.DeepEqual(e2, want) {
			t.Fatalf("round trip of %q:\n got %#v\nwant %#v", b, e2, want)
		}
		b3, err := codec.Encode(e2)
		if err != nil {
			t.Fatalf("Encode(%#v): %v", e2, err)
		}
		if !bytes.Equal(b3, b2) {
			t.Fatalf("encoding is not stable:\n%s\n%s", b2, b3)
		}
	})
}

// FuzzParseCase checks that ParseCase never panics and that a subject it
// accepts is exactly the one Case builds from the parsed parts.
func FuzzParseCase(f *testing.F) {
	var s events.Subjects
	for _, n := range events.Names() {
		f.Add(s.Case(guildID, 42, n))
	}
	for _, subj := range []string{
		"modledger.case.1.1.opened",
		"modledger.case.9223372036854775807.4294967295.redacted",
		"modledger.case.9223372036854775808.1.opened",
		"modledger.case.1128457362048573440.4294967296.closed",
		"modledger.case.01128457362048573440.42.closed",
		"modledger.case.1128457362048573440.042.closed",
		"modledger.case.1128457362048573440.42.imported",
		"modledger.case.1128457362048573440.*.opened",
		"modledger.claim.1128457362048573440.external_id.k3v9q2mxw7c4",
		"acme.ledger.case.1128457362048573440.42.closed",
		"modledger.case..42.closed",
		"",
	} {
		f.Add(subj)
	}

	prefixes := []events.Subjects{{}, {Prefix: "acme.ledger"}}
	f.Fuzz(func(t *testing.T, subject string) {
		for _, s := range prefixes {
			got, err := s.ParseCase(subject)
			if err != nil {
				if !errors.Is(err, events.ErrBadSubject) {
					t.Fatalf("ParseCase(%q) error %v does not wrap ErrBadSubject", subject, err)
				}
				continue
			}
			if err := got.GuildID.Validate(); err != nil {
				t.Fatalf("ParseCase(%q) guild: %v", subject, err)
			}
			if got.CaseNumber == 0 {
				t.Fatalf("ParseCase(%q) case number 0", subject)
			}
			if back := s.Case(got.GuildID, got.CaseNumber, events.Name(got.Token)); back != subject {
				t.Fatalf("ParseCase(%q) = %+v, but Case rebuilds %q", subject, got, back)
			}
		}
	})
}

// FuzzSnowflakeJSON checks that reading a snowflake never panics, that
// errors wrap ErrInvalidSnowflake, that json.Unmarshal and a direct
// UnmarshalJSON agree, and that what is read writes back as the same value in
// a JSON string.
func FuzzSnowflakeJSON(f *testing.F) {
	for _, s := range []string{
		`"1128457362048573440"`, `1128457362048573440`, `"1"`, `"0"`, `null`,
		`"9223372036854775807"`, `"9223372036854775808"`, `18446744073709551615`,
		`"18446744073709551616"`, `-1`, `1.5`, `1e3`, `""`, `" 1"`, `"abc"`, `true`, `{}`,
	} {
		f.Add([]byte(s))
	}

	f.Fuzz(func(t *testing.T, b []byte) {
		var direct events.Snowflake
		directErr := direct.UnmarshalJSON(b)
		if directErr != nil && !errors.Is(directErr, events.ErrInvalidSnowflake) {
			t.Fatalf("UnmarshalJSON(%q) error %v does not wrap ErrInvalidSnowflake", b, directErr)
		}

		var id events.Snowflake
		err := json.Unmarshal(b, &id)
		if !json.Valid(b) {
			if err == nil {
				t.Fatalf("json.Unmarshal(%q) accepted invalid JSON", b)
			}
			return
		}
		if (err == nil) != (directErr == nil) || id != direct {
			t.Fatalf("json.Unmarshal(%q) = %d, %v; UnmarshalJSON = %d, %v", b, id, err, direct, directErr)
		}
		if err != nil {
			if !errors.Is(err, events.ErrInvalidSnowflake) {
				t.Fatalf("json.Unmarshal(%q) error %v does not wrap ErrInvalidSnowflake", b, err)
			}
			return
		}
		out, err := json.Marshal(id)
		if err != nil {
			t.Fatalf("Marshal(%d): %v", id, err)
		}
		if want := `"` + id.String() + `"`; string(out) != want {
			t.Fatalf("Marshal(%d) = %s, want %s", id, out, want)
		}
		var back events.Snowflake
		if err := json.Unmarshal(out, &back); err != nil || back != id {
			t.Fatalf("Unmarshal(%s) = %d, %v, want %d", out, back, err, id)
		}
		if id.Validate() == nil {
			if p, err := events.ParseSnowflake(id.String()); err != nil || p != id {
				t.Fatalf("ParseSnowflake(%q) = %d, %v", id.String(), p, err)
			}
		}
	})
}
