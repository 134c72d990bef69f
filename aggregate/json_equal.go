package aggregate

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// jsonEqual reports whether two JSON values are equal as values: object
// keys in any order, insignificant whitespace ignored. Numbers compare by
// their text, so that ids beyond float64's 53 bits are never taken for
// equal (12345678901234567891 and ...890 are one float64); 1 and 1.0 then
// count as different, which costs at most one event that changes nothing.
//
// Its meaning is jsonEqualDecoded's: decode both (numbers as json.Number)
// and compare what encoding/json writes back. Two valid values whose keys
// and strings are plain text are compared in place, without decoding them
// (no allocation for objects of up to 16 keys); anything else is decoded.
func jsonEqual(a, b json.RawMessage) bool {
	if bytes.Equal(a, b) {
		return true
	}
	if json.Valid(a) && json.Valid(b) {
		if eq, ok := jsonValueEqual(trimJSONSpace(a), trimJSONSpace(b)); ok {
			return eq
		}
	}
	return jsonEqualDecoded(a, b)
}

// jsonEqualDecoded is jsonEqual by decoding both values, the reference
// jsonValueEqual follows.
func jsonEqualDecoded(a, b json.RawMessage) bool {
	decode := func(m json.RawMessage) (any, error) {
		d := json.NewDecoder(bytes.NewReader(m))
		d.UseNumber()
		var v any
		err := d.Decode(&v)
		return v, err
	}
	va, errA := decode(a)
	vb, errB := decode(b)
	if errA != nil || errB != nil {
		return false
	}
	ca, _ := json.Marshal(va)
	cb, _ := json.Marshal(vb)
	return bytes.Equal(ca, cb)
}

// maxEqualKeys bounds the keys of an object jsonValueEqual compares in
// place (pairwise); a larger object is decoded.
const maxEqualKeys = 64

// jsonValueEqual compares the valid JSON values a and b (without
// surrounding whitespace) as decoding them would. ok is false when it
// cannot say for certain without decoding: a key or string with an escape
// or invalid UTF-8 (which decoding rewrites), or a large object.
func jsonValueEqual(a, b []byte) (eq, ok bool) {
	if len(a) == 0 || len(b) == 0 {
		return false, false
	}
	switch a[0] {
	case '{':
		if b[0] != '{' {
			return false, true
		}
		var bufA, bufB [16]jsonMember
		ma, ok := jsonMembers(a, bufA[:0])
		if !ok {
			return false, false
		}
		mb, ok := jsonMembers(b, bufB[:0])
		if !ok {
			return false, false
		}
		// Decoding keeps the last of a key given twice.
		n := 0
		for i, m := range ma {
			if lastMember(ma, m.key) != i {
				continue
			}
			n++
			j := lastMember(mb, m.key)
			if j < 0 {
				return false, true
			}
			if eq, ok := jsonValueEqual(m.value, mb[j].value); !ok || !eq {
				return eq, ok
			}
		}
		distinct := 0
		for i, m := range mb {
			if lastMember(mb, m.key) == i {
				distinct++
			}
		}
		return n == distinct, true
	case '[':
		if b[0] != '[' {
			return false, true
		}
		pa, pb := jsonScan{b: a, i: 1}, jsonScan{b: b, i: 1}
		for {
			pa.ws()
			pb.ws()
			endA, endB := pa.b[pa.i] == ']', pb.b[pb.i] == ']'
			if endA || endB {
				return endA && endB, true
			}
			va, vb := pa.value(), pb.value()
			if eq, ok := jsonValueEqual(va, vb); !ok || !eq {
				return eq, ok
			}
			pa.ws()
			pb.ws()
			if pa.b[pa.i] == ',' {
				pa.i++
			}
			if pb.b[pb.i] == ',' {
				pb.i++
			}
		}
	case '"':
		if b[0] != '"' {
			return false, true
		}
		if !plainJSONString(a) || !plainJSONString(b) {
			return false, false
		}
		return bytes.Equal(a, b), true
	}
	// A number compares by its text, true, false and null as themselves;
	// a value of another kind in b differs.
	return bytes.Equal(a, b), true
}

// jsonMember is one key and value of an object, the key with its quotes.
type jsonMember struct{ key, value []byte }

// jsonMembers appends the members of the valid object obj to out. It
// reports false for a key that is not plain text, or too many keys.
func jsonMembers(obj []byte, out []jsonMember) ([]jsonMember, bool) {
	p := jsonScan{b: obj, i: 1}
	for {
		p.ws()
		if p.b[p.i] == '}' {
			return out, true
		}
		if p.b[p.i] == ',' {
			p.i++
			p.ws()
		}
		key := p.value()
		if !plainJSONString(key) || len(out) == maxEqualKeys {
			return nil, false
		}
		p.ws()
		p.i++ // the colon
		p.ws()
		out = append(out, jsonMember{key: key, value: p.value()})
	}
}

// lastMember returns the index of the last member with key, or -1.
func lastMember(ms []jsonMember, key []byte) int {
	for i := len(ms) - 1; i >= 0; i-- {
		if bytes.Equal(ms[i].key, key) {
			return i
		}
	}
	return -1
}

// plainJSONString reports whether the JSON string s (with its quotes) has
// no escape and is valid UTF-8, so that its bytes are its text.
func plainJSONString(s []byte) bool {
	return bytes.IndexByte(s, '\\') < 0 && utf8.Valid(s)
}

// trimJSONSpace trims JSON whitespace around a value.
func trimJSONSpace(b []byte) []byte {
	return bytes.Trim(b, " \t\r\n")
}

// jsonScan walks valid JSON.
type jsonScan struct {
	b []byte
	i int
}

func (p *jsonScan) ws() {
	for p.i < len(p.b) && (p.b[p.i] == ' ' || p.b[p.i] == '\t' || p.b[p.i] == '\r' || p.b[p.i] == '\n') {
		p.i++
	}
}

// value returns the value at i, which must start there, and moves past it.
func (p *jsonScan) value() []byte {
	start := p.i
	depth := 0
	inString := false
	for ; p.i < len(p.b); p.i++ {
		c := p.b[p.i]
		if inString {
			switch c {
			case '\\':
				p.i++
			case '"':
				inString = false
				if depth == 0 {
					p.i++
					return p.b[start:p.i]
				}
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return p.b[start:p.i] // the end of a number or literal
			}
			depth--
			if depth == 0 {
				p.i++
				return p.b[start:p.i]
			}
		case ',', ' ', '\t', '\r', '\n', ':':
			if depth == 0 {
				return p.b[start:p.i]
			}
		}
	}
	return p.b[start:p.i]
}
