package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/command"
	"github.com/modledger/modledger/events"
)

// casesSetCmd is one of `modledger cases close|reopen|delete|redact|update`:
// a set command over the cases a filter, a list of numbers or --all selects.
type casesSetCmd struct {
	humanFlags
	op                                                          string
	g                                                           events.Snowflake
	user, moderator, types, status, since, until, expiresBefore string
	all, dryRun                                                 bool
	limit                                                       int
	maxCase                                                     uint
	reason                                                      string
	expiry                                                      expiryFlags
	metadata                                                    metadataFlags
}

// setOps are the set commands: the CLI verb, the past tense, and the call.
var setOps = map[string]struct {
	past string
	send func(ctx context.Context, cl *command.Client, c *casesSetCmd, p command.SetParams) (*command.SetResult, error)
}{
	"close": {"Closed", func(ctx context.Context, cl *command.Client, c *casesSetCmd, p command.SetParams) (*command.SetResult, error) {
		return cl.CaseCloseMany(ctx, c.guildID(), command.CloseManyParams{SetParams: p, Reason: c.reason})
	}},
	"reopen": {"Reopened", func(ctx context.Context, cl *command.Client, c *casesSetCmd, p command.SetParams) (*command.SetResult, error) {
		return cl.CaseReopenMany(ctx, c.guildID(), command.ReopenManyParams{SetParams: p, Reason: c.reason})
	}},
	"delete": {"Deleted", func(ctx context.Context, cl *command.Client, c *casesSetCmd, p command.SetParams) (*command.SetResult, error) {
		return cl.CaseDeleteMany(ctx, c.guildID(), command.DeleteManyParams{SetParams: p, Reason: c.reason})
	}},
	"redact": {"Redacted", func(ctx context.Context, cl *command.Client, c *casesSetCmd, p command.SetParams) (*command.SetResult, error) {
		return cl.CaseRedactMany(ctx, c.guildID(), command.RedactManyParams{SetParams: p, Reason: c.reason})
	}},
	"update": {"Updated", nil}, // Run builds its params from more flags
}

func casesSetCommand(op, summary, examples string) subcommand {
	return subcommand{
		name:     "cases " + op,
		summary:  summary,
		usage:    "[CASE ...] [--user U] [--moderator M] [--type T,...] [--status S] [--since T] [--until T] [--expires-before T] [--all] [flags]",
		examples: examples,
		flags: func(fs *flag.FlagSet, getenv func(string) string) runner {
			c := &casesSetCmd{op: op}
			c.register(fs, getenv, needGuild|needActor)
			fs.StringVar(&c.user, "user", "", "select the cases of this member")
			fs.StringVar(&c.moderator, "moderator", "", "select the cases this moderator opened")
			fs.StringVar(&c.types, "type", "", "select cases of these types, comma separated: WARN,TIMEOUT")
			fs.StringVar(&c.status, "status", "", "select active or closed cases")
			fs.StringVar(&c.since, "since", "", "select cases created at or after: a time, a local date, or how long ago (90d)")
			fs.StringVar(&c.until, "until", "", "select cases created before: a time, a local date, or how long ago (90d)")
			fs.StringVar(&c.expiresBefore, "expires-before", "", "select cases whose expiry is before: a time or a local date")
			fs.BoolVar(&c.all, "all", false, "select every case of the guild")
			fs.BoolVar(&c.dryRun, "dry-run", false, "show what would change, change nothing")
			fs.IntVar(&c.limit, "limit", command.SetLimitDefault, fmt.Sprintf("act on at most this many cases, 1 to %d", command.SetLimitMax))
			fs.UintVar(&c.maxCase, "max-case", 0, "leave out cases numbered above this; give a previous run's last case to repeat it on the same cases")
			if op == "update" {
				fs.StringVar(&c.reason, "reason", "", "the new reason, at most 2000 characters")
				c.expiry.register(fs, true)
				c.metadata.register(fs, "replace the metadata")
			} else {
				fs.StringVar(&c.reason, "reason", "", "why, at most 2000 characters; recorded on each case")
			}
			return c
		},
	}
}

