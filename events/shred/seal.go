package shred

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/modledger/modledger/events"
)

// KeySize is the size of a data key in bytes: AES-256.
const KeySize = 32

// ErrSealBroken is returned when a sealed field does not open with its key:
// the wrong key, an event it was not sealed for, or changed bytes.
var ErrSealBroken = errors.New("sealed personal text does not open")

// Key is one case's data key.
type Key struct {
	// ID is the key's id, a random UUID; events name it in key_id.
	ID uuid.UUID
	// Seq is the sequence, in the key stream, of the version of the key's
	// block it was read from, zero when not known.
	Seq  uint64
	raw  [KeySize]byte
	aead cipher.AEAD
}

// NewKey makes a key from raw bytes.
func NewKey(id uuid.UUID, raw []byte) (*Key, error) {
	if len(raw) != KeySize {
		return nil, fmt.Errorf("key %s: %d bytes, want %d", id, len(raw), KeySize)
	}
	k := &Key{ID: id}
	copy(k.raw[:], raw)
	block, err := aes.NewCipher(k.raw[:])
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", id, err)
	}
	if k.aead, err = cipher.NewGCM(block); err != nil {
		return nil, fmt.Errorf("key %s: %w", id, err)
	}
	return k, nil
}

// personal holds the personal fields of one event: what is sealed.
type personal struct {
	Reason       string             `json:"reason,omitempty"`
	Text         string             `json:"text,omitempty"`
	EvidenceURLs []string           `json:"evidence_urls,omitempty"`
	UserRoles    []events.Snowflake `json:"user_roles,omitempty"`
	Metadata     json.RawMessage    `json:"metadata,omitempty"`
}

// emptyMetadata stands for the metadata of a metadata update whose key is
// gone.
var emptyMetadata = json.RawMessage("{}")

// take returns p without its personal fields, and those fields; ok is false
// when p carries no personal text.
func take(p events.Payload) (rest events.Payload, pers personal, ok bool) {
	switch p := p.(type) {
	case events.CaseOpened:
		pers = takeCaseFields(&p.CaseFields)
		rest = p
	case events.CaseImported:
		pers = takeCaseFields(&p.CaseFields)
		rest = p
	case events.CaseReasonAmended:
		pers.Reason, p.Reason = p.Reason, ""
		rest = p
	case events.CaseNoteAdded:
		pers.Text, pers.EvidenceURLs = p.Text, p.EvidenceURLs
		p.Text, p.EvidenceURLs = "", nil
		rest = p
	case events.CaseMetadataUpdated:
		if len(p.Metadata) > 0 && string(p.Metadata) != "{}" {
			pers.Metadata = p.Metadata
		}
		p.Metadata = emptyMetadata
		rest = p
	case events.CaseClosed:
		pers.Reason, p.Reason = p.Reason, ""
		rest = p
	case events.CaseReopened:
		pers.Reason, p.Reason = p.Reason, ""
		rest = p
	case events.CaseDeleted:
		pers.Reason, p.Reason = p.Reason, ""
		rest = p
	default:
		return p, personal{}, false
	}
	empty := pers.Reason == "" && pers.Text == "" && len(pers.EvidenceURLs) == 0 && len(pers.UserRoles) == 0 && len(pers.Metadata) == 0
	return rest, pers, !empty
}

func takeCaseFields(f *events.CaseFields) personal {
	pers := personal{Reason: f.Reason, UserRoles: f.UserRoles, Metadata: f.Metadata}
	f.Reason, f.UserRoles, f.Metadata = "", nil, nil
	return pers
}

