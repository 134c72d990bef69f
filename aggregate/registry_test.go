package aggregate_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modledger/modledger/aggregate"
)

// TestBuiltinTypes checks the 15 built-in types against DOMAIN.md's table.
func TestBuiltinTypes(t *testing.T) {
	t.Parallel()
	const (
		never    = aggregate.ExpiryNever
		optional = aggregate.ExpiryOptional
		required = aggregate.ExpiryRequired
	)
	tests := []struct {
		name      string
		restricts aggregate.Family
		lifts     aggregate.Family
		expiry    aggregate.ExpiryRule
		max       time.Duration
	}{
		{aggregate.TypeBan, aggregate.FamilyBan, "", never, 0},
		{aggregate.TypeHackban, aggregate.FamilyBan, "", never, 0},
		{aggregate.TypeTempban, aggregate.FamilyBan, "", required, 0},
		{aggregate.TypeKick, "", "", never, 0},
		{aggregate.TypeTimeout, aggregate.FamilyTimeout, "", required, 28 * 24 * time.Hour},
		{aggregate.TypeWarn, "", "", never, 0},
		{aggregate.TypeJail, aggregate.FamilyJail, "", optional, 0},
		{aggregate.TypeSnippetban, aggregate.FamilySnippet, "", optional, 0},
		{aggregate.TypePollban, aggregate.FamilyPoll, "", optional, 0},
		{aggregate.TypeUnban, "", aggregate.FamilyBan, never, 0},
		{aggregate.TypeUntimeout, "", aggregate.FamilyTimeout, never, 0},
		{aggregate.TypeUnjail, "", aggregate.FamilyJail, never, 0},
		{aggregate.TypeSnippetunban, "", aggregate.FamilySnippet, never, 0},
		{aggregate.TypePollunban, "", aggregate.FamilyPoll, never, 0},
		{aggregate.TypeNote, "", "", never, 0},
	}
	builtin := aggregate.BuiltinTypes()
	if len(builtin) != 15 || len(tests) != 15 {
		t.Fatalf("got %d built-in types, want 15", len(builtin))
	}
	reg := aggregate.DefaultRegistry()
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if builtin[i].Name != tt.name {
				t.Fatalf("built-in type %d is %q, want %q", i, builtin[i].Name, tt.name)
			}
			spec, ok := reg.Lookup(tt.name)
			if !ok {
				t.Fatalf("Lookup(%q) found nothing", tt.name)
			}
			if spec.Name != tt.name || spec.Restricts != tt.restricts || spec.Lifts != tt.lifts ||
				spec.Expiry != tt.expiry || spec.MaxDuration != tt.max {
				t.Fatalf("spec = %+v, want restricts %q lifts %q expiry %d max %s", spec, tt.restricts, tt.lifts, tt.expiry, tt.max)
			}
			if got, want := spec.CanExpire(), tt.expiry != never; got != want {
				t.Errorf("CanExpire() = %v, want %v", got, want)
			}
			wantFamily := tt.restricts
			if wantFamily == "" {
				wantFamily = tt.lifts
			}
			if got := spec.Family(); got != wantFamily {
				t.Errorf("Family() = %q, want %q", got, wantFamily)
			}
		})
	}
}

func TestDefaultRegistry(t *testing.T) {
	t.Parallel()
	reg := aggregate.DefaultRegistry()
	if got, want := reg.Types(), aggregate.BuiltinTypes(); !slices.Equal(got, want) {
		t.Fatalf("Types() = %v, want %v", got, want)
	}
	wantFamilies := []aggregate.Family{aggregate.FamilyBan, aggregate.FamilyJail, aggregate.FamilyPoll, aggregate.FamilySnippet, aggregate.FamilyTimeout}
	if got := reg.Families(); !slices.Equal(got, wantFamilies) {
		t.Fatalf("Families() = %v, want %v", got, wantFamilies)
	}
	for _, name := range []string{"", "ban", "Ban", "MUTE", " BAN", "BAN "} {
		if spec, ok := reg.Lookup(name); ok {
			t.Errorf("Lookup(%q) = %+v, want nothing", name, spec)
		}
	}
	// Types returns a copy: changing it leaves the registry alone.
	types := reg.Types()
	types[0].Name = "CHANGED"
	if reg.Types()[0].Name != aggregate.TypeBan {
		t.Fatal("changing the slice from Types() changed the registry")
	}
	// Every call returns an equal, independent registry.
	if !slices.Equal(aggregate.DefaultRegistry().Types(), reg.Types()) {
		t.Fatal("two default registries differ")
	}
}

