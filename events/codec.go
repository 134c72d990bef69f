package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// CurrentVersion is the schema version every payload is written with today.
// When a payload's schema changes, its version moves up and an upcaster from
// the previous version is registered in [NewCodec].
const CurrentVersion = 1

// Upcaster brings the JSON payload of one event name from schema version
// From to From+1. It must be pure: the same input gives the same output.
type Upcaster struct {
	Event Name
	From  int
	Up    func(data json.RawMessage) (json.RawMessage, error)
}

// Codec encodes events to JSON and decodes them back, upcasting old schema
// versions. The zero Codec is not usable; call [NewCodec]. A Codec is
// immutable and safe for concurrent use.
type Codec struct {
	upcasters map[Name]map[int]Upcaster
	current   map[Name]int
}

// NewCodec returns a codec that knows every event of this build, with the
// built-in upcasters and any extra ones given (a test, or a deployment that
// carries its own migration). Extra upcasters for a version move that
// event's current version up.
func NewCodec(extra ...Upcaster) (*Codec, error) {
	c := &Codec{upcasters: map[Name]map[int]Upcaster{}, current: map[Name]int{}}
	for _, n := range Names() {
		c.current[n] = CurrentVersion
	}
	for _, u := range extra {
		if _, ok := decoders[u.Event]; !ok {
			return nil, fmt.Errorf("register upcaster: %w: %q", ErrUnknownEvent, u.Event)
		}
		if u.From < 1 || u.Up == nil {
			return nil, fmt.Errorf("register upcaster for %s: version %d or function invalid", u.Event, u.From)
		}
		m := c.upcasters[u.Event]
		if m == nil {
			m = map[int]Upcaster{}
			c.upcasters[u.Event] = m
		}
		if _, dup := m[u.From]; dup {
			return nil, fmt.Errorf("register upcaster for %s: two upcasters from version %d", u.Event, u.From)
		}
		m[u.From] = u
		if u.From+1 > c.current[u.Event] {
			c.current[u.Event] = u.From + 1
		}
	}
	for name, m := range c.upcasters {
		for v := 1; v < c.current[name]; v++ {
			if _, ok := m[v]; !ok {
				return nil, fmt.Errorf("register upcasters for %s: no upcaster from version %d", name, v)
			}
		}
	}
	return c, nil
}

// Version returns the schema version events of this name are written with.
func (c *Codec) Version(n Name) int { return c.current[n] }

// wireEvent is the encoded form of an event.
type wireEvent struct {
	Envelope
	Data json.RawMessage `json:"data"`
}

// Encode writes e as JSON. The envelope's Event and SchemaVersion are taken
// from the payload, and OccurredAt and the payload's times are written in UTC.
func (c *Codec) Encode(e Event) ([]byte, error) {
	if e.Data == nil {
		return nil, fmt.Errorf("encode event: %w: no payload", ErrMalformedEvent)
	}
	name := e.Data.EventName()
	// The event is written field by field into one buffer; what that does
	// not cover, errors included, goes through encoding/json.
	if b, ok := appendEvent(make([]byte, 0, encodedSize(&e)), &e, name, c.current[name]); ok {
		return b, nil
	}
	return c.encodeReflect(e, name)
}

// encodeReflect is Encode through encoding/json: the reference that
// appendEvent follows, and the path for what it does not cover.
func (c *Codec) encodeReflect(e Event, name Name) ([]byte, error) {
	if err := normalizeTimes(&e); err != nil {
		return nil, fmt.Errorf("encode %s event: %w: %v", name, ErrMalformedEvent, err)
	}
	data, err := json.Marshal(e.Data)
	if err != nil {
		return nil, fmt.Errorf("encode %s payload: %w", name, err)
	}
	w := wireEvent{Envelope: e.Envelope, Data: data}
	w.Event = name
	w.SchemaVersion = c.current[name]
	b, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("encode %s event: %w", name, err)
	}
	return b, nil
}

// Decode reads one event. Older schema versions are upcast to the current
// payload type; unknown names and versions newer than this build are errors.
// Decoded times are in UTC.
func (c *Codec) Decode(b []byte) (Event, error) {
	// Events as the ledger writes them are read in one pass, straight
	// into their types; anything else, errors included, goes through
	// encoding/json.
	if e, ok := c.parseEvent(b); ok {
		return e, nil
	}
	return c.decodeReflect(b)
}