// put returns p with the personal fields pers.
func put(p events.Payload, pers personal) events.Payload {
	switch p := p.(type) {
	case events.CaseOpened:
		p.Reason, p.UserRoles, p.Metadata = pers.Reason, pers.UserRoles, pers.Metadata
		return p
	case events.CaseImported:
		p.Reason, p.UserRoles, p.Metadata = pers.Reason, pers.UserRoles, pers.Metadata
		return p
	case events.CaseReasonAmended:
		p.Reason = pers.Reason
		return p
	case events.CaseNoteAdded:
		p.Text, p.EvidenceURLs = pers.Text, pers.EvidenceURLs
		return p
	case events.CaseMetadataUpdated:
		if len(pers.Metadata) > 0 {
			p.Metadata = pers.Metadata
		}
		return p
	case events.CaseClosed:
		p.Reason = pers.Reason
		return p
	case events.CaseReopened:
		p.Reason = pers.Reason
		return p
	case events.CaseDeleted:
		p.Reason = pers.Reason
		return p
	}
	return p
}

// Personal reports whether p carries personal text that Seal would seal.
// It does not allocate: the command service asks it of every event.
func Personal(p events.Payload) bool {
	switch p := p.(type) {
	case events.CaseOpened:
		return p.Reason != "" || len(p.UserRoles) > 0 || len(p.Metadata) > 0
	case events.CaseImported:
		return p.Reason != "" || len(p.UserRoles) > 0 || len(p.Metadata) > 0
	case events.CaseReasonAmended:
		return p.Reason != ""
	case events.CaseNoteAdded:
		return p.Text != "" || len(p.EvidenceURLs) > 0
	case events.CaseMetadataUpdated:
		return len(p.Metadata) > 0 && string(p.Metadata) != "{}"
	case events.CaseClosed:
		return p.Reason != ""
	case events.CaseReopened:
		return p.Reason != ""
	case events.CaseDeleted:
		return p.Reason != ""
	}
	return false
}

// Strip blanks the personal fields of e, as an event whose key is gone
// opens: for a process that drops the text it holds in memory after a
// redaction.
func Strip(e *events.Event) {
	if e.Data == nil {
		return
	}
	e.Data, _, _ = take(e.Data)
	e.Sealed = nil
}

// nonceSize is the GCM nonce size; the nonce leads the ciphertext.
const nonceSize = 12

// aadPrefix starts the additional data; it names the format's version.
const aadPrefix = "modledger-seal-v1"

// aadSize is the length of the additional data of an event named name.
func aadSize(name events.Name) int { return len(aadPrefix) + 8 + 16 + 16 + len(name) }

// appendAAD appends the additional data that binds a sealed field to its
// event: the version, the guild, the case id, the event id and the name.
func appendAAD(b []byte, e *events.Event, name events.Name) []byte {
	b = append(b, aadPrefix...)
	b = binary.BigEndian.AppendUint64(b, uint64(e.GuildID))
	b = append(b, e.CaseID[:]...)
	b = append(b, e.EventID[:]...)
	return append(b, name...)
}

// size is about the length of p's JSON, for the buffer it is written to.
func (p *personal) size() int {
	n := 80 + len(p.Reason)*9/8 + len(p.Text)*9/8 + len(p.Metadata) + 22*len(p.UserRoles)
	for _, u := range p.EvidenceURLs {
		n += len(u)*9/8 + 3
	}
	return n
}

