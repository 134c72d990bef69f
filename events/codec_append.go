package events

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// This file writes events without reflection: the envelope and every
// payload field by field, in the order and form encoding/json gives them
// (the codec's tests check that it is byte for byte the same). Whatever it
// does not handle, an out-of-range time or metadata that must be compacted
// or escaped first, makes appendEvent report false, and Encode takes the
// encoding/json path, which also words any error.

// appendEvent appends the JSON of e, named name at version, to b. It
// reports false, and b is to be dropped, when e needs the encoding/json
// path.
func appendEvent(b []byte, e *Event, name Name, version int) ([]byte, bool) {
	b = append(b, `{"event_id":`...)
	b = appendUUID(b, e.EventID)
	b = append(b, `,"event":`...)
	b = appendString(b, string(name))
	b = append(b, `,"schema_version":`...)
	b = strconv.AppendInt(b, int64(version), 10)
	b = append(b, `,"guild_id":`...)
	b = appendSnowflake(b, e.GuildID)
	b = append(b, `,"case_number":`...)
	b = strconv.AppendUint(b, uint64(e.CaseNumber), 10)
	b = append(b, `,"case_id":`...)
	b = appendUUID(b, e.CaseID)
	b = append(b, `,"occurred_at":`...)
	b, ok := appendTime(b, e.OccurredAt)
	if !ok {
		return b, false
	}
	b = append(b, `,"actor_id":`...)
	b = appendSnowflake(b, e.ActorID)
	b = append(b, `,"command_id":`...)
	b = appendUUID(b, e.CommandID)
	if e.Command != "" {
		b = append(b, `,"command":`...)
		b = appendString(b, e.Command)
	}
	b = append(b, `,"correlation_id":`...)
	b = appendUUID(b, e.CorrelationID)
	if e.KeyID != uuid.Nil {
		b = append(b, `,"key_id":`...)
		b = appendUUID(b, e.KeyID)
	}
	if len(e.Sealed) > 0 {
		b = append(b, `,"sealed":"`...)
		b = base64.StdEncoding.AppendEncode(b, e.Sealed)
		b = append(b, '"')
	}
	b = append(b, `,"data":`...)
	if b, ok = appendPayload(b, e.Data); !ok {
		return b, false
	}
	return append(b, '}'), true
}

// appendPayload appends the JSON object of p.
func appendPayload(b []byte, p Payload) ([]byte, bool) {
	ok := true
	switch p := p.(type) {
	case CaseOpened:
		b = append(b, '{')
		b, ok = appendCaseFields(b, &p.CaseFields)
	case CaseImported:
		b = append(b, '{')
		if b, ok = appendCaseFields(b, &p.CaseFields); !ok {
			return b, false
		}
		b = append(b, `,"created_at":`...)
		b, ok = appendTime(b, p.CreatedAt)
		if p.Closed {
			b = append(b, `,"closed":true`...)
		}
		if p.ExpiryProcessed {
			b = append(b, `,"expiry_processed":true`...)
		}
		if p.ModLogMessageID != 0 {
			b = append(b, `,"mod_log_message_id":`...)
			b = appendSnowflake(b, p.ModLogMessageID)
		}
		if p.ImportedFrom != "" {
			b = append(b, `,"imported_from":`...)
			b = appendString(b, p.ImportedFrom)
		}
	case CaseReasonAmended:
		b = append(b, `{"reason":`...)
		b = appendString(b, p.Reason)
	case CaseNoteAdded:
		b = append(b, `{"note_id":`...)
		b = appendUUID(b, p.NoteID)
		b = append(b, `,"author_id":`...)
		b = appendSnowflake(b, p.AuthorID)
		b = append(b, `,"text":`...)
		b = appendString(b, p.Text)
		if len(p.EvidenceURLs) > 0 {
			b = append(b, `,"evidence_urls":[`...)
			for i, u := range p.EvidenceURLs {
				if i > 0 {
					b = append(b, ',')
				}
				b = appendString(b, u)
			}
			b = append(b, ']')
		}
	case CaseExpiryChanged:
		b = append(b, `{"expires_at":`...)
		if p.ExpiresAt == nil {
			b = append(b, "null"...)
		} else {
			b, ok = appendTime(b, *p.ExpiresAt)
		}
	case CaseClosed:
		b = appendReason(b, p.Reason)
	case CaseReopened:
		b = appendReason(b, p.Reason)
	case ModLogMessageLinked:
		b = append(b, `{"message_id":`...)
		b = appendSnowflake(b, p.MessageID)
		if p.ChannelID != 0 {
			b = append(b, `,"channel_id":`...)
			b = appendSnowflake(b, p.ChannelID)
		}
	case CaseMetadataUpdated:
		b = append(b, `{"metadata":`...)
		if p.Metadata == nil {
			b = append(b, "null"...)
		} else {
			b, ok = appendRaw(b, p.Metadata)
		}
	case CaseExpired:
		b = append(b, `{"expires_at":`...)
		b, ok = appendTime(b, p.ExpiresAt)
	case CaseExpiryProcessed:
		b = append(b, '{')
	case CaseDeleted:
		b = appendReason(b, p.Reason)
	case CaseRedacted:
		b = appendReason(b, p.Reason)
	default:
		// A payload type of another package, or a pointer: encoding/json.
		return b, false
	}
	return append(b, '}'), ok
}

// appendReason appends the opening of an object whose only field is an
// optional reason.
func appendReason(b []byte, reason string) []byte {
	b = append(b, '{')
	if reason != "" {
		b = append(b, `"reason":`...)
		b = appendString(b, reason)
	}
	return b
}

