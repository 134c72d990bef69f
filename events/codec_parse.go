package events

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/google/uuid"
)

// This file reads events without reflection, in one pass over the bytes:
// the envelope, then the payload straight into its type. It takes the
// events the ledger writes, and whatever it meets that it does not handle
// exactly as encoding/json would (an unknown or differently spelled key, a
// key given twice, a null, an old schema version, any error) makes
// parseEvent report false, and Decode takes the encoding/json path, which
// also words every error. So it never accepts what that path rejects, and
// what it accepts it reads the same (the codec's tests check both).

// maxParseDepth bounds the nesting parseEvent follows in metadata; deeper
// values take the encoding/json path.
const maxParseDepth = 64

// parser reads JSON from b at i.
type parser struct {
	b []byte
	i int
}

// ws skips JSON whitespace.
func (p *parser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// next skips whitespace and consumes c if it comes next.
func (p *parser) next(c byte) bool {
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// peek skips whitespace and returns the next byte, or 0 at the end.
func (p *parser) peek() byte {
	p.ws()
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

// members calls member for each key of the object that comes next, with
// the parser after the key's colon; member reads the value. A key that is
// not plain text (it has an escape) stops it. It reports whether the
// object was read to its end.
func (p *parser) members(member func(key []byte) bool) bool {
	if !p.next('{') {
		return false
	}
	if p.next('}') {
		return true
	}
	for {
		p.ws()
		key, plain, ok := p.stringToken()
		if !ok || !plain || !p.next(':') || !member(key[1:len(key)-1]) {
			return false
		}
		if p.next('}') {
			return true
		}
		if !p.next(',') {
			return false
		}
	}
}

// stringToken reads the JSON string at i and returns it with its quotes.
// plain reports that it has no escape and is valid UTF-8, so that its text
// is the bytes between the quotes.
func (p *parser) stringToken() (tok []byte, plain, ok bool) {
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return nil, false, false
	}
	start := p.i
	plain = true
	ascii := true
	for i := start + 1; i < len(p.b); i++ {
		switch c := p.b[i]; {
		case c == '"':
			p.i = i + 1
			tok = p.b[start:p.i]
			if !ascii && !utf8.Valid(tok) {
				plain = false
			}
			return tok, plain, true
		case c == '\\':
			plain = false
			i++
			if i >= len(p.b) {
				return nil, false, false
			}
			switch p.b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(p.b) {
					return nil, false, false
				}
				for _, h := range p.b[i+1 : i+5] {
					if !isHex(h) {
						return nil, false, false
					}
				}
				i += 4
			default:
				return nil, false, false
			}
		case c < ' ':
			return nil, false, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, false, false
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

// numberToken reads the JSON number at i.
func (p *parser) numberToken() ([]byte, bool) {
	b, i := p.b, p.i
	digits := func() bool {
		s := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		return i > s
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case !digits():
		return nil, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			return nil, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			return nil, false
		}
	}
	tok := b[p.i:i]
	p.i = i
	return tok, true
}

// value reads any JSON value and returns its bytes.
func (p *parser) value(depth int) ([]byte, bool) {
	if depth > maxParseDepth {
		return nil, false
	}
	p.ws()
	start := p.i
	if p.i >= len(p.b) {
		return nil, false
	}
	switch c := p.b[p.i]; c {
	case '{':
		ok := p.members(func([]byte) bool {
			_, ok := p.value(depth + 1)
			return ok
		})
		return p.b[start:p.i], ok
	case '[':
		p.i++
		if !p.next(']') {
			for {
				if _, ok := p.value(depth + 1); !ok {
					return nil, false
				}
				if p.next(']') {
					break
				}
				if !p.next(',') {
					return nil, false
				}
			}
		}
		return p.b[start:p.i], true
	case '"':
		tok, _, ok := p.stringToken()
		return tok, ok
	case 't', 'f', 'n':
		for _, lit := range [...]string{"true", "false", "null"} {
			if bytes.HasPrefix(p.b[p.i:], []byte(lit)) {
				p.i += len(lit)
				return p.b[start:p.i], true
			}
		}
		return nil, false
	}
	return p.numberToken()
}

// str reads a JSON string into a Go string as encoding/json does. Plain
// text is copied (or interned: a known word costs no allocation); a string
// with escapes or invalid UTF-8 is unquoted.
func (p *parser) str(intern func([]byte) (string, bool)) (string, bool) {
	p.ws()
	tok, plain, ok := p.stringToken()
	if !ok {
		return "", false
	}
	if !plain {
		return unquote(tok)
	}
	text := tok[1 : len(tok)-1]
	if intern != nil {
		if s, ok := intern(text); ok {
			return s, true
		}
	}
	return string(text), true
}

// unquote returns the text of the JSON string tok, quotes included, as
// encoding/json reads it into a string, in one allocation: escapes
// decoded, a surrogate that is not half of a pair and invalid UTF-8
// replaced by U+FFFD. It follows encoding/json's unquoteBytes.
func unquote(tok []byte) (string, bool) {
	s := tok[1 : len(tok)-1]
	var b strings.Builder
	b.Grow(len(s)) // enough unless invalid UTF-8 is replaced
	for r := 0; r < len(s); {
		switch c := s[r]; {
		case c == '\\':
			r++
			if r >= len(s) {
				return "", false
			}
			switch s[r] {
			case '"', '\\', '/', '\'':
				b.WriteByte(s[r])
				r++
			case 'b':
				b.WriteByte('\b')
				r++
			case 'f':
				b.WriteByte('\f')
				r++
			case 'n':
				b.WriteByte('\n')
				r++
			case 'r':
				b.WriteByte('\r')
				r++
			case 't':
				b.WriteByte('\t')
				r++
			case 'u':
				r--
				rr := getu4(s[r:])
				if rr < 0 {
					return "", false
				}
				r += 6
				if utf16.IsSurrogate(rr) {
					rr1 := getu4(s[r:])
					if dec := utf16.DecodeRune(rr, rr1); dec != unicode.ReplacementChar {
						r += 6
						b.WriteRune(dec)
						break
					}
					rr = unicode.ReplacementChar
				}
				b.WriteRune(rr)
			default:
				return "", false
			}
		case c == '"', c < ' ':
			return "", false
		case c < utf8.RuneSelf:
			b.WriteByte(c)
			r++
		default:
			rr, size := utf8.DecodeRune(s[r:])
			r += size
			b.WriteRune(rr)
		}
	}
	return b.String(), true
}

// getu4 decodes \uXXXX at the start of s, or returns -1.
func getu4(s []byte) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range s[2:6] {
		switch {
		case '0' <= c && c <= '9':
			c = c - '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// snowflake reads a snowflake as Snowflake.UnmarshalJSON does, from a
// string or a number; null is left to encoding/json.
func (p *parser) snowflake() (Snowflake, bool) {
	var tok []byte
	var ok bool
	if p.peek() == '"' {
		tok, _, ok = p.stringToken()
	} else {
		tok, ok = p.numberToken()
	}
	var id Snowflake
	if !ok || id.UnmarshalJSON(tok) != nil {
		return 0, false
	}
	return id, true
}

// uuid reads a UUID from a plain JSON string, as its UnmarshalText does.
func (p *parser) uuid() (uuid.UUID, bool) {
	p.ws()
	tok, plain, ok := p.stringToken()
	if !ok || !plain {
		return uuid.Nil, false
	}
	id, err := uuid.ParseBytes(tok[1 : len(tok)-1])
	return id, err == nil
}

// time reads a time as time.Time's UnmarshalJSON does, and puts it in UTC
// as normalizeTimes does; a year outside 0 to 9999 in UTC is left to the
// encoding/json path, which reports it.
func (p *parser) time() (time.Time, bool) {
	p.ws()
	tok, plain, ok := p.stringToken()
	var t time.Time
	if !ok || !plain || t.UnmarshalJSON(tok) != nil {
		return t, false
	}
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return t, false
	}
	return t, true
}

// timePtr reads a time or null, as encoding/json fills a *time.Time.
func (p *parser) timePtr() (*time.Time, bool) {
	if p.peek() == 'n' {
		_, ok := p.value(0)
		return nil, ok && p.b[p.i-1] == 'l' // null, not true or false
	}
	t, ok := p.time()
	if !ok {
		return nil, false
	}
	return &t, true
}

// boolean reads true or false.
func (p *parser) boolean() (v, ok bool) {
	switch p.peek() {
	case 't':
		v = true
	case 'f':
	default:
		return false, false
	}
	tok, ok := p.value(0)
	return v, ok && len(tok) == 4+btoi(!v)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// raw reads any JSON value, not null, and returns a copy of its bytes, as
// json.RawMessage's UnmarshalJSON keeps it.
func (p *parser) raw() (json.RawMessage, bool) {
	if p.peek() == 'n' {
		return nil, false
	}
	tok, ok := p.value(0)
	if !ok || !json.Valid(tok) {
		return nil, false
	}
	return append(json.RawMessage(nil), tok...), true
}

// snowflakes reads a list of snowflakes; [] is an empty list, not nil, as
// encoding/json makes it.
func (p *parser) snowflakes() ([]Snowflake, bool) {
	if !p.next('[') {
		return nil, false
	}
	if p.next(']') {
		return []Snowflake{}, true
	}
	var buf [16]Snowflake
	out := buf[:0]
	for {
		id, ok := p.snowflake()
		if !ok {
			return nil, false
		}
		out = append(out, id)
		if p.next(']') {
			break
		}
		if !p.next(',') {
			return nil, false
		}
	}
	if cap(out) > len(buf) {
		return out, true // grown onto the heap already
	}
	return append([]Snowflake(nil), out...), true
}

// strs reads a list of strings; [] is an empty list, not nil.
func (p *parser) strs() ([]string, bool) {
	if !p.next('[') {
		return nil, false
	}
	if p.next(']') {
		return []string{}, true
	}
	var buf [16]string
	out := buf[:0]
	for {
		s, ok := p.str(nil)
		if !ok {
			return nil, false
		}
		out = append(out, s)
		if p.next(']') {
			break
		}
		if !p.next(',') {
			return nil, false
		}
	}
	if cap(out) > len(buf) {
		return out, true
	}
	return append([]string(nil), out...), true
}

// once records the keys an object has given, to leave a key given twice to
// encoding/json.
type once uint32

// first reports whether key number bit is seen for the first time.
func (o *once) first(bit uint) bool {
	if *o&(1<<bit) != 0 {
		return false
	}
	*o |= 1 << bit
	return true
}

// parseEvent reads the event in b. It reports false when Decode must take
// the encoding/json path.
func (c *Codec) parseEvent(b []byte) (Event, bool) {
	p := parser{b: b}
	var (
		e       Event
		seen    once
		data    []byte
		ok      = true
		version = -1
	)
	done := p.members(func(key []byte) bool {
		switch string(key) {
		case "event_id":
			e.EventID, ok = p.uuid()
			return ok && seen.first(0)
		case "event":
			p.ws()
			tok, plain, ok := p.stringToken()
			if !ok || !plain {
				return false
			}
			e.Event, ok = knownName(tok[1 : len(tok)-1])
			return ok && seen.first(1)
		case "schema_version":
			p.ws()
			tok, ok := p.numberToken()
			if !ok {
				return false
			}
			v, err := strconv.ParseInt(string(tok), 10, 64)
			version = int(v)
			return err == nil && seen.first(2)
		case "guild_id":
			e.GuildID, ok = p.snowflake()
			return ok && seen.first(3)
		case "case_number":
			p.ws()
			tok, ok := p.numberToken()
			if !ok {
				return false
			}
			n, err := strconv.ParseUint(string(tok), 10, 32)
			e.CaseNumber = uint32(n)
			return err == nil && seen.first(4)
		case "case_id":
			e.CaseID, ok = p.uuid()
			return ok && seen.first(5)
		case "occurred_at":
			e.OccurredAt, ok = p.time()
			return ok && seen.first(6)
		case "actor_id":
			e.ActorID, ok = p.snowflake()
			return ok && seen.first(7)
		case "command_id":
			e.CommandID, ok = p.uuid()
			return ok && seen.first(8)
		case "command":
			e.Command, ok = p.str(internCommand)
			return ok && seen.first(9)
		case "correlation_id":
			e.CorrelationID, ok = p.uuid()
			return ok && seen.first(10)
		case "key_id":
			e.KeyID, ok = p.uuid()
			return ok && e.KeyID != uuid.Nil && seen.first(12)
		case "sealed":
			p.ws()
			tok, plain, ok := p.stringToken()
			if !ok || !plain || len(tok) == 2 {
				return false // empty or escaped: encoding/json says what
			}
			var err error
			e.Sealed, err = base64.StdEncoding.AppendDecode(nil, tok[1:len(tok)-1])
			return err == nil && seen.first(13)
		case "data":
			if p.peek() != '{' {
				return false // null, or not an object: encoding/json says what
			}
			data, ok = p.value(0)
			return ok && seen.first(11)
		}
		return false
	})
	p.ws()
	if !done || p.i != len(b) || e.Event == "" || version != c.current[e.Event] {
		return Event{}, false
	}
	e.SchemaVersion = version
	if data == nil {
		data = []byte("{}")
	}
	e.Data, ok = parsePayload(e.Event, data)
	return e, ok
}

// knownName returns the event name s spells, without allocating.
func knownName(s []byte) (Name, bool) {
	for _, n := range Names() {
		if string(n) == string(s) {
			return n, true
		}
	}
	return "", false
}

// internCommand returns the commands' wire names without allocating. It
// lists them rather than import the packages that define them.
func internCommand(s []byte) (string, bool) {
	switch string(s) {
	case "open":
		return "open", true
	case "open_many":
		return "open_many", true
	case "import":
		return "import", true
	case "update":
		return "update", true
	case "close":
		return "close", true
	case "reopen":
		return "reopen", true
	case "add_note":
		return "add_note", true
	case "link_mod_log":
		return "link_mod_log", true
	case "mark_expiry_processed":
		return "mark_expiry_processed", true
	case "delete":
		return "delete", true
	case "redact":
		return "redact", true
	case "expire":
		return "expire", true
	case "close_many":
		return "close_many", true
	case "reopen_many":
		return "reopen_many", true
	case "delete_many":
		return "delete_many", true
	case "redact_many":
		return "redact_many", true
	case "update_many":
		return "update_many", true
	}
	return "", false
}

// internWord returns the built-in case types and sources without
// allocating.
func internWord(s []byte) (string, bool) {
	switch string(s) {
	case "BAN":
		return "BAN", true
	case "HACKBAN":
		return "HACKBAN", true
	case "TEMPBAN":
		return "TEMPBAN", true
	case "KICK":
		return "KICK", true
	case "TIMEOUT":
		return "TIMEOUT", true
	case "WARN":
		return "WARN", true
	case "JAIL":
		return "JAIL", true
	case "SNIPPETBAN":
		return "SNIPPETBAN", true
	case "POLLBAN":
		return "POLLBAN", true
	case "UNBAN":
		return "UNBAN", true
	case "UNTIMEOUT":
		return "UNTIMEOUT", true
	case "UNJAIL":
		return "UNJAIL", true
	case "SNIPPETUNBAN":
		return "SNIPPETUNBAN", true
	case "POLLUNBAN":
		return "POLLUNBAN", true
	case "NOTE":
		return "NOTE", true
	case "command":
		return "command", true
	case "audit_log":
		return "audit_log", true
	case "automod":
		return "automod", true
	case "import":
		return "import", true
	}
	return "", false
}

// parsePayload reads the payload of an event of name from the JSON object
// data.
func parsePayload(name Name, data []byte) (Payload, bool) {
	p := parser{b: data}
	var seen once
	ok := true
	// reason reads the payloads whose only field is a reason.
	reason := func(r *string) bool {
		return p.members(func(key []byte) bool {
			if string(key) != "reason" {
				return false
			}
			*r, ok = p.str(nil)
			return ok && seen.first(0)
		})
	}
	var out Payload
	switch name {
	case NameCaseOpened:
		var v CaseOpened
		ok = p.members(func(key []byte) bool { return p.caseField(key, &v.CaseFields, &seen) })
		out = v
	case NameCaseImported:
		var v CaseImported
		ok = p.members(func(key []byte) bool {
			switch string(key) {
			case "created_at":
				v.CreatedAt, ok = p.time()
				return ok && seen.first(20)
			case "closed":
				v.Closed, ok = p.boolean()
				return ok && seen.first(21)
			case "expiry_processed":
				v.ExpiryProcessed, ok = p.boolean()
				return ok && seen.first(22)
			case "mod_log_message_id":
				v.ModLogMessageID, ok = p.snowflake()
				return ok && seen.first(23)
			case "imported_from":
				v.ImportedFrom, ok = p.str(nil)
				return ok && seen.first(24)
			}
			return p.caseField(key, &v.CaseFields, &seen)
		})
		out = v
	case NameCaseReasonAmended:
		var v CaseReasonAmended
		ok = reason(&v.Reason)
		out = v
	case NameCaseNoteAdded:
		var v CaseNoteAdded
		ok = p.members(func(key []byte) bool {
			switch string(key) {
			case "note_id":
				v.NoteID, ok = p.uuid()
				return ok && seen.first(0)
			case "author_id":
				v.AuthorID, ok = p.snowflake()
				return ok && seen.first(1)
			case "text":
				v.Text, ok = p.str(nil)
				return ok && seen.first(2)
			case "evidence_urls":
				v.EvidenceURLs, ok = p.strs()
				return ok && seen.first(3)
			}
			return false
		})
		out = v
	case NameCaseExpiryChanged:
		var v CaseExpiryChanged
		ok = p.members(func(key []byte) bool {
			if string(key) != "expires_at" {
				return false
			}
			v.ExpiresAt, ok = p.timePtr()
			return ok && seen.first(0)
		})
		out = v
	case NameCaseClosed:
		var v CaseClosed
		ok = reason(&v.Reason)
		out = v
	case NameCaseReopened:
		var v CaseReopened
		ok = reason(&v.Reason)
		out = v
	case NameModLogMessageLinked:
		var v ModLogMessageLinked
		ok = p.members(func(key []byte) bool {
			switch string(key) {
			case "message_id":
				v.MessageID, ok = p.snowflake()
				return ok && seen.first(0)
			case "channel_id":
				v.ChannelID, ok = p.snowflake()
				return ok && seen.first(1)
			}
			return false
		})
		out = v
	case NameCaseMetadataUpdated:
		var v CaseMetadataUpdated
		ok = p.members(func(key []byte) bool {
			if string(key) != "metadata" {
				return false
			}
			v.Metadata, ok = p.raw()
			return ok && seen.first(0)
		})
		out = v
	case NameCaseExpired:
		var v CaseExpired
		ok = p.members(func(key []byte) bool {
			if string(key) != "expires_at" {
				return false
			}
			v.ExpiresAt, ok = p.time()
			return ok && seen.first(0)
		})
		out = v
	case NameCaseExpiryProcessed:
		ok = p.members(func([]byte) bool { return false })
		out = CaseExpiryProcessed{}
	case NameCaseDeleted:
		var v CaseDeleted
		ok = reason(&v.Reason)
		out = v
	case NameCaseRedacted:
		var v CaseRedacted
		ok = reason(&v.Reason)
		out = v
	default:
		return nil, false
	}
	p.ws()
	if !ok || p.i != len(data) {
		return nil, false
	}
	return out, true
}

// caseField reads the value of key, a field of CaseFields, into f. Its
// bits in seen are 0 to 8.
func (p *parser) caseField(key []byte, f *CaseFields, seen *once) bool {
	ok := false
	switch string(key) {
	case "type":
		f.Type, ok = p.str(internWord)
		return ok && seen.first(0)
	case "user_id":
		f.UserID, ok = p.snowflake()
		return ok && seen.first(1)
	case "moderator_id":
		f.ModeratorID, ok = p.snowflake()
		return ok && seen.first(2)
	case "reason":
		f.Reason, ok = p.str(nil)
		return ok && seen.first(3)
	case "expires_at":
		f.ExpiresAt, ok = p.timePtr()
		return ok && seen.first(4)
	case "user_roles":
		f.UserRoles, ok = p.snowflakes()
		return ok && seen.first(5)
	case "metadata":
		f.Metadata, ok = p.raw()
		return ok && seen.first(6)
	case "source":
		f.Source, ok = p.str(internWord)
		return ok && seen.first(7)
	case "external_id":
		f.ExternalID, ok = p.str(nil)
		return ok && seen.first(8)
	}
	return false
}
