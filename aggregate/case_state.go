package aggregate

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/modledger/modledger/events"
)

// Status is a case's status.
type Status string

// The case statuses.
const (
	// StatusActive is a case in force, as opened.
	StatusActive Status = "active"
	// StatusClosed is a voided or withdrawn case; it never counts as a
	// restriction.
	StatusClosed Status = "closed"
)

// Source values say where an action came from.
const (
	SourceCommand  = "command"
	SourceAuditLog = "audit_log"
	SourceAutomod  = "automod"
	SourceImport   = "import"
)

// Note is a moderator's note on a case.
type Note struct {
	NoteID       uuid.UUID        `json:"note_id"`
	AuthorID     events.Snowflake `json:"author_id"`
	Text         string           `json:"text"`
	EvidenceURLs []string         `json:"evidence_urls,omitempty"`
	CreatedAt    time.Time        `json:"created_at"`
}

// ReasonChange is one entry of a case's reason history.
type ReasonChange struct {
	Reason    string           `json:"reason"`
	ChangedBy events.Snowflake `json:"changed_by"`
	ChangedAt time.Time        `json:"changed_at"`
}

// Case is the current state of a case: the fold of its events. Its JSON form
// is the "case" object of command replies.
type Case struct {
	GuildID     events.Snowflake `json:"guild_id"`
	CaseNumber  uint32           `json:"case_number"`
	CaseID      uuid.UUID        `json:"case_id"`
	Type        string           `json:"type"`
	UserID      events.Snowflake `json:"user_id"`
	ModeratorID events.Snowflake `json:"moderator_id"`
	// Reason is the current reason; empty means "No reason provided".
	Reason string `json:"reason"`
	Status Status `json:"status"`
	// ExpiresAt is when the restriction runs out, if the case expires.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// ExpiredAt is when the ledger recorded that the expiry passed
	// (CaseExpired), if it has.
	ExpiredAt *time.Time `json:"expired_at,omitempty"`
	// ExpiryProcessed is set once the bot has lifted the restriction.
	ExpiryProcessed   bool               `json:"expiry_processed"`
	ExpiryProcessedAt *time.Time         `json:"expiry_processed_at,omitempty"`
	ExpiryProcessedBy events.Snowflake   `json:"expiry_processed_by,omitempty"`
	UserRoles         []events.Snowflake `json:"user_roles"`
	ModLogMessageID   events.Snowflake   `json:"mod_log_message_id,omitempty"`
	ModLogChannelID   events.Snowflake   `json:"mod_log_channel_id,omitempty"`
	// Metadata is a free-form JSON object; never nil after a fold.
	Metadata   json.RawMessage `json:"metadata"`
	Source     string          `json:"source"`
	ExternalID string          `json:"external_id,omitempty"`
	CreatedAt  time.Time       `json:"created_at"`
	UpdatedAt  time.Time       `json:"updated_at"`
	Deleted    bool            `json:"deleted"`
	DeletedAt  *time.Time      `json:"deleted_at,omitempty"`
	Redacted   bool            `json:"redacted"`
	// Notes are the case's notes, oldest first. A case from a list query
	// carries none (nil, left out of its JSON); NoteCount says how many
	// it has.
	Notes []Note `json:"notes,omitzero"`
	// NoteCount is how many notes the case has.
	NoteCount int `json:"note_count"`
	// ReasonHistory holds every reason the case has had, oldest first; the
	// last entry is the current reason.
	ReasonHistory []ReasonChange `json:"reason_history"`
	// Version is the stream sequence of the case's last event: the value a
	// change expects as the case's last sequence.
	Version uint64 `json:"version"`
	// Events is how many events the case has.
	Events int `json:"events"`
}

// Exists reports whether the case has been opened (or imported).
func (c *Case) Exists() bool { return c != nil && c.Events > 0 }

