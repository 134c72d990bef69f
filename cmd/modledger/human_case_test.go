package main

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/command"
	"github.com/modledger/modledger/events"
	"github.com/modledger/modledger/internal/wire"
	"github.com/modledger/modledger/projection"
)

var commandIDLine = regexp.MustCompile(`Command id ([0-9a-f-]{36}) \(seq (\d+), (\d+) events? appended\)`)

// TestCaseCommands drives the case commands against one ledger, in order:
// each step sees the cases the earlier ones made.
func TestCaseCommands(t *testing.T) {
	t.Parallel()
	l := startCLILedger(t)
	jst := mustZone(t)
	t0 := time.Now()
	var warn, tempban *command.Result

	t.Run("open prints the case and its command id", func(t *testing.T) {
		out := l.ok(t, cliOpts{}, "case", "open", "--type", "warn", "--user", "42", "--reason", "first warning")
		for _, want := range []string{"Opened case #1.", "Case #1: WARN of user 42, active", "Reason:     first warning", "Moderator:  7"} {
			if !strings.Contains(out, want) {
				t.Errorf("missing %q in:\n%s", want, out)
			}
		}
		m := commandIDLine.FindStringSubmatch(out)
		if m == nil || m[3] != "1" {
			t.Fatalf("no command id line in:\n%s", out)
		}
	})

	t.Run("open --json prints the wire reply", func(t *testing.T) {
		tempban = okJSON[*command.Result](t, l, cliOpts{now: t0}, "case", "open", "--type", "TEMPBAN", "--user", "43",
			"--duration", "7d", "--reason", "raid alt", "--metadata", "channel=general", "--role", "99", "--external-id", "audit-1")
		c := tempban.Case
		if c.CaseNumber != 2 || c.Type != "TEMPBAN" || c.UserID != 43 || c.ModeratorID != 7 || c.Reason != "raid alt" || tempban.Appended != 1 {
			t.Fatalf("reply %+v", c)
		}
		if c.ExpiresAt == nil || !c.ExpiresAt.Equal(t0.Add(7*24*time.Hour).UTC().Truncate(time.Microsecond)) {
			t.Errorf("expires_at %v, want 7 days after %v", c.ExpiresAt, t0)
		}
		if compactJSON(c.Metadata) != `{"channel":"general"}` || !slices.Equal(c.UserRoles, []events.Snowflake{99}) || c.ExternalID != "audit-1" {
			t.Errorf("metadata %s, roles %v, external id %q", c.Metadata, c.UserRoles, c.ExternalID)
		}
	})

	t.Run("open with a used external id changes nothing", func(t *testing.T) {
		out := l.ok(t, cliOpts{}, "case", "open", "--type", "TEMPBAN", "--user", "43", "--duration", "7d", "--external-id", "audit-1")
		if !strings.Contains(out, "Case #2 was opened already for this external id: nothing changed.") || !strings.Contains(out, "0 events appended") {
			t.Errorf("output:\n%s", out)
		}
	})

	const retryID = "0192f1a0-0000-7000-8000-00000000c11d"
	t.Run("--command-id makes a retry safe", func(t *testing.T) {
		for range 2 {
			r := okJSON[*command.Result](t, l, cliOpts{}, "case", "open", "--type", "BAN", "--user", "44", "--moderator", "8", "--command-id", retryID)
			if r.Case.CaseNumber != 3 || r.Case.ModeratorID != 8 {
				t.Fatalf("open with a fixed command id: case %d by %s, want #3 by 8", r.Case.CaseNumber, r.Case.ModeratorID)
			}
		}
		out := l.ok(t, cliOpts{}, "case", "open", "--type", "BAN", "--user", "44", "--moderator", "8", "--command-id", retryID)
		if !strings.Contains(out, "Opened case #3.") || !strings.Contains(out, "Command id "+retryID) {
			t.Errorf("output:\n%s", out)
		}
	})

	t.Run("show, in the local zone with ages", func(t *testing.T) {
		warn = &command.Result{Case: okJSON[*projection.CaseGetResult](t, l, cliOpts{}, "case", "show", "1").Case}
		now := warn.Case.CreatedAt.Add(3 * time.Hour)
		out := l.ok(t, cliOpts{now: now}, "case", "show", "#1")
		created := warn.Case.CreatedAt.In(jst).Format("2006-01-02 15:04:05") + " JST (3h ago)"
		for _, want := range []string{"Case #1: WARN of user 42, active", "  Created:    " + created, "  Source:     command", "  Case id:    " + warn.Case.CaseID.String()} {
			if !strings.Contains(out, want) {
				t.Errorf("missing %q in:\n%s", want, out)
			}
		}
		out = l.ok(t, cliOpts{now: tempban.Case.CreatedAt.Add(3 * time.Hour)}, "case", "show", "2")
		expires := tempban.Case.ExpiresAt.In(jst).Format("2006-01-02 15:04:05") + " JST (in 7d)"
		for _, want := range []string{"  Expires:     " + expires, `  Metadata:    {"channel":"general"}`, "  User roles:  99", "  Source:      command, external id audit-1"} {
			if !strings.Contains(out, want) {
				t.Errorf("missing %q in:\n%s", want, out)
			}
		}
		// Flags after the case number work too.
		got := okJSON[*projection.CaseGetResult](t, l, cliOpts{}, "case", "show", "2")
		if got.Case.CaseID != tempban.Case.CaseID || got.Case.Version != tempban.Seq {
			t.Errorf("show --json: %+v", got.Case)
		}
	})

	t.Run("list is an aligned table, newest first", func(t *testing.T) {
		out := l.ok(t, cliOpts{now: tempban.Case.CreatedAt.Add(time.Hour)}, "case", "list")
		rows := checkTable(t, out, "CASE")
		if len(rows) != 3 {
			t.Fatalf("%d rows:\n%s", len(rows), out)
		}
		want := [][]string{
			{"#3", "BAN", "44", "8", "active"},
			{"#2", "TEMPBAN", "43", "7", "active"},
			{"#1", "WARN", "42", "7", "active"},
		}
		for i, w := range want {
			if !slices.Equal(rows[i][:5], w) {
				t.Errorf("row %d: %q, want %q", i, rows[i], w)
			}
		}
		if rows[1][6] != "in 7d" || rows[0][6] != "-" || rows[1][8] != "raid alt" || rows[2][8] != "first warning" {
			t.Errorf("expires and reasons: %q", rows)
		}
		if !strings.Contains(rows[1][5], tempban.Case.CreatedAt.In(jst).Format("2006-01-02 15:04")+" (1h ago)") {
			t.Errorf("created: %q", rows[1][5])
		}
		if !strings.Contains(out, "3 of 3 cases.") {
			t.Errorf("no count in:\n%s", out)
		}
	})

	t.Run("list filters and pages", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			want []uint32
		}{
			{[]string{"--type", "tempban,ban"}, []uint32{3, 2}},
			{[]string{"--user", "42"}, []uint32{1}},
			{[]string{"--moderator", "8"}, []uint32{3}},
			{[]string{"--status", "closed"}, nil},
			{[]string{"--status", "active,closed", "--order", "asc"}, []uint32{1, 2, 3}},
			{[]string{"--since", "1h"}, []uint32{3, 2, 1}},
			{[]string{"--until", "1h"}, nil},
			{[]string{"--search", "raid"}, []uint32{2}},
		} {
			r := okJSON[*projection.CaseListResult](t, l, cliOpts{}, append([]string{"case", "list"}, tc.args...)...)
			var got []uint32
			for _, c := range r.Cases {
				got = append(got, c.CaseNumber)
			}
			if !slices.Equal(got, tc.want) || r.Total != int64(len(tc.want)) {
				t.Errorf("case list %q: cases %v (total %d), want %v", tc.args, got, r.Total, tc.want)
			}
		}
		if out := l.ok(t, cliOpts{}, "case", "list", "--status", "closed"); !strings.Contains(out, "No cases.") {
			t.Errorf("empty list:\n%s", out)
		}
		out := l.ok(t, cliOpts{}, "case", "list", "--limit", "1")
		m := regexp.MustCompile(`1 of 3 cases\. Next page: --cursor (\S+)`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no next page in:\n%s", out)
		}
		page := okJSON[*projection.CaseListResult](t, l, cliOpts{}, "case", "list", "--limit", "1", "--cursor", m[1])
		if len(page.Cases) != 1 || page.Cases[0].CaseNumber != 2 || page.NextCursor == "" {
			t.Errorf("second page: %+v", page)
		}
	})

	t.Run("update", func(t *testing.T) {
		out := l.ok(t, cliOpts{}, "case", "update", "2", "--reason", "raid alt; confirmed", "--duration", "14d")
		if !strings.Contains(out, "Updated case #2.") || !strings.Contains(out, "raid alt; confirmed") || !strings.Contains(out, "2 events appended") {
			t.Errorf("output:\n%s", out)
		}
		r := okJSON[*projection.CaseGetResult](t, l, cliOpts{}, "case", "show", "2")
		if len(r.Case.ReasonHistory) != 2 || r.Case.ExpiresAt == nil || r.Case.ExpiresAt.Before(time.Now().Add(13*24*time.Hour)) {
			t.Errorf("after update: reasons %v, expires %v", r.Case.ReasonHistory, r.Case.ExpiresAt)
		}
		out = l.ok(t, cliOpts{}, "case", "show", "2")
		if !strings.Contains(out, "Reason history:") || !strings.Contains(out, "by 7: raid alt; confirmed") {
			t.Errorf("show after update:\n%s", out)
		}
		// The same reason again changes nothing.
		out = l.ok(t, cliOpts{}, "case", "update", "2", "--reason", "raid alt; confirmed")
		if !strings.Contains(out, "Case #2 is already like that: nothing changed.") {
			t.Errorf("no-op update:\n%s", out)
		}
	})

	t.Run("note", func(t *testing.T) {
		out := l.ok(t, cliOpts{}, "case", "note", "1", "apologised in DMs", "--evidence", "https://example.com/dm.png")
		if !strings.Contains(out, "Added a note to case #1.") || !strings.Contains(out, "1 note") {
			t.Errorf("output:\n%s", out)
		}
		out = l.ok(t, cliOpts{}, "case", "show", "1")
		if !strings.Contains(out, "Notes:") || !strings.Contains(out, "by 7: apologised in DMs") || !strings.Contains(out, "    https://example.com/dm.png") {
			t.Errorf("show with a note:\n%s", out)
		}
	})

	t.Run("close, close again, reopen", func(t *testing.T) {
		out := l.ok(t, cliOpts{}, "case", "close", "1", "--reason", "appealed")
		if !strings.Contains(out, "Closed case #1.") || !strings.Contains(out, "Case #1: WARN of user 42, closed") {
			t.Errorf("close:\n%s", out)
		}
		out = l.ok(t, cliOpts{}, "case", "close", "1")
		if !strings.Contains(out, "Case #1 is closed already: nothing changed.") || !strings.Contains(out, "0 events appended") {
			t.Errorf("close again:\n%s", out)
		}
		r := okJSON[*projection.CaseListResult](t, l, cliOpts{}, "case", "list", "--status", "closed")
		if len(r.Cases) != 1 || r.Cases[0].CaseNumber != 1 {
			t.Errorf("closed cases: %+v", r.Cases)
		}
		res := okJSON[*command.Result](t, l, cliOpts{}, "case", "reopen", "1", "--reason", "appeal withdrawn")
		if res.Case.Status != aggregate.StatusActive || res.Appended != 1 {
			t.Errorf("reopen: %+v", res)
		}
	})

	t.Run("history is the audit trail", func(t *testing.T) {
		out := l.ok(t, cliOpts{}, "case", "history", "1")
		rows := checkTable(t, out, "SEQ")
		var evs, cmds []string
		for _, r := range rows {
			evs, cmds = append(evs, r[2]), append(cmds, r[4])
			if r[3] != testActor {
				t.Errorf("actor %q in %q", r[3], r)
			}
		}
		if !slices.Equal(evs, []string{"opened", "note_added", "closed", "reopened"}) || !slices.Equal(cmds, []string{"open", "add_note", "close", "reopen"}) {
			t.Errorf("events %q, commands %q\n%s", evs, cmds, out)
		}
		for _, want := range []string{"WARN of user 42 by 7: first warning", "note by 7: apologised in DMs [1 link]", "closed: appealed", "reopened: appeal withdrawn"} {
			if !strings.Contains(out, want) {
				t.Errorf("missing %q in:\n%s", want, out)
			}
		}
		h := okJSON[*projection.CaseHistoryResult](t, l, cliOpts{}, "case", "history", "1")
		if len(h.Events) != 4 || h.Events[0].Event != events.NameCaseOpened || !(h.Events[0].Seq < h.Events[3].Seq) {
			t.Errorf("history --json: %+v", h.Events)
		}
	})

	t.Run("delete", func(t *testing.T) {
		out := l.ok(t, cliOpts{}, "case", "delete", "3", "--reason", "wrong member")
		if !strings.Contains(out, "Deleted case #3.") || !strings.Contains(out, "Case #3: BAN of user 44, deleted") {
			t.Errorf("delete:\n%s", out)
		}
		l.wantExit(t, cliOpts{}, exitNotFound, "case is deleted (`modledger case history` shows what happened to it)", "case", "show", "3")
		if out := l.ok(t, cliOpts{}, "case", "show", "3", "--include-deleted"); !strings.Contains(out, "Deleted:") {
			t.Errorf("show --include-deleted:\n%s", out)
		}
		if out := l.ok(t, cliOpts{}, "case", "history", "3"); !strings.Contains(out, "deleted: wrong member") {
			t.Errorf("history of a deleted case:\n%s", out)
		}
		if r := okJSON[*projection.CaseListResult](t, l, cliOpts{}, "case", "list"); r.Total != 2 {
			t.Errorf("the deleted case is listed: %+v", r)
		}
	})

	t.Run("not found exits 3", func(t *testing.T) {
		for _, args := range [][]string{
			{"case", "show", "99"},
			{"case", "history", "99"},
			{"case", "close", "99"},
			{"case", "note", "99", "hello"},
			{"case", "update", "99", "--reason", "x"},
		} {
			l.wantExit(t, cliOpts{}, exitNotFound, "not found", args...)
		}
		r := l.wantExit(t, cliOpts{}, exitNotFound, "not found", "case", "show", "99", "--json")
		var reply wire.ErrorReply
		if err := json.Unmarshal([]byte(r.stdout), &reply); err != nil || reply.Error == nil || reply.Error.Code != wire.CodeNotFound {
			t.Errorf("--json error reply: %q (%v)", r.stdout, err)
		}
	})

	t.Run("rejected and conflict exit 4", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"case", "open", "--type", "TIMEOUT", "--user", "45"}, "rejected by the ledger: expires_at"},
			{[]string{"case", "open", "--type", "WARN", "--user", "45", "--duration", "1d"}, "rejected by the ledger: expires_at"},
			{[]string{"case", "open", "--type", "YEET", "--user", "45"}, "rejected by the ledger: type"},
			{[]string{"case", "update", "1", "--duration", "1d"}, "rejected by the ledger"},
			// The command id of case 3's open, reused for another command.
			{[]string{"case", "close", "2", "--command-id", retryID}, "conflict:"},
		} {
			r := l.wantExit(t, cliOpts{}, exitRejected, tc.want, tc.args...)
			if strings.Contains(r.stderr, "--command-id") {
				t.Errorf("a rejected command suggests a retry: %s", r.stderr)
			}
		}
		if r := okJSON[*projection.CaseListResult](t, l, cliOpts{}, "case", "list"); r.Total != 2 {
			t.Errorf("a rejected command made a case: %+v", r)
		}
	})
}
