package main

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/command"
	"github.com/modledger/modledger/events"
	"github.com/modledger/modledger/projection"
)

// flagSet reports whether the flag name was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}

// sendCommand runs a command with a command id (--command-id or a new
// one) and prints its reply: the wire reply with --json, else what changed.
func (h *humanFlags) sendCommand(ctx context.Context, env *cliEnv, name string, id uuid.UUID,
	send func(ctx context.Context, c *command.Client) (*command.Result, error), done, noop string) error {
	s, err := h.connect(ctx, "modledger "+name)
	if err != nil {
		return h.failed(env, err, uuid.Nil)
	}
	defer s.close()
	client, err := s.commands()
	if err != nil {
		return err
	}
	r, err := send(s.ctx, client)
	if err != nil {
		return h.failed(env, err, id)
	}
	if h.json {
		return printJSON(env.stdout, r)
	}
	clk := env.clock()
	if r.Appended == 0 && noop != "" {
		fmt.Fprintf(env.stdout, noop+"\n", r.Case.CaseNumber)
	} else {
		fmt.Fprintf(env.stdout, done+"\n", r.Case.CaseNumber)
	}
	if err := writeCase(env.stdout, clk, r.Case, false); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "Command id %s (seq %d, %s appended)\n", id, r.Seq, plural(r.Appended, "event"))
	return nil
}

// caseOpenCmd opens a case.
type caseOpenCmd struct {
	humanFlags
	typ, user, moderator, reason, externalID, source string
	roles                                            stringList
	expiry                                           expiryFlags
	metadata                                         metadataFlags
	unlessActive                                     unlessActiveFlag
}

// unlessActiveFlag is --unless-active (the type's own family) or
// --unless-active=FAMILY.
type unlessActiveFlag struct{ v command.UnlessActive }

func (f *unlessActiveFlag) IsBoolFlag() bool { return true }

func (f *unlessActiveFlag) String() string {
	switch {
	case f == nil || !f.v.Set:
		return ""
	case f.v.Family != "":
		return string(f.v.Family)
	}
	return "true"
}

func (f *unlessActiveFlag) Set(v string) error {
	switch v {
	case "true":
		f.v = command.UnlessActive{Set: true}
	case "false":
		f.v = command.UnlessActive{}
	default:
		f.v = command.UnlessActive{Set: true, Family: aggregate.Family(v)}
	}
	return nil
}

func caseOpenCommand() subcommand {
	return subcommand{
		name:    "case open",
		summary: "Open a case: record a ban, kick, warning, timeout, ... against a member.",
		usage:   "--type TYPE --user USER [flags]",
		examples: `  modledger case open --type WARN --user 934871256019738654 --reason "be nice in #general"
  modledger case open --type TEMPBAN --user 934871256019738654 --duration 7d --reason "raid alt"
  modledger case open --type TIMEOUT --user 934871256019738654 --expires-at 2026-12-09T12:00:00Z --metadata channel=general
  modledger case open --type BAN --user 934871256019738654 --command-id 0192f1a0-0000-7000-8000-000000000001 --json
  modledger case open --type BAN --user 934871256019738654 --unless-active --reason "raid"`,
		flags: func(fs *flag.FlagSet, getenv func(string) string) runner {
			c := &caseOpenCmd{}
			c.register(fs, getenv, needGuild|needActor)
			fs.StringVar(&c.typ, "type", "", "the case type: BAN, HACKBAN, TEMPBAN, KICK, TIMEOUT, WARN, JAIL, SNIPPETBAN, POLLBAN, UNBAN, ..., NOTE (required)")
			fs.StringVar(&c.user, "user", "", "the member acted on: a user id (required)")
			fs.StringVar(&c.moderator, "moderator", "", "who acted: a user id. Defaults to --actor")
			fs.StringVar(&c.reason, "reason", "", "why, at most 2000 characters")
			c.expiry.register(fs, false)
			fs.StringVar(&c.externalID, "external-id", "", "the action's id on the platform (an audit-log entry id): one external id never makes two cases")
			fs.StringVar(&c.source, "source", "", "where the action came from: command, audit_log or automod. Defaults to command")
			fs.Var(&c.roles, "role", "a role id the member had (repeatable), restored on unjail")
			c.metadata.register(fs, "metadata")
			fs.Var(&c.unlessActive, "unless-active", "open only if the member is not already restricted: alone, by the type's own family (a BAN checks bans); =FAMILY names one (ban, timeout, jail, snippet, poll)")
			return c
		},
	}
}