func casesCloseCommand() subcommand {
	return casesSetCommand("close", "Close many cases at once: a filter, case numbers, or --all.",
		`  modledger cases close --user 934871256019738654 --status active --reason "appeal accepted"
  modledger cases close 12 13 14 --reason "duplicates"
  modledger cases close --type WARN --until 90d --reason "warnings expire after 90 days" --dry-run`)
}

func casesReopenCommand() subcommand {
	return casesSetCommand("reopen", "Reopen many closed cases at once.",
		`  modledger cases reopen 12 13 --reason "closed by mistake"
  modledger cases reopen --moderator 272937604339466240 --status closed --since 1d --dry-run`)
}

func casesDeleteCommand() subcommand {
	return casesSetCommand("delete", "Delete many cases at once (they stay in the stream as deleted).",
		`  modledger cases delete --user 934871256019738654 --reason "privacy request"
  modledger cases delete 5 6 7 --dry-run`)
}

func casesRedactCommand() subcommand {
	return casesSetCommand("redact", "Remove the personal text of many cases at once (a privacy request); deleted ones too when listed.",
		`  modledger cases redact --user 934871256019738654 --reason "erasure request 2027-0113"
  modledger cases redact 5 6 7`)
}

func casesUpdateCommand() subcommand {
	return casesSetCommand("update", "Change the reason, expiry or metadata of many cases at once.",
		`  modledger cases update --user 934871256019738654 --type TEMPBAN --status active --duration 14d
  modledger cases update 3 4 --reason "raid of 2026-11-25" --metadata raid=2026-11-25`)
}

// guildID is the guild that Run's check validated.
func (c *casesSetCmd) guildID() events.Snowflake { return c.g }

func (c *casesSetCmd) Run(ctx context.Context, env *cliEnv) error {
	pos, err := c.positional(env)
	if err != nil {
		return err
	}
	if c.g, err = c.check(); err != nil {
		return err
	}
	clk := env.clock()
	p := command.SetParams{All: c.all, DryRun: c.dryRun, Limit: c.limit, MaxCaseNumber: uint32(c.maxCase)}
	if c.limit < 1 || c.limit > command.SetLimitMax {
		return usageError{fmt.Sprintf("--limit %d: want 1 to %d", c.limit, command.SetLimitMax)}
	}
	for _, a := range pos {
		n, err := parseCaseNumber(a)
		if err != nil {
			return err
		}
		p.CaseNumbers = append(p.CaseNumbers, n)
	}
	var f aggregate.CaseFilter
	if c.user != "" {
		if f.UserID, err = parseSnowflakeFlag("--user", c.user); err != nil {
			return err
		}
	}
	if c.moderator != "" {
		if f.ModeratorID, err = parseSnowflakeFlag("--moderator", c.moderator); err != nil {
			return err
		}
	}
	if f.Types, err = parseTypes("--type", c.types); err != nil {
		return err
	}
	if f.Status, err = parseStatus(c.status); err != nil {
		return err
	}
	for _, t := range []struct {
		flag, value string
		to          *time.Time
	}{{"--since", c.since, &f.CreatedAfter}, {"--until", c.until, &f.CreatedBefore}, {"--expires-before", c.expiresBefore, &f.ExpiresBefore}} {
		if t.value == "" {
			continue
		}
		if *t.to, err = parseTime(t.flag, t.value, clk.now, clk.loc, t.flag != "--expires-before"); err != nil {
			return err
		}
	}
	if !f.IsZero() {
		p.Filter = &f
	}
	chosen := 0
	for _, b := range []bool{p.Filter != nil, len(p.CaseNumbers) > 0, p.All} {
		if b {
			chosen++
		}
	}
	if chosen != 1 {
		return usageError{"select cases with one of: case numbers, filter flags (--user, --moderator, --type, --status, --since, --until, --expires-before), or --all"}
	}
	if err := checkText("--reason", c.reason); err != nil {
		return err
	}
	if p.ActorID, err = c.actorID(true); err != nil {
		return err
	}
	if p.CommandID, err = c.commandUUID(); err != nil {
		return err
	}
	op := setOps[c.op]
	send := func(ctx context.Context, cl *command.Client) (*command.SetResult, error) {
		return op.send(ctx, cl, c, p)
	}
	if c.op == "update" {
		up := command.UpdateManyParams{SetParams: p}
		if flagSet(c.fs, "reason") {
			up.Reason = &c.reason
		}
		at, set, err := c.expiry.value(clk.now, clk.loc)
		if err != nil {
			return err
		}
		if set {
			up.ExpiresAt = command.OptionalTime{Set: true, Time: at}
		}
		if up.Metadata, err = c.metadata.value(); err != nil {
			return err
		}
		if up.Reason == nil && !set && up.Metadata == nil {
			return usageError{"nothing to update: give --reason, --duration, --expires-at, --no-expiry or --metadata"}
		}
		send = func(ctx context.Context, cl *command.Client) (*command.SetResult, error) {
			return cl.CaseUpdateMany(ctx, c.g, up)
		}
	}
	s, err := c.connect(ctx, "modledger cases "+c.op)
	if err != nil {
		return c.failed(env, err, uuid.Nil)
	}
	defer s.close()
	cl, err := s.commands()
	if err != nil {
		return err
	}
	r, err := send(s.ctx, cl)
	if err != nil {
		return c.failed(env, err, p.CommandID)
	}
	if c.json {
		if err := printJSON(env.stdout, r); err != nil {
			return err
		}
	} else if err := writeSetResult(env, op.past, r, p.CommandID); err != nil {
		return err
	}
	if len(r.Failed) > 0 {
		// Exit as the first failure says (not found, rejected, ...).
		return fmt.Errorf("%s of the selected cases failed; the first: %w", plural(len(r.Failed), "case"), replyError{r.Failed[0].Error})
	}
	return nil
}

