package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"regexp"
	"strings"
	"testing"

	"github.com/modledger/modledger/internal/testenv"
)

func TestConfigShowsSourcesAndMasksSecrets(t *testing.T) {
	env := map[string]string{
		"DATABASE_URL":       "postgres://modledger:db-secret@db.internal:5432/modledger?sslmode=verify-full",
		"MODLEDGER_NATS_URL": "nats://bot:nats-secret@nats-1:4222,nats://bot:nats-secret@nats-2:4222",
		"MODLEDGER_ROLES":    "projector,query",
	}
	getenv := func(k string) string { return env[k] }
	var out, errOut bytes.Buffer
	if c := runWith(t.Context(), []string{"config", "--replicas", "3", "--json"}, &out, &errOut, getenv); c != exitOK {
		t.Fatalf("config exited %d: %s", c, errOut.String())
	}
	if strings.Contains(out.String(), "secret") {
		t.Fatalf("config printed a password:\n%s", out.String())
	}
	var got []setting
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]setting{
		"database-url": {Value: "postgres://modledger:xxxxx@db.internal:5432/modledger?sslmode=verify-full", Source: "env DATABASE_URL"},
		"nats-url":     {Value: "nats://bot:xxxxx@nats-1:4222,nats://bot:xxxxx@nats-2:4222", Source: "env MODLEDGER_NATS_URL"},
		"roles":        {Value: "projector,query", Source: "env MODLEDGER_ROLES"},
		"replicas":     {Value: "3", Source: "flag"},
		"stream":       {Value: "MODLEDGER", Source: "default"},
		"metrics-addr": {Value: ":9090", Source: "default"},
	}
	for _, s := range got {
		if w, ok := want[s.Name]; ok {
			if s.Value != w.Value || s.Source != w.Source {
				t.Errorf("%s = %q from %q, want %q from %q", s.Name, s.Value, s.Source, w.Value, w.Source)
			}
			delete(want, s.Name)
		}
	}
	if len(want) > 0 {
		t.Errorf("settings missing: %v", want)
	}

	// The human table, and a configuration serve would refuse: printed,
	// then a usage error.
	out.Reset()
	errOut.Reset()
	env["MODLEDGER_ROLES"] = "projector"
	delete(env, "DATABASE_URL")
	if c := runWith(t.Context(), []string{"config"}, &out, &errOut, getenv); c != exitUsage {
		t.Fatalf("config without a database for the projector exited %d, want %d", c, exitUsage)
	}
	if !regexp.MustCompile(`(?m)^roles +projector +env MODLEDGER_ROLES$`).MatchString(out.String()) ||
		!strings.Contains(errOut.String(), "--database-url") {
		t.Fatalf("config output:\n%s\nstderr: %s", out.String(), errOut.String())
	}
}

func TestNATSInboxPrefixFlag(t *testing.T) {
	env := testenv.NATS(t)
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	var f natsFlags
	f.register(fs, noEnv)
	if err := fs.Parse([]string{"--nats-url", env.URL, "--nats-inbox-prefix", "_INBOX.bot.1234"}); err != nil {
		t.Fatal(err)
	}
	nc, err := f.connect("test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if inbox := nc.NewInbox(); !strings.HasPrefix(inbox, "_INBOX.bot.1234.") {
		t.Fatalf("inbox %q does not use the prefix", inbox)
	}
}