func (c *caseOpenCmd) Run(ctx context.Context, env *cliEnv) error {
	if _, err := c.args(env, 0, 0, "--type TYPE --user USER [flags]"); err != nil {
		return err
	}
	guild, err := c.check()
	if err != nil {
		return err
	}
	clk := env.clock()
	p := command.OpenParams{}
	if p.ActorID, err = c.actorID(false); err != nil {
		return err
	}
	types, err := parseTypes("--type", c.typ)
	switch {
	case err != nil:
		return err
	case len(types) != 1:
		return usageError{"--type is required: one case type, like WARN, BAN or TEMPBAN"}
	}
	p.Type = types[0]
	if c.user == "" {
		return usageError{"--user is required: the id of the member acted on"}
	}
	if p.UserID, err = parseSnowflakeFlag("--user", c.user); err != nil {
		return err
	}
	switch {
	case c.moderator != "":
		if p.ModeratorID, err = parseSnowflakeFlag("--moderator", c.moderator); err != nil {
			return err
		}
	case p.ActorID != 0:
		p.ModeratorID = p.ActorID
	default:
		return usageError{"--moderator or --actor (MODLEDGER_ACTOR) is required: who acted"}
	}
	if err := checkText("--reason", c.reason); err != nil {
		return err
	}
	p.Reason = c.reason
	if p.ExpiresAt, _, err = c.expiry.value(clk.now, clk.loc); err != nil {
		return err
	}
	switch c.source {
	case "", aggregate.SourceCommand, aggregate.SourceAuditLog, aggregate.SourceAutomod:
		p.Source = c.source
	default:
		return usageError{fmt.Sprintf("--source %q: want command, audit_log or automod", c.source)}
	}
	p.ExternalID = c.externalID
	for _, r := range c.roles {
		id, err := parseSnowflakeFlag("--role", r)
		if err != nil {
			return err
		}
		p.UserRoles = append(p.UserRoles, id)
	}
	if p.Metadata, err = c.metadata.value(); err != nil {
		return err
	}
	if p.CommandID, err = c.commandUUID(); err != nil {
		return err
	}
	p.UnlessActive = c.unlessActive.v
	noop := "Case #%d was opened already for this external id: nothing changed."
	if p.UnlessActive.Set {
		noop = "The member is already restricted by case #%d: nothing opened."
	}
	return c.sendCommand(ctx, env, "case open", p.CommandID, func(ctx context.Context, cl *command.Client) (*command.Result, error) {
		return cl.CaseOpen(ctx, guild, p)
	}, "Opened case #%d.", noop)
}

// caseRefArgs reads the case number argument and the shared flags of a
// change: guild, actor, command id.
func (h *humanFlags) changeArgs(env *cliEnv, minArgs, maxArgs int, synopsis string) (events.Snowflake, command.Meta, uint32, []string, error) {
	pos, err := h.args(env, minArgs, maxArgs, synopsis)
	if err != nil {
		return 0, command.Meta{}, 0, nil, err
	}
	guild, err := h.check()
	if err != nil {
		return 0, command.Meta{}, 0, nil, err
	}
	n, err := parseCaseNumber(pos[0])
	if err != nil {
		return 0, command.Meta{}, 0, nil, err
	}
	var meta command.Meta
	if meta.ActorID, err = h.actorID(true); err != nil {
		return 0, command.Meta{}, 0, nil, err
	}
	if meta.CommandID, err = h.commandUUID(); err != nil {
		return 0, command.Meta{}, 0, nil, err
	}
	return guild, meta, n, pos[1:], nil
}

// caseUpdateCmd changes a case's reason, expiry or metadata.
type caseUpdateCmd struct {
	humanFlags
	reason   string
	expiry   expiryFlags
	metadata metadataFlags
}

