package main

// The CLI for people: commands that talk to a running ledger over NATS
// (case, user, stats, events tail, stream info). This file holds what they
// share: flags, argument parsing, connecting, and errors worded for a person.
// docs/cli.md describes the commands.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/modledger/modledger/command"
	"github.com/modledger/modledger/events"
	"github.com/modledger/modledger/internal/wire"
	"github.com/modledger/modledger/projection"
)

// Defaults of the CLI for people.
const (
	// humanTimeoutDefault bounds a whole command (connect, retries, reply).
	// It exceeds the services' own answer time (about 15 s), so that they
	// answer first.
	humanTimeoutDefault = 30 * time.Second
	// freshLookupTimeout bounds the look-up of the guild's last event that
	// makes queries read every write acknowledged before they started.
	freshLookupTimeout = 3 * time.Second
	// listLimitDefault is the page size of the list commands.
	listLimitDefault = 20
)

// humanNeeds says which of the shared flags a command takes.
type humanNeeds int

const (
	needGuild  humanNeeds = 1 << iota // --guild: the command is about one guild
	needActor                         // --actor and --command-id: the command changes the ledger
	needFresh                         // --fresh: the command queries the read models
	needStream                        // --stream: the command reads the stream itself
	optGuild                          // with needGuild: the guild may be left out
)

// humanFlags are the flags the commands for people share, and the FlagSet
// they were registered on (to parse flags given after positional arguments).
type humanFlags struct {
	fs        *flag.FlagSet
	needs     humanNeeds
	nats      natsFlags
	prefix    string
	stream    string
	timeout   time.Duration
	json      bool
	guild     string
	actor     string
	commandID string
	fresh     bool
}

func (h *humanFlags) register(fs *flag.FlagSet, getenv func(string) string, needs humanNeeds) {
	h.fs, h.needs = fs, needs
	h.nats.register(fs, getenv)
	fs.StringVar(&h.prefix, "subject-prefix", envDefault(getenv, "MODLEDGER_SUBJECT_PREFIX", events.DefaultPrefix), "the ledger's subject prefix (env MODLEDGER_SUBJECT_PREFIX)")
	if needs&(needStream|needFresh) != 0 {
		fs.StringVar(&h.stream, "stream", envDefault(getenv, "MODLEDGER_STREAM", command.StreamNameDefault), "the ledger's JetStream stream (env MODLEDGER_STREAM)")
	}
	fs.DurationVar(&h.timeout, "timeout", durationEnv(getenv, "MODLEDGER_TIMEOUT", humanTimeoutDefault), "give up after this long, retries included (env MODLEDGER_TIMEOUT)")
	fs.BoolVar(&h.json, "json", false, "print the ledger's reply as JSON, for scripts")
	if needs&needGuild != 0 {
		fs.StringVar(&h.guild, "guild", getenv("MODLEDGER_GUILD"), "the guild's id (env MODLEDGER_GUILD)")
	}
	if needs&needActor != 0 {
		fs.StringVar(&h.actor, "actor", getenv("MODLEDGER_ACTOR"), "your user id: who is acting, recorded on every event (env MODLEDGER_ACTOR)")
		fs.StringVar(&h.commandID, "command-id", "", "the command's id (a UUID); give the id of a failed attempt to retry it safely. Defaults to a new UUIDv7")
	}
	if needs&needFresh != 0 {
		fs.BoolVar(&h.fresh, "fresh", true, "wait (up to 5s) until the read models hold every event of the guild stored before the command started; false answers at once")
	}
}