// appendJSON appends p as a JSON object that encoding/json reads back into
// a personal (Open does), without reflection. Text that is not valid UTF-8
// and metadata that is not valid JSON take encoding/json, which replaces
// the one and refuses the other, as it would in the event itself.
func (p *personal) appendJSON(b []byte) ([]byte, error) {
	plain := utf8.ValidString(p.Reason) && utf8.ValidString(p.Text) && (len(p.Metadata) == 0 || json.Valid(p.Metadata))
	for _, u := range p.EvidenceURLs {
		plain = plain && utf8.ValidString(u)
	}
	if !plain {
		j, err := json.Marshal(p)
		return append(b, j...), err
	}
	b = append(b, '{')
	sep := func() {
		if len(b) > 0 && b[len(b)-1] != '{' {
			b = append(b, ',')
		}
	}
	if p.Reason != "" {
		b = append(b, `"reason":`...)
		b = appendString(b, p.Reason)
	}
	if p.Text != "" {
		sep()
		b = append(b, `"text":`...)
		b = appendString(b, p.Text)
	}
	if len(p.EvidenceURLs) > 0 {
		sep()
		b = append(b, `"evidence_urls":[`...)
		for i, u := range p.EvidenceURLs {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, u)
		}
		b = append(b, ']')
	}
	if len(p.UserRoles) > 0 {
		sep()
		b = append(b, `"user_roles":[`...)
		for i, r := range p.UserRoles {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '"')
			b = strconv.AppendUint(b, uint64(r), 10)
			b = append(b, '"')
		}
		b = append(b, ']')
	}
	if len(p.Metadata) > 0 {
		sep()
		b = append(b, `"metadata":`...)
		b = append(b, p.Metadata...)
	}
	return append(b, '}'), nil
}

// appendString appends s, valid UTF-8, as a JSON string.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// Seal moves the personal fields of e into e.Sealed, encrypted with k, and
// sets e.KeyID. An event without personal text is left as it is. The
// envelope's guild, case id and event id must be final: they are bound to
// the ciphertext.
func Seal(e *events.Event, k *Key) error {
	if e.Data == nil {
		return fmt.Errorf("seal event %s: no payload", e.EventID)
	}
	rest, pers, ok := take(e.Data)
	if !ok {
		return nil
	}
	name := e.Data.EventName()
	// One buffer holds the nonce, the plaintext (encrypted in place), the
	// tag and, after them, the additional data.
	buf := make([]byte, nonceSize, nonceSize+pers.size()+k.aead.Overhead()+aadSize(name))
	if _, err := rand.Read(buf); err != nil {
		return fmt.Errorf("seal %s event %s: nonce: %w", name, e.EventID, err)
	}
	buf, err := pers.appendJSON(buf)
	if err != nil {
		return fmt.Errorf("seal %s event %s: %w", name, e.EventID, err)
	}
	n := len(buf) + k.aead.Overhead()
	if cap(buf) < n+aadSize(name) {
		buf = append(make([]byte, 0, n+aadSize(name)), buf...)
	}
	ad := appendAAD(buf[n:n], e, name)
	out := k.aead.Seal(buf[:nonceSize], buf[:nonceSize], buf[nonceSize:], ad)
	e.Data, e.KeyID, e.Sealed = rest, k.ID, out[:n:n]
	return nil
}

// Open puts the sealed personal fields of e back into its payload with k,
// the key e.KeyID names, and clears e.Sealed. With k nil (the key is gone)
// the personal fields stay empty. An event that is not sealed is left as it
// is. A ciphertext that does not open is ErrSealBroken.
func Open(e *events.Event, k *Key) error {
	if len(e.Sealed) == 0 || e.Data == nil {
		return nil
	}
	if k == nil {
		e.Sealed = nil
		return nil
	}
	if k.ID != e.KeyID {
		return fmt.Errorf("open %s event %s: %w: key %s given for key %s", e.Event, e.EventID, ErrSealBroken, k.ID, e.KeyID)
	}
	if len(e.Sealed) < nonceSize+k.aead.Overhead() {
		return fmt.Errorf("open %s event %s: %w: %d bytes", e.Event, e.EventID, ErrSealBroken, len(e.Sealed))
	}
	name := e.Data.EventName()
	var adBuf [96]byte
	plain, err := k.aead.Open(nil, e.Sealed[:nonceSize], e.Sealed[nonceSize:], appendAAD(adBuf[:0], e, name))
	if err != nil {
		return fmt.Errorf("open %s event %s: %w: %v", e.Event, e.EventID, ErrSealBroken, err)
	}
	pers, ok := parsePersonal(plain)
	if !ok {
		// Escaped text, or the form encoding/json wrote: its own reader.
		var slow personal
		if err := json.Unmarshal(plain, &slow); err != nil {
			return fmt.Errorf("open %s event %s: %w: %v", e.Event, e.EventID, ErrSealBroken, err)
		}
		pers = slow
	}
	e.Data = put(e.Data, pers)
	e.Sealed = nil
	return nil
}

