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
	var buf [subjectBuf]byte
	b := s.appendGuild(buf[:0], ".case.", guild)
	b = append(b, '.')
	b = strconv.AppendUint(b, uint64(number), 10)
	b = append(b, '.')
	b = append(b, name.SubjectToken()...)
	return string(b)
}

// subjectBuf is the size of the stack buffer subjects are built in; only a
// longer subject (a long prefix or hashed id) allocates for the buffer too.
const subjectBuf = 128

// appendGuild appends <prefix><kind><guild> to b, kind being a section
// such as ".case." with its dots. The subject builders put their subject
// together in one buffer on the stack, so that building one allocates only
// the string it returns.
func (s Subjects) appendGuild(b []byte, kind string, guild Snowflake) []byte {
	b = append(b, s.prefix()...)
	b = append(b, kind...)
	return strconv.AppendUint(b, uint64(guild), 10)
}

// AllCases is the filter that matches every case event: <prefix>.case.>.
func (s Subjects) AllCases() string { return s.prefix() + ".case.>" }

// Guild is the filter that matches every event of a guild.
func (s Subjects) Guild(guild Snowflake) string {
	var buf [subjectBuf]byte
	return string(append(s.appendGuild(buf[:0], ".case.", guild), ".>"...))
}

// CaseAll is the filter that matches every event of one case; the last
// sequence on it is the case's version.
func (s Subjects) CaseAll(guild Snowflake, number uint32) string {
	var buf [subjectBuf]byte
	b := s.appendGuild(buf[:0], ".case.", guild)
	b = append(b, '.')
	b = strconv.AppendUint(b, uint64(number), 10)
	return string(append(b, ".>"...))
}

// GuildOpened is the filter that matches every case-creating event of a
// guild; the last message on it holds the guild's highest case number.
func (s Subjects) GuildOpened(guild Snowflake) string {
	var buf [subjectBuf]byte
	return string(append(s.appendGuild(buf[:0], ".case.", guild), ".*.opened"...))
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
	var buf [subjectBuf]byte
	b := s.appendGuild(buf[:0], ".claim.", guild)
	b = append(b, ".external_id."...)
	return string(append(b, hashedID...))
}

// Command returns the subject of a command endpoint for a guild:
// <prefix>.cmd.<guild>.<command>.
func (s Subjects) Command(guild Snowflake, command string) string {
	var buf [subjectBuf]byte
	b := s.appendGuild(buf[:0], ".cmd.", guild)
	b = append(b, '.')
	return string(append(b, command...))
}

// CommandEndpoint is the subject a command service listens on for one
// command in every guild: <prefix>.cmd.*.<command>.
func (s Subjects) CommandEndpoint(command string) string {
	return s.prefix() + ".cmd.*." + command
}

// Query returns the subject of a query for a guild: <prefix>.query.<guild>.<query>.
func (s Subjects) Query(guild Snowflake, query string) string {
	var buf [subjectBuf]byte
	b := s.appendGuild(buf[:0], ".query.", guild)
	b = append(b, '.')
	return string(append(b, query...))
}

// CaseSubject is a parsed case event subject.
type CaseSubject struct {
	GuildID    Snowflake
	CaseNumber uint32
	// Token is the subject's last token: an event name, or "opened" for
	// both case-creating events.
	Token string
}

// ParseCase parses a case event subject of this ledger. It does not
// allocate for a valid subject: the token is a substring of subject.
func (s Subjects) ParseCase(subject string) (CaseSubject, error) {
	rest, ok := strings.CutPrefix(subject, s.prefix())
	if ok {
		rest, ok = strings.CutPrefix(rest, ".case.")
	}
	if !ok {
		p := s.prefix() + ".case."
		return CaseSubject{}, fmt.Errorf("%w: %q does not start with %q", ErrBadSubject, subject, p)
	}
	guild, rest, ok1 := strings.Cut(rest, ".")
	number, tok, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.IndexByte(tok, '.') >= 0 {
		p := s.prefix() + ".case."
		return CaseSubject{}, fmt.Errorf("%w: %q needs <guild>.<number>.<event> after %q", ErrBadSubject, subject, p)
	}
	g, err := ParseSnowflake(guild)
	if err == nil && guild[0] == '0' {
		// Not the subject Case writes for this guild.
		err = fmt.Errorf("%q has a leading zero", guild)
	}
	if err != nil {
		return CaseSubject{}, fmt.Errorf("%w: %q: guild: %v", ErrBadSubject, subject, err)
	}
	n, err := strconv.ParseUint(number, 10, 32)
	if err != nil || n == 0 || number[0] == '0' {
		return CaseSubject{}, fmt.Errorf("%w: %q: case number %q", ErrBadSubject, subject, number)
	}
	if _, known := decoders[Name(tok)]; !known || tok == string(NameCaseImported) {
		return CaseSubject{}, fmt.Errorf("%w: %q: event %q", ErrBadSubject, subject, tok)
	}
	return CaseSubject{GuildID: g, CaseNumber: uint32(n), Token: tok}, nil
}
