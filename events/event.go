package events

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// Name is the stable snake_case name of an event. It is the last token of
// the event's subject (except for the case-creating events, see
// [Name.SubjectToken]), the value of the Modledger-Event header and of the
// envelope's "event" field. Names are never renamed.
type Name string

// The event names. Each has one payload type below.
const (
	NameCaseOpened          Name = "opened"
	NameCaseImported        Name = "imported"
	NameCaseReasonAmended   Name = "reason_amended"
	NameCaseNoteAdded       Name = "note_added"
	NameCaseExpiryChanged   Name = "expiry_changed"
	NameCaseClosed          Name = "closed"
	NameCaseReopened        Name = "reopened"
	NameModLogMessageLinked Name = "mod_log_linked"
	NameCaseMetadataUpdated Name = "metadata_updated"
	NameCaseExpired         Name = "expired"
	NameCaseExpiryProcessed Name = "expiry_processed"
	NameCaseDeleted         Name = "deleted"
	NameCaseRedacted        Name = "redacted"
)

// Names lists every event name in a stable order.
func Names() []Name {
	return []Name{
		NameCaseOpened, NameCaseImported, NameCaseReasonAmended, NameCaseNoteAdded,
		NameCaseExpiryChanged, NameCaseClosed, NameCaseReopened, NameModLogMessageLinked,
		NameCaseMetadataUpdated, NameCaseExpired, NameCaseExpiryProcessed, NameCaseDeleted,
		NameCaseRedacted,
	}
}

// SubjectToken is the last token of the subject an event of this name is
// stored under. It is the name itself, except that both events that create a
// case (CaseOpened and CaseImported) are stored under "opened": the subjects
// <prefix>.case.<guild>.*.opened are then the guild's register of cases, and
// the ledger's numbering check (expected last sequence on that filter) covers
// imported cases too.
func (n Name) SubjectToken() string {
	if n == NameCaseImported {
		return string(NameCaseOpened)
	}
	return string(n)
}

// Creates reports whether an event of this name creates a case.
func (n Name) Creates() bool { return n == NameCaseOpened || n == NameCaseImported }

// Envelope holds the fields every event carries.
type Envelope struct {
	// EventID is the event's own id, a UUIDv7.
	EventID uuid.UUID `json:"event_id"`
	// Event is the event's name.
	Event Name `json:"event"`
	// SchemaVersion is the version of the payload's schema the event was
	// written with. After decoding it is the current version: upcasters
	// have brought the payload forward.
	SchemaVersion int `json:"schema_version"`
	// GuildID is the guild the case belongs to.
	GuildID Snowflake `json:"guild_id"`
	// CaseNumber is the case's number in its guild, from 1.
	CaseNumber uint32 `json:"case_number"`
	// CaseID is the case's global id, a UUIDv7 assigned when it was opened.
	CaseID uuid.UUID `json:"case_id"`
	// OccurredAt is when the ledger recorded the event, in UTC.
	OccurredAt time.Time `json:"occurred_at"`
	// ActorID is who caused the event: the moderator, or the bot's own id
	// for automatic actions and the ledger's expiry scheduler.
	ActorID Snowflake `json:"actor_id"`
	// CommandID is the id of the command that appended the event.
	CommandID uuid.UUID `json:"command_id"`
	// Command is the wire name of that command (open, update, close, ...).
	Command string `json:"command,omitempty"`
	// CorrelationID ties events of one workflow together; it is the command
	// id unless the caller sets one.
	CorrelationID uuid.UUID `json:"correlation_id"`
	// KeyID names the case's data key when the event is sealed: its
	// personal text (reasons, note text and evidence, metadata, roles) was
	// encrypted with that key and is in Sealed, and the payload's personal
	// fields are empty. It is the zero UUID on events that carry no
	// personal text and on events written before sealing existed. After an
	// event is opened (package events/shred) KeyID stays and Sealed is nil.
	KeyID uuid.UUID `json:"key_id,omitzero"`
	// Sealed is the AES-256-GCM ciphertext of the event's personal fields
	// (base64 in JSON), nil on an event that is not sealed or has been
	// opened.
	Sealed []byte `json:"sealed,omitempty"`
}

// Event is one decoded case event: its envelope, its payload, and, when it
// was read from the stream, its stream sequence.
type Event struct {
	Envelope
	// Data is the event's payload; its concrete type matches Envelope.Event.
	Data Payload `json:"-"`
	// Seq is the event's stream sequence, zero before it is stored. It is
	// not part of the encoded event.
	Seq uint64 `json:"-"`
}

// Payload is the event-specific part of an event. Each payload type is a
// plain struct; EventName ties it to its name.
type Payload interface {
	EventName() Name
}

