package aggregate_test

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/modledger/modledger/aggregate"
)

// caseOpt changes a case built by mk.
type caseOpt func(*aggregate.Case)

func closed(c *aggregate.Case)    { c.Status = aggregate.StatusClosed }
func deleted(c *aggregate.Case)   { c.Deleted = true }
func processed(c *aggregate.Case) { c.ExpiryProcessed = true }
func expired(c *aggregate.Case)   { c.ExpiredAt = ptr(t0) }

// mk returns an active case of user userID with number n and type typ, as
// a fold would leave it.
func mk(n uint32, typ string, opts ...caseOpt) *aggregate.Case {
	c := &aggregate.Case{
		GuildID: guildID, CaseNumber: n, Type: typ, UserID: userID, ModeratorID: moderatorID,
		Status: aggregate.StatusActive, CreatedAt: t0.Add(time.Duration(n) * time.Minute), Events: 1,
	}
	if spec, _ := aggregate.DefaultRegistry().Lookup(typ); spec.CanExpire() {
		c.ExpiresAt = ptr(c.CreatedAt.Add(time.Hour))
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

func TestRestriction(t *testing.T) {
	t.Parallel()
	const (
		ban     = aggregate.FamilyBan
		timeout = aggregate.FamilyTimeout
		jail    = aggregate.FamilyJail
		snippet = aggregate.FamilySnippet
		poll    = aggregate.FamilyPoll
	)
	tests := []struct {
		name   string
		family aggregate.Family
		cases  []*aggregate.Case
		want   uint32 // number of the restricting case; 0 for none
	}{
		{"no cases", ban, nil, 0},
		{"only nil cases", ban, []*aggregate.Case{nil, nil}, 0},
		{"ban", ban, []*aggregate.Case{mk(1, "BAN")}, 1},
		{"hackban", ban, []*aggregate.Case{mk(1, "HACKBAN")}, 1},
		{"tempban unexpired", ban, []*aggregate.Case{mk(1, "TEMPBAN")}, 1},
		{"tempban expired but not processed still restricts", ban, []*aggregate.Case{mk(1, "TEMPBAN", expired)}, 1},
		{"tempban processed lifts", ban, []*aggregate.Case{mk(1, "TEMPBAN", expired, processed)}, 0},
		{"unban after ban lifts", ban, []*aggregate.Case{mk(1, "BAN"), mk(2, "UNBAN")}, 0},
		{"unban after hackban lifts", ban, []*aggregate.Case{mk(1, "HACKBAN"), mk(2, "UNBAN")}, 0},
		{"ban after unban restricts", ban, []*aggregate.Case{mk(1, "UNBAN"), mk(2, "BAN")}, 2},
		{"order of the slice does not matter", ban, []*aggregate.Case{mk(5, "UNBAN"), mk(3, "BAN")}, 0},
		{"latest by number wins, not by slice position", ban, []*aggregate.Case{mk(9, "BAN"), mk(3, "UNBAN"), mk(4, "TEMPBAN")}, 9},
		{"latest ban of several", ban, []*aggregate.Case{mk(1, "BAN"), mk(7, "TEMPBAN"), mk(4, "HACKBAN")}, 7},
		{"closed ban never counts", ban, []*aggregate.Case{mk(1, "BAN", closed)}, 0},
		{"deleted ban never counts", ban, []*aggregate.Case{mk(1, "BAN", deleted)}, 0},
		{"closed unban does not lift", ban, []*aggregate.Case{mk(1, "BAN"), mk(2, "UNBAN", closed)}, 1},
		{"deleted unban does not lift", ban, []*aggregate.Case{mk(1, "BAN"), mk(2, "UNBAN", deleted)}, 1},
		{"closed later ban leaves the earlier one", ban, []*aggregate.Case{mk(1, "BAN"), mk(2, "BAN", closed)}, 1},
		{"processed tempban after a ban: the latest rules", ban, []*aggregate.Case{mk(1, "BAN"), mk(2, "TEMPBAN", processed)}, 0},
		{"ban after a processed tempban", ban, []*aggregate.Case{mk(1, "TEMPBAN", processed), mk(2, "BAN")}, 2},
		{"closed processed tempban does not lift the ban", ban, []*aggregate.Case{mk(1, "BAN"), mk(2, "TEMPBAN", processed, closed)}, 1},
		{"warn kick note do not count", ban, []*aggregate.Case{mk(1, "BAN"), mk(2, "WARN"), mk(3, "KICK"), mk(4, "NOTE")}, 1},
		{"only unrelated types", ban, []*aggregate.Case{mk(1, "WARN"), mk(2, "KICK")}, 0},
		{"untimeout does not lift a ban", ban, []*aggregate.Case{mk(1, "BAN"), mk(2, "UNTIMEOUT")}, 1},
		{"unban does not lift a timeout", timeout, []*aggregate.Case{mk(1, "TIMEOUT"), mk(2, "UNBAN")}, 1},
		{"ban does not put under timeout", timeout, []*aggregate.Case{mk(1, "BAN")}, 0},
		{"timeout lifted", timeout, []*aggregate.Case{mk(1, "TIMEOUT"), mk(2, "UNTIMEOUT")}, 0},
		{"timeout processed", timeout, []*aggregate.Case{mk(1, "TIMEOUT", processed)}, 0},
		{"jail", jail, []*aggregate.Case{mk(1, "JAIL")}, 1},
		{"jail lifted", jail, []*aggregate.Case{mk(1, "JAIL"), mk(2, "UNJAIL")}, 0},
		{"jail processed", jail, []*aggregate.Case{mk(1, "JAIL", processed)}, 0},
		{"snippetban", snippet, []*aggregate.Case{mk(1, "SNIPPETBAN")}, 1},
		{"snippetban lifted", snippet, []*aggregate.Case{mk(1, "SNIPPETBAN"), mk(2, "SNIPPETUNBAN")}, 0},
		{"pollban", poll, []*aggregate.Case{mk(1, "POLLBAN")}, 1},
		{"pollban lifted", poll, []*aggregate.Case{mk(2, "POLLUNBAN"), mk(1, "POLLBAN")}, 0},
		{"pollban after pollunban", poll, []*aggregate.Case{mk(2, "POLLBAN"), mk(1, "POLLUNBAN")}, 2},
		{"unknown type is ignored", ban, []*aggregate.Case{mk(1, "BAN"), mk(2, "MYSTERY")}, 1},
		{"family none", aggregate.FamilyNone, []*aggregate.Case{mk(1, "WARN"), mk(2, "BAN")}, 0},
		{"unknown family", "mute", []*aggregate.Case{mk(1, "BAN")}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, reg := range []*aggregate.Registry{nil, aggregate.DefaultRegistry()} {
				got := aggregate.Restriction(reg, tt.family, tt.cases)
				if tt.want == 0 {
					if got != nil {
						t.Fatalf("Restriction = case %d (%s), want none", got.CaseNumber, got.Type)
					}
					continue
				}
				if got == nil || got.CaseNumber != tt.want {
					t.Fatalf("Restriction = %v, want case %d", got, tt.want)
				}
				if !slices.Contains(tt.cases, got) {
					t.Fatal("Restriction returned a case that is not in its input")
				}
			}
		})
	}
}

func TestRestrictionCustomFamilies(t *testing.T) {
	t.Parallel()
	reg, err := aggregate.NewRegistry(
		aggregate.TypeSpec{Name: "MUTE", Restricts: "mute", Expiry: aggregate.ExpiryOptional},
		aggregate.TypeSpec{Name: "UNMUTE", Lifts: "mute"},
		aggregate.TypeSpec{Name: "SHADOWBAN", Restricts: aggregate.FamilyBan},
		aggregate.TypeSpec{Name: "SOFTUNBAN", Lifts: aggregate.FamilyBan},
	)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		family aggregate.Family
		cases  []*aggregate.Case
		want   uint32
	}{
		{"mute", "mute", []*aggregate.Case{mk(1, "MUTE")}, 1},
		{"mute lifted", "mute", []*aggregate.Case{mk(1, "MUTE"), mk(2, "UNMUTE")}, 0},
		{"mute processed", "mute", []*aggregate.Case{mk(1, "MUTE", processed)}, 0},
		{"mute closed", "mute", []*aggregate.Case{mk(1, "MUTE", closed)}, 0},
		{"mute is its own family", aggregate.FamilyBan, []*aggregate.Case{mk(1, "MUTE")}, 0},
		{"custom type restricts a built-in family", aggregate.FamilyBan, []*aggregate.Case{mk(1, "SHADOWBAN")}, 1},
		{"built-in lift of a custom restriction", aggregate.FamilyBan, []*aggregate.Case{mk(1, "SHADOWBAN"), mk(2, "UNBAN")}, 0},
		{"custom lift of a built-in restriction", aggregate.FamilyBan, []*aggregate.Case{mk(1, "BAN"), mk(2, "SOFTUNBAN")}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := aggregate.Restriction(reg, tt.family, tt.cases)
			switch {
			case tt.want == 0 && got != nil:
				t.Fatalf("Restriction = case %d, want none", got.CaseNumber)
			case tt.want != 0 && (got == nil || got.CaseNumber != tt.want):
				t.Fatalf("Restriction = %v, want case %d", got, tt.want)
			}
		})
	}
	// The default registry does not know MUTE: it never restricts there.
	if got := aggregate.Restriction(nil, "mute", []*aggregate.Case{mk(1, "MUTE")}); got != nil {
		t.Fatal("a type unknown to the registry restricts")
	}
}

