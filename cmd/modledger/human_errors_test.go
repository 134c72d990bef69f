package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/modledger/modledger/internal/testenv"
	"github.com/modledger/modledger/internal/wire"
)

// humanCommands are the CLI's commands for people.
var humanCommands = []string{
	"case open", "case show", "case list", "case update", "case close", "case reopen", "case note", "case delete", "case history",
	"user history", "user restrictions", "stats", "events tail", "stream info",
}

// TestHumanHelp checks that every command has help with examples, and
// that a group alone lists its commands.
func TestHumanHelp(t *testing.T) {
	t.Parallel()
	var l *cliLedger // no ledger: help sends nothing
	for _, name := range humanCommands {
		words := strings.Fields(name)
		out := l.ok(t, cliOpts{}, append([]string{"help"}, words...)...)
		for _, want := range []string{"Usage:\n  modledger " + name, "Flags:", "-json", "-nats-url", "Examples:\n  modledger " + name} {
			if !strings.Contains(out, want) {
				t.Errorf("help %s lacks %q:\n%s", name, want, out)
			}
		}
		r := l.run(t, cliOpts{}, append(words, "--help")...)
		if r.code != exitOK || !strings.Contains(r.stderr, "Examples:") {
			t.Errorf("%s --help: exit %d\n%s", name, r.code, r.stderr)
		}
	}
	// -h after an argument shows the help too.
	if r := l.run(t, cliOpts{}, "case", "show", "3", "-h"); r.code != exitOK || strings.Count(r.stderr, "Examples:") != 1 {
		t.Errorf("case show 3 -h: exit %d\n%s", r.code, r.stderr)
	}
	for group, cmds := range map[string][]string{
		"case":   {"case open", "case history", "case note"},
		"user":   {"user history", "user restrictions"},
		"events": {"events tail"},
		"stream": {"stream info"},
	} {
		r := l.run(t, cliOpts{}, group)
		if r.code != exitUsage || !strings.Contains(r.stdout, "modledger "+group+" <command>") {
			t.Errorf("modledger %s: exit %d\n%s%s", group, r.code, r.stdout, r.stderr)
		}
		for _, c := range cmds {
			if !strings.Contains(r.stdout, "  "+c+" ") {
				t.Errorf("modledger %s does not list %s:\n%s", group, c, r.stdout)
			}
		}
		if r := l.run(t, cliOpts{}, "help", group); r.code != exitOK || !strings.Contains(r.stdout, cmds[0]) {
			t.Errorf("help %s: exit %d\n%s", group, r.code, r.stdout)
		}
	}
	if r := l.run(t, cliOpts{}, "case", "nope"); r.code != exitUsage || !strings.Contains(r.stderr, `unknown command "case nope"`) {
		t.Errorf("case nope: exit %d\n%s", r.code, r.stderr)
	}
	out := l.run(t, cliOpts{}, "help").stdout
	for _, want := range []string{"Exit codes:", "3  not found", "4  rejected", "5  unavailable", "case open", "events tail", "stream info"} {
		if !strings.Contains(out, want) {
			t.Errorf("help lacks %q:\n%s", want, out)
		}
	}
}

