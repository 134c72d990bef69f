package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCaseImport imports a file in chunks with progress, runs it again (it
// resumes: nothing is imported twice), and refuses bad files before
// sending anything.
func TestCaseImport(t *testing.T) {
	t.Parallel()
	l := startCLILedger(t)
	guild := map[string]string{"MODLEDGER_GUILD": "777"}
	dir := t.TempDir()
	var b strings.Builder
	created := time.Now().Add(-24 * time.Hour).UTC()
	for n := 1; n <= 25; n++ {
		ext := ""
		if n%5 == 0 {
			ext = fmt.Sprintf(`, "external_id": "audit-%d"`, n)
		}
		fmt.Fprintf(&b, `{"case_number": %d, "created_at": %q, "type": "WARN", "user_id": "%d", "moderator_id": "7", "reason": "old case %d"%s}`+"\n",
			n*2, created.Add(time.Duration(n)*time.Minute).Format(time.RFC3339), 100+n, n, ext)
	}
	file := filepath.Join(dir, "cases.jsonl")
	if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	r := l.run(t, cliOpts{env: guild}, "case", "import", file, "--chunk", "10")
	if r.code != exitOK {
		t.Fatalf("import: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "imported 10/25 cases (chunk 1/3, up to case #20)") || !strings.Contains(r.stderr, "imported 25/25 cases (chunk 3/3, up to case #50)") {
		t.Fatalf("no progress:\n%s", r.stderr)
	}
	if !strings.HasPrefix(r.stdout, "Imported 25 cases into guild 777, up to case #50") {
		t.Fatalf("summary:\n%s", r.stdout)
	}
	if out := l.ok(t, cliOpts{env: guild}, "case", "show", "50"); !strings.Contains(out, "old case 25") {
		t.Fatalf("case 50:\n%s", out)
	}
	// Again: every chunk gets its first reply, nothing is appended.
	sum := okJSON[importSummary](t, l, cliOpts{env: guild}, "case", "import", file, "--chunk", "10")
	if sum.Cases != 25 || sum.Chunks != 3 || sum.Appended != 25 || sum.LastCase != 50 {
		t.Fatalf("second run: %+v", sum)
	}
	// The next open follows the imported numbers.
	if out := l.ok(t, cliOpts{env: guild}, "case", "open", "--type", "WARN", "--user", "9"); !strings.HasPrefix(out, "Opened case #51.") {
		t.Fatalf("open after import:\n%s", out)
	}
	// Bad files are usage errors; nothing is sent.
	for name, body := range map[string]string{
		"falling.jsonl": `{"case_number": 2, "created_at": "2024-01-01T00:00:00Z", "type": "WARN", "user_id": "1", "moderator_id": "2"}` + "\n" +
			`{"case_number": 1, "created_at": "2024-01-01T00:00:00Z", "type": "WARN", "user_id": "1", "moderator_id": "2"}`,
		"unknown.jsonl": `{"case_number": 1, "created_at": "2024-01-01T00:00:00Z", "kind": "WARN"}`,
		"empty.jsonl":   "\n",
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		l.wantExit(t, cliOpts{env: map[string]string{"MODLEDGER_GUILD": "778"}}, exitUsage, name, "case", "import", p)
	}
	if out := l.run(t, cliOpts{env: map[string]string{"MODLEDGER_GUILD": "778"}}, "case", "list"); !strings.Contains(out.stdout, "No cases.") {
		t.Fatalf("a bad file imported something:\n%s", out.stdout)
	}
}
