package events_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/modledger/modledger/events"
)

func TestSubjectsBuild(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		s    events.Subjects
		p    string // expected prefix
	}{
		{name: "zero value", s: events.Subjects{}, p: "modledger"},
		{name: "default prefix", s: events.Subjects{Prefix: events.DefaultPrefix}, p: "modledger"},
		{name: "custom prefix", s: events.Subjects{Prefix: "staging"}, p: "staging"},
		{name: "multi-token prefix", s: events.Subjects{Prefix: "acme.ledger"}, p: "acme.ledger"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, p := tt.s, tt.p
			checks := []struct{ got, want string }{
				{s.Case(guildID, 42, events.NameCaseClosed), p + ".case.1128457362048573440.42.closed"},
				{s.Case(guildID, 1, events.NameCaseOpened), p + ".case.1128457362048573440.1.opened"},
				{s.Case(guildID, 7, events.NameCaseImported), p + ".case.1128457362048573440.7.opened"},
				{s.Case(guildID, 7, events.NameModLogMessageLinked), p + ".case.1128457362048573440.7.mod_log_linked"},
				{s.Case(math.MaxInt64, math.MaxUint32, events.NameCaseRedacted), p + ".case.9223372036854775807.4294967295.redacted"},
				{s.CaseAll(guildID, 42), p + ".case.1128457362048573440.42.>"},
				{s.Guild(guildID), p + ".case.1128457362048573440.>"},
				{s.GuildOpened(guildID), p + ".case.1128457362048573440.*.opened"},
				{s.AllCases(), p + ".case.>"},
				{s.AllOpened(), p + ".case.*.*.opened"},
				{s.Claims(), p + ".claim.>"},
				{s.ExternalIDClaim(guildID, "k3v9q2mxw7c4"), p + ".claim.1128457362048573440.external_id.k3v9q2mxw7c4"},
				{s.Command(guildID, "open"), p + ".cmd.1128457362048573440.open"},
				{s.CommandEndpoint("open_many"), p + ".cmd.*.open_many"},
				{s.Query(guildID, "cases_by_user"), p + ".query.1128457362048573440.cases_by_user"},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Fatalf("got %q, want %q", c.got, c.want)
				}
			}
		})
	}
}

func TestSubjectTokens(t *testing.T) {
	t.Parallel()

	for _, n := range events.Names() {
		want := string(n)
		if n == events.NameCaseImported {
			want = "opened"
		}
		if got := n.SubjectToken(); got != want {
			t.Fatalf("%s.SubjectToken() = %q, want %q", n, got, want)
		}
		if got, want := n.Creates(), n == events.NameCaseOpened || n == events.NameCaseImported; got != want {
			t.Fatalf("%s.Creates() = %v, want %v", n, got, want)
		}
	}
}