func caseUpdateCommand() subcommand {
	return subcommand{
		name:    "case update",
		summary: "Change a case's reason, expiry or metadata (one command, one atomic change).",
		usage:   "CASE [--reason TEXT] [--duration D | --expires-at T | --no-expiry] [--metadata k=v ...]",
		examples: `  modledger case update 12 --reason "spamming invite links; alt of a banned account"
  modledger case update 12 --duration 14d
  modledger case update 12 --expires-at "2026-12-24 18:00" --reason "extended after appeal"
  modledger case update 9 --no-expiry`,
		flags: func(fs *flag.FlagSet, getenv func(string) string) runner {
			c := &caseUpdateCmd{}
			c.register(fs, getenv, needGuild|needActor)
			fs.StringVar(&c.reason, "reason", "", "the new reason, at most 2000 characters (the old one stays in the reason history)")
			c.expiry.register(fs, true)
			c.metadata.register(fs, "replace the metadata")
			return c
		},
	}
}

func (c *caseUpdateCmd) Run(ctx context.Context, env *cliEnv) error {
	guild, meta, n, _, err := c.changeArgs(env, 1, 1, "CASE [--reason TEXT] [--duration D | --expires-at T | --no-expiry]")
	if err != nil {
		return err
	}
	clk := env.clock()
	p := command.UpdateParams{Meta: meta, CaseRef: command.CaseRef{CaseNumber: n}}
	if flagSet(c.fs, "reason") {
		if err := checkText("--reason", c.reason); err != nil {
			return err
		}
		p.Reason = &c.reason
	}
	at, set, err := c.expiry.value(clk.now, clk.loc)
	if err != nil {
		return err
	}
	if set {
		p.ExpiresAt = command.OptionalTime{Set: true, Time: at}
	}
	if p.Metadata, err = c.metadata.value(); err != nil {
		return err
	}
	if p.Reason == nil && !set && p.Metadata == nil {
		return usageError{"nothing to update: give --reason, --duration, --expires-at, --no-expiry or --metadata"}
	}
	return c.sendCommand(ctx, env, "case update", meta.CommandID, func(ctx context.Context, cl *command.Client) (*command.Result, error) {
		return cl.CaseUpdate(ctx, guild, p)
	}, "Updated case #%d.", "Case #%d is already like that: nothing changed.")
}

// caseChangeCmd is close, reopen and delete: a case number and a reason.
type caseChangeCmd struct {
	humanFlags
	reason string
	op     string // close, reopen, delete
}

func caseChangeCommand(op, summary, examples string) subcommand {
	return subcommand{
		name:     "case " + op,
		summary:  summary,
		usage:    "CASE [--reason TEXT]",
		examples: examples,
		flags: func(fs *flag.FlagSet, getenv func(string) string) runner {
			c := &caseChangeCmd{op: op}
			c.register(fs, getenv, needGuild|needActor)
			fs.StringVar(&c.reason, "reason", "", "why, at most 2000 characters; recorded in the event (the case's own reason stays)")
			return c
		},
	}
}

func caseCloseCommand() subcommand {
	return caseChangeCommand("close", "Close (void) a case: it stays in the history but no longer counts.",
		`  modledger case close 12 --reason "appealed"
  modledger case close 12 --json | jq .case.status`)
}

func caseReopenCommand() subcommand {
	return caseChangeCommand("reopen", "Reopen a closed case: it is active and counts again.",
		`  modledger case reopen 12 --reason "appeal withdrawn"`)
}

func caseDeleteCommand() subcommand {
	return caseChangeCommand("delete", "Delete a case: it keeps its number and history and leaves every list.",
		`  modledger case delete 12 --reason "opened against the wrong member"`)
}