// decodeReflect is Decode through encoding/json: the reference that
// parseEvent follows, and the path for what it does not cover.
func (c *Codec) decodeReflect(b []byte) (Event, error) {
	var w wireEvent
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&w); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrMalformedEvent, err)
	}
	// dec.More reports false before a stray ']' or '}', so look at the rest.
	if len(bytes.TrimLeft(b[dec.InputOffset():], " \t\r\n")) > 0 {
		return Event{}, fmt.Errorf("%w: trailing data after the event", ErrMalformedEvent)
	}
	decode, ok := decoders[w.Event]
	if !ok {
		return Event{}, fmt.Errorf("%w: %q", ErrUnknownEvent, w.Event)
	}
	current := c.current[w.Event]
	if w.SchemaVersion < 1 || w.SchemaVersion > current {
		return Event{}, fmt.Errorf("%w: %s version %d (this build reads 1 to %d)", ErrUnsupportedVersion, w.Event, w.SchemaVersion, current)
	}
	data := w.Data
	if len(data) == 0 || bytes.Equal(data, []byte("null")) {
		data = json.RawMessage("{}")
	}
	for v := w.SchemaVersion; v < current; v++ {
		up := c.upcasters[w.Event][v]
		var err error
		if data, err = up.Up(data); err != nil {
			return Event{}, fmt.Errorf("upcast %s from version %d: %w", w.Event, v, err)
		}
	}
	p, err := decode(data)
	if err != nil {
		return Event{}, fmt.Errorf("%w: %s data: %v", ErrMalformedEvent, w.Event, err)
	}
	e := Event{Envelope: w.Envelope, Data: p}
	e.SchemaVersion = current
	if err := normalizeTimes(&e); err != nil {
		return Event{}, fmt.Errorf("%w: %s: %v", ErrMalformedEvent, w.Event, err)
	}
	return e, nil
}

// normalizeTimes puts OccurredAt and every time in the payload in UTC, so
// that a decoded event compares equal to the one that was encoded. It reports
// a time whose UTC year is outside 0 to 9999, which RFC 3339 cannot write:
// "0000-01-01T00:00:00+01:00" parses, but Encode could not write it back.
func normalizeTimes(e *Event) error {
	var bad error
	utcv := func(t time.Time) time.Time {
		u := t.UTC()
		if y := u.Year(); (y < 0 || y > 9999) && bad == nil {
			bad = fmt.Errorf("time %s is outside the years 0 to 9999 in UTC", t.Format(time.RFC3339Nano))
		}
		return u
	}
	utc := func(t *time.Time) *time.Time {
		if t == nil {
			return nil
		}
		u := utcv(*t)
		return &u
	}
	e.OccurredAt = utcv(e.OccurredAt)
	switch p := e.Data.(type) {
	case CaseOpened:
		p.ExpiresAt = utc(p.ExpiresAt)
		e.Data = p
	case CaseImported:
		p.ExpiresAt = utc(p.ExpiresAt)
		p.CreatedAt = utcv(p.CreatedAt)
		e.Data = p
	case CaseExpiryChanged:
		p.ExpiresAt = utc(p.ExpiresAt)
		e.Data = p
	case CaseExpired:
		p.ExpiresAt = utcv(p.ExpiresAt)
		e.Data = p
	}
	return bad
}

// decodeAs decodes data into a fresh T.
func decodeAs[T Payload](data json.RawMessage) (Payload, error) {
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, err
	}
	return v, nil
}

// decoders maps each event name to its payload decoder. It is read-only.
var decoders = map[Name]func(json.RawMessage) (Payload, error){
	NameCaseOpened:          decodeAs[CaseOpened],
	NameCaseImported:        decodeAs[CaseImported],
	NameCaseReasonAmended:   decodeAs[CaseReasonAmended],
	NameCaseNoteAdded:       decodeAs[CaseNoteAdded],
	NameCaseExpiryChanged:   decodeAs[CaseExpiryChanged],
	NameCaseClosed:          decodeAs[CaseClosed],
	NameCaseReopened:        decodeAs[CaseReopened],
	NameModLogMessageLinked: decodeAs[ModLogMessageLinked],
	NameCaseMetadataUpdated: decodeAs[CaseMetadataUpdated],
	NameCaseExpired:         decodeAs[CaseExpired],
	NameCaseExpiryProcessed: decodeAs[CaseExpiryProcessed],
	NameCaseDeleted:         decodeAs[CaseDeleted],
	NameCaseRedacted:        decodeAs[CaseRedacted],
}