func TestRestrictions(t *testing.T) {
	t.Parallel()
	cases := []*aggregate.Case{
		mk(1, "BAN"),
		mk(2, "TIMEOUT"),
		mk(3, "UNTIMEOUT"),
		mk(4, "JAIL"),
		mk(5, "SNIPPETBAN", processed),
		mk(6, "POLLBAN", closed),
		mk(7, "WARN"),
		mk(8, "TEMPBAN", deleted),
	}
	got := aggregate.Restrictions(nil, cases)
	if len(got) != 2 || got[aggregate.FamilyBan] != cases[0] || got[aggregate.FamilyJail] != cases[3] {
		t.Fatalf("Restrictions = %v, want ban by case 1 and jail by case 4", got)
	}
	if got := aggregate.Restrictions(nil, nil); got == nil || len(got) != 0 {
		t.Fatalf("Restrictions of no cases = %v, want an empty map", got)
	}
	reg, err := aggregate.NewRegistry(aggregate.TypeSpec{Name: "MUTE", Restricts: "mute"})
	if err != nil {
		t.Fatal(err)
	}
	got = aggregate.Restrictions(reg, append(cases, mk(9, "MUTE")))
	if len(got) != 3 || got["mute"] == nil || got["mute"].CaseNumber != 9 {
		t.Fatalf("Restrictions with a custom registry = %v, want ban, jail and mute", got)
	}
}