func (c *caseChangeCmd) Run(ctx context.Context, env *cliEnv) error {
	guild, meta, n, _, err := c.changeArgs(env, 1, 1, "CASE [--reason TEXT]")
	if err != nil {
		return err
	}
	if err := checkText("--reason", c.reason); err != nil {
		return err
	}
	ref := command.CaseRef{CaseNumber: n}
	var send func(ctx context.Context, cl *command.Client) (*command.Result, error)
	var done, noop string
	switch c.op {
	case "close":
		p := command.CloseParams{Meta: meta, CaseRef: ref, Reason: c.reason}
		send = func(ctx context.Context, cl *command.Client) (*command.Result, error) {
			return cl.CaseClose(ctx, guild, p)
		}
		done, noop = "Closed case #%d.", "Case #%d is closed already: nothing changed."
	case "reopen":
		p := command.ReopenParams{Meta: meta, CaseRef: ref, Reason: c.reason}
		send = func(ctx context.Context, cl *command.Client) (*command.Result, error) {
			return cl.CaseReopen(ctx, guild, p)
		}
		done, noop = "Reopened case #%d.", "Case #%d is active already: nothing changed."
	case "delete":
		p := command.DeleteParams{Meta: meta, CaseRef: ref, Reason: c.reason}
		send = func(ctx context.Context, cl *command.Client) (*command.Result, error) {
			return cl.CaseDelete(ctx, guild, p)
		}
		done, noop = "Deleted case #%d.", "Case #%d is deleted already: nothing changed."
	default:
		return fmt.Errorf("unknown change %q", c.op)
	}
	return c.sendCommand(ctx, env, "case "+c.op, meta.CommandID, send, done, noop)
}

// caseNoteCmd adds a note to a case.
type caseNoteCmd struct {
	humanFlags
	evidence stringList
}

func caseNoteCommand() subcommand {
	return subcommand{
		name:    "case note",
		summary: "Add a note, with evidence links, to a case; notes are never overwritten.",
		usage:   "CASE TEXT [--evidence URL ...]",
		examples: `  modledger case note 12 "Same invite code as the raid on 2026-11-20."
  modledger case note 12 "screenshot of the DMs" --evidence https://cdn.example.com/dm.png`,
		flags: func(fs *flag.FlagSet, getenv func(string) string) runner {
			c := &caseNoteCmd{}
			c.register(fs, getenv, needGuild|needActor)
			fs.Var(&c.evidence, "evidence", "an http(s) link to evidence (repeatable, at most 10)")
			return c
		},
	}
}

func (c *caseNoteCmd) Run(ctx context.Context, env *cliEnv) error {
	guild, meta, n, rest, err := c.changeArgs(env, 2, 2, "CASE TEXT [--evidence URL ...]")
	if err != nil {
		return err
	}
	text := rest[0]
	if strings.TrimSpace(text) == "" {
		return usageError{"the note's text is empty"}
	}
	if err := checkText("the note", text); err != nil {
		return err
	}
	for _, u := range c.evidence {
		if !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
			return usageError{fmt.Sprintf("--evidence %q: want an http or https URL", u)}
		}
	}
	p := command.AddNoteParams{Meta: meta, CaseRef: command.CaseRef{CaseNumber: n}, Text: text, EvidenceURLs: c.evidence}
	return c.sendCommand(ctx, env, "case note", meta.CommandID, func(ctx context.Context, cl *command.Client) (*command.Result, error) {
		return cl.CaseAddNote(ctx, guild, p)
	}, "Added a note to case #%d.", "")
}

// caseShowCmd shows one case.
type caseShowCmd struct {
	humanFlags
	includeDeleted bool
}

func caseShowCommand() subcommand {
	return subcommand{
		name:    "case show",
		summary: "Show a case with its notes and reason history.",
		usage:   "CASE [flags]",
		examples: `  modledger case show 12
  modledger case show 12 --json | jq -r .case.reason
  modledger case show 3 --include-deleted`,
		flags: func(fs *flag.FlagSet, getenv func(string) string) runner {
			c := &caseShowCmd{}
			c.register(fs, getenv, needGuild|needFresh)
			fs.BoolVar(&c.includeDeleted, "include-deleted", false, "show a deleted case instead of answering not found")
			return c
		},
	}
}

func (c *caseShowCmd) Run(ctx context.Context, env *cliEnv) error {
	pos, err := c.args(env, 1, 1, "CASE [flags]")
	if err != nil {
		return err
	}
	guild, err := c.check()
	if err != nil {
		return err
	}
	n, err := parseCaseNumber(pos[0])
	if err != nil {
		return err
	}
	s, err := c.connect(ctx, "modledger case show")
	if err != nil {
		return c.failed(env, err, uuid.Nil)
	}
	defer s.close()
	q, err := s.queries()
	if err != nil {
		return err
	}
	r, err := q.CaseGet(s.ctx, guild, projection.CaseGetParams{QueryMeta: s.queryMeta(guild), CaseNumber: n, IncludeDeleted: c.includeDeleted})
	if err != nil {
		return c.failed(env, err, uuid.Nil)
	}
	if c.json {
		return printJSON(env.stdout, r)
	}
	return writeCase(env.stdout, env.clock(), r.Case, true)
}