// TestSubjectFilters checks which filters match which subjects, with the
// NATS wildcard rules.
func TestSubjectFilters(t *testing.T) {
	t.Parallel()

	var s events.Subjects
	const other events.Snowflake = 613425648685547541
	tests := []struct {
		filter  string
		subject string
		match   bool
	}{
		{s.AllCases(), s.Case(guildID, 1, events.NameCaseOpened), true},
		{s.AllCases(), s.Case(other, 9, events.NameCaseRedacted), true},
		{s.AllCases(), s.ExternalIDClaim(guildID, "k3v9q2mxw7c4"), false},
		{s.Claims(), s.ExternalIDClaim(guildID, "k3v9q2mxw7c4"), true},
		{s.Claims(), s.Case(guildID, 1, events.NameCaseOpened), false},
		{s.Guild(guildID), s.Case(guildID, 3, events.NameCaseClosed), true},
		{s.Guild(guildID), s.Case(other, 3, events.NameCaseClosed), false},
		{s.Guild(guildID), s.ExternalIDClaim(guildID, "k3v9q2mxw7c4"), false},
		{s.CaseAll(guildID, 3), s.Case(guildID, 3, events.NameCaseClosed), true},
		{s.CaseAll(guildID, 3), s.Case(guildID, 3, events.NameCaseOpened), true},
		{s.CaseAll(guildID, 3), s.Case(guildID, 30, events.NameCaseClosed), false},
		{s.CaseAll(guildID, 3), s.Case(other, 3, events.NameCaseClosed), false},
		{s.GuildOpened(guildID), s.Case(guildID, 5, events.NameCaseOpened), true},
		{s.GuildOpened(guildID), s.Case(guildID, 5, events.NameCaseImported), true},
		{s.GuildOpened(guildID), s.Case(guildID, 5, events.NameCaseReopened), false},
		{s.GuildOpened(guildID), s.Case(other, 5, events.NameCaseOpened), false},
		{s.AllOpened(), s.Case(other, 5, events.NameCaseImported), true},
		{s.AllOpened(), s.Case(other, 5, events.NameCaseClosed), false},
		{s.CommandEndpoint("close"), s.Command(guildID, "close"), true},
		{s.CommandEndpoint("close"), s.Command(guildID, "open"), false},
	}
	for _, tt := range tests {
		if got := matchSubject(tt.filter, tt.subject); got != tt.match {
			t.Fatalf("%q matches %q = %v, want %v", tt.filter, tt.subject, got, tt.match)
		}
	}
}

func TestParseCase(t *testing.T) {
	t.Parallel()

	for _, prefix := range []string{"", "staging", "acme.ledger"} {
		s := events.Subjects{Prefix: prefix}
		for _, n := range events.Names() {
			for _, num := range []uint32{1, 42, math.MaxUint32} {
				for _, g := range []events.Snowflake{1, guildID, math.MaxInt64} {
					subj := s.Case(g, num, n)
					got, err := s.ParseCase(subj)
					if err != nil {
						t.Fatalf("ParseCase(%q): %v", subj, err)
					}
					want := events.CaseSubject{GuildID: g, CaseNumber: num, Token: n.SubjectToken()}
					if got != want {
						t.Fatalf("ParseCase(%q) = %+v, want %+v", subj, got, want)
					}
				}
			}
		}
	}
}

func TestParseCaseErrors(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		prefix  string
		subject string
	}{
		{name: "empty", subject: ""},
		{name: "prefix only", subject: "modledger.case."},
		{name: "wrong prefix", subject: "ledger.case.1128457362048573440.42.closed"},
		{name: "prefix of another ledger", prefix: "staging", subject: "modledger.case.1128457362048573440.42.closed"},
		{name: "prefix shares a stem", prefix: "acme", subject: "acme2.case.1128457362048573440.42.closed"},
		{name: "not a case subject", subject: "modledger.cases.1128457362048573440.42.closed"},
		{name: "claim", subject: "modledger.claim.1128457362048573440.external_id.k3v9q2mxw7c4"},
		{name: "command", subject: "modledger.cmd.1128457362048573440.open"},
		{name: "too few tokens", subject: "modledger.case.1128457362048573440.42"},
		{name: "guild only", subject: "modledger.case.1128457362048573440"},
		{name: "too many tokens", subject: "modledger.case.1128457362048573440.42.closed.x"},
		{name: "empty guild", subject: "modledger.case..42.closed"},
		{name: "guild zero", subject: "modledger.case.0.42.closed"},
		{name: "guild leading zero", subject: "modledger.case.01128457362048573440.42.closed"},
		{name: "guild negative", subject: "modledger.case.-1.42.closed"},
		{name: "guild above int64", subject: "modledger.case.9223372036854775808.42.closed"},
		{name: "guild above uint64", subject: "modledger.case.18446744073709551616.42.closed"},
		{name: "guild not numeric", subject: "modledger.case.acme.42.closed"},
		{name: "guild wildcard", subject: "modledger.case.*.42.closed"},
		{name: "empty number", subject: "modledger.case.1128457362048573440..closed"},
		{name: "number not numeric", subject: "modledger.case.1128457362048573440.x42.closed"},
		{name: "number leading zero", subject: "modledger.case.1128457362048573440.042.closed"},
		{name: "number zero", subject: "modledger.case.1128457362048573440.0.closed"},
		{name: "number zero padded", subject: "modledger.case.1128457362048573440.00.closed"},
		{name: "number plus sign", subject: "modledger.case.1128457362048573440.+42.closed"},
		{name: "number negative", subject: "modledger.case.1128457362048573440.-42.closed"},
		{name: "number above uint32", subject: "modledger.case.1128457362048573440.4294967296.closed"},
		{name: "number wildcard", subject: "modledger.case.1128457362048573440.*.opened"},
		{name: "unknown event", subject: "modledger.case.1128457362048573440.42.banned"},
		{name: "event wrong case", subject: "modledger.case.1128457362048573440.42.Closed"},
		{name: "empty event", subject: "modledger.case.1128457362048573440.42."},
		{name: "event wildcard", subject: "modledger.case.1128457362048573440.42.>"},
		{name: "imported token", subject: "modledger.case.1128457362048573440.42.imported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := events.Subjects{Prefix: tt.prefix}.ParseCase(tt.subject)
			if !errors.Is(err, events.ErrBadSubject) {
				t.Fatalf("ParseCase(%q) = %+v, %v; want ErrBadSubject", tt.subject, got, err)
			}
		})
	}
}

