package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/modledger/modledger/internal/testenv"
)

// The documentation's runnable commands: every ```console block of the
// files below holds lines `$ modledger ...` (optionally after VAR=value
// assignments), each followed by the output it prints. docsTest runs them
// in order against a fresh ledger per file, and each must exit 0 (or the
// code a trailing `# exit N` names) and print every documented output line,
// in order, once volatile parts (ids, times, ages, durations) and
// alignment are normalised. A line `...` in the output skips any number of
// lines. Commands that run until stopped (dev, serve) are only parsed.
var docsWithCommands = []string{"README.md", "docs/cli.md", "docs/operations.md", "docs/security.md"}

// docCommand is one documented command and its documented output.
type docCommand struct {
	line int
	// export, for a line `export VAR=value ...`, sets env for the file's
	// later commands.
	export   bool
	env      map[string]string
	args     []string
	wantExit int
	output   []string
}

// parseConsoleBlocks reads the documented commands of a Markdown file.
func parseConsoleBlocks(t *testing.T, path string) []docCommand {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cmds []docCommand
	in := false
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case !in && strings.HasPrefix(trimmed, "```console"):
			in = true
		case in && strings.HasPrefix(trimmed, "```"):
			in = false
		case in && strings.HasPrefix(trimmed, "$ "):
			c, err := parseCommandLine(strings.TrimPrefix(trimmed, "$ "))
			if err != nil {
				t.Fatalf("%s:%d: %v", path, n, err)
			}
			c.line = n
			cmds = append(cmds, c)
		case in && len(cmds) > 0:
			cmds[len(cmds)-1].output = append(cmds[len(cmds)-1].output, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return cmds
}

var exitComment = regexp.MustCompile(`\s+#\s*exit\s+(\d+)\s*$`)

// parseCommandLine splits `VAR=x modledger args... # exit N` the way a
// POSIX shell would for the quoting the docs use ('...', "...", \).
func parseCommandLine(s string) (docCommand, error) {
	c := docCommand{env: map[string]string{}}
	if m := exitComment.FindStringSubmatch(s); m != nil {
		c.wantExit, _ = strconv.Atoi(m[1])
		s = s[:len(s)-len(m[0])]
	}
	words, err := shellWords(s)
	if err != nil {
		return c, err
	}
	if len(words) > 0 && words[0] == "export" {
		c.export = true
		words = words[1:]
	}
	for len(words) > 0 && strings.Contains(words[0], "=") && words[0][0] != '-' {
		k, v, _ := strings.Cut(words[0], "=")
		c.env[k] = v
		words = words[1:]
	}
	if c.export {
		if len(words) > 0 {
			return c, fmt.Errorf("export takes only VAR=value words: %q", s)
		}
		return c, nil
	}
	if len(words) == 0 || words[0] != "modledger" {
		return c, fmt.Errorf("a console block's command must run modledger: %q", s)
	}
	c.args = words[1:]
	return c, nil
}

func shellWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord, quote := false, rune(0)
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case quote == '\'':
			if r == '\'' {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case quote == '"':
			switch {
			case r == '"':
				quote = 0
			case r == '\\' && i+1 < len(rs) && strings.ContainsRune(`"\$`, rs[i+1]):
				i++
				cur.WriteRune(rs[i])
			default:
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == '\\' && i+1 < len(rs):
			i++
			cur.WriteRune(rs[i])
			inWord = true
		case unicode.IsSpace(r):
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case r == '#' && !inWord:
			i = len(rs) // a comment
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated quote in %q", s)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// volatile are the parts of output that differ between runs.
var volatile = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`), "<uuid>"},
	{regexp.MustCompile(`\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)?( [A-Z]{2,5})?`), "<time>"},
	{regexp.MustCompile(`\b(in )?\d+(\.\d+)?(µs|ms|s|m|h|d|w|mo|y)( ago)?\b|\bjust now\b|\bnow\b`), "<age>"},
	{regexp.MustCompile(`"(occurred_at|created_at|updated_at|closed_at|expires_at|time|checkpoint_time|swapped_at|at)": ?"[^"]*"`), `"$1":"<time>"`},
	{regexp.MustCompile(`:\d{2,5}\b`), ":<port>"},
	{regexp.MustCompile(`\s+`), " "},
}

func normalise(s string) string {
	for _, v := range volatile {
		s = v.re.ReplaceAllString(s, v.with)
	}
	return strings.TrimSpace(s)
}

// missingOutput returns the first documented line not printed, in order.
func missingOutput(want []string, got string) (string, bool) {
	var lines []string
	for _, l := range strings.Split(got, "\n") {
		lines = append(lines, normalise(l))
	}
	i := 0
	skip := false
	for _, w := range want {
		nw := normalise(w)
		if nw == "" {
			continue
		}
		if nw == "..." {
			skip = true
			continue
		}
		found := false
		for ; i < len(lines); i++ {
			if lines[i] == nw {
				found = true
				i++
				break
			}
			if !skip && lines[i] != "" {
				// Without "...", documented lines are consecutive.
				return w, false
			}
		}
		if !found {
			return w, false
		}
		skip = false
	}
	return "", true
}

