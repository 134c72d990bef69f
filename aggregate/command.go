package aggregate

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/modledger/modledger/events"
)

// Command is a request to change the ledger. The concrete types below are
// the only commands; Decide turns each into events.
type Command interface {
	// CommandName is the command's wire name, as in the subject
	// <prefix>.cmd.<guild>.<name>.
	CommandName() string
}

// OpenCase opens a new case. The ledger assigns its number and id.
type OpenCase struct {
	events.CaseFields
}

// ImportCase brings a case over from another system with its original
// number and creation time.
type ImportCase struct {
	events.CaseFields
	CaseNumber      uint32           `json:"case_number"`
	CreatedAt       time.Time        `json:"created_at"`
	Closed          bool             `json:"closed,omitempty"`
	ExpiryProcessed bool             `json:"expiry_processed,omitempty"`
	ModLogMessageID events.Snowflake `json:"mod_log_message_id,omitempty"`
	ImportedFrom    string           `json:"imported_from,omitempty"`
}

// UpdateCase changes several fields of a case at once; nil fields stay as
// they are. Its events are appended atomically, in this order:
// CaseReasonAmended, CaseExpiryChanged, CaseMetadataUpdated, then CaseClosed
// or CaseReopened. A field that already has the given value gives no event;
// when no field changes, the update is a no-op. An update that names no
// field is invalid.
type UpdateCase struct {
	Reason *string
	Status *Status
	// ExpiresAt sets a new expiry; ClearExpiry removes it.
	ExpiresAt   *time.Time
	ClearExpiry bool
	// Metadata replaces the metadata object when not nil.
	Metadata json.RawMessage
}

// CloseCase closes (voids) a case.
type CloseCase struct{ Reason string }

// ReopenCase makes a closed case active again.
type ReopenCase struct{ Reason string }

// AddNote appends a note to a case. NoteID is assigned by the caller.
type AddNote struct {
	NoteID       uuid.UUID
	Text         string
	EvidenceURLs []string
}

// LinkModLog records the mod-log message that shows the case.
type LinkModLog struct {
	MessageID events.Snowflake
	ChannelID events.Snowflake
}

// MarkExpiryProcessed records that the bot has lifted the restriction after
// the case's expiry.
type MarkExpiryProcessed struct{}

// DeleteCase deletes a case; it keeps its number and history.
type DeleteCase struct{ Reason string }

// RedactCase removes a case's personal text.
type RedactCase struct{ Reason string }

// ExpireCase is the ledger's own command, sent by the expiry scheduler when
// ExpiresAt (the expiry it saw) has passed.
type ExpireCase struct{ ExpiresAt time.Time }

// Wire names of the commands.
const (
	CommandOpen                = "open"
	CommandOpenMany            = "open_many"
	CommandImport              = "import"
	CommandUpdate              = "update"
	CommandClose               = "close"
	CommandReopen              = "reopen"
	CommandAddNote             = "add_note"
	CommandLinkModLog          = "link_mod_log"
	CommandMarkExpiryProcessed = "mark_expiry_processed"
	CommandDelete              = "delete"
	CommandRedact              = "redact"
	CommandExpire              = "expire"
)

// CommandName implementations.
func (OpenCase) CommandName() string            { return CommandOpen }
func (ImportCase) CommandName() string          { return CommandImport }
func (UpdateCase) CommandName() string          { return CommandUpdate }
func (CloseCase) CommandName() string           { return CommandClose }
func (ReopenCase) CommandName() string          { return CommandReopen }
func (AddNote) CommandName() string             { return CommandAddNote }
func (LinkModLog) CommandName() string          { return CommandLinkModLog }
func (MarkExpiryProcessed) CommandName() string { return CommandMarkExpiryProcessed }
func (DeleteCase) CommandName() string          { return CommandDelete }
func (RedactCase) CommandName() string          { return CommandRedact }
func (ExpireCase) CommandName() string          { return CommandExpire }