// caseListCmd lists the cases that match a filter.
type caseListCmd struct {
	humanFlags
	user, moderator, types, status, since, until, cursor, order, search string
	limit                                                               int
	includeDeleted                                                      bool
}

func caseListCommand() subcommand {
	return subcommand{
		name:    "case list",
		summary: "List a guild's cases, newest first, filtered by user, moderator, type, status and time.",
		usage:   "[flags]",
		examples: `  modledger case list
  modledger case list --user 934871256019738654
  modledger case list --type BAN,TEMPBAN --status active --since 7d
  modledger case list --moderator 272937604339466240 --since 2026-12-01 --until 2026-12-08
  modledger case list --search "invite links" --limit 100 --json | jq '.cases[].case_number'
  modledger case list --cursor eyJrIjoiYyIsIm8iOiJkZXNjIiwibiI6Nn0`,
		flags: func(fs *flag.FlagSet, getenv func(string) string) runner {
			c := &caseListCmd{}
			c.register(fs, getenv, needGuild|needFresh)
			fs.StringVar(&c.user, "user", "", "only the cases of this member")
			fs.StringVar(&c.moderator, "moderator", "", "only the cases this moderator opened")
			fs.StringVar(&c.types, "type", "", "only cases of these types, comma separated: BAN,TEMPBAN")
			fs.StringVar(&c.status, "status", "", "only active or closed cases (active,closed: both)")
			fs.StringVar(&c.since, "since", "", "only cases created at or after: a time, a local date, or how long ago (24h, 7d)")
			fs.StringVar(&c.until, "until", "", "only cases created before: a time, a local date, or how long ago")
			fs.StringVar(&c.search, "search", "", "only cases whose reason has these words (web search syntax: words, \"a phrase\", or, -word)")
			fs.BoolVar(&c.includeDeleted, "include-deleted", false, "include deleted cases")
			fs.IntVar(&c.limit, "limit", listLimitDefault, fmt.Sprintf("how many cases to show, 1 to %d", projection.ListLimitMax))
			fs.StringVar(&c.order, "order", "desc", "desc: newest first; asc: oldest first")
			fs.StringVar(&c.cursor, "cursor", "", "the next page: the cursor the previous page printed")
			return c
		},
	}
}

func (c *caseListCmd) Run(ctx context.Context, env *cliEnv) error {
	if _, err := c.args(env, 0, 0, "[flags]"); err != nil {
		return err
	}
	guild, err := c.check()
	if err != nil {
		return err
	}
	clk := env.clock()
	p := projection.CaseListParams{PageParams: projection.PageParams{Limit: c.limit, Cursor: c.cursor}}
	if c.user != "" {
		if p.UserID, err = parseSnowflakeFlag("--user", c.user); err != nil {
			return err
		}
	}
	if c.moderator != "" {
		if p.ModeratorID, err = parseSnowflakeFlag("--moderator", c.moderator); err != nil {
			return err
		}
	}
	if p.Types, err = parseTypes("--type", c.types); err != nil {
		return err
	}
	if p.Status, err = parseStatus(c.status); err != nil {
		return err
	}
	if c.since != "" {
		if p.CreatedAfter, err = parseTime("--since", c.since, clk.now, clk.loc, true); err != nil {
			return err
		}
	}
	if c.until != "" {
		if p.CreatedBefore, err = parseTime("--until", c.until, clk.now, clk.loc, true); err != nil {
			return err
		}
	}
	if !p.CreatedAfter.IsZero() && !p.CreatedBefore.IsZero() && !p.CreatedAfter.Before(p.CreatedBefore) {
		return usageError{"--until must be after --since"}
	}
	p.Search = c.search
	p.IncludeDeleted = c.includeDeleted
	if err := parseLimit(c.limit); err != nil {
		return err
	}
	switch c.order {
	case "desc", "asc":
		p.Order = projection.SortOrder(c.order)
	default:
		return usageError{fmt.Sprintf("--order %q: want desc or asc", c.order)}
	}
	s, err := c.connect(ctx, "modledger case list")
	if err != nil {
		return c.failed(env, err, uuid.Nil)
	}
	defer s.close()
	q, err := s.queries()
	if err != nil {
		return err
	}
	p.QueryMeta = s.queryMeta(guild)
	r, err := q.CaseList(s.ctx, guild, p)
	if err != nil {
		return c.failed(env, err, uuid.Nil)
	}
	return writePage(env, c.json, clk, r, "")
}

