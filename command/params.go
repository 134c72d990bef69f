package command

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/events"
)

// Meta holds the fields every command carries.
type Meta struct {
	// CommandID identifies the command; a command sent again with the same
	// id gets the first reply and appends nothing. Required on the wire;
	// the Client makes one when it is zero.
	CommandID uuid.UUID `json:"command_id"`
	// CorrelationID ties the command's events to a wider workflow.
	// Defaults to the command id.
	CorrelationID uuid.UUID `json:"correlation_id,omitzero"`
	// ActorID is who sends the command. Required for changes to a case;
	// for opens it defaults to the moderator.
	ActorID events.Snowflake `json:"actor_id,omitzero"`

	// command is the wire name of the command, set by the service; it is
	// recorded in the events so that a reused command id is told apart.
	command string
}

func (m *Meta) meta() *Meta { return m }

// OpenParams opens one case.
type OpenParams struct {
	Meta
	events.CaseFields
	// UnlessActive makes the open conditional: when the user is already
	// under the family, the reply holds the case that restricts them and
	// nothing is appended.
	UnlessActive UnlessActive `json:"unless_active,omitzero"`
}

// OpenManyParams opens many cases at once, with contiguous numbers, all or
// none (a raid's mass ban).
type OpenManyParams struct {
	Meta
	Cases []events.CaseFields `json:"cases"`
}

// ImportParams brings cases over from another system with their numbers and
// times, all or none. Numbers must rise and be above the guild's last case.
type ImportParams struct {
	Meta
	Cases []aggregate.ImportCase `json:"cases"`
}

// CaseRef names the case a change applies to.
type CaseRef struct {
	// CaseNumber is the case's number in the guild. Required.
	CaseNumber uint32 `json:"case_number"`
	// CaseID, when set, must be the case's id: a guard against acting on
	// the wrong case.
	CaseID uuid.UUID `json:"case_id,omitzero"`
}

func (r *CaseRef) ref() *CaseRef { return r }

// OptionalTime is a time that may be absent, null or set. On the wire an
// absent field leaves the value unchanged and null clears it.
type OptionalTime struct {
	// Set reports whether the field was present.
	Set bool
	// Time is the value; nil when the field was null.
	Time *time.Time
}

// SetTime returns an OptionalTime set to t.
func SetTime(t time.Time) OptionalTime { return OptionalTime{Set: true, Time: &t} }

// ClearTime returns an OptionalTime that clears the value.
func ClearTime() OptionalTime { return OptionalTime{Set: true} }

// IsZero reports whether the field is absent.
func (o OptionalTime) IsZero() bool { return !o.Set }

// MarshalJSON writes the time or null.
func (o OptionalTime) MarshalJSON() ([]byte, error) {
	if o.Time == nil {
		return []byte("null"), nil
	}
	return json.Marshal(o.Time.UTC())
}

// UnmarshalJSON reads a time or null.
func (o *OptionalTime) UnmarshalJSON(b []byte) error {
	o.Set = true
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		o.Time = nil
		return nil
	}
	var t time.Time
	if err := json.Unmarshal(b, &t); err != nil {
		return err
	}
	o.Time = &t
	return nil
}

// UpdateParams changes several fields of a case in one command; absent
// fields stay as they are.
type UpdateParams struct {
	Meta
	CaseRef
	Reason *string           `json:"reason,omitempty"`
	Status *aggregate.Status `json:"status,omitempty"`
	// ExpiresAt moves the expiry; null removes it (for types whose expiry
	// is optional).
	ExpiresAt OptionalTime `json:"expires_at,omitzero"`
	// Metadata replaces the metadata object.
	Metadata json.RawMessage `json:"metadata,omitempty"`
}

// CloseParams closes (voids) a case.
type CloseParams struct {
	Meta
	CaseRef
	Reason string `json:"reason,omitempty"`
}

// ReopenParams makes a closed case active again.
type ReopenParams struct {
	Meta
	CaseRef
	Reason string `json:"reason,omitempty"`
}

// AddNoteParams appends a note with evidence links to a case.
type AddNoteParams struct {
	Meta
	CaseRef
	Text         string   `json:"text"`
	EvidenceURLs []string `json:"evidence_urls,omitempty"`
}

// LinkModLogParams records the mod-log message that shows a case.
type LinkModLogParams struct {
	Meta
	CaseRef
	ModLogMessageID events.Snowflake `json:"mod_log_message_id"`
	ModLogChannelID events.Snowflake `json:"mod_log_channel_id,omitzero"`
}

// MarkExpiryProcessedParams records that the bot lifted a restriction after
// its expiry.
type MarkExpiryProcessedParams struct {
	Meta
	CaseRef
}

// DeleteParams deletes a case; it keeps its number and its history.
type DeleteParams struct {
	Meta
	CaseRef
	Reason string `json:"reason,omitempty"`
}

// RedactParams removes a case's personal text (a privacy request).
type RedactParams struct {
	Meta
	CaseRef
	Reason string `json:"reason,omitempty"`
}

// Result is the reply to a command on one case.
type Result struct {
	// Case is the case after the command.
	Case *aggregate.Case `json:"case"`
	// Seq is the stream sequence of the command's last event, or of the
	// case's last event for a no-op. A query with min_seq = Seq reads the
	// command's own write.
	Seq uint64 `json:"seq"`
	// Appended is how many events the command appended: 0 for a no-op, or
	// for an open whose external id had already made this case.
	Appended int `json:"appended"`
}

// ManyResult is the reply to open_many and import.
type ManyResult struct {
	Cases    []*aggregate.Case `json:"cases"`
	Seq      uint64            `json:"seq"`
	Appended int               `json:"appended"`
}