// TestHumanUsageErrors checks that bad flags and arguments exit 2 with a
// clear message and send nothing: NATS is a closed port, which would exit 5.
func TestHumanUsageErrors(t *testing.T) {
	t.Parallel()
	var l *cliLedger
	env := map[string]string{"MODLEDGER_NATS_URL": closedPortURL(t), "MODLEDGER_GUILD": testGuild, "MODLEDGER_ACTOR": testActor}
	for _, tc := range []struct {
		args []string
		want string
		env  map[string]string // on top of env
	}{
		{[]string{"case", "open", "--user", "42"}, "--type is required", nil},
		{[]string{"case", "open", "--type", "W A", "--user", "42"}, `--type "W A"`, nil},
		{[]string{"case", "open", "--type", "WARN"}, "--user is required", nil},
		{[]string{"case", "open", "--type", "WARN", "--user", "abc"}, `--user "abc": want a user, guild or role id`, nil},
		{[]string{"case", "open", "--type", "WARN", "--user", "0"}, `--user "0"`, nil},
		{[]string{"case", "open", "--type", "WARN", "--user", "42"}, "--moderator or --actor", map[string]string{"MODLEDGER_ACTOR": ""}},
		{[]string{"case", "open", "--type", "WARN", "--user", "42"}, "--guild (or MODLEDGER_GUILD) is required", map[string]string{"MODLEDGER_GUILD": ""}},
		{[]string{"case", "open", "--type", "WARN", "--user", "42", "--guild", "x"}, `--guild "x"`, nil},
		{[]string{"case", "open", "--type", "TEMPBAN", "--user", "42", "--duration", "7x"}, `--duration "7x"`, nil},
		{[]string{"case", "open", "--type", "TEMPBAN", "--user", "42", "--duration", "-1h"}, `--duration "-1h"`, nil},
		{[]string{"case", "open", "--type", "TEMPBAN", "--user", "42", "--duration", "7d", "--expires-at", "2030-01-01T00:00:00Z"}, "give one of --duration, --expires-at", nil},
		{[]string{"case", "open", "--type", "TEMPBAN", "--user", "42", "--expires-at", "next week"}, `--expires-at "next week"`, nil},
		{[]string{"case", "open", "--type", "WARN", "--user", "42", "--metadata", "novalue"}, `--metadata "novalue": want key=value`, nil},
		{[]string{"case", "open", "--type", "WARN", "--user", "42", "--metadata-json", "[1]"}, "--metadata-json", nil},
		{[]string{"case", "open", "--type", "WARN", "--user", "42", "--source", "bot"}, `--source "bot"`, nil},
		{[]string{"case", "open", "--type", "WARN", "--user", "42", "--reason", strings.Repeat("x", 2001)}, "--reason is 2001 characters, at most 2000", nil},
		{[]string{"case", "open", "--type", "WARN", "--user", "42", "--command-id", "nope"}, `--command-id "nope": want a UUID`, nil},
		{[]string{"case", "open", "--type", "WARN", "--user", "42", "extra"}, "usage: modledger case open", nil},
		{[]string{"case", "open", "--bogus"}, "flag provided but not defined: -bogus", nil},
		{[]string{"case", "show"}, "usage: modledger case show CASE", nil},
		{[]string{"case", "show", "abc"}, `case number "abc"`, nil},
		{[]string{"case", "show", "0"}, `case number "0"`, nil},
		{[]string{"case", "show", "1", "--bogus"}, "flag provided but not defined: -bogus", nil},
		{[]string{"case", "show", "1", "--timeout", "0s"}, "--timeout must be positive", nil},
		{[]string{"case", "close", "1"}, "--actor (or MODLEDGER_ACTOR) is required", map[string]string{"MODLEDGER_ACTOR": ""}},
		{[]string{"case", "close", "1", "--actor", "me"}, `--actor "me"`, nil},
		{[]string{"case", "update", "1"}, "nothing to update", nil},
		{[]string{"case", "update", "1", "--no-expiry", "--duration", "1d"}, "give one of --duration, --expires-at and --no-expiry", nil},
		{[]string{"case", "note", "1"}, "usage: modledger case note CASE TEXT", nil},
		{[]string{"case", "note", "1", "  "}, "the note's text is empty", nil},
		{[]string{"case", "note", "1", "look", "--evidence", "ftp://x"}, `--evidence "ftp://x"`, nil},
		{[]string{"case", "list", "--limit", "0"}, "--limit 0: want 1 to 1000", nil},
		{[]string{"case", "list", "--status", "gone"}, `--status "gone"`, nil},
		{[]string{"case", "list", "--type", "ban,", "--order", "up"}, `--order "up"`, nil},
		{[]string{"case", "list", "--since", "yesterday"}, `--since "yesterday"`, nil},
		{[]string{"case", "list", "--since", "1h", "--until", "2h"}, "--until must be after --since", nil},
		{[]string{"case", "list", "--user", "-5"}, `--user "-5"`, nil},
		{[]string{"user", "history"}, "usage: modledger user history USER", nil},
		{[]string{"user", "history", "bob"}, `user "bob"`, nil},
		{[]string{"user", "restrictions", "1", "2"}, "usage: modledger user restrictions USER", nil},
		{[]string{"stats", "--since", "soon"}, `--since "soon"`, nil},
		{[]string{"stats", "--since", "1d", "--until", "3d"}, "--since must not be after --until", nil},
		{[]string{"events", "tail", "--since", "1h", "--from-seq", "3"}, "give --since or --from-seq, not both", nil},
		{[]string{"events", "tail", "--event", "banned"}, `--event "banned"`, nil},
		{[]string{"events", "tail", "--case", "1", "--all-guilds"}, "--case needs the guild", nil},
		{[]string{"events", "tail", "--limit", "-1"}, "--limit must not be negative", nil},
		{[]string{"stream", "info", "now"}, "usage: modledger stream info", nil},
	} {
		e := map[string]string{}
		for k, v := range env {
			e[k] = v
		}
		for k, v := range tc.env {
			e[k] = v
		}
		r := l.run(t, cliOpts{env: e}, tc.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tc.want) || r.stdout != "" {
			t.Errorf("%q: exit %d, want %d with %q\nstdout:\n%s\nstderr:\n%s", tc.args, r.code, exitUsage, tc.want, r.stdout, r.stderr)
		}
	}
}