func TestCountsAndRestricting(t *testing.T) {
	t.Parallel()
	reg := aggregate.DefaultRegistry()
	tests := []struct {
		c           *aggregate.Case
		family      aggregate.Family
		counts      bool
		restricting bool
	}{
		{mk(1, "BAN"), aggregate.FamilyBan, true, true},
		{mk(1, "UNBAN"), aggregate.FamilyBan, true, false},
		{mk(1, "TEMPBAN", processed), aggregate.FamilyBan, true, false},
		{mk(1, "BAN", closed), aggregate.FamilyBan, false, true},
		{mk(1, "BAN", deleted), aggregate.FamilyBan, false, true},
		{mk(1, "BAN"), aggregate.FamilyJail, false, false},
		{mk(1, "WARN"), aggregate.FamilyNone, false, false},
		{mk(1, "MYSTERY"), aggregate.FamilyBan, false, false},
		{nil, aggregate.FamilyBan, false, false},
	}
	for _, tt := range tests {
		if got := aggregate.Counts(reg, tt.family, tt.c); got != tt.counts {
			t.Errorf("Counts(%q, %+v) = %v, want %v", tt.family, tt.c, got, tt.counts)
		}
		if got := aggregate.Restricting(reg, tt.family, tt.c); got != tt.restricting {
			t.Errorf("Restricting(%q, %+v) = %v, want %v", tt.family, tt.c, got, tt.restricting)
		}
	}
}

