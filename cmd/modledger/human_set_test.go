package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/modledger/modledger/command"
	"github.com/modledger/modledger/events"
)

// TestCasesSetCommands drives `modledger cases ...` and the conditional
// `case open --unless-active` against one ledger.
func TestCasesSetCommands(t *testing.T) {
	t.Parallel()
	l := startCLILedger(t)
	for _, args := range [][]string{
		{"--type", "WARN", "--user", "60"},
		{"--type", "WARN", "--user", "60"},
		{"--type", "TIMEOUT", "--user", "60", "--duration", "1h"},
		{"--type", "WARN", "--user", "61"},
	} {
		l.ok(t, cliOpts{}, append([]string{"case", "open"}, args...)...)
	}

	// A dry run shows the cases and changes nothing.
	out := l.ok(t, cliOpts{}, "cases", "close", "--user", "60", "--type", "WARN", "--dry-run", "--reason", "pardon")
	if !strings.HasPrefix(out, "Would have closed: 2 cases (dry run, nothing changed); 0 unchanged, 0 failed, of 2 selected.\n") {
		t.Fatalf("dry run:\n%s", out)
	}
	rows := checkTable(t, out, "CASE")
	if len(rows) != 2 || rows[0][0] != "#1" || rows[1][0] != "#2" || rows[0][1] != "would change" {
		t.Fatalf("dry run rows %q", rows)
	}

	// The real close, as JSON.
	res := okJSON[*command.SetResult](t, l, cliOpts{}, "cases", "close", "--user", "60", "--type", "WARN", "--reason", "pardon", "--json")
	var changed []uint32
	for _, c := range res.Changed {
		changed = append(changed, c.CaseNumber)
	}
	if !slices.Equal(changed, []uint32{1, 2}) || res.Appended != 2 || res.LastCaseNumber != 4 {
		t.Fatalf("cases close: %+v", res)
	}
	// Explicit numbers, with a missing one: the others change, the exit
	// code says not found.
	r := l.wantExit(t, cliOpts{}, exitNotFound, "1 case of the selected cases failed; the first: not found", "cases", "reopen", "1", "9")
	if !strings.Contains(r.stdout, "Reopened 1 case; 0 unchanged, 1 failed, of 2 selected.") || !strings.Contains(r.stdout, "#9    failed") {
		t.Fatalf("cases reopen:\n%s", r.stdout)
	}
	// Bad selections are usage errors that send nothing.
	l.wantExit(t, cliOpts{}, exitUsage, "select cases with one of", "cases", "delete")
	l.wantExit(t, cliOpts{}, exitUsage, "select cases with one of", "cases", "delete", "1", "--all")
	l.wantExit(t, cliOpts{}, exitUsage, "nothing to update", "cases", "update", "--all")
	out = l.ok(t, cliOpts{}, "cases", "update", "--all", "--reason", "audited", "--max-case", "3")
	if !strings.HasPrefix(out, "Updated 3 cases; 0 unchanged, 0 failed, of 3 selected.") {
		t.Fatalf("cases update:\n%s", out)
	}

	// Conditional opens: the timeout restricts user 60 already.
	out = l.ok(t, cliOpts{}, "case", "open", "--type", "TIMEOUT", "--user", "60", "--duration", "2h", "--unless-active")
	if !strings.HasPrefix(out, "The member is already restricted by case #3: nothing opened.") {
		t.Fatalf("conditional timeout:\n%s", out)
	}
	ban := okJSON[*command.Result](t, l, cliOpts{}, "case", "open", "--type", "BAN", "--user", "60", "--unless-active=ban", "--json")
	if ban.Appended != 1 || ban.Case.CaseNumber != 5 || ban.Case.UserID != events.Snowflake(60) {
		t.Fatalf("conditional ban: %+v", ban)
	}
	l.wantExit(t, cliOpts{}, exitRejected, "unless_active", "case", "open", "--type", "WARN", "--user", "60", "--unless-active")
}