func TestNewRegistryCustomTypes(t *testing.T) {
	t.Parallel()
	custom := []aggregate.TypeSpec{
		// UNMUTE comes before the type that restricts its family: order
		// does not matter.
		{Name: "UNMUTE", Lifts: "mute"},
		{Name: "MUTE", Restricts: "mute", Expiry: aggregate.ExpiryOptional, MaxDuration: time.Hour},
		{Name: "VOICEBAN", Restricts: "voice", Expiry: aggregate.ExpiryRequired},
		{Name: "SOFTUNBAN", Lifts: aggregate.FamilyBan},
		{Name: "SHADOWBAN", Restricts: aggregate.FamilyBan},
		{Name: "PRAISE"},
		{Name: "A"},
		{Name: "X_1_" + strings.Repeat("Z", 28)}, // 32 characters
	}
	reg, err := aggregate.NewRegistry(custom...)
	if err != nil {
		t.Fatalf("NewRegistry: %v", err)
	}
	want := append(aggregate.BuiltinTypes(), custom...)
	if got := reg.Types(); !slices.Equal(got, want) {
		t.Fatalf("Types() = %v, want built-in then custom in order: %v", got, want)
	}
	for _, c := range custom {
		got, ok := reg.Lookup(c.Name)
		if !ok || got != c {
			t.Errorf("Lookup(%q) = %+v, %v; want %+v", c.Name, got, ok, c)
		}
	}
	wantFamilies := []aggregate.Family{"ban", "jail", "mute", "poll", "snippet", "timeout", "voice"}
	if got := reg.Families(); !slices.Equal(got, wantFamilies) {
		t.Fatalf("Families() = %v, want %v", got, wantFamilies)
	}
	// The default registry is not changed by a custom one.
	if _, ok := aggregate.DefaultRegistry().Lookup("MUTE"); ok {
		t.Fatal("the default registry knows a custom type")
	}
}

func TestNewRegistryRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		spec aggregate.TypeSpec
		want string
	}{
		{"empty name", aggregate.TypeSpec{Name: ""}, "name must be"},
		{"lower case", aggregate.TypeSpec{Name: "mute"}, "name must be"},
		{"mixed case", aggregate.TypeSpec{Name: "Mute"}, "name must be"},
		{"leading digit", aggregate.TypeSpec{Name: "1MUTE"}, "name must be"},
		{"leading underscore", aggregate.TypeSpec{Name: "_MUTE"}, "name must be"},
		{"dash", aggregate.TypeSpec{Name: "MU-TE"}, "name must be"},
		{"space", aggregate.TypeSpec{Name: "MUTE "}, "name must be"},
		{"newline", aggregate.TypeSpec{Name: "MUTE\n"}, "name must be"},
		{"non-ASCII", aggregate.TypeSpec{Name: "MÜTE"}, "name must be"},
		{"33 characters", aggregate.TypeSpec{Name: strings.Repeat("M", 33)}, "name must be"},
		{"built-in name", aggregate.TypeSpec{Name: aggregate.TypeBan, Restricts: "other"}, "already registered"},
		{"built-in NOTE", aggregate.TypeSpec{Name: aggregate.TypeNote}, "already registered"},
		{"restricts and lifts", aggregate.TypeSpec{Name: "MUTE", Restricts: "mute", Lifts: aggregate.FamilyBan}, "restricts and lifts"},
		{"lifts unknown family", aggregate.TypeSpec{Name: "UNMUTE", Lifts: "mute"}, `lifts family "mute"`},
		{"optional expiry without restriction", aggregate.TypeSpec{Name: "PRAISE", Expiry: aggregate.ExpiryOptional}, "only a restricting type can expire"},
		{"required expiry on a lifting type", aggregate.TypeSpec{Name: "UNMUTE2", Lifts: aggregate.FamilyBan, Expiry: aggregate.ExpiryRequired}, "only a restricting type can expire"},
		{"unknown expiry rule", aggregate.TypeSpec{Name: "MUTE", Restricts: "mute", Expiry: 7}, "unknown expiry rule 7"},
		{"negative expiry rule", aggregate.TypeSpec{Name: "MUTE", Restricts: "mute", Expiry: -1}, "unknown expiry rule -1"},
		{"negative max duration", aggregate.TypeSpec{Name: "MUTE", Restricts: "mute", Expiry: aggregate.ExpiryOptional, MaxDuration: -time.Second}, "negative max duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			reg, err := aggregate.NewRegistry(tt.spec)
			if err == nil {
				t.Fatalf("NewRegistry(%+v) accepted it", tt.spec)
			}
			if reg != nil {
				t.Error("NewRegistry returned a registry with its error")
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "case type registry: ") {
				t.Fatalf("error %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestNewRegistryDuplicateCustom(t *testing.T) {
	t.Parallel()
	_, err := aggregate.NewRegistry(aggregate.TypeSpec{Name: "PRAISE"}, aggregate.TypeSpec{Name: "PRAISE"})
	if err == nil || !strings.Contains(err.Error(), `type "PRAISE": already registered`) {
		t.Fatalf("got %v, want a duplicate error", err)
	}
}

// TestNewRegistryReportsEveryProblem checks that every bad type is reported
// in one errors.Join, not only the first.
func TestNewRegistryReportsEveryProblem(t *testing.T) {
	t.Parallel()
	_, err := aggregate.NewRegistry(
		aggregate.TypeSpec{Name: "bad name"},
		aggregate.TypeSpec{Name: "GOOD", Restricts: "good"},
		aggregate.TypeSpec{Name: "BAN"},
		aggregate.TypeSpec{Name: "UNKNOWNLIFT", Lifts: "nothing"},
		aggregate.TypeSpec{Name: "EXPIRING", Expiry: aggregate.ExpiryRequired},
	)
	if err == nil {
		t.Fatal("NewRegistry accepted bad types")
	}
	joined, ok := errors.Unwrap(err).(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("error %v does not wrap an errors.Join", err)
	}
	if n := len(joined.Unwrap()); n != 4 {
		t.Fatalf("got %d errors, want 4: %v", n, err)
	}
	for _, want := range []string{`"bad name"`, `"BAN": already registered`, `"UNKNOWNLIFT"`, `"EXPIRING"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	if strings.Contains(err.Error(), `"GOOD"`) {
		t.Errorf("error %q mentions the valid type", err)
	}
}