// writeSetResult prints a set command's reply: a summary line, a row per
// case, and how to repeat it.
func writeSetResult(env *cliEnv, past string, r *command.SetResult, id uuid.UUID) error {
	verb := past
	if r.DryRun {
		verb = "Would have " + strings.ToLower(past[:1]) + past[1:] + ":"
	}
	fmt.Fprintf(env.stdout, "%s %s", verb, plural(len(r.Changed), "case"))
	if r.DryRun {
		fmt.Fprintf(env.stdout, " (dry run, nothing changed)")
	}
	fmt.Fprintf(env.stdout, "; %d unchanged, %d failed, of %d selected", len(r.Unchanged), len(r.Failed), r.Matched)
	if r.More {
		fmt.Fprint(env.stdout, " (more matched: raise --limit or run again)")
	}
	fmt.Fprintln(env.stdout, ".")
	if r.Matched > 0 {
		tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CASE\tRESULT\tDETAIL")
		for _, ch := range r.Changed {
			detail := plural(ch.Appended, "event")
			if ch.Seq > 0 {
				detail += fmt.Sprintf(", seq %d", ch.Seq)
			}
			result := "changed"
			if r.DryRun {
				result = "would change"
			}
			fmt.Fprintf(tw, "#%d\t%s\t%s\n", ch.CaseNumber, result, detail)
		}
		for _, u := range r.Unchanged {
			fmt.Fprintf(tw, "#%d\tunchanged\t%s\n", u.CaseNumber, strings.ReplaceAll(u.Why, "_", " "))
		}
		for _, f := range r.Failed {
			fmt.Fprintf(tw, "#%d\tfailed\t%s\n", f.CaseNumber, replyError{f.Error})
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintf(env.stdout, "Command id %s; selected up to case #%d", id, r.LastCaseNumber)
	if r.Seq > 0 {
		fmt.Fprintf(env.stdout, " at seq %d", r.Seq)
	}
	fmt.Fprintf(env.stdout, " (--max-case %d repeats it on the same cases).\n", r.LastCaseNumber)
	return nil
}