// positional returns the positional arguments of env, parsing the flags
// that follow them (`case show 3 --json`), which the flag package leaves
// alone. "--" ends the flags.
func (h *humanFlags) positional(env *cliEnv) ([]string, error) {
	var pos []string
	rest := env.args
	for len(rest) > 0 {
		a := rest[0]
		switch {
		case a == "--":
			return append(pos, rest[1:]...), nil
		case len(a) > 1 && a[0] == '-':
			// Parse quietly: an error is printed once, by runWith.
			usage := h.fs.Usage
			h.fs.Usage = func() {}
			h.fs.SetOutput(io.Discard)
			err := h.fs.Parse(rest)
			h.fs.Usage = usage
			h.fs.SetOutput(env.stderr)
			if errors.Is(err, flag.ErrHelp) {
				h.fs.Usage()
				return nil, flag.ErrHelp
			}
			if err != nil {
				return nil, usageError{err.Error()}
			}
			rest = h.fs.Args()
		default:
			pos = append(pos, a)
			rest = rest[1:]
		}
	}
	return pos, nil
}

// args checks the number of positional arguments.
func (h *humanFlags) args(env *cliEnv, min, max int, synopsis string) ([]string, error) {
	pos, err := h.positional(env)
	if err != nil {
		return nil, err
	}
	if len(pos) < min || len(pos) > max {
		return nil, usageError{fmt.Sprintf("usage: modledger %s %s", strings.TrimPrefix(h.fs.Name(), "modledger "), synopsis)}
	}
	return pos, nil
}

// check validates the shared flags and returns the guild (zero when the
// command takes none). It runs before anything is sent.
func (h *humanFlags) check() (events.Snowflake, error) {
	if h.timeout <= 0 {
		return 0, usageError{"--timeout must be positive"}
	}
	if h.prefix == "" {
		return 0, usageError{"--subject-prefix must not be empty"}
	}
	if h.needs&needActor != 0 && h.commandID != "" {
		if _, err := h.commandUUID(); err != nil {
			return 0, err
		}
	}
	if h.needs&needGuild == 0 {
		return 0, nil
	}
	if h.guild == "" {
		if h.needs&optGuild != 0 {
			return 0, nil
		}
		return 0, usageError{"--guild (or MODLEDGER_GUILD) is required: the guild's id"}
	}
	return parseSnowflakeFlag("--guild", h.guild)
}

// actorID returns --actor; required says whether the command needs one.
func (h *humanFlags) actorID(required bool) (events.Snowflake, error) {
	if h.actor == "" {
		if required {
			return 0, usageError{"--actor (or MODLEDGER_ACTOR) is required: your user id, recorded as who acted"}
		}
		return 0, nil
	}
	return parseSnowflakeFlag("--actor", h.actor)
}

// commandUUID returns --command-id, or a new UUIDv7.
func (h *humanFlags) commandUUID() (uuid.UUID, error) {
	if h.commandID == "" {
		id, err := uuid.NewV7()
		if err != nil {
			return uuid.New(), nil
		}
		return id, nil
	}
	id, err := uuid.Parse(h.commandID)
	if err != nil || id == uuid.Nil {
		return uuid.Nil, usageError{fmt.Sprintf("--command-id %q: want a UUID like 0192f1a0-0000-7000-8000-000000000001", h.commandID)}
	}
	return id, nil
}

// session is one connection to the ledger for one command.
type session struct {
	h      *humanFlags
	nc     *nats.Conn
	ctx    context.Context
	cancel context.CancelFunc
}

// connect connects to NATS and bounds the command by --timeout.
func (h *humanFlags) connect(ctx context.Context, name string) (*session, error) {
	nc, err := h.nats.connect(name)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	return &session{h: h, nc: nc, ctx: ctx, cancel: cancel}, nil
}

func (s *session) close() {
	s.cancel()
	s.nc.Close()
}

func (s *session) commands() (*command.Client, error) {
	return command.NewClient(s.nc, command.WithPrefix(s.h.prefix))
}

func (s *session) queries() (*projection.QueryClient, error) {
	return projection.NewQueryClient(s.nc, projection.WithQueryPrefix(s.h.prefix))
}

