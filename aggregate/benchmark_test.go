package aggregate_test

import (
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/events"
)

// The benchmarks below measure the domain's hot paths: Decide for each
// command kind, Fold, Apply, Clone and the restriction rule. Their setup is
// small so that the suite can run each of them once (-benchtime 1x); the
// figures are in docs/benchmarks.md ("Domain and codec micro-benchmarks").

// benchOpen is a realistic open: a tempban with roles and metadata.
func benchOpen() aggregate.OpenCase {
	return aggregate.OpenCase{CaseFields: events.CaseFields{
		Type:        aggregate.TypeTempban,
		UserID:      userID,
		ModeratorID: moderatorID,
		Reason:      "spamming invite links in #general after two warnings",
		ExpiresAt:   ptr(t0.Add(7 * 24 * time.Hour)),
		UserRoles:   []events.Snowflake{roleA, roleB},
		Metadata:    json.RawMessage(`{"channel":"general","messages_deleted":14,"automod_rule":"invites"}`),
		Source:      aggregate.SourceAuditLog,
		ExternalID:  "1310594711937486858",
	}}
}

// benchHistory returns a ledger whose case has n events: the open of
// benchOpen, then changes of every common kind in turn (reason, note,
// close, reopen, metadata), a minute apart.
func benchHistory(tb testing.TB, n int) *ledger {
	tb.Helper()
	l := opened(tb, benchOpen())
	for i := range n - 1 {
		e := env(t0.Add(time.Duration(i+1) * time.Minute))
		var cmd aggregate.Command
		switch i % 5 {
		case 0:
			cmd = aggregate.UpdateCase{Reason: ptr("reason " + strconv.Itoa(i))}
		case 1:
			cmd = aggregate.AddNote{NoteID: uuid.New(), Text: "see screenshot", EvidenceURLs: []string{"https://cdn.example.com/a.png"}}
		case 2:
			cmd = aggregate.CloseCase{}
		case 3:
			cmd = aggregate.ReopenCase{}
		case 4:
			cmd = aggregate.UpdateCase{Metadata: json.RawMessage(`{"step":` + strconv.Itoa(i) + `}`)}
		}
		if ps := l.must(e, cmd); len(ps) != 1 {
			tb.Fatalf("step %d appended %d events", i, len(ps))
		}
	}
	if len(l.evs) != n {
		tb.Fatalf("%d events, want %d", len(l.evs), n)
	}
	return l
}

func BenchmarkDecide(b *testing.B) {
	bench := func(b *testing.B, e aggregate.Env, c *aggregate.Case, cmd aggregate.Command, want int) {
		b.Helper()
		b.ReportAllocs()
		for b.Loop() {
			ps, err := aggregate.Decide(e, c, cmd)
			if err != nil || len(ps) != want {
				b.Fatal(names(ps), err)
			}
		}
	}
	b.Run("open", func(b *testing.B) {
		bench(b, env(t0), nil, benchOpen(), 1)
	})
	b.Run("update_reason", func(b *testing.B) {
		l := opened(b, benchOpen())
		bench(b, env(t0.Add(time.Hour)), l.state, aggregate.UpdateCase{Reason: ptr("spamming invite links; evaded with an alt")}, 1)
	})
	b.Run("update_all", func(b *testing.B) {
		l := opened(b, benchOpen())
		bench(b, env(t0.Add(time.Hour)), l.state, aggregate.UpdateCase{
			Reason:    ptr("spamming invite links; evaded with an alt"),
			ExpiresAt: ptr(t0.Add(14 * 24 * time.Hour)),
			Metadata:  json.RawMessage(`{"channel":"general","messages_deleted":15,"automod_rule":"invites","alt":true}`),
		}, 3)
	})
	b.Run("close", func(b *testing.B) {
		l := opened(b, benchOpen())
		bench(b, env(t0.Add(time.Hour)), l.state, aggregate.CloseCase{Reason: "appeal accepted"}, 1)
	})
	b.Run("add_note", func(b *testing.B) {
		l := opened(b, benchOpen())
		bench(b, env(t0.Add(time.Hour)), l.state, aggregate.AddNote{
			NoteID:       noteID,
			Text:         "Same invite as the raid last week.",
			EvidenceURLs: []string{"https://cdn.example.com/a.png", "https://discord.com/channels/1128457362048573440/1128460376495259688/1310594827103211571"},
		}, 1)
	})
	b.Run("expire", func(b *testing.B) {
		l := opened(b, benchOpen())
		at := *l.state.ExpiresAt
		bench(b, aggregate.Env{Now: at.Add(time.Second)}, l.state, aggregate.ExpireCase{ExpiresAt: at}, 1)
	})
}

