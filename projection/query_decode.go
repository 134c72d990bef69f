package projection

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/modledger/modledger/events"
)

// QueryRequestBytesMax is the largest query body the service reads; bigger
// ones are refused with invalid_argument before they are parsed.
const QueryRequestBytesMax = 64 << 10

// decodeQueryParams reads a query body strictly, as the command service
// reads commands: unknown fields, trailing data and wrong types are
// invalid_argument errors that name the field where they can. An empty
// body is the empty object: queries without parameters need none.
func decodeQueryParams(body []byte, v any) *QueryError {
	if len(body) > QueryRequestBytesMax {
		return queryInvalidf("", "request is %d bytes, at most %d", len(body), QueryRequestBytesMax)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return queryJSONError(body, err)
	}
	// dec.More reports false before a stray ']' or '}', so look at the rest.
	if len(bytes.TrimSpace(body[dec.InputOffset():])) > 0 {
		return queryInvalidf("", "trailing data after the JSON object")
	}
	return nil
}

func queryInvalidf(field, format string, args ...any) *QueryError {
	return &QueryError{Code: CodeInvalidArgument, Field: field, Message: fmt.Sprintf(format, args...)}
}

// queryJSONError turns a decoding error into an invalid_argument error.
func queryJSONError(body []byte, err error) *QueryError {
	var (
		syn   *json.SyntaxError
		typ   *json.UnmarshalTypeError
		sf    *events.SnowflakeSyntaxError
		tperr *time.ParseError
	)
	switch {
	case errors.As(err, &syn):
		return queryInvalidf("", "malformed JSON at byte %d: %v", syn.Offset, syn)
	case errors.As(err, &typ):
		if typ.Value == "object" && typ.Field == "" {
			return queryInvalidf("", "the request must be a JSON object")
		}
		return queryInvalidf(wireField(typ.Field), "must be %s, not JSON %s", queryTypeName(typ.Type.String()), typ.Value)
	case errors.As(err, &sf):
		return queryInvalidf(jsonPathOf(body, sf.Value), "%v", sf)
	case errors.As(err, &tperr):
		return queryInvalidf(jsonPathOf(body, strconv.Quote(tperr.Value)), "must be an RFC 3339 time with a zone, like 2026-01-02T15:04:05Z")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		return queryInvalidf(f, "unknown field")
	case strings.Contains(err.Error(), "invalid UUID"):
		return queryInvalidf("case_id", "bad UUID: %v", err)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return queryInvalidf("", "truncated JSON body")
	}
	return queryInvalidf("", "malformed request: %v", err)
}

// wireField drops the Go names of embedded structs from a field path that
// encoding/json reports ("QueryMeta.min_seq" is min_seq on the wire): wire
// names are snake_case, Go names are capitalized.
func wireField(path string) string {
	var out []string
	for _, part := range strings.Split(path, ".") {
		if part != "" && (part[0] < 'A' || part[0] > 'Z') {
			out = append(out, part)
		}
	}
	return strings.Join(out, ".")
}

func queryTypeName(goType string) string {
	switch {
	case strings.Contains(goType, "Snowflake"):
		return "a snowflake string"
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	case strings.Contains(goType, "uint"), strings.Contains(goType, "int"):
		return "a whole number in range"
	case goType == "string", strings.HasSuffix(goType, "Status"), strings.HasSuffix(goType, "Family"),
		strings.HasSuffix(goType, "SortOrder"):
		return "a string"
	case goType == "bool", goType == "*bool":
		return "true or false"
	case goType == "time.Time":
		return "an RFC 3339 time string"
	}
	return "of type " + goType
}

// jsonPathOf returns the JSON path (a.b[2].c) of the first scalar in body
// whose raw JSON text is literal, or "" when there is none. It names the
// field of errors that encoding/json reports without one.
func jsonPathOf(body []byte, literal string) string {
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
			for k, c := range x {
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
