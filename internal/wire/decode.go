package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/modledger/modledger/events"
)

// DecodeOpts are the optional settings of [Decode]; nil means defaults.
type DecodeOpts struct {
	// EmptyIsObject reads an empty or blank body as {} (for requests whose
	// every field is optional). Defaults to false: it is an error.
	EmptyIsObject bool
	// UUIDFields are the top-level fields that hold UUIDs, in the order
	// they are looked at to name the one that does not parse. Defaults to
	// none: a bad UUID gets an error without a field.
	UUIDFields []string
}

// Decode reads a request body into v strictly: a body over limit bytes,
// unknown fields, trailing data and wrong types are invalid_argument
// errors, which name the wire field where they can.
func Decode(body []byte, limit int, v any, opts *DecodeOpts) *Error {
	if opts == nil {
		opts = &DecodeOpts{}
	}
	if len(body) > limit {
		return Invalidf("", "request is %d bytes, at most %d", len(body), limit)
	}
	if opts.EmptyIsObject && len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(body, err, opts.UUIDFields)
	}
	// dec.More reports false before a stray ']' or '}', so look at the rest.
	if rest := bytes.TrimSpace(body[dec.InputOffset():]); len(rest) > 0 {
		return Invalidf("", "trailing data after the JSON object")
	}
	return nil
}

// jsonError turns a decoding error into an invalid_argument error naming
// the field where it can.
func jsonError(body []byte, err error, uuidFields []string) *Error {
	var (
		syn   *json.SyntaxError
		typ   *json.UnmarshalTypeError
		sf    *events.SnowflakeSyntaxError
		tperr *time.ParseError
	)
	switch {
	case errors.As(err, &syn):
		return Invalidf("", "malformed JSON at byte %d: %v", syn.Offset, syn)
	case errors.As(err, &typ):
		if typ.Value == "object" && typ.Field == "" {
			return Invalidf("", "the request must be a JSON object")
		}
		return Invalidf(wireField(typ.Field), "must be %s, not JSON %s", typeName(typ.Type), typ.Value)
	case errors.As(err, &sf):
		return Invalidf(pathOf(body, sf.Value), "%v", sf)
	case errors.As(err, &tperr):
		return Invalidf(pathOf(body, strconv.Quote(tperr.Value)), "must be an RFC 3339 time with a zone, like 2026-01-02T15:04:05Z")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		return Invalidf(f, "unknown field")
	case strings.Contains(err.Error(), "invalid UUID"):
		return Invalidf(badUUIDField(body, uuidFields), "must be a UUID like 0192f1a0-0000-7000-8000-000000000001")
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return Invalidf("", "empty or truncated JSON body")
	}
	return Invalidf("", "malformed request: %v", err)
}

var (
	snowflakeType = reflect.TypeFor[events.Snowflake]()
	uuidType      = reflect.TypeFor[uuid.UUID]()
	timeType      = reflect.TypeFor[time.Time]()
)

// typeName says what JSON a field of Go type t takes, for "must be %s":
// the wire speaks of JSON kinds, not Go types.
func typeName(t reflect.Type) string {
	if t == nil {
		return "of another type"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t {
	case snowflakeType:
		return "a snowflake string"
	case uuidType:
		return "a UUID string"
	case timeType:
		return "an RFC 3339 time string"
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number in range"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "of type " + t.String()
}

// wireField turns encoding/json's Go path of a field (CaseFields.type,
// Meta.command_id, QueryMeta.min_seq) into the wire name: the Go names of
// embedded structs are dropped (wire names are snake_case, Go names are
// capitalized).
func wireField(goPath string) string {
	var out []string
	for _, seg := range strings.Split(goPath, ".") {
		if seg != "" && (seg[0] < 'A' || seg[0] > 'Z') {
			out = append(out, seg)
		}
	}
	return strings.Join(out, ".")
}

// badUUIDField names the first of fields, top-level fields of body, whose
// value is not a UUID, or "" when there is none.
func badUUIDField(body []byte, fields []string) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return ""
	}
	for _, f := range fields {
		raw, ok := m[f]
		if !ok {
			continue
		}
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return f
		}
		if _, err := uuid.Parse(s); err != nil {
			return f
		}
	}
	return ""
}

// pathOf returns the JSON path (a.b[2].c) of the first scalar in body whose
// raw JSON text is literal, in sorted key order, or "" when there is none.
// It names the field of errors that encoding/json reports without one.
func pathOf(body []byte, literal string) string {
	var v any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if dec.Decode(&v) != nil {
		return ""
	}
	var walk func(v any, path string) (string, bool)
	walk = func(v any, path string) (string, bool) {
		switch x := v.(type) {
		case map[string]any:
			for _, k := range slices.Sorted(maps.Keys(x)) {
				p := k
				if path != "" {
					p = path + "." + k
				}
				if r, ok := walk(x[k], p); ok {
					return r, true
				}
			}
		case []any:
			for i, c := range x {
				if r, ok := walk(c, fmt.Sprintf("%s[%d]", path, i)); ok {
					return r, true
				}
			}
		case string:
			if strconv.Quote(x) == literal || x == literal {
				return path, true
			}
		case json.Number:
			if x.String() == literal {
				return path, true
			}
		default:
			b, _ := json.Marshal(x)
			if string(b) == literal {
				return path, true
			}
		}
		return "", false
	}
	p, _ := walk(v, "")
	return p
}