// queryMeta returns the QueryMeta of a query about guild: with --fresh, a
// min_seq at the guild's last event in the stream, so the answer holds every
// write acknowledged before the command started. When the stream cannot be
// read (a user allowed to query but not to read the stream), it asks
// without.
func (s *session) queryMeta(guild events.Snowflake) projection.QueryMeta {
	if !s.h.fresh {
		return projection.QueryMeta{}
	}
	// The last event of the guild, by a direct get: one request, no
	// stream info needed.
	seq, _, _ := lastMsg(s.ctx, s.nc, s.h.stream, events.Subjects{Prefix: s.h.prefix}.Guild(guild))
	return projection.QueryMeta{MinSeq: seq}
}

// failed words an error of a query or command for a person, and with
// --json prints the wire error reply on stdout for scripts. id is the
// command id of a command (uuid.Nil for a query): a command that may or may
// not have been stored says how to retry it.
func (h *humanFlags) failed(env *cliEnv, err error, id uuid.UUID) error {
	var we *wire.Error
	errors.As(err, &we)
	if h.json {
		reply := we
		if reply == nil {
			// Not an answer of the ledger: say what kind of failure it is
			// in the same shape, for scripts.
			code := wire.CodeInternal
			switch exitCode(err) {
			case exitUnavailable:
				code = wire.CodeUnavailable
			case exitNotFound:
				code = wire.CodeNotFound
			}
			reply = &wire.Error{Code: code, Message: err.Error()}
		}
		_ = printJSON(env.stdout, wire.ErrorReply{Error: reply})
	}
	if id != uuid.Nil && !errors.As(err, new(usageError)) {
		if we == nil || we.Code == wire.CodeUnavailable || we.Code == wire.CodeInternal {
			return fmt.Errorf("%w\nThe command may or may not have been stored. Retry it safely with --command-id %s", humanError(err), id)
		}
	}
	return humanError(err)
}

// replyError is a ledger error reply, worded for a person; it unwraps to
// the wire error, whose code decides the exit code.
type replyError struct{ err *wire.Error }

func (e replyError) Unwrap() error { return e.err }

func (e replyError) Error() string {
	we := e.err
	msg := we.Message
	if we.Field != "" {
		msg = we.Field + ": " + msg
	}
	switch we.Code {
	case wire.CodeNotFound:
		if we.Deleted {
			return "not found: " + msg + " (`modledger case history` shows what happened to it)"
		}
		return "not found: " + msg
	case wire.CodeInvalidArgument:
		return "rejected by the ledger: " + msg
	case wire.CodeConflict:
		return "conflict: " + msg
	case wire.CodeUnavailable:
		return "unavailable: " + msg
	}
	return "ledger error (" + string(we.Code) + "): " + msg
}

// humanError words err for a person when it is a ledger error reply.
func humanError(err error) error {
	var we *wire.Error
	if errors.As(err, &we) {
		return replyError{we}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("timed out: %w", err)
	}
	return err
}

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// Parsing of flag values. Each returns a usageError naming the flag.

func parseSnowflakeFlag(flagName, s string) (events.Snowflake, error) {
	id, err := events.ParseSnowflake(strings.TrimSpace(s))
	if err != nil {
		return 0, usageError{fmt.Sprintf("%s %q: want a user, guild or role id: a decimal snowflake like 934871256019738654", flagName, s)}
	}
	return id, nil
}

func parseCaseNumber(s string) (uint32, error) {
	n, err := strconv.ParseUint(strings.TrimPrefix(s, "#"), 10, 32)
	if err != nil || n == 0 {
		return 0, usageError{fmt.Sprintf("case number %q: want a number from 1, like 12 or #12", s)}
	}
	return uint32(n), nil
}

var typeNameRE = regexp.MustCompile(`^[A-Z][A-Z0-9_]{0,31}$`)