// BenchmarkFold folds a case from its events, as a command handler does on
// a cache miss and the projector does for a case it has not loaded.
func BenchmarkFold(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			evs := benchHistory(b, n).evs
			b.ReportAllocs()
			for b.Loop() {
				c, err := aggregate.Fold(evs)
				if err != nil || c.Events != n {
					b.Fatal(err)
				}
			}
		})
	}
}

// applyBench holds what BenchmarkCaseApply and TestApplyAllocs need: a case
// and one event of a kind that follows it.
type applyBench struct {
	name  string
	base  *aggregate.Case // the state the event applies to; nil for an open
	event events.Event
}

// applyBenches returns one event of each kind the command service appends
// most, each with the state it applies to.
func applyBenches(tb testing.TB) []applyBench {
	tb.Helper()
	at := env(t0.Add(time.Hour))
	next := func(cmd aggregate.Command) applyBench {
		l := opened(tb, benchOpen())
		base := l.state.Clone()
		if ps := l.must(at, cmd); len(ps) != 1 {
			tb.Fatalf("%s appended %d events", cmd.CommandName(), len(ps))
		}
		ev := l.evs[len(l.evs)-1]
		return applyBench{name: string(ev.Event), base: base, event: ev}
	}
	open := opened(tb, benchOpen())
	return []applyBench{
		{name: string(events.NameCaseOpened), event: open.evs[0]},
		next(aggregate.UpdateCase{Reason: ptr("spamming invite links; evaded with an alt")}),
		next(aggregate.AddNote{NoteID: noteID, Text: "see screenshot", EvidenceURLs: []string{"https://cdn.example.com/a.png"}}),
		next(aggregate.CloseCase{Reason: "appeal accepted"}),
		next(aggregate.UpdateCase{Metadata: json.RawMessage(`{"channel":"general","alt":true}`)}),
		next(aggregate.UpdateCase{ExpiresAt: ptr(t0.Add(14 * 24 * time.Hour))}),
	}
}

// BenchmarkCaseApply folds one event into a case. Each iteration starts
// from a shallow copy of the same state, so a list the event appends to is
// full and grows, as it does for a case just loaded.
func BenchmarkCaseApply(b *testing.B) {
	for _, ab := range applyBenches(b) {
		b.Run(ab.name, func(b *testing.B) {
			var c aggregate.Case
			b.ReportAllocs()
			for b.Loop() {
				c = aggregate.Case{}
				if ab.base != nil {
					c = *ab.base
				}
				if err := c.Apply(ab.event); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkCaseClone(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			c := benchHistory(b, n).state
			b.ReportAllocs()
			for b.Loop() {
				if d := c.Clone(); d.Events != n {
					b.Fatal(d.Events)
				}
			}
		})
	}
}

// benchUserCases returns 50 cases of one user in one guild, of mixed types
// and states, the latest ban a TEMPBAN in force.
func benchUserCases(tb testing.TB) []*aggregate.Case {
	tb.Helper()
	types := []string{aggregate.TypeWarn, aggregate.TypeTimeout, aggregate.TypeUntimeout, aggregate.TypeNote, aggregate.TypeBan,
		aggregate.TypeUnban, aggregate.TypeJail, aggregate.TypeUnjail, aggregate.TypeKick, aggregate.TypeTempban}
	cases := make([]*aggregate.Case, 0, 50)
	for i := range 50 {
		l := newLedger(tb)
		l.number = uint32(i + 1)
		l.must(env(t0), openCmd(types[i%len(types)]))
		if i%7 == 3 {
			l.must(env(t0.Add(time.Minute)), aggregate.CloseCase{})
		}
		cases = append(cases, l.state)
	}
	// Newest first, as a query returns them.
	for i, j := 0, len(cases)-1; i < j; i, j = i+1, j-1 {
		cases[i], cases[j] = cases[j], cases[i]
	}
	return cases
}

// BenchmarkRestriction applies the restriction rule to a user's 50 cases:
// for one family (is the user banned?) and for every family.
func BenchmarkRestriction(b *testing.B) {
	cases := benchUserCases(b)
	b.Run("family=ban", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if c := aggregate.Restriction(nil, aggregate.FamilyBan, cases); c == nil || c.Type != aggregate.TypeTempban {
				b.Fatal(c)
			}
		}
	})
	b.Run("all_families", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if m := aggregate.Restrictions(nil, cases); len(m) == 0 {
				b.Fatal(m)
			}
		}
	})
}
