package events

import (
	"fmt"
	"strconv"
	"strings"
)

// DefaultPrefix is the subject prefix of a ledger that is not configured
// otherwise.
const DefaultPrefix = "modledger"

// Subjects builds and parses the NATS subjects of one ledger. The zero value
// uses [DefaultPrefix].
type Subjects struct {
	// Prefix is the first token(s) of every subject. Defaults to "modledger".
	Prefix string
}

func (s Subjects) prefix() string {
	if s.Prefix == "" {
		return DefaultPrefix
	}
	return s.Prefix
}

// Case returns the subject of an event of case number in guild:
// <prefix>.case.<guild>.<number>.<token>.
func (s Subjects) Case(guild Snowflake, number uint32, name Name) string {
	var b strings.Builder
	p := s.prefix()
	b.Grow(len(p) + 48)
	b.WriteString(p)
	b.WriteString(".case.")
	b.WriteString(strconv.FormatUint(uint64(guild), 10))
	b.WriteByte('.')
	b.WriteString(strconv.FormatUint(uint64(number), 10))
	b.WriteByte('.')
	b.WriteString(name.SubjectToken())
	return b.String()
}

// AllCases is the filter that matches every case event: <prefix>.case.>.
func (s Subjects) AllCases() string { return s.prefix() + ".case.>" }

// Guild is the filter that matches every event of a guild.
func (s Subjects) Guild(guild Snowflake) string {
	return fmt.Sprintf("%s.case.%d.>", s.prefix(), uint64(guild))
}

// CaseAll is the filter that matches every event of one case; the last
// sequence on it is the case's version.
func (s Subjects) CaseAll(guild Snowflake, number uint32) string {
	return fmt.Sprintf("%s.case.%d.%d.>", s.prefix(), uint64(guild), number)
}

// GuildOpened is the filter that matches every case-creating event of a
// guild; the last message on it holds the guild's highest case number.
func (s Subjects) GuildOpened(guild Snowflake) string {
	return fmt.Sprintf("%s.case.%d.*.opened", s.prefix(), uint64(guild))
}

// AllOpened is the filter that matches every new case in every guild.
func (s Subjects) AllOpened() string { return s.prefix() + ".case.*.*.opened" }

// Claims is the filter of every claim subject: <prefix>.claim.>. Claims are
// small messages in the same stream that let the server's compare-and-set
// enforce uniqueness that is not a case number (see ExternalIDClaim).
func (s Subjects) Claims() string { return s.prefix() + ".claim.>" }

// ExternalIDClaim is the subject that claims an external id in a guild. The
// id is given already hashed to a subject-safe token (see the command
// package), because external ids may hold any character.
func (s Subjects) ExternalIDClaim(guild Snowflake, hashedID string) string {
	return fmt.Sprintf("%s.claim.%d.external_id.%s", s.prefix(), uint64(guild), hashedID)
}

// Command returns the subject of a command endpoint for a guild:
// <prefix>.cmd.<guild>.<command>.
func (s Subjects) Command(guild Snowflake, command string) string {
	return fmt.Sprintf("%s.cmd.%d.%s", s.prefix(), uint64(guild), command)
}

// CommandEndpoint is the subject a command service listens on for one
// command in every guild: <prefix>.cmd.*.<command>.
func (s Subjects) CommandEndpoint(command string) string {
	return fmt.Sprintf("%s.cmd.*.%s", s.prefix(), command)
}

// Query returns the subject of a query for a guild: <prefix>.query.<guild>.<query>.
func (s Subjects) Query(guild Snowflake, query string) string {
	return fmt.Sprintf("%s.query.%d.%s", s.prefix(), uint64(guild), query)
}

// CaseSubject is a parsed case event subject.
type CaseSubject struct {
	GuildID    Snowflake
	CaseNumber uint32
	// Token is the subject's last token: an event name, or "opened" for
	// both case-creating events.
	Token string
}

// ParseCase parses a case event subject of this ledger.
func (s Subjects) ParseCase(subject string) (CaseSubject, error) {
	p := s.prefix() + ".case."
	rest, ok := strings.CutPrefix(subject, p)
	if !ok {
		return CaseSubject{}, fmt.Errorf("%w: %q does not start with %q", ErrBadSubject, subject, p)
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 3 {
		return CaseSubject{}, fmt.Errorf("%w: %q needs <guild>.<number>.<event> after %q", ErrBadSubject, subject, p)
	}
	g, err := ParseSnowflake(parts[0])
	if err == nil && parts[0][0] == '0' {
		// Not the subject Case writes for this guild.
		err = fmt.Errorf("%q has a leading zero", parts[0])
	}
	if err != nil {
		return CaseSubject{}, fmt.Errorf("%w: %q: guild: %v", ErrBadSubject, subject, err)
	}
	n, err := strconv.ParseUint(parts[1], 10, 32)
	if err != nil || n == 0 || parts[1][0] == '0' {
		return CaseSubject{}, fmt.Errorf("%w: %q: case number %q", ErrBadSubject, subject, parts[1])
	}
	tok := parts[2]
	if _, known := decoders[Name(tok)]; !known || tok == string(NameCaseImported) {
		return CaseSubject{}, fmt.Errorf("%w: %q: event %q", ErrBadSubject, subject, tok)
	}
	return CaseSubject{GuildID: g, CaseNumber: uint32(n), Token: tok}, nil
}
