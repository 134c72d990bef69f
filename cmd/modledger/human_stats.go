package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/modledger/modledger/projection"
)

// statsCmd shows a guild's statistics.
type statsCmd struct {
	humanFlags
	since, until string
	allDays      bool
}

func statsCommand() subcommand {
	return subcommand{
		name:    "stats",
		summary: "Show a guild's case statistics: totals, by type, by moderator and by day.",
		usage:   "[flags]",
		examples: `  modledger stats
  modledger stats --since 7d
  modledger stats --since 2026-11-01 --until 2026-11-30 --all-days
  modledger stats --json | jq '.by_moderator[0]'`,
		flags: func(fs *flag.FlagSet, getenv func(string) string) runner {
			c := &statsCmd{}
			c.register(fs, getenv, needGuild|needFresh)
			fs.StringVar(&c.since, "since", "", fmt.Sprintf("first day of the by-day counts: a UTC date (2026-12-01), a time, or how long ago (7d). Defaults to %d days before --until", projection.StatisticsDaysDefault-1))
			fs.StringVar(&c.until, "until", "", "last day of the by-day counts: a UTC date, a time, or how long ago. Defaults to today (UTC)")
			fs.BoolVar(&c.allDays, "all-days", false, "list the days without cases too")
			return c
		},
	}
}

func (c *statsCmd) Run(ctx context.Context, env *cliEnv) error {
	if _, err := c.args(env, 0, 0, "[flags]"); err != nil {
		return err
	}
	guild, err := c.check()
	if err != nil {
		return err
	}
	clk := env.clock()
	var p projection.GuildStatisticsParams
	// The statistics count UTC days, so a date is a UTC day here.
	if c.since != "" {
		if p.From, err = parseTime("--since", c.since, clk.now, time.UTC, true); err != nil {
			return err
		}
	}
	if c.until != "" {
		if p.To, err = parseTime("--until", c.until, clk.now, time.UTC, true); err != nil {
			return err
		}
	} else if !p.From.IsZero() {
		// The range ends today by the clock of this command.
		p.To = clk.now.UTC()
	}
	if !p.From.IsZero() && !p.To.IsZero() {
		if p.From.After(p.To) {
			return usageError{"--since must not be after --until"}
		}
		if days := int(p.To.Sub(p.From).Hours()/24) + 1; days > projection.StatisticsDaysMax {
			return usageError{fmt.Sprintf("--since to --until is %d days, at most %d", days, projection.StatisticsDaysMax)}
		}
	}
	s, err := c.connect(ctx, "modledger stats")
	if err != nil {
		return c.failed(env, err, uuid.Nil)
	}
	defer s.close()
	q, err := s.queries()
	if err != nil {
		return err
	}
	p.QueryMeta = s.queryMeta(guild)
	r, err := q.GuildStatistics(s.ctx, guild, p)
	if err != nil {
		return c.failed(env, err, uuid.Nil)
	}
	if c.json {
		return printJSON(env.stdout, r)
	}
	w := env.stdout
	fmt.Fprintf(w, "Guild %s: %s, %d active.\n", guild, plural(int(r.Total), "case"), r.Active)
	if len(r.ByType) > 0 {
		fmt.Fprintln(w)
		tw := newTable(w)
		fmt.Fprintln(tw, "TYPE\tTOTAL\tACTIVE")
		for _, t := range r.ByType {
			fmt.Fprintf(tw, "%s\t%d\t%d\n", t.Type, t.Total, t.Active)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(r.ByModerator) > 0 {
		fmt.Fprintln(w)
		tw := newTable(w)
		fmt.Fprintln(tw, "MODERATOR\tTOTAL\tACTIVE")
		for _, m := range r.ByModerator {
			fmt.Fprintf(tw, "%s\t%d\t%d\n", m.ModeratorID, m.Total, m.Active)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "\nBy day, %s to %s (UTC days):\n", r.From, r.To)
	var days []projection.DayCount
	for _, d := range r.ByDay {
		if d.Total > 0 || c.allDays {
			days = append(days, d)
		}
	}
	if len(days) == 0 {
		fmt.Fprintln(w, "No cases on these days.")
		return nil
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "DAY\tTOTAL\tACTIVE\tTYPES")
	for _, d := range days {
		types := make([]string, len(d.ByType))
		for i, t := range d.ByType {
			types[i] = fmt.Sprintf("%s %d", t.Type, t.Total)
		}
		if len(types) == 0 {
			types = []string{"-"}
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", d.Day, d.Total, d.Active, strings.Join(types, ", "))
	}
	return tw.Flush()
}