// writePage prints a page of cases: the wire reply with --json, else a
// table, a count and how to get the next page.
func writePage(env *cliEnv, asJSON bool, clk clock, r *projection.CaseListResult, header string) error {
	if asJSON {
		return printJSON(env.stdout, r)
	}
	if header != "" {
		fmt.Fprintln(env.stdout, header)
	}
	if len(r.Cases) == 0 {
		fmt.Fprintln(env.stdout, "No cases.")
		return nil
	}
	if err := writeCaseTable(env.stdout, clk, r.Cases); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "%d of %s.", len(r.Cases), plural(int(r.Total), "case"))
	if r.NextCursor != "" {
		fmt.Fprintf(env.stdout, " Next page: --cursor %s", r.NextCursor)
	}
	fmt.Fprintln(env.stdout)
	return nil
}

// parseStatus reads --status: active, closed, or both (no filter).
func parseStatus(s string) (aggregate.Status, error) {
	var got []aggregate.Status
	for _, v := range strings.Split(s, ",") {
		v = strings.ToLower(strings.TrimSpace(v))
		switch v {
		case "":
		case string(aggregate.StatusActive), string(aggregate.StatusClosed):
			if !slices.Contains(got, aggregate.Status(v)) {
				got = append(got, aggregate.Status(v))
			}
		default:
			return "", usageError{fmt.Sprintf("--status %q: want active, closed or active,closed (deleted cases: --include-deleted)", v)}
		}
	}
	if len(got) == 1 {
		return got[0], nil
	}
	return "", nil
}

// caseHistoryCmd shows a case's audit trail.
type caseHistoryCmd struct{ humanFlags }

func caseHistoryCommand() subcommand {
	return subcommand{
		name:    "case history",
		summary: "Show every event of a case, oldest first: who did what, and when (deleted cases too).",
		usage:   "CASE [flags]",
		examples: `  modledger case history 12
  modledger case history 12 --json | jq '.events[] | [.seq, .event, .actor_id]'`,
		flags: func(fs *flag.FlagSet, getenv func(string) string) runner {
			c := &caseHistoryCmd{}
			c.register(fs, getenv, needGuild|needFresh)
			return c
		},
	}
}

func (c *caseHistoryCmd) Run(ctx context.Context, env *cliEnv) error {
	pos, err := c.args(env, 1, 1, "CASE [flags]")
	if err != nil {
		return err
	}
	guild, err := c.check()
	if err != nil {
		return err
	}
	n, err := parseCaseNumber(pos[0])
	if err != nil {
		return err
	}
	s, err := c.connect(ctx, "modledger case history")
	if err != nil {
		return c.failed(env, err, uuid.Nil)
	}
	defer s.close()
	q, err := s.queries()
	if err != nil {
		return err
	}
	r, err := q.CaseHistory(s.ctx, guild, projection.CaseHistoryParams{QueryMeta: s.queryMeta(guild), CaseNumber: n})
	if err != nil {
		return c.failed(env, err, uuid.Nil)
	}
	if c.json {
		return printJSON(env.stdout, r)
	}
	clk := env.clock()
	fmt.Fprintf(env.stdout, "Case #%d: %d events\n", n, len(r.Events))
	tw := newTable(env.stdout)
	fmt.Fprintln(tw, "SEQ\tTIME\tEVENT\tACTOR\tCOMMAND\tDETAILS")
	for _, e := range r.Events {
		cmd := e.Command
		if cmd == "" {
			cmd = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", e.Seq, clk.when(e.OccurredAt), e.Event, e.ActorID, cmd, clk.eventSummary(e))
	}
	return tw.Flush()
}