// Fold returns the state after evs, which must be one case's events in
// stream order.
func Fold(evs []events.Event) (*Case, error) {
	c := &Case{}
	for _, e := range evs {
		if err := c.Apply(e); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Clone returns a deep copy of c, so that a cached state can be changed
// without touching the original. It allocates once for the case, once for
// its times and once per list (all the notes' evidence links share one).
func (c *Case) Clone() *Case {
	if c == nil {
		return nil
	}
	d := *c
	times := [...]**time.Time{&d.ExpiresAt, &d.ExpiredAt, &d.ExpiryProcessedAt, &d.DeletedAt}
	n := 0
	for _, t := range times {
		if *t != nil {
			n++
		}
	}
	if n > 0 {
		copies := make([]time.Time, 0, n)
		for _, t := range times {
			if *t != nil {
				copies = append(copies, **t)
				*t = &copies[len(copies)-1]
			}
		}
	}
	// slices.Clone keeps nil as nil and empty as empty, so that the clone
	// is deeply equal to c and encodes the same ("user_roles": [] stays).
	d.UserRoles = slices.Clone(c.UserRoles)
	d.Metadata = slices.Clone(c.Metadata)
	d.Notes = slices.Clone(c.Notes)
	urls := 0
	for _, note := range c.Notes {
		urls += len(note.EvidenceURLs)
	}
	var all []string
	if urls > 0 {
		all = make([]string, 0, urls)
	}
	for i, note := range d.Notes {
		if note.EvidenceURLs == nil {
			continue
		}
		if len(note.EvidenceURLs) == 0 {
			d.Notes[i].EvidenceURLs = []string{}
			continue
		}
		start := len(all)
		all = append(all, note.EvidenceURLs...)
		d.Notes[i].EvidenceURLs = all[start:len(all):len(all)]
	}
	d.ReasonHistory = slices.Clone(c.ReasonHistory)
	return &d
}

func cloneTime(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := *t
	return &u
}

// timePtr returns a pointer to a copy of t. Apply takes the address of a
// copy only where it keeps one, so that its time stays on the stack for
// the events that keep none.
func timePtr(t time.Time) *time.Time { return &t }

// emptyObject is the metadata of a case opened without any.
var emptyObject = json.RawMessage("{}")

// sharedMetadata returns the metadata of an event for a case to keep. A
// case shares it with the event rather than copying it: metadata is a JSON
// value that is replaced, never changed in place (as emptyObject is shared
// by every case without metadata), and Clone copies it. Its capacity is cut
// to its length so that an append cannot write into the event's array. An
// empty value is nil, as a copy of it was.
func sharedMetadata(m json.RawMessage) json.RawMessage {
	if len(m) == 0 {
		return nil
	}
	return m[:len(m):len(m)]
}

// Apply folds one event into c. It fails when the event cannot follow the
// case's history: a change before the open, an open of an existing case, or
// an event of another case. Apply trusts the event's contents: events were
// validated by Decide before they were appended.
func (c *Case) Apply(e events.Event) error {
	if e.Data == nil {
		return fmt.Errorf("%w: event %s has no payload", ErrBadEvent, e.EventID)
	}
	name := e.Data.EventName()
	if name.Creates() {
		if c.Exists() {
			return fmt.Errorf("%w: %s for case %d which exists", ErrBadEvent, name, c.CaseNumber)
		}
	} else {
		if !c.Exists() {
			return fmt.Errorf("%w: %s for case %d before it was opened", ErrBadEvent, name, e.CaseNumber)
		}
		if e.GuildID != c.GuildID || e.CaseNumber != c.CaseNumber {
			return fmt.Errorf("%w: %s of case %d/%d applied to case %d/%d", ErrBadEvent, name, e.GuildID, e.CaseNumber, c.GuildID, c.CaseNumber)
		}
	}
	at := e.OccurredAt.UTC()
	switch p := e.Data.(type) {
	case events.CaseOpened:
		c.open(e, p.CaseFields, at)
	case events.CaseImported:
		c.open(e, p.CaseFields, p.CreatedAt.UTC())
		if p.Closed {
			c.Status = StatusClosed
		}
		if p.ExpiryProcessed {
			c.ExpiryProcessed = true
			c.ExpiryProcessedAt = timePtr(at)
			c.ExpiryProcessedBy = e.ActorID
		}
		c.ModLogMessageID = p.ModLogMessageID
		if p.Source == "" { // open defaulted it to command
			c.Source = SourceImport
		}
	case events.CaseReasonAmended:
		c.Reason = p.Reason
		c.ReasonHistory = append(c.ReasonHistory, ReasonChange{Reason: p.Reason, ChangedBy: e.ActorID, ChangedAt: at})
	case events.CaseNoteAdded:
		c.NoteCount++
		c.Notes = append(c.Notes, Note{NoteID: p.NoteID, AuthorID: p.AuthorID, Text: p.Text,
			EvidenceURLs: append([]string(nil), p.EvidenceURLs...), CreatedAt: at})
	case events.CaseExpiryChanged:
		c.ExpiresAt = cloneTime(p.ExpiresAt)
		c.ExpiredAt = nil
	case events.CaseClosed:
		c.Status = StatusClosed
	case events.CaseReopened:
		c.Status = StatusActive
	case events.ModLogMessageLinked:
		c.ModLogMessageID = p.MessageID
		c.ModLogChannelID = p.ChannelID
	case events.CaseMetadataUpdated:
		c.Metadata = sharedMetadata(p.Metadata)
	case events.CaseExpired:
		c.ExpiredAt = timePtr(at)
	case events.CaseExpiryProcessed:
		c.ExpiryProcessed = true
		c.ExpiryProcessedAt = timePtr(at)
		c.ExpiryProcessedBy = e.ActorID
	case events.CaseDeleted:
		c.Deleted = true
		c.DeletedAt = timePtr(at)
	case events.CaseRedacted:
		c.redact()
	default:
		return fmt.Errorf("%w: unknown payload %T", ErrBadEvent, e.Data)
	}
	if !name.Creates() {
		c.UpdatedAt = at
	}
	c.Version = e.Seq
	c.Events++
	return nil
}

func (c *Case) open(e events.Event, f events.CaseFields, created time.Time) {
	c.GuildID = e.GuildID
	c.CaseNumber = e.CaseNumber
	c.CaseID = e.CaseID
	c.Type = f.Type
	c.UserID = f.UserID
	c.ModeratorID = f.ModeratorID
	c.Reason = f.Reason
	c.Status = StatusActive
	c.ExpiresAt = cloneTime(f.ExpiresAt)
	c.UserRoles = append([]events.Snowflake{}, f.UserRoles...)
	c.Metadata = emptyObject
	if len(f.Metadata) > 0 {
		c.Metadata = sharedMetadata(f.Metadata)
	}
	c.Source = f.Source
	if c.Source == "" {
		c.Source = SourceCommand
	}
	c.ExternalID = f.ExternalID
	c.CreatedAt = created
	c.UpdatedAt = created
	c.Notes = []Note{}
	c.ReasonHistory = []ReasonChange{{Reason: f.Reason, ChangedBy: f.ModeratorID, ChangedAt: created}}
}

// redact blanks the case's personal text. Numbers, type, user, moderator,
// times and status stay; so do the notes' authors and times.
func (c *Case) redact() {
	c.Redacted = true
	c.Reason = ""
	for i := range c.ReasonHistory {
		c.ReasonHistory[i].Reason = ""
	}
	for i := range c.Notes {
		c.Notes[i].Text = ""
		c.Notes[i].EvidenceURLs = nil
	}
	c.Metadata = emptyObject
	c.UserRoles = []events.Snowflake{}
}