// parseTypes reads a comma-separated list of case types; lower case is
// accepted (types are upper case on the wire).
func parseTypes(flagName, s string) ([]string, error) {
	var out []string
	for _, t := range strings.Split(s, ",") {
		t = strings.ToUpper(strings.TrimSpace(t))
		if t == "" {
			continue
		}
		if !typeNameRE.MatchString(t) {
			return nil, usageError{fmt.Sprintf("%s %q: want case types like BAN, TEMPBAN or WARN", flagName, t)}
		}
		out = append(out, t)
	}
	return out, nil
}

var durationPartRE = regexp.MustCompile(`^(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d|w)`)

// parseDuration reads a duration in Go's syntax with days (d) and weeks (w)
// too: 7d, 1d12h, 90m, 2w.
func parseDuration(s string) (time.Duration, error) {
	in := strings.TrimSpace(s)
	if in == "" {
		return 0, errors.New("empty duration")
	}
	var total time.Duration
	for rest := in; rest != ""; {
		m := durationPartRE.FindStringSubmatch(rest)
		if m == nil {
			return 0, fmt.Errorf("%q is not a duration like 7d, 12h or 1d12h", s)
		}
		n, _ := strconv.ParseFloat(m[1], 64)
		var unit time.Duration
		switch m[2] {
		case "w":
			unit = 7 * 24 * time.Hour
		case "d":
			unit = 24 * time.Hour
		default:
			d, err := time.ParseDuration("1" + m[2])
			if err != nil {
				return 0, err
			}
			unit = d
		}
		if n*float64(unit) > float64(100*365*24*time.Hour) {
			return 0, fmt.Errorf("%q is too long", s)
		}
		total += time.Duration(n * float64(unit))
		rest = rest[len(m[0]):]
	}
	return total, nil
}

// localLayouts are the times accepted in the local zone, besides RFC 3339.
var localLayouts = []string{"2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02"}

// parseTime reads a time: RFC 3339, a date or date and time in the local
// zone (2026-12-02, 2026-12-02 15:04), or, when ago is set, a duration
// before now (24h, 7d).
func parseTime(flagName, s string, now time.Time, loc *time.Location, ago bool) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	for _, layout := range localLayouts {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t.UTC(), nil
		}
	}
	if ago {
		if d, err := parseDuration(s); err == nil && d > 0 {
			return now.Add(-d).UTC(), nil
		}
		return time.Time{}, usageError{fmt.Sprintf("%s %q: want an RFC 3339 time (2026-12-02T15:04:05Z), a local date or time (2026-12-02, \"2026-12-02 15:04\") or how long ago (24h, 7d)", flagName, s)}
	}
	return time.Time{}, usageError{fmt.Sprintf("%s %q: want an RFC 3339 time (2026-12-02T15:04:05Z) or a local date or time (2026-12-02, \"2026-12-02 15:04\")", flagName, s)}
}

// expiryFlags are --duration and --expires-at (and --no-expiry for update).
type expiryFlags struct {
	duration  string
	expiresAt string
	noExpiry  bool
}

func (f *expiryFlags) register(fs *flag.FlagSet, withClear bool) {
	fs.StringVar(&f.duration, "duration", "", "how long the restriction lasts from now: 7d, 12h, 1d12h, 2w")
	fs.StringVar(&f.expiresAt, "expires-at", "", "when the restriction ends: RFC 3339 (2026-12-09T12:00:00Z) or local time (\"2026-12-09 12:00\")")
	if withClear {
		fs.BoolVar(&f.noExpiry, "no-expiry", false, "remove the expiry (for types whose expiry is optional)")
	}
}