// parsePersonal reads the JSON appendJSON writes, without reflection: an
// object of the personal fields, strings without escapes, roles as decimal
// strings, metadata taken as it is (it shares b). It reports false for
// anything else, which encoding/json then reads: an escape, a key it does
// not know, another spacing. The ciphertext's tag has vouched for b, so
// this only needs to read well-formed input the way encoding/json would.
func parsePersonal(b []byte) (personal, bool) {
	var p personal
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return p, false
	}
	r := plainReader{b: b, i: 1}
	for r.i < len(b)-1 {
		if r.i > 1 && !r.next(',') {
			return p, false
		}
		key, ok := r.token()
		if !ok || !r.next(':') {
			return p, false
		}
		switch string(key) {
		case "reason":
			p.Reason, ok = r.str()
		case "text":
			p.Text, ok = r.str()
		case "evidence_urls":
			p.EvidenceURLs, ok = r.strs()
		case "user_roles":
			p.UserRoles, ok = r.roles()
		case "metadata":
			p.Metadata, ok = r.object()
		default:
			ok = false
		}
		if !ok {
			return p, false
		}
	}
	return p, r.i == len(b)-1
}

// plainReader reads the plaintext of a sealed field at i.
type plainReader struct {
	b []byte
	i int
}

// next consumes c if it comes next.
func (r *plainReader) next(c byte) bool {
	if r.i < len(r.b) && r.b[r.i] == c {
		r.i++
		return true
	}
	return false
}

// token returns the bytes of the string at i, without escapes.
func (r *plainReader) token() ([]byte, bool) {
	if !r.next('"') {
		return nil, false
	}
	for j := r.i; j < len(r.b); j++ {
		switch r.b[j] {
		case '\\':
			return nil, false
		case '"':
			t := r.b[r.i:j]
			r.i = j + 1
			return t, true
		}
	}
	return nil, false
}

func (r *plainReader) str() (string, bool) {
	t, ok := r.token()
	return string(t), ok
}

// strs reads a non-empty array of strings.
func (r *plainReader) strs() ([]string, bool) {
	if !r.next('[') {
		return nil, false
	}
	var out []string
	for {
		t, ok := r.token()
		if !ok {
			return nil, false
		}
		out = append(out, string(t))
		if r.next(']') {
			return out, true
		}
		if !r.next(',') {
			return nil, false
		}
	}
}

// roles reads a non-empty array of snowflakes written as strings.
func (r *plainReader) roles() ([]events.Snowflake, bool) {
	if !r.next('[') {
		return nil, false
	}
	var out []events.Snowflake
	for {
		t, ok := r.token()
		if !ok || len(t) == 0 || t[0] == '0' {
			return nil, false
		}
		v, err := strconv.ParseUint(string(t), 10, 64)
		if err != nil || v > math.MaxInt64 {
			return nil, false
		}
		out = append(out, events.Snowflake(v))
		if r.next(']') {
			return out, true
		}
		if !r.next(',') {
			return nil, false
		}
	}
}

// object returns the JSON object at i, skipping strings and their escapes.
func (r *plainReader) object() (json.RawMessage, bool) {
	if r.i >= len(r.b) || r.b[r.i] != '{' {
		return nil, false
	}
	depth := 0
	for j := r.i; j < len(r.b); j++ {
		switch r.b[j] {
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				v := json.RawMessage(r.b[r.i : j+1 : j+1])
				r.i = j + 1
				return v, true
			}
		case '"':
			for j++; j < len(r.b) && r.b[j] != '"'; j++ {
				if r.b[j] == '\\' {
					j++
				}
			}
		}
	}
	return nil, false
}