// longRunning are the commands the docs test parses but does not run.
var longRunning = []string{"dev", "serve"}

// parseOnly checks that args name a command and flags it accepts.
func parseOnly(args []string, getenv func(string) string) error {
	for _, c := range subcommands() {
		words := strings.Fields(c.name)
		if len(args) < len(words) || !slices.Equal(args[:len(words)], words) {
			continue
		}
		fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		c.flags(fs, getenv)
		return fs.Parse(args[len(words):])
	}
	return fmt.Errorf("unknown command %q", args)
}

func TestDocsCommandsRun(t *testing.T) {
	root := testenv.ModuleRoot(t)
	for _, doc := range docsWithCommands {
		path := filepath.Join(root, doc)
		if _, err := os.Stat(path); err != nil {
			t.Errorf("%s: %v", doc, err)
			continue
		}
		t.Run(doc, func(t *testing.T) {
			cmds := parseConsoleBlocks(t, path)
			if len(cmds) == 0 {
				t.Skipf("%s has no console blocks", doc)
			}
			runDocCommands(t, doc, cmds)
		})
	}
}

// runDocCommands runs a file's commands against a fresh ledger.
func runDocCommands(t *testing.T, doc string, cmds []docCommand) {
	nats := testenv.NATS(t)
	dsn := testenv.Postgres(t)
	base := map[string]string{
		"MODLEDGER_NATS_URL":     nats.URL,
		"DATABASE_URL":           dsn,
		"MODLEDGER_GUILD":        "1234",
		"MODLEDGER_ACTOR":        "7",
		"MODLEDGER_METRICS_ADDR": "127.0.0.1:0",
		"TZ":                     "UTC",
	}
	getenvWith := func(extra map[string]string) func(string) string {
		return func(k string) string {
			if v, ok := extra[k]; ok {
				return v
			}
			return base[k]
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	var stderr syncBuffer
	code := make(chan int, 1)
	go func() {
		code <- runWith(ctx, []string{"serve", "--roles", "command,projector,scheduler,query", "--log-level", "warn"}, io.Discard, &stderr, getenvWith(nil))
	}()
	t.Cleanup(func() {
		cancel()
		if c := <-code; c != exitOK {
			t.Errorf("serve exited %d: %s", c, stderr.String())
		}
	})
	waitForLedger(t, getenvWith(nil))
	for _, c := range cmds {
		if c.export {
			maps.Copy(base, c.env)
			continue
		}
		where := fmt.Sprintf("%s:%d: modledger %s", doc, c.line, strings.Join(c.args, " "))
		getenv := getenvWith(c.env)
		if len(c.args) > 0 && slices.Contains(longRunning, c.args[0]) {
			if err := parseOnly(c.args, getenv); err != nil {
				t.Errorf("%s: %v", where, err)
			}
			continue
		}
		var out, errOut bytes.Buffer
		cctx, ccancel := context.WithTimeout(t.Context(), 30*time.Second)
		got := runWith(cctx, c.args, &out, &errOut, getenv)
		ccancel()
		if got != c.wantExit {
			t.Errorf("%s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", where, got, c.wantExit, out.String(), errOut.String())
			continue
		}
		if line, ok := missingOutput(c.output, out.String()+errOut.String()); !ok {
			t.Errorf("%s: documented output line not printed (in order):\n  %s\nprinted:\n%s%s", where, line, out.String(), errOut.String())
		}
	}
}

// waitForLedger waits until the stream exists and the read side answers.
func waitForLedger(t *testing.T, getenv func(string) string) {
	t.Helper()
	testenv.Eventually(t, 20*time.Second, func() bool {
		return runWith(t.Context(), []string{"projection", "status"}, io.Discard, io.Discard, getenv) == exitOK
	}, "the ledger did not start")
}

func TestShellWords(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{`modledger case note 1 "said \"hi\"" # a note`, []string{"modledger", "case", "note", "1", `said "hi"`}},
		{`A=b modledger x 'it''s' c\ d`, []string{"A=b", "modledger", "x", "its", "c d"}},
	} {
		got, err := shellWords(c.in)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("shellWords(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	if _, err := shellWords(`"open`); err == nil {
		t.Error("an unterminated quote is not an error")
	}
}

func TestMissingOutput(t *testing.T) {
	got := "CASE  TYPE  USER\n1     BAN   42\n2     WARN  43\n\ncommand id 0192f1a0-0000-7000-8000-000000000001, 3s ago\n"
	for _, c := range []struct {
		want []string
		ok   bool
	}{
		{[]string{"CASE TYPE USER", "1 BAN 42"}, true},
		{[]string{"CASE TYPE USER", "2 WARN 43"}, false},
		{[]string{"CASE TYPE USER", "...", "2 WARN 43"}, true},
		{[]string{"...", "command id 0192f1a0-1111-7000-8000-000000000009, 2h ago"}, true},
		{[]string{"1 BAN 42", "CASE TYPE USER"}, false},
	} {
		if _, ok := missingOutput(c.want, got); ok != c.ok {
			t.Errorf("missingOutput(%q) ok = %v, want %v", c.want, ok, c.ok)
		}
	}
}
