package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/modledger/modledger/command"
	"github.com/modledger/modledger/internal/testenv"
	"github.com/modledger/modledger/projection"
)

// TestEventsTailAndStreamInfo reads the stream of one ledger with `events
// tail` and `stream info`.
func TestEventsTailAndStreamInfo(t *testing.T) {
	t.Parallel()
	l := startCLILedger(t)
	jst := mustZone(t)
	open := func(args ...string) *command.Result {
		t.Helper()
		return okJSON[*command.Result](t, l, cliOpts{}, append([]string{"case", "open", "--type", "WARN"}, args...)...)
	}
	// Sequences: 1 to 3 open cases 1 to 3 of guild 1234, 4 opens case 1 of
	// guild 5678, 5 closes case 1 of guild 1234.
	first := open("--user", "60", "--reason", "first")
	open("--user", "61")
	mid := time.Now()
	open("--user", "62")
	open("--user", "63", "--guild", "5678")
	l.ok(t, cliOpts{}, "case", "close", "1", "--reason", "appealed")

	seqsOf := func(t *testing.T, out string) []string {
		t.Helper()
		var seqs []string
		for _, r := range checkTable(t, out, "SEQ") {
			seqs = append(seqs, r[0])
		}
		return seqs
	}
	t.Run("--follow=false stops at the end, with filters", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			want []string
		}{
			{[]string{"--since", "all"}, []string{"1", "2", "3", "5"}},
			{nil, []string{"1", "2", "3", "5"}}, // the last hour
			{[]string{"--all-guilds", "--since", "all"}, []string{"1", "2", "3", "4", "5"}},
			{[]string{"--guild", "5678", "--from-seq", "1"}, []string{"4"}},
			{[]string{"--from-seq", "3"}, []string{"3", "5"}},
			{[]string{"--since", mid.Format(time.RFC3339Nano)}, []string{"3", "5"}},
			{[]string{"--since", "all", "--limit", "2"}, []string{"1", "2"}},
			{[]string{"--case", "1", "--since", "all"}, []string{"1", "5"}},
			{[]string{"--event", "closed", "--since", "all"}, []string{"5"}},
		} {
			args := append([]string{"events", "tail", "--follow=false"}, tc.args...)
			out := l.ok(t, cliOpts{}, args...)
			if got := seqsOf(t, out); !slices.Equal(got, tc.want) {
				t.Errorf("%q: sequences %q, want %q\n%s", args, got, tc.want, out)
			}
		}
		if out := l.ok(t, cliOpts{}, "events", "tail", "--follow=false", "--from-seq", "100"); out != "No events.\n" {
			t.Errorf("past the end: %q", out)
		}
		if out := l.ok(t, cliOpts{}, "events", "tail", "--follow=false", "--since", "2099-01-01"); out != "No events.\n" {
			t.Errorf("after the last event: %q", out)
		}
	})

	t.Run("lines show seq, time, guild, case, event, actor and details", func(t *testing.T) {
		out := l.ok(t, cliOpts{}, "events", "tail", "--follow=false", "--from-seq", "1", "--limit", "1")
		rows := checkTable(t, out, "SEQ")
		want := []string{"1", first.Case.CreatedAt.In(jst).Format(layoutSecond), "1234", "#1", "opened", "7", "WARN of user 60 by 7: first"}
		if len(rows) != 1 || !slices.Equal(rows[0], want) {
			t.Errorf("rows %q, want %q\n%s", rows, want, out)
		}
	})

	t.Run("--json prints one event per line", func(t *testing.T) {
		out := l.ok(t, cliOpts{}, "events", "tail", "--follow=false", "--all-guilds", "--since", "all", "--json")
		sc := bufio.NewScanner(strings.NewReader(out))
		var got []wireEvent
		for sc.Scan() {
			var e wireEvent
			dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&e); err != nil {
				t.Fatalf("line %q: %v", sc.Text(), err)
			}
			got = append(got, e)
		}
		if len(got) != 5 || got[3].GuildID != 5678 || got[4].Event != "closed" || got[4].Seq != 5 || string(got[4].Data) != `{"reason":"appealed"}` {
			t.Errorf("events: %+v", got)
		}
		if got[0].CaseID != first.Case.CaseID || got[0].Command != "open" {
			t.Errorf("first event: %+v", got[0])
		}
	})

	t.Run("following, --limit ends the tail", func(t *testing.T) {
		// The consumers besides the projector's durable.
		js := l.nats.JetStream(t)
		others := func() []string {
			var names []string
			st, err := js.Stream(t.Context(), command.StreamNameDefault)
			if err != nil {
				t.Fatal(err)
			}
			for name := range st.ConsumerNames(t.Context()).Name() {
				if name != projection.ConsumerName(projection.CasesName) {
					names = append(names, name)
				}
			}
			return names
		}
		var stdout, stderr syncBuffer
		code := make(chan int, 1)
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		go func() {
			code <- runWithClock(ctx, []string{"events", "tail", "--from-seq", "6", "--limit", "1", "--json"}, &stdout, &stderr, l.getenv(nil), time.Now)
		}()
		// The tail waits for the next event: open it once the tail's
		// consumer exists.
		testenv.Eventually(t, 10*time.Second, func() bool { return len(others()) > 0 }, "the tail's consumer did not start: %s", &stderr)
		open("--user", "64")
		select {
		case c := <-code:
			if c != exitOK || !strings.Contains(stdout.String(), `"seq":6`) || strings.Count(stdout.String(), "\n") != 1 {
				t.Errorf("tail exited %d\nstdout:\n%s\nstderr:\n%s", c, stdout.String(), stderr.String())
			}
		case <-ctx.Done():
			t.Fatalf("the tail did not stop after --limit 1: %s %s", stdout.String(), stderr.String())
		}
		if names := others(); len(names) > 0 {
			t.Errorf("the tail left its consumer behind: %q", names)
		}
	})

	t.Run("stream info", func(t *testing.T) {
		out := l.ok(t, cliOpts{}, "stream", "info")
		lines := map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			k, v, ok := strings.Cut(line, ":  ")
			if !ok {
				continue
			}
			lines[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
		for k, want := range map[string]string{
			"Stream":      "MODLEDGER",
			"Subjects":    "modledger.case.>, modledger.claim.>",
			"Storage":     "file, limits retention, replicas 1",
			"Cluster":     "none: a single server",
			"Protections": "deny delete, deny purge, direct gets, atomic batches",
		} {
			if lines[k] != want {
				t.Errorf("%s: %q, want %q\n%s", k, lines[k], want, out)
			}
		}
		if lines["Messages"] != "6 on 6 subjects" || !strings.HasSuffix(lines["Size"], "KiB") || !strings.HasPrefix(lines["Last"], "seq 6 at ") || !strings.HasPrefix(lines["Duplicate window"], "2m0s") {
			t.Errorf("messages, last, duplicates:\n%s", out)
		}
		// Every value starts in the same column.
		col := -1
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if strings.HasPrefix(line, "  ") {
				continue
			}
			_, v, _ := strings.Cut(line, ":")
			at := len(line) - len(strings.TrimLeft(v, " "))
			if col >= 0 && at != col {
				t.Errorf("value of %q starts at %d, others at %d", line, at, col)
			}
			col = at
		}
		var info jetstream.StreamInfo
		if err := json.Unmarshal([]byte(l.ok(t, cliOpts{}, "stream", "info", "--json")), &info); err != nil {
			t.Fatal(err)
		}
		if info.Config.Name != "MODLEDGER" || info.State.LastSeq != 6 || info.State.Msgs != 6 || !info.Config.DenyDelete {
			t.Errorf("--json: %+v", info)
		}
		r := l.wantExit(t, cliOpts{}, exitNotFound, "stream not found", "stream", "info", "--stream", "NOPE", "--json")
		if !strings.Contains(r.stdout, `"code": "not_found"`) {
			t.Errorf("stream info --json of a missing stream: %q", r.stdout)
		}
		l.wantExit(t, cliOpts{}, exitNotFound, "stream not found", "events", "tail", "--stream", "NOPE", "--follow=false")
	})
}
