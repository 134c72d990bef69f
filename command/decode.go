package command

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/modledger/modledger/events"
)

// MaxRequestBytes is the largest command body the service reads; bigger
// ones are refused with invalid_argument before they are parsed. open_many
// and import carry up to MaxCasesPerBatch cases and may be this large; every
// other command must fit in MaxSingleRequestBytes.
const (
	MaxRequestBytes       = 1 << 20
	MaxSingleRequestBytes = 64 << 10
	// MaxCasesPerBatch bounds open_many and import: the messages of one
	// atomic batch (cases plus external id claims) stay within the server's
	// limit of 1000.
	MaxCasesPerBatch = 1000
)

// metaHolder is implemented by every params type through its embedded Meta.
type metaHolder interface{ meta() *Meta }

// decodeParams reads a command body strictly: unknown fields, trailing data
// and wrong types are errors that name the field. It checks the command id.
func decodeParams(body []byte, limit int, v metaHolder) *Error {
	if len(body) > limit {
		return invalidf("", "request is %d bytes, at most %d", len(body), limit)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(body, err)
	}
	if rest := bytes.TrimSpace(body[dec.InputOffset():]); len(rest) > 0 {
		return invalidf("", "trailing data after the JSON object")
	}
	if v.meta().CommandID == uuid.Nil {
		return invalidf("command_id", "is required: a UUID that identifies this command")
	}
	return nil
}

// jsonError turns a decoding error into an invalid_argument error naming
// the field where it can.
func jsonError(body []byte, err error) *Error {
	var (
		syn   *json.SyntaxError
		typ   *json.UnmarshalTypeError
		sf    *events.SnowflakeSyntaxError
		tperr *time.ParseError
	)
	switch {
	case errors.As(err, &syn):
		return invalidf("", "malformed JSON at byte %d: %v", syn.Offset, syn)
	case errors.As(err, &typ):
		return invalidf(wireField(typ.Field), "must be %s, not JSON %s", typeName(typ.Type.String()), typ.Value)
	case errors.As(err, &sf):
		return invalidf(pathOf(body, sf.Value), "%v", sf)
	case errors.As(err, &tperr):
		return invalidf(pathOf(body, strconv.Quote(tperr.Value)), "must be an RFC 3339 time with a zone, like 2026-01-02T15:04:05Z")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		return invalidf(f, "unknown field")
	case strings.Contains(err.Error(), "invalid UUID"):
		return invalidf(badUUIDField(body), "must be a UUID like 0192f1a0-0000-7000-8000-000000000001")
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return invalidf("", "empty or truncated JSON body")
	}
	return invalidf("", "malformed request: %v", err)
}

func typeName(goType string) string {
	switch {
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	case strings.Contains(goType, "Snowflake"):
		return "a snowflake string"
	case strings.Contains(goType, "UUID"):
		return "a UUID string"
	case strings.Contains(goType, "uint"), strings.Contains(goType, "int"):
		return "a whole number in range"
	case goType == "string":
		return "a string"
	case goType == "bool":
		return "true or false"
	}
	return "of type " + goType
}

// wireField turns encoding/json's Go path of a field (CaseFields.type,
// Meta.command_id) into the wire name: Go struct names are dropped.
func wireField(goPath string) string {
	var out []string
	for _, seg := range strings.Split(goPath, ".") {
		if seg != "" && (seg[0] < 'A' || seg[0] > 'Z') {
			out = append(out, seg)
		}
	}
	return strings.Join(out, ".")
}

// badUUIDField names the top-level id field of body that is not a UUID.
func badUUIDField(body []byte) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return ""
	}
	for _, f := range []string{"command_id", "correlation_id", "case_id"} {
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
// raw JSON text is literal, or "" when there is none. It names the field of
// errors that encoding/json reports without one.
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
				c := x[k]
				p := k
				if path != "" {
					p = path + "." + k
				}
				if r, ok := walk(c, p); ok {
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