// appendCaseFields appends the fields of f, without braces.
func appendCaseFields(b []byte, f *CaseFields) ([]byte, bool) {
	b = append(b, `"type":`...)
	b = appendString(b, f.Type)
	b = append(b, `,"user_id":`...)
	b = appendSnowflake(b, f.UserID)
	b = append(b, `,"moderator_id":`...)
	b = appendSnowflake(b, f.ModeratorID)
	if f.Reason != "" {
		b = append(b, `,"reason":`...)
		b = appendString(b, f.Reason)
	}
	ok := true
	if f.ExpiresAt != nil {
		b = append(b, `,"expires_at":`...)
		if b, ok = appendTime(b, *f.ExpiresAt); !ok {
			return b, false
		}
	}
	if len(f.UserRoles) > 0 {
		b = append(b, `,"user_roles":[`...)
		for i, r := range f.UserRoles {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendSnowflake(b, r)
		}
		b = append(b, ']')
	}
	if len(f.Metadata) > 0 {
		b = append(b, `,"metadata":`...)
		if b, ok = appendRaw(b, f.Metadata); !ok {
			return b, false
		}
	}
	if f.Source != "" {
		b = append(b, `,"source":`...)
		b = appendString(b, f.Source)
	}
	if f.ExternalID != "" {
		b = append(b, `,"external_id":`...)
		b = appendString(b, f.ExternalID)
	}
	return b, true
}

// appendSnowflake appends id as Snowflake.MarshalJSON writes it.
func appendSnowflake(b []byte, id Snowflake) []byte {
	b = append(b, '"')
	b = strconv.AppendUint(b, uint64(id), 10)
	return append(b, '"')
}

// appendUUID appends id as a JSON string in its canonical form, as its
// MarshalText writes it.
func appendUUID(b []byte, id uuid.UUID) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	for i, c := range id {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b = append(b, '-')
		}
		b = append(b, hexDigits[c>>4], hexDigits[c&0xf])
	}
	return append(b, '"')
}

// appendTime appends t in UTC as time.Time's MarshalJSON writes it. It
// reports false for a year outside 0 to 9999, which Encode reports as an
// error.
func appendTime(b []byte, t time.Time) ([]byte, bool) {
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return b, false
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), true
}

// appendRaw appends the JSON value m as encoding/json writes a
// json.RawMessage: compacted (no whitespace outside strings), with <, >, &
// and the line and paragraph separators escaped. It follows encoding/json's
// appendCompact, which can assume valid JSON once json.Valid has said so.
// It reports false for invalid JSON, whose error encoding/json words.
func appendRaw(b []byte, m json.RawMessage) ([]byte, bool) {
	const hexDigits = "0123456789abcdef"
	if !json.Valid(m) {
		return b, false
	}
	inString := false
	start := 0
	for i := 0; i < len(m); i++ {
		switch c := m[i]; c {
		case '<', '>', '&':
			b = append(b, m[start:i]...)
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			start = i + 1
		case 0xE2: // U+2028 and U+2029 are E2 80 A8 and E2 80 A9
			if i+2 < len(m) && m[i+1] == 0x80 && m[i+2]&^1 == 0xA8 {
				b = append(b, m[start:i]...)
				b = append(b, '\\', 'u', '2', '0', '2', hexDigits[m[i+2]&0xF])
				i += 2
				start = i + 1
			}
		case '"':
			inString = !inString
		case '\\':
			// Only inside a string in valid JSON: the next byte is what it
			// escapes, ordinary text here (\u0022 never ends the string).
			i++
		case ' ', '\t', '\n', '\r':
			if !inString {
				b = append(b, m[start:i]...)
				start = i + 1
			}
		}
	}
	return append(b, m[start:]...), true
}

// appendString appends s as a JSON string as encoding/json writes it, HTML
// escaping on: <, > and & escaped, invalid UTF-8 replaced by U+FFFD, and
// U+2028 and U+2029 escaped. It follows encoding/json's appendString.
func appendString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= ' ' && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// encodedSize estimates the length of e's JSON, so that Encode allocates
// its buffer once: the envelope, and the payload's variable parts.
func encodedSize(e *Event) int {
	n := 420 // the envelope, and the fixed part of a small payload
	if len(e.Sealed) > 0 {
		n += 60 + base64.StdEncoding.EncodedLen(len(e.Sealed))
	}
	f := func(s string) { n += len(s) + len(s)/8 }
	switch p := e.Data.(type) {
	case CaseOpened:
		f(p.Reason)
		n += 220 + len(p.Metadata)*9/8 + 22*len(p.UserRoles) + len(p.ExternalID) + len(p.Type) + len(p.Source)
	case CaseImported:
		f(p.Reason)
		n += 360 + len(p.Metadata)*9/8 + 22*len(p.UserRoles) + len(p.ExternalID) + len(p.Type) + len(p.Source) + len(p.ImportedFrom)
	case CaseReasonAmended:
		f(p.Reason)
	case CaseNoteAdded:
		n += 100
		f(p.Text)
		for _, u := range p.EvidenceURLs {
			f(u)
		}
	case CaseExpiryChanged, CaseExpired, ModLogMessageLinked:
		n += 80
	case CaseClosed:
		f(p.Reason)
	case CaseReopened:
		f(p.Reason)
	case CaseMetadataUpdated:
		n += len(p.Metadata) * 9 / 8
	case CaseDeleted:
		f(p.Reason)
	case CaseRedacted:
		f(p.Reason)
	}
	return n + len(e.Command)
}