// referenceRestriction is a brute-force statement of DOMAIN.md's rule: a
// case puts the user under the family when it is an active, undeleted,
// unprocessed case of a restricting type of the family, and no active,
// undeleted case of the family (restricting or lifting) has a higher number.
func referenceRestriction(reg *aggregate.Registry, family aggregate.Family, cases []*aggregate.Case) *aggregate.Case {
	inFamily := func(c *aggregate.Case) bool {
		if c == nil || c.Deleted || c.Status == aggregate.StatusClosed {
			return false
		}
		spec, ok := reg.Lookup(c.Type)
		return ok && family != "" && (spec.Restricts == family || spec.Lifts == family)
	}
	for _, c := range cases {
		if !inFamily(c) || c.ExpiryProcessed {
			continue
		}
		if spec, _ := reg.Lookup(c.Type); spec.Restricts != family {
			continue
		}
		overridden := false
		for _, d := range cases {
			if d != c && inFamily(d) && d.CaseNumber > c.CaseNumber {
				overridden = true
				break
			}
		}
		if !overridden {
			return c
		}
	}
	return nil
}

// TestRestrictionProperty compares Restriction with the brute-force
// reference on random histories.
func TestRestrictionProperty(t *testing.T) {
	t.Parallel()
	reg, err := aggregate.NewRegistry(
		aggregate.TypeSpec{Name: "MUTE", Restricts: "mute", Expiry: aggregate.ExpiryOptional},
		aggregate.TypeSpec{Name: "UNMUTE", Lifts: "mute"},
	)
	if err != nil {
		t.Fatal(err)
	}
	types := append(reg.Types(), aggregate.TypeSpec{Name: "UNREGISTERED"})
	families := append(reg.Families(), aggregate.FamilyNone, "unknown")
	rounds := 5000
	if testing.Short() {
		rounds = 500
	}
	for seed := range uint64(rounds) {
		r := rand.New(rand.NewPCG(seed, 0x5eed))
		n := r.IntN(12)
		numbers := r.Perm(40)[:n] // distinct case numbers, in random order
		cases := make([]*aggregate.Case, 0, n)
		for _, num := range numbers {
			c := mk(uint32(num+1), types[r.IntN(len(types))].Name)
			if r.IntN(4) == 0 {
				closed(c)
			}
			if r.IntN(5) == 0 {
				deleted(c)
			}
			if r.IntN(3) == 0 {
				processed(c)
			}
			cases = append(cases, c)
		}
		if r.IntN(10) == 0 {
			cases = append(cases, nil)
		}
		for _, f := range families {
			got := aggregate.Restriction(reg, f, cases)
			want := referenceRestriction(reg, f, cases)
			if got != want {
				t.Fatalf("seed %d family %q: Restriction = %+v, reference = %+v; cases %+v", seed, f, got, want, cases)
			}
		}
		all := aggregate.Restrictions(reg, cases)
		for _, f := range reg.Families() {
			if want := referenceRestriction(reg, f, cases); all[f] != want {
				t.Fatalf("seed %d: Restrictions()[%q] = %+v, reference = %+v", seed, f, all[f], want)
			}
		}
	}
}
