package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modledger/modledger/command"
	"github.com/modledger/modledger/projection"
)

// TestUserAndStatsCommands drives user history, user restrictions and
// stats against one ledger.
func TestUserAndStatsCommands(t *testing.T) {
	t.Parallel()
	l := startCLILedger(t)
	jst := mustZone(t)
	t0 := time.Now()
	open := func(args ...string) *command.Result {
		t.Helper()
		return okJSON[*command.Result](t, l, cliOpts{now: t0}, append([]string{"case", "open"}, args...)...)
	}
	tempban := open("--type", "TEMPBAN", "--user", "50", "--duration", "3d", "--reason", "raid")
	open("--type", "WARN", "--user", "50", "--reason", "spam")
	timeout := open("--type", "TIMEOUT", "--user", "50", "--duration", "5h")
	open("--type", "BAN", "--user", "51", "--moderator", "8")
	l.ok(t, cliOpts{}, "case", "close", "2")

	t.Run("user history", func(t *testing.T) {
		out := l.ok(t, cliOpts{}, "user", "history", "50")
		if !strings.HasPrefix(out, "User 50: 3 cases, 2 active.\n") {
			t.Errorf("header:\n%s", out)
		}
		rows := checkTable(t, out, "CASE")
		var got []string
		for _, r := range rows {
			got = append(got, r[0]+" "+r[1]+" "+r[4])
		}
		if want := []string{"#3 TIMEOUT active", "#2 WARN closed", "#1 TEMPBAN active"}; !slices.Equal(got, want) {
			t.Errorf("rows %q, want %q", got, want)
		}
		active := okJSON[*projection.CaseListResult](t, l, cliOpts{}, "user", "history", "50", "--active")
		if active.Total != 2 || len(active.Cases) != 2 {
			t.Errorf("--active: %+v", active)
		}
		page := okJSON[*projection.CaseListResult](t, l, cliOpts{}, "user", "history", "50", "--limit", "1")
		if page.Total != 3 || len(page.Cases) != 1 || page.NextCursor == "" {
			t.Errorf("--limit 1: %+v", page)
		}
		if out := l.ok(t, cliOpts{}, "user", "history", "52"); !strings.Contains(out, "User 52: 0 cases, 0 active.") || !strings.Contains(out, "No cases.") {
			t.Errorf("a user without cases:\n%s", out)
		}
	})

	t.Run("user restrictions", func(t *testing.T) {
		now := tempban.Case.CreatedAt.Add(time.Hour)
		out := l.ok(t, cliOpts{now: now}, "user", "restrictions", "50")
		if !strings.HasPrefix(out, "User 50 is restricted: ban, timeout.\n") {
			t.Errorf("header:\n%s", out)
		}
		rows := checkTable(t, out, "FAMILY")
		want := [][]string{
			{"ban", "#1", "TEMPBAN", tempban.Case.CreatedAt.In(jst).Format(layoutMinute) + " (1h ago)", tempban.Case.ExpiresAt.In(jst).Format(layoutMinute) + " (in 3d)"},
			{"timeout", "#3", "TIMEOUT", timeout.Case.CreatedAt.In(jst).Format(layoutMinute) + " (1h ago)", timeout.Case.ExpiresAt.In(jst).Format(layoutMinute) + " (in 4h)"},
		}
		if !slices.EqualFunc(rows, want, slices.Equal) {
			t.Errorf("rows:\n%q\nwant:\n%q", rows, want)
		}
		r := okJSON[*projection.UserRestrictionsResult](t, l, cliOpts{}, "user", "restrictions", "50")
		if len(r.Restrictions) != 2 || r.Restrictions[0].CaseNumber != 1 || r.Restrictions[1].Family != "timeout" {
			t.Errorf("--json: %+v", r)
		}
		if out := l.ok(t, cliOpts{}, "user", "restrictions", "52"); out != "User 52 is under no restriction.\n" {
			t.Errorf("no restriction: %q", out)
		}
	})

	t.Run("stats", func(t *testing.T) {
		out := l.ok(t, cliOpts{}, "stats")
		if !strings.HasPrefix(out, "Guild 1234: 4 cases, 3 active.\n") {
			t.Errorf("header:\n%s", out)
		}
		types := checkTable(t, out, "TYPE")
		has := func(want ...string) bool {
			return slices.ContainsFunc(types, func(r []string) bool { return slices.Equal(r, want) })
		}
		if len(types) != 4 || !has("WARN", "1", "0") || !has("BAN", "1", "1") || !has("TEMPBAN", "1", "1") {
			t.Errorf("by type: %q", types)
		}
		mods := checkTable(t, out, "MODERATOR")
		if want := [][]string{{"7", "3", "2"}, {"8", "1", "1"}}; !slices.EqualFunc(mods, want, slices.Equal) {
			t.Errorf("by moderator: %q, want %q", mods, want)
		}
		today := time.Now().UTC().Format(time.DateOnly)
		days := checkTable(t, out, "DAY")
		if len(days) != 1 || days[0][0] != today || days[0][1] != "4" || days[0][3] != "BAN 1, TEMPBAN 1, TIMEOUT 1, WARN 1" {
			t.Errorf("by day: %q\n%s", days, out)
		}
		s := okJSON[*projection.GuildStatisticsResult](t, l, cliOpts{}, "stats", "--since", "7d")
		if s.Total != 4 || s.Active != 3 || len(s.ByDay) != 8 || s.To != today {
			t.Errorf("--json: total %d active %d, %d days to %s", s.Total, s.Active, len(s.ByDay), s.To)
		}
		out = l.ok(t, cliOpts{}, "stats", "--since", "2d", "--all-days")
		if rows := checkTable(t, out, "DAY"); len(rows) != 3 {
			t.Errorf("--all-days over 3 days: %d rows\n%s", len(rows), out)
		}
		out = l.ok(t, cliOpts{}, "stats", "--since", "2020-01-01", "--until", "2020-01-31")
		if !strings.Contains(out, "By day, 2020-01-01 to 2020-01-31 (UTC days):\nNo cases on these days.") {
			t.Errorf("a range without cases:\n%s", out)
		}
		l.wantExit(t, cliOpts{}, exitUsage, fmt.Sprintf("at most %d", projection.StatisticsDaysMax), "stats", "--since", "400d")
	})
}
