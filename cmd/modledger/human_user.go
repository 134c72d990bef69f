package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/modledger/modledger/events"
	"github.com/modledger/modledger/projection"
)

// userArg reads the one positional argument of the user commands.
func (h *humanFlags) userArg(env *cliEnv, synopsis string) (events.Snowflake, events.Snowflake, error) {
	pos, err := h.args(env, 1, 1, synopsis)
	if err != nil {
		return 0, 0, err
	}
	guild, err := h.check()
	if err != nil {
		return 0, 0, err
	}
	user, err := parseSnowflakeFlag("user", pos[0])
	return guild, user, err
}

// userHistoryCmd lists a member's cases.
type userHistoryCmd struct {
	humanFlags
	limit  int
	cursor string
	active bool
}

func userHistoryCommand() subcommand {
	return subcommand{
		name:    "user history",
		summary: "List a member's cases in the guild, newest first, with how many are active.",
		usage:   "USER [flags]",
		examples: `  modledger user history 934871256019738654
  modledger user history 934871256019738654 --active
  modledger user history 934871256019738654 --json | jq .total`,
		flags: func(fs *flag.FlagSet, getenv func(string) string) runner {
			c := &userHistoryCmd{}
			c.register(fs, getenv, needGuild|needFresh)
			fs.BoolVar(&c.active, "active", false, "only the member's active (not closed) cases")
			fs.IntVar(&c.limit, "limit", listLimitDefault, fmt.Sprintf("how many cases to show, 1 to %d", projection.ListLimitMax))
			fs.StringVar(&c.cursor, "cursor", "", "the next page: the cursor the previous page printed")
			return c
		},
	}
}

func (c *userHistoryCmd) Run(ctx context.Context, env *cliEnv) error {
	guild, user, err := c.userArg(env, "USER [flags]")
	if err != nil {
		return err
	}
	if err := parseLimit(c.limit); err != nil {
		return err
	}
	s, err := c.connect(ctx, "modledger user history")
	if err != nil {
		return c.failed(env, err, uuid.Nil)
	}
	defer s.close()
	q, err := s.queries()
	if err != nil {
		return err
	}
	meta := s.queryMeta(guild)
	page := projection.PageParams{Limit: c.limit, Cursor: c.cursor}
	var r *projection.CaseListResult
	if c.active {
		r, err = q.UserActiveCases(s.ctx, guild, projection.UserActiveCasesParams{QueryMeta: meta, UserID: user, PageParams: page})
	} else {
		r, err = q.UserCases(s.ctx, guild, projection.UserCasesParams{QueryMeta: meta, UserID: user, PageParams: page})
	}
	if err != nil {
		return c.failed(env, err, uuid.Nil)
	}
	if c.json {
		return printJSON(env.stdout, r)
	}
	count, err := q.UserCaseCount(s.ctx, guild, projection.UserCaseCountParams{UserID: user})
	if err != nil {
		return c.failed(env, err, uuid.Nil)
	}
	header := fmt.Sprintf("User %s: %s, %d active.", user, plural(int(count.Total), "case"), count.Active)
	return writePage(env, false, env.clock(), r, header)
}

// userRestrictionsCmd lists the restrictions a member is under.
type userRestrictionsCmd struct{ humanFlags }

func userRestrictionsCommand() subcommand {
	return subcommand{
		name:    "user restrictions",
		summary: "Show the restrictions a member is under now (ban, timeout, jail, ...) and the cases behind them.",
		usage:   "USER [flags]",
		examples: `  modledger user restrictions 934871256019738654
  modledger user restrictions 934871256019738654 --json | jq -r '.restrictions[].family'`,
		flags: func(fs *flag.FlagSet, getenv func(string) string) runner {
			c := &userRestrictionsCmd{}
			c.register(fs, getenv, needGuild|needFresh)
			return c
		},
	}
}

func (c *userRestrictionsCmd) Run(ctx context.Context, env *cliEnv) error {
	guild, user, err := c.userArg(env, "USER [flags]")
	if err != nil {
		return err
	}
	s, err := c.connect(ctx, "modledger user restrictions")
	if err != nil {
		return c.failed(env, err, uuid.Nil)
	}
	defer s.close()
	q, err := s.queries()
	if err != nil {
		return err
	}
	r, err := q.UserRestrictions(s.ctx, guild, projection.UserRestrictionsParams{QueryMeta: s.queryMeta(guild), UserID: user})
	if err != nil {
		return c.failed(env, err, uuid.Nil)
	}
	if c.json {
		return printJSON(env.stdout, r)
	}
	if len(r.Restrictions) == 0 {
		fmt.Fprintf(env.stdout, "User %s is under no restriction.\n", user)
		return nil
	}
	clk := env.clock()
	families := make([]string, len(r.Restrictions))
	for i, x := range r.Restrictions {
		families[i] = string(x.Family)
	}
	fmt.Fprintf(env.stdout, "User %s is restricted: %s.\n", user, strings.Join(families, ", "))
	tw := newTable(env.stdout)
	fmt.Fprintln(tw, "FAMILY\tCASE\tTYPE\tSINCE\tEXPIRES")
	for _, x := range r.Restrictions {
		exp := "never"
		if x.ExpiresAt != nil {
			exp = clk.when(*x.ExpiresAt)
			if !x.ExpiresAt.After(clk.now) {
				exp += ", not lifted yet"
			}
		}
		fmt.Fprintf(tw, "%s\t#%d\t%s\t%s\t%s\n", x.Family, x.CaseNumber, x.Type, clk.when(x.Since), exp)
	}
	return tw.Flush()
}