// CaseFields are the fields a case is created with, shared by CaseOpened and
// CaseImported.
type CaseFields struct {
	// Type is the case type, for example "BAN" or a registered custom type.
	Type string `json:"type"`
	// UserID is the member acted on.
	UserID Snowflake `json:"user_id"`
	// ModeratorID is who acted.
	ModeratorID Snowflake `json:"moderator_id"`
	// Reason is the moderator's reason; empty means none was given.
	Reason string `json:"reason,omitempty"`
	// ExpiresAt is when the restriction runs out, for types that can expire.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// UserRoles are the member's roles at the time, restored on unjail.
	UserRoles []Snowflake `json:"user_roles,omitempty"`
	// Metadata is a free-form JSON object.
	Metadata json.RawMessage `json:"metadata,omitempty"`
	// Source is where the action came from: command, audit_log, automod or import.
	Source string `json:"source,omitempty"`
	// ExternalID identifies the action on the platform (for example an audit
	// log entry id); the same external id never makes two cases in a guild.
	ExternalID string `json:"external_id,omitempty"`
}

// CaseOpened records a new case. Its envelope carries the case's number and id.
type CaseOpened struct {
	CaseFields
}

// CaseImported records a case brought over from another system with its
// original number and creation time.
type CaseImported struct {
	CaseFields
	// CreatedAt is when the case was created in the original system.
	CreatedAt time.Time `json:"created_at"`
	// Closed reports whether the case was closed (voided) there.
	Closed bool `json:"closed,omitempty"`
	// ExpiryProcessed reports whether its expiry was already processed there.
	ExpiryProcessed bool `json:"expiry_processed,omitempty"`
	// ModLogMessageID is the mod-log message that shows the case, if any.
	ModLogMessageID Snowflake `json:"mod_log_message_id,omitempty"`
	// ImportedFrom names the system the case came from.
	ImportedFrom string `json:"imported_from,omitempty"`
}

// CaseReasonAmended records a new reason; earlier reasons stay in the history.
type CaseReasonAmended struct {
	Reason string `json:"reason"`
}

// CaseNoteAdded records a moderator's note on a case.
type CaseNoteAdded struct {
	// NoteID identifies the note.
	NoteID uuid.UUID `json:"note_id"`
	// AuthorID is who wrote the note.
	AuthorID Snowflake `json:"author_id"`
	// Text is the note, at most 2000 characters.
	Text string `json:"text"`
	// EvidenceURLs are links to evidence (screenshots, message links).
	EvidenceURLs []string `json:"evidence_urls,omitempty"`
}

// CaseExpiryChanged records a new expiry (extended or shortened), or its
// removal when ExpiresAt is nil.
type CaseExpiryChanged struct {
	ExpiresAt *time.Time `json:"expires_at"`
}

// CaseClosed records that a case was closed (voided or withdrawn).
type CaseClosed struct {
	Reason string `json:"reason,omitempty"`
}

// CaseReopened records that a closed case is active again.
type CaseReopened struct {
	Reason string `json:"reason,omitempty"`
}

// ModLogMessageLinked records the mod-log message that shows the case.
type ModLogMessageLinked struct {
	MessageID Snowflake `json:"message_id"`
	ChannelID Snowflake `json:"channel_id,omitempty"`
}

// CaseMetadataUpdated replaces the case's metadata object.
type CaseMetadataUpdated struct {
	Metadata json.RawMessage `json:"metadata"`
}

// CaseExpired is appended by the ledger when a case's expiry has passed.
type CaseExpired struct {
	// ExpiresAt is the expiry that passed.
	ExpiresAt time.Time `json:"expires_at"`
}

// CaseExpiryProcessed records that the bot has lifted the restriction after
// the expiry. It is appended at most once per case.
type CaseExpiryProcessed struct{}

// CaseDeleted records that a case was deleted. It keeps its number and its
// history, and leaves queries.
type CaseDeleted struct {
	Reason string `json:"reason,omitempty"`
}

// CaseRedacted records that a case's personal text (reason and its history,
// note texts and evidence, metadata, roles) must no longer be shown. The
// number, type, user, moderator and times stay.
type CaseRedacted struct {
	Reason string `json:"reason,omitempty"`
}

// EventName implementations tie each payload to its name.
func (CaseOpened) EventName() Name          { return NameCaseOpened }
func (CaseImported) EventName() Name        { return NameCaseImported }
func (CaseReasonAmended) EventName() Name   { return NameCaseReasonAmended }
func (CaseNoteAdded) EventName() Name       { return NameCaseNoteAdded }
func (CaseExpiryChanged) EventName() Name   { return NameCaseExpiryChanged }
func (CaseClosed) EventName() Name          { return NameCaseClosed }
func (CaseReopened) EventName() Name        { return NameCaseReopened }
func (ModLogMessageLinked) EventName() Name { return NameModLogMessageLinked }
func (CaseMetadataUpdated) EventName() Name { return NameCaseMetadataUpdated }
func (CaseExpired) EventName() Name         { return NameCaseExpired }
func (CaseExpiryProcessed) EventName() Name { return NameCaseExpiryProcessed }
func (CaseDeleted) EventName() Name         { return NameCaseDeleted }
func (CaseRedacted) EventName() Name        { return NameCaseRedacted }