// TestSubjectsRandomRoundTrip builds subjects from random guilds, numbers
// and names and parses them back.
func TestSubjectsRandomRoundTrip(t *testing.T) {
	t.Parallel()

	r := rand.New(rand.NewPCG(0x6d6f646c, 0x65646765))
	names := events.Names()
	prefixes := []string{"", "modledger", "staging", "acme.ledger.eu"}
	for i := range 5000 {
		var g events.Snowflake
		switch i % 4 {
		case 0: // small ids
			g = events.Snowflake(r.Uint64N(1000) + 1)
		case 1: // the edge
			g = events.Snowflake(math.MaxInt64 - r.Uint64N(3))
		default: // anywhere in range
			g = events.Snowflake(r.Int64N(math.MaxInt64) + 1)
		}
		var num uint32
		if i%3 == 0 {
			num = r.Uint32N(100) + 1
		} else {
			num = r.Uint32N(math.MaxUint32) + 1
		}
		n := names[r.IntN(len(names))]
		s := events.Subjects{Prefix: prefixes[r.IntN(len(prefixes))]}

		subj := s.Case(g, num, n)
		got, err := s.ParseCase(subj)
		if err != nil {
			t.Fatalf("ParseCase(%q): %v", subj, err)
		}
		if want := (events.CaseSubject{GuildID: g, CaseNumber: num, Token: n.SubjectToken()}); got != want {
			t.Fatalf("ParseCase(%q) = %+v, want %+v", subj, got, want)
		}
		if back := s.Case(got.GuildID, got.CaseNumber, events.Name(got.Token)); back != subj {
			t.Fatalf("Case(ParseCase(%q)) = %q", subj, back)
		}
		for _, f := range []string{s.AllCases(), s.Guild(g), s.CaseAll(g, num)} {
			if !matchSubject(f, subj) {
				t.Fatalf("filter %q does not match %q", f, subj)
			}
		}
		if matchSubject(s.AllOpened(), subj) != n.Creates() || matchSubject(s.GuildOpened(g), subj) != n.Creates() {
			t.Fatalf("opened filters on %q: want match = %v", subj, n.Creates())
		}

		// The guild id survives JSON and text.
		b, err := g.MarshalJSON()
		if err != nil {
			t.Fatalf("MarshalJSON(%d): %v", g, err)
		}
		var back events.Snowflake
		if err := back.UnmarshalJSON(b); err != nil || back != g {
			t.Fatalf("UnmarshalJSON(%s) = %d, %v, want %d", b, back, err, g)
		}
		if p, err := events.ParseSnowflake(g.String()); err != nil || p != g {
			t.Fatalf("ParseSnowflake(%q) = %d, %v", g.String(), p, err)
		}
	}
}