// TestHumanUnavailable checks exit code 5 when NATS cannot be reached, and
// when it can but no ledger answers.
func TestHumanUnavailable(t *testing.T) {
	t.Parallel()
	var l *cliLedger
	commands := [][]string{
		{"case", "open", "--type", "WARN", "--user", "42"},
		{"case", "show", "1"},
		{"case", "list"},
		{"case", "close", "1"},
		{"case", "history", "1"},
		{"user", "history", "42"},
		{"user", "restrictions", "42"},
		{"stats"},
		{"events", "tail", "--follow=false"},
		{"stream", "info"},
	}
	closed := map[string]string{"MODLEDGER_NATS_URL": closedPortURL(t), "MODLEDGER_GUILD": testGuild, "MODLEDGER_ACTOR": testActor}
	for _, args := range commands {
		r := l.run(t, cliOpts{env: closed}, args...)
		if r.code != exitUnavailable || !strings.Contains(r.stderr, "no servers available") {
			t.Errorf("%q with NATS down: exit %d, want %d\n%s", args, r.code, exitUnavailable, r.stderr)
		}
	}
	// --json says it on stdout too, in the shape of a wire error.
	r := l.run(t, cliOpts{env: closed}, "case", "show", "1", "--json")
	var reply wire.ErrorReply
	if err := json.Unmarshal([]byte(r.stdout), &reply); err != nil || reply.Error == nil || reply.Error.Code != wire.CodeUnavailable {
		t.Errorf("--json with NATS down: %q (%v)", r.stdout, err)
	}

	// NATS runs, the ledger does not: no responders, until --timeout.
	nats := testenv.NATS(t)
	up := map[string]string{"MODLEDGER_NATS_URL": nats.URL, "MODLEDGER_GUILD": testGuild, "MODLEDGER_ACTOR": testActor, "MODLEDGER_TIMEOUT": "1s"}
	for _, args := range commands {
		want := exitUnavailable
		if args[0] == "stream" || args[0] == "events" {
			want = exitNotFound // JetStream answers: there is no such stream
		}
		r := l.run(t, cliOpts{env: up}, args...)
		if r.code != want {
			t.Errorf("%q without a ledger: exit %d, want %d\n%s", args, r.code, want, r.stderr)
		}
	}
	const id = "0192f1a0-0000-7000-8000-0000000000aa"
	r = l.run(t, cliOpts{env: up}, "case", "open", "--type", "WARN", "--user", "42", "--command-id", id)
	if r.code != exitUnavailable || !strings.Contains(r.stderr, "Retry it safely with --command-id "+id) {
		t.Errorf("an unanswered command does not say how to retry it: exit %d\n%s", r.code, r.stderr)
	}
}