// value returns the expiry the flags give: set reports whether any was
// given; a nil time with set means --no-expiry.
func (f *expiryFlags) value(now time.Time, loc *time.Location) (t *time.Time, set bool, err error) {
	given := 0
	for _, b := range []bool{f.duration != "", f.expiresAt != "", f.noExpiry} {
		if b {
			given++
		}
	}
	switch {
	case given > 1:
		return nil, false, usageError{"give one of --duration, --expires-at and --no-expiry"}
	case f.duration != "":
		d, err := parseDuration(f.duration)
		if err != nil || d <= 0 {
			return nil, false, usageError{fmt.Sprintf("--duration %q: want a positive duration like 7d, 12h or 1d12h", f.duration)}
		}
		at := now.Add(d).UTC()
		return &at, true, nil
	case f.expiresAt != "":
		at, err := parseTime("--expires-at", f.expiresAt, now, loc, false)
		if err != nil {
			return nil, false, err
		}
		return &at, true, nil
	case f.noExpiry:
		return nil, true, nil
	}
	return nil, false, nil
}

// metadataFlags are --metadata k=v (repeatable) and --metadata-json.
type metadataFlags struct {
	pairs    stringList
	jsonText string
}

func (f *metadataFlags) register(fs *flag.FlagSet, what string) {
	fs.Var(&f.pairs, "metadata", what+": a key=value pair, the value a string (repeatable)")
	fs.StringVar(&f.jsonText, "metadata-json", "", what+": a JSON object; --metadata pairs are added to it")
}

// value returns the metadata object, or nil when no flag was given.
func (f *metadataFlags) value() (json.RawMessage, error) {
	if len(f.pairs) == 0 && f.jsonText == "" {
		return nil, nil
	}
	obj := map[string]any{}
	if f.jsonText != "" {
		dec := json.NewDecoder(strings.NewReader(f.jsonText))
		dec.UseNumber()
		if err := dec.Decode(&obj); err != nil || obj == nil {
			return nil, usageError{fmt.Sprintf("--metadata-json %q: want a JSON object like {\"channel\":\"general\"}", f.jsonText)}
		}
	}
	for _, p := range f.pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, usageError{fmt.Sprintf("--metadata %q: want key=value", p)}
		}
		obj[k] = v
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// parseLimit checks a page size.
func parseLimit(n int) error {
	if n < 1 || n > projection.ListLimitMax {
		return usageError{fmt.Sprintf("--limit %d: want 1 to %d", n, projection.ListLimitMax)}
	}
	return nil
}

// checkText checks a reason or note's length before it is sent.
func checkText(flagName, s string) error {
	if n := utf8.RuneCountInString(s); n > 2000 {
		return usageError{fmt.Sprintf("%s is %d characters, at most 2000", flagName, n)}
	}
	return nil
}

// lastMsg returns the stream sequence and time of the last message on
// filter, by a direct get (one request, no stream info needed), or 0 when
// there is none.
func lastMsg(ctx context.Context, nc *nats.Conn, stream, filter string) (uint64, time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, freshLookupTimeout)
	defer cancel()
	body, _ := json.Marshal(map[string]string{"last_by_subj": filter})
	m, err := nc.RequestWithContext(ctx, "$JS.API.DIRECT.GET."+stream, body)
	if errors.Is(err, nats.ErrNoResponders) {
		// No stream of that name answers direct gets.
		return 0, time.Time{}, jetstream.ErrStreamNotFound
	}
	if err != nil {
		return 0, time.Time{}, err
	}
	return parseDirectGet(m)
}

// parseDirectGet reads a direct get reply: the message's sequence and time,
// or 0 for "no message" (404).
func parseDirectGet(m *nats.Msg) (uint64, time.Time, error) {
	if status := m.Header.Get("Status"); status != "" && len(m.Data) == 0 {
		if status == "404" {
			return 0, time.Time{}, nil
		}
		return 0, time.Time{}, fmt.Errorf("direct get: status %s: %s", status, m.Header.Get("Description"))
	}
	var seq uint64
	if _, err := fmt.Sscan(m.Header.Get("Nats-Sequence"), &seq); err != nil {
		return 0, time.Time{}, fmt.Errorf("direct get: bad sequence header %q", m.Header.Get("Nats-Sequence"))
	}
	at, _ := time.Parse(time.RFC3339Nano, m.Header.Get("Nats-Time-Stamp"))
	return seq, at, nil
}
