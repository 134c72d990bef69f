package aggregate

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
)

// randomJSON writes random JSON values and variants of them that decode
// the same or nearly the same, to compare jsonEqual with jsonEqualDecoded.
type randomJSON struct{ r *rand.Rand }

var (
	jsonKeys    = []string{`"a"`, `"b"`, `"channel"`, `"é"`, `"a b"`, `"\u0061"`, `"\n"`, `"<"`, "\"\xff\"", `"\ufffd"`}
	jsonStrings = []string{`""`, `"x"`, `"general"`, `"<b>"`, `"\u003cb\u003e"`, `"a\"b"`, `"\/"`, `"/"`, "\"\xff\"", `"\ufffd"`, `"😀"`, `"\ud83d\ude00"`, `"\ud800"`}
	jsonNumbers = []string{"0", "-0", "1", "1.0", "1e2", "100", "12345678901234567891", "12345678901234567890", "-3.5E-2"}
)

func (g randomJSON) value(depth int) string {
	switch n := g.r.IntN(10); {
	case n < 2 && depth < 4:
		return g.object(depth + 1)
	case n < 3 && depth < 4:
		var b strings.Builder
		b.WriteByte('[')
		for i := range g.r.IntN(4) {
			if i > 0 {
				b.WriteString(g.space() + "," + g.space())
			}
			b.WriteString(g.value(depth + 1))
		}
		b.WriteByte(']')
		return b.String()
	case n < 6:
		return jsonStrings[g.r.IntN(len(jsonStrings))]
	case n < 9:
		return jsonNumbers[g.r.IntN(len(jsonNumbers))]
	}
	return []string{"true", "false", "null"}[g.r.IntN(3)]
}

func (g randomJSON) object(depth int) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := range g.r.IntN(5) {
		if i > 0 {
			b.WriteString(g.space() + "," + g.space())
		}
		b.WriteString(jsonKeys[g.r.IntN(len(jsonKeys))] + g.space() + ":" + g.space() + g.value(depth))
	}
	b.WriteByte('}')
	return b.String()
}

func (g randomJSON) space() string {
	return []string{"", "", "", " ", "\n\t", "\r\n "}[g.r.IntN(6)]
}

// variant returns v re-encoded: decoded and written again with its keys
// sorted, or with its first object's members reversed, or as it is.
func (g randomJSON) variant(v string) string {
	switch g.r.IntN(3) {
	case 0:
		var x any
		d := json.NewDecoder(strings.NewReader(v))
		d.UseNumber()
		if d.Decode(&x) != nil {
			return v
		}
		b, _ := json.Marshal(x)
		return string(b)
	case 1:
		var ms []json.RawMessage
		if strings.HasPrefix(v, "{") {
			var m map[string]json.RawMessage
			if json.Unmarshal([]byte(v), &m) == nil {
				for k, val := range m {
					kb, _ := json.Marshal(k)
					ms = append(ms, json.RawMessage(string(kb)+":"+string(val)))
				}
				parts := make([]string, len(ms))
				for i, m := range ms {
					parts[len(ms)-1-i] = string(m)
				}
				return "{" + strings.Join(parts, ",") + "}"
			}
		}
	}
	return v
}

func checkJSONEqual(t *testing.T, a, b []byte) {
	t.Helper()
	// What jsonEqual was before it compared in place.
	want := bytes.Equal(a, b) || jsonEqualDecoded(a, b)
	if got := jsonEqual(a, b); got != want {
		t.Fatalf("jsonEqual(%q, %q) = %v, decoding says %v", a, b, got, want)
	}
}

func TestJSONEqualMatchesDecoding(t *testing.T) {
	t.Parallel()

	g := randomJSON{rand.New(rand.NewPCG(7, 8))}
	equal := 0
	for range 5000 {
		a := g.value(0)
		var b string
		switch g.r.IntN(3) {
		case 0:
			b = g.variant(a)
		case 1:
			b = g.value(0)
		default:
			b = g.space() + a + g.space()
		}
		checkJSONEqual(t, []byte(a), []byte(b))
		if jsonEqual([]byte(a), []byte(b)) {
			equal++
		}
		// Objects with a key given twice, and trailing data, which
		// decoding reads past or ignores.
		checkJSONEqual(t, []byte(`{"a":1,"a":`+a+`}`), []byte(`{"a":`+b+`}`))
		checkJSONEqual(t, []byte(a+" x"), []byte(b))
	}
	if equal < 1200 {
		t.Fatalf("only %d of 5000 pairs were equal", equal)
	}
}

func FuzzJSONEqual(f *testing.F) {
	f.Add([]byte(`{"a":1,"b":[1,2]}`), []byte(`{"b":[1,2],"a":1}`))
	f.Add([]byte(`{"a":1,"a":2}`), []byte(`{"a":2}`))
	f.Add([]byte(`{"a":"<"}`), []byte(`{"a":"\u003c"}`))
	f.Add([]byte(`{"a":1.0}`), []byte(`{"a":1}`))
	f.Add([]byte(`{"a":1} x`), []byte(`{"a":1}`))
	f.Add([]byte(` [ ] `), []byte(`[]`))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		checkJSONEqual(t, a, b)
	})
}
