package aggregate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/modledger/modledger/events"
)

// Limits on what a case may hold.
const (
	// MaxReasonLen is the longest reason or close/delete reason, in characters.
	MaxReasonLen = 2000
	// MaxNoteLen is the longest note, in characters.
	MaxNoteLen = 2000
	// MaxMetadataBytes is the largest metadata object, in bytes of JSON.
	MaxMetadataBytes = 8 << 10
	// MaxUserRoles is the most roles a case records (Discord's own limit).
	MaxUserRoles = 250
	// MaxEvidenceURLs is the most evidence links one note carries.
	MaxEvidenceURLs = 10
	// MaxURLLen is the longest evidence link, in bytes.
	MaxURLLen = 2048
	// MaxExternalIDLen is the longest external id, in bytes.
	MaxExternalIDLen = 200
	// MaxImportedFromLen is the longest name of an import's source system.
	MaxImportedFromLen = 100
)

// Instant returns t as the ledger stores instants: in UTC, truncated to
// whole microseconds, which is what PostgreSQL's timestamptz holds, so that
// a time reads back from a read model exactly as the events carry it.
// Every time that enters an event goes through it.
func Instant(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// Env is what Decide needs besides the case and the command: the time, the
// case types, and who is acting.
type Env struct {
	// Now is the time the command is decided at.
	Now time.Time
	// Registry holds the accepted case types; nil means the built-in ones.
	Registry *Registry
	// ActorID is who sends the command. For an open it defaults to the
	// case's moderator.
	ActorID events.Snowflake
}

func (env Env) registry() *Registry {
	if env.Registry == nil {
		return defaultRegistry
	}
	return env.Registry
}

// defaultRegistry is immutable; it backs Env's nil Registry.
var defaultRegistry = DefaultRegistry()

// Decide checks cmd against the case c (nil or empty for a case that does
// not exist yet) and returns the payloads to append, in order. It returns no
// payloads and no error for a command that changes nothing.
func Decide(env Env, c *Case, cmd Command) ([]events.Payload, error) {
	switch cmd := cmd.(type) {
	case OpenCase:
		if c.Exists() {
			return nil, fmt.Errorf("%w: case %d exists", ErrConflict, c.CaseNumber)
		}
		if err := validateFields(env, &cmd.CaseFields, env.Now, false); err != nil {
			return nil, err
		}
		return []events.Payload{events.CaseOpened{CaseFields: cmd.CaseFields}}, nil
	case ImportCase:
		if c.Exists() {
			return nil, fmt.Errorf("%w: case %d exists", ErrConflict, c.CaseNumber)
		}
		return decideImport(env, cmd)
	case ExpireCase:
		return decideExpire(env, c, cmd)
	}
	if !c.Exists() {
		return nil, ErrCaseNotFound
	}
	if err := validActor(env.ActorID); err != nil {
		return nil, err
	}
	if c.Deleted {
		switch cmd.(type) {
		case DeleteCase:
			return nil, nil
		case RedactCase:
		default:
			return nil, fmt.Errorf("%w: case %d", ErrCaseDeleted, c.CaseNumber)
		}
	}
	switch cmd := cmd.(type) {
	case UpdateCase:
		return decideUpdate(env, c, cmd)
	case CloseCase:
		if err := validText("reason", cmd.Reason, MaxReasonLen); err != nil {
			return nil, err
		}
		if c.Status == StatusClosed {
			return nil, nil
		}
		return []events.Payload{events.CaseClosed{Reason: cmd.Reason}}, nil
	case ReopenCase:
		if err := validText("reason", cmd.Reason, MaxReasonLen); err != nil {
			return nil, err
		}
		if c.Status == StatusActive {
			return nil, nil
		}
		return []events.Payload{events.CaseReopened{Reason: cmd.Reason}}, nil
	case AddNote:
		return decideAddNote(env, cmd)
	case LinkModLog:
		if err := validSnowflake("mod_log_message_id", cmd.MessageID); err != nil {
			return nil, err
		}
		if !cmd.ChannelID.IsZero() {
			if err := validSnowflake("mod_log_channel_id", cmd.ChannelID); err != nil {
				return nil, err
			}
		}
		if c.ModLogMessageID == cmd.MessageID && c.ModLogChannelID == cmd.ChannelID {
			return nil, nil
		}
		return []events.Payload{events.ModLogMessageLinked{MessageID: cmd.MessageID, ChannelID: cmd.ChannelID}}, nil
	case MarkExpiryProcessed:
		if c.ExpiryProcessed {
			return nil, nil
		}
		if c.ExpiresAt == nil {
			return nil, fmt.Errorf("%w: case %d has no expiry to process", ErrConflict, c.CaseNumber)
		}
		if c.ExpiredAt == nil && env.Now.Before(*c.ExpiresAt) {
			return nil, fmt.Errorf("%w: case %d expires at %s, not yet", ErrConflict, c.CaseNumber, c.ExpiresAt.Format(time.RFC3339))
		}
		return []events.Payload{events.CaseExpiryProcessed{}}, nil
	case DeleteCase:
		if err := validText("reason", cmd.Reason, MaxReasonLen); err != nil {
			return nil, err
		}
		return []events.Payload{events.CaseDeleted{Reason: cmd.Reason}}, nil
	case RedactCase:
		if err := validText("reason", cmd.Reason, MaxReasonLen); err != nil {
			return nil, err
		}
		if c.Redacted {
			return nil, nil
		}
		return []events.Payload{events.CaseRedacted{Reason: cmd.Reason}}, nil
	case nil:
		return nil, invalid("", "no command")
	}
	return nil, invalid("", "unknown command %T", cmd)
}

func decideImport(env Env, cmd ImportCase) ([]events.Payload, error) {
	if cmd.CaseNumber == 0 {
		return nil, invalid("case_number", "must be 1 or more")
	}
	if cmd.CreatedAt.IsZero() {
		return nil, invalid("created_at", "is required")
	}
	if cmd.CreatedAt.After(env.Now) {
		return nil, invalid("created_at", "is in the future")
	}
	if err := validInstant("created_at", Instant(cmd.CreatedAt)); err != nil {
		return nil, err
	}
	if cmd.Source == "" {
		cmd.Source = SourceImport
	}
	if err := validateFields(env, &cmd.CaseFields, Instant(cmd.CreatedAt), true); err != nil {
		return nil, err
	}
	// A processed expiry takes the case out of the restriction rule; a case
	// without an expiry (a BAN) has none to process.
	if cmd.ExpiryProcessed && cmd.ExpiresAt == nil {
		return nil, invalid("expiry_processed", "needs expires_at: a case without an expiry has none to process")
	}
	if !cmd.ModLogMessageID.IsZero() {
		if err := validSnowflake("mod_log_message_id", cmd.ModLogMessageID); err != nil {
			return nil, err
		}
	}
	if err := validText("imported_from", cmd.ImportedFrom, MaxImportedFromLen); err != nil {
		return nil, err
	}
	return []events.Payload{events.CaseImported{
		CaseFields:      cmd.CaseFields,
		CreatedAt:       Instant(cmd.CreatedAt),
		Closed:          cmd.Closed,
		ExpiryProcessed: cmd.ExpiryProcessed,
		ModLogMessageID: cmd.ModLogMessageID,
		ImportedFrom:    cmd.ImportedFrom,
	}}, nil
}

func decideExpire(env Env, c *Case, cmd ExpireCase) ([]events.Payload, error) {
	if !c.Exists() {
		return nil, ErrCaseNotFound
	}
	// A case that no longer has this expiry in force is not an error for
	// the scheduler: the expiry was cancelled or moved, or already done.
	if c.Deleted || c.Status != StatusActive || c.ExpiresAt == nil || !c.ExpiresAt.Equal(cmd.ExpiresAt) ||
		c.ExpiredAt != nil || c.ExpiryProcessed {
		return nil, nil
	}
	if env.Now.Before(*c.ExpiresAt) {
		return nil, fmt.Errorf("%w: case %d expires at %s, not yet", ErrConflict, c.CaseNumber, c.ExpiresAt.Format(time.RFC3339Nano))
	}
	return []events.Payload{events.CaseExpired{ExpiresAt: c.ExpiresAt.UTC()}}, nil
}

func decideAddNote(env Env, cmd AddNote) ([]events.Payload, error) {
	if strings.TrimSpace(cmd.Text) == "" {
		return nil, invalid("text", "is required")
	}
	if err := validText("text", cmd.Text, MaxNoteLen); err != nil {
		return nil, err
	}
	if len(cmd.EvidenceURLs) > MaxEvidenceURLs {
		return nil, invalid("evidence_urls", "at most %d links", MaxEvidenceURLs)
	}
	for i, u := range cmd.EvidenceURLs {
		if !validURL(u) {
			// The field is named only on failure: formatting it on every
			// call would cost an allocation per link.
			return nil, invalidURL(fmt.Sprintf("evidence_urls[%d]", i), u)
		}
	}
	return []events.Payload{events.CaseNoteAdded{
		NoteID:       cmd.NoteID,
		AuthorID:     env.ActorID,
		Text:         cmd.Text,
		EvidenceURLs: slices.Clone(cmd.EvidenceURLs),
	}}, nil
}

func decideUpdate(env Env, c *Case, cmd UpdateCase) ([]events.Payload, error) {
	if cmd.Reason == nil && cmd.Status == nil && cmd.ExpiresAt == nil && !cmd.ClearExpiry && cmd.Metadata == nil {
		return nil, invalid("", "nothing to update: give reason, status, expires_at or metadata")
	}
	if cmd.ClearExpiry && cmd.ExpiresAt != nil {
		return nil, invalid("expires_at", "cannot set and clear the expiry at once")
	}
	// At most one event per field given: out is allocated once, with room
	// for them all, when the first is appended.
	var out []events.Payload
	n := 0
	for _, set := range [...]bool{cmd.Reason != nil, cmd.ExpiresAt != nil || cmd.ClearExpiry, cmd.Metadata != nil, cmd.Status != nil} {
		if set {
			n++
		}
	}
	add := func(p events.Payload) {
		if out == nil {
			out = make([]events.Payload, 0, n)
		}
		out = append(out, p)
	}
	if cmd.Reason != nil {
		if err := validText("reason", *cmd.Reason, MaxReasonLen); err != nil {
			return nil, err
		}
		if *cmd.Reason != c.Reason {
			add(events.CaseReasonAmended{Reason: *cmd.Reason})
		}
	}
	if cmd.ExpiresAt != nil || cmd.ClearExpiry {
		p, err := decideExpiryChange(env, c, cmd.ExpiresAt)
		if err != nil {
			return nil, err
		}
		if p != nil {
			add(p)
		}
	}
	if cmd.Metadata != nil {
		m, err := ValidMetadata(cmd.Metadata)
		if err != nil {
			return nil, err
		}
		if !jsonEqual(m, c.Metadata) {
			add(events.CaseMetadataUpdated{Metadata: m})
		}
	}
	if cmd.Status != nil {
		switch *cmd.Status {
		case StatusActive:
			if c.Status != StatusActive {
				add(events.CaseReopened{})
			}
		case StatusClosed:
			if c.Status != StatusClosed {
				add(events.CaseClosed{})
			}
		default:
			return nil, invalid("status", "must be %q or %q", StatusActive, StatusClosed)
		}
	}
	return out, nil
}

// decideExpiryChange returns the event that moves the expiry to at (nil
// clears it), nil for no change, or an error.
func decideExpiryChange(env Env, c *Case, at *time.Time) (events.Payload, error) {
	spec, ok := env.registry().Lookup(c.Type)
	if !ok {
		return nil, invalid("type", "case type %q is no longer registered", c.Type)
	}
	if !spec.CanExpire() {
		return nil, invalid("expires_at", "a %s case cannot expire", c.Type)
	}
	if at == nil && spec.Expiry == ExpiryRequired {
		return nil, invalid("expires_at", "a %s case must expire", c.Type)
	}
	if at != nil {
		t := Instant(*at)
		at = &t
	}
	// The expiry the case already has alters nothing: a no-op, even once
	// it has passed or been processed (a whole-case update sends it back).
	if (at == nil && c.ExpiresAt == nil) || (at != nil && c.ExpiresAt != nil && c.ExpiresAt.Equal(*at)) {
		return nil, nil
	}
	if c.ExpiryProcessed {
		return nil, fmt.Errorf("%w: the expiry of case %d was already processed", ErrConflict, c.CaseNumber)
	}
	if at == nil {
		return events.CaseExpiryChanged{}, nil
	}
	if err := validExpiry(spec, *at, env.Now); err != nil {
		return nil, err
	}
	return events.CaseExpiryChanged{ExpiresAt: at}, nil
}

// validateFields checks and normalises the fields a case is created with.
// base is the moment the expiry is measured from; imported cases keep
// expiries that have passed.
func validateFields(env Env, f *events.CaseFields, base time.Time, imported bool) error {
	spec, ok := env.registry().Lookup(f.Type)
	if !ok {
		if f.Type == "" {
			return invalid("type", "is required")
		}
		return invalid("type", "unknown case type %q", f.Type)
	}
	if err := validSnowflake("user_id", f.UserID); err != nil {
		return err
	}
	if err := validSnowflake("moderator_id", f.ModeratorID); err != nil {
		return err
	}
	if !env.ActorID.IsZero() {
		if err := validActor(env.ActorID); err != nil {
			return err
		}
	}
	if err := validText("reason", f.Reason, MaxReasonLen); err != nil {
		return err
	}
	switch {
	case f.ExpiresAt == nil && spec.Expiry == ExpiryRequired:
		return invalid("expires_at", "a %s case must have an expiry", f.Type)
	case f.ExpiresAt != nil && !spec.CanExpire():
		return invalid("expires_at", "a %s case cannot expire", f.Type)
	case f.ExpiresAt != nil:
		t := Instant(*f.ExpiresAt)
		f.ExpiresAt = &t
		if err := validInstant("expires_at", t); err != nil {
			return err
		}
		if imported {
			// It may have passed since, but it was in the future when the
			// case was created.
			if !t.After(base) {
				return invalid("expires_at", "must be after created_at")
			}
			if spec.MaxDuration > 0 && t.Sub(base) > spec.MaxDuration {
				return invalid("expires_at", "a %s lasts at most %s", f.Type, humanDuration(spec.MaxDuration))
			}
		} else if err := validExpiry(spec, t, base); err != nil {
			return err
		}
	}
	if len(f.UserRoles) > MaxUserRoles {
		return invalid("user_roles", "at most %d roles", MaxUserRoles)
	}
	for i, r := range f.UserRoles {
		if r.Validate() != nil {
			// Named only on failure, as for evidence links.
			return validSnowflake(fmt.Sprintf("user_roles[%d]", i), r)
		}
	}
	if f.Metadata != nil {
		m, err := ValidMetadata(f.Metadata)
		if err != nil {
			return err
		}
		f.Metadata = m
	}
	switch f.Source {
	case "":
		f.Source = SourceCommand
	case SourceCommand, SourceAuditLog, SourceAutomod, SourceImport:
	default:
		return invalid("source", "must be one of command, audit_log, automod, import")
	}
	if len(f.ExternalID) > MaxExternalIDLen {
		return invalid("external_id", "at most %d bytes", MaxExternalIDLen)
	}
	if err := validText("external_id", f.ExternalID, MaxExternalIDLen); err != nil {
		return err
	}
	return nil
}

func validExpiry(spec TypeSpec, t, now time.Time) error {
	if err := validInstant("expires_at", t); err != nil {
		return err
	}
	if !t.After(now) {
		return invalid("expires_at", "must be in the future")
	}
	if spec.MaxDuration > 0 && t.Sub(now) > spec.MaxDuration {
		return invalid("expires_at", "a %s lasts at most %s", spec.Name, humanDuration(spec.MaxDuration))
	}
	return nil
}

// validInstant checks that t, in UTC, lies in the years 1 to 9999 that
// RFC 3339 and PostgreSQL can both hold.
func validInstant(field string, t time.Time) error {
	if y := t.UTC().Year(); y < 1 || y > 9999 {
		return invalid(field, "year %d in UTC is outside 1 to 9999", y)
	}
	return nil
}

func validSnowflake(field string, id events.Snowflake) error {
	if err := id.Validate(); err != nil {
		return invalid(field, "%v", err)
	}
	return nil
}

func validActor(id events.Snowflake) error { return validSnowflake("actor_id", id) }

// validText checks that s is valid UTF-8 of at most max characters, without
// NUL (which PostgreSQL's text cannot hold).
func validText(field, s string, max int) error {
	if !utf8.ValidString(s) {
		return invalid(field, "is not valid UTF-8")
	}
	if strings.IndexByte(s, 0) >= 0 {
		return invalid(field, "contains a NUL character")
	}
	if n := utf8.RuneCountInString(s); n > max {
		return invalid(field, "is %d characters, at most %d", n, max)
	}
	return nil
}

// validURL reports whether s is an evidence link: an http or https URL of
// at most MaxURLLen bytes of valid text. invalidURL says what is wrong.
func validURL(s string) bool {
	if len(s) > MaxURLLen || validText("", s, MaxURLLen) != nil {
		return false
	}
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

// invalidURL returns the error for a link validURL rejects: too long, not
// text, or not an http or https URL, in that order.
func invalidURL(field, s string) error {
	if len(s) > MaxURLLen {
		return invalid(field, "at most %d bytes", MaxURLLen)
	}
	if err := validText(field, s, MaxURLLen); err != nil {
		return err
	}
	return invalid(field, "must be an http or https URL")
}

// ValidMetadata checks that m is a JSON object of at most MaxMetadataBytes
// that PostgreSQL's jsonb can hold (valid UTF-8, no NUL), and returns it
// compacted. Its error is a *ValidationError on the field "metadata". The
// read side checks metadata filters with it too.
func ValidMetadata(m json.RawMessage) (json.RawMessage, error) {
	if len(m) > MaxMetadataBytes*2 {
		return nil, invalid("metadata", "at most %d bytes", MaxMetadataBytes)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, m); err != nil {
		return nil, invalid("metadata", "is not valid JSON")
	}
	b := buf.Bytes()
	if len(b) == 0 || b[0] != '{' {
		return nil, invalid("metadata", "must be a JSON object")
	}
	if len(b) > MaxMetadataBytes {
		return nil, invalid("metadata", "is %d bytes, at most %d", len(b), MaxMetadataBytes)
	}
	if !utf8.Valid(b) || hasNULEscape(b) {
		return nil, invalid("metadata", "must be valid UTF-8 without NUL characters")
	}
	return json.RawMessage(b), nil
}

// hasNULEscape reports whether the valid JSON b holds a \u0000 escape, which
// PostgreSQL's jsonb cannot store. An escaped backslash followed by the text
// u0000 ("\\u0000") is not one.
func hasNULEscape(b []byte) bool {
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		if bytes.HasPrefix(b[i:], []byte(`\u0000`)) {
			return true
		}
		i++ // skip the escaped character, which may be a backslash
	}
	return false
}

// humanDuration writes d in days, hours or Go's form, whichever is exact.
func humanDuration(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0 && d >= 24*time.Hour:
		if d == 24*time.Hour {
			return "1 day"
		}
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	case d%time.Hour == 0 && d >= time.Hour:
		return fmt.Sprintf("%d hours", d/time.Hour)
	}
	return d.String()
}
