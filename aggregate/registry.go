package aggregate

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"
)

// Family is a kind of restriction that cases put on a user: a ban, a
// timeout, a jail, and so on. Restricting types put a user under their
// family; lifting types take the user out of it.
type Family string

// The built-in restriction families.
const (
	FamilyBan      Family = "ban"
	FamilyTimeout  Family = "timeout"
	FamilyJail     Family = "jail"
	FamilySnippet  Family = "snippet"
	FamilyPoll     Family = "poll"
	FamilyNone     Family = ""
	maxTypeNameLen        = 32
)

// ExpiryRule says whether cases of a type expire.
type ExpiryRule int

const (
	// ExpiryNever: cases of the type never carry an expiry.
	ExpiryNever ExpiryRule = iota
	// ExpiryOptional: an expiry may be set.
	ExpiryOptional
	// ExpiryRequired: an expiry must be set when the case is opened.
	ExpiryRequired
)

// The built-in case types.
const (
	TypeBan          = "BAN"
	TypeHackban      = "HACKBAN"
	TypeTempban      = "TEMPBAN"
	TypeKick         = "KICK"
	TypeTimeout      = "TIMEOUT"
	TypeWarn         = "WARN"
	TypeJail         = "JAIL"
	TypeSnippetban   = "SNIPPETBAN"
	TypePollban      = "POLLBAN"
	TypeUnban        = "UNBAN"
	TypeUntimeout    = "UNTIMEOUT"
	TypeUnjail       = "UNJAIL"
	TypeSnippetunban = "SNIPPETUNBAN"
	TypePollunban    = "POLLUNBAN"
	TypeNote         = "NOTE"
)

// MaxTimeout is the longest a TIMEOUT may last: Discord's own limit.
const MaxTimeout = 28 * 24 * time.Hour

// TypeSpec describes a case type.
type TypeSpec struct {
	// Name is the type's name on the wire: upper case letters, digits and
	// underscores, at most 32 characters.
	Name string `json:"name"`
	// Restricts is the family a case of this type puts the user under, or
	// empty.
	Restricts Family `json:"restricts,omitempty"`
	// Lifts is the family a case of this type lifts, or empty. A type
	// restricts or lifts, not both.
	Lifts Family `json:"lifts,omitempty"`
	// Expiry says whether cases of this type expire.
	Expiry ExpiryRule `json:"expiry"`
	// MaxDuration bounds an expiry, measured from the moment it is set;
	// zero means no bound.
	MaxDuration time.Duration `json:"max_duration,omitempty"`
}

// Family returns the family the type restricts or lifts, or FamilyNone.
func (t TypeSpec) Family() Family {
	if t.Restricts != FamilyNone {
		return t.Restricts
	}
	return t.Lifts
}

// CanExpire reports whether cases of the type may carry an expiry.
func (t TypeSpec) CanExpire() bool { return t.Expiry != ExpiryNever }

// BuiltinTypes returns the 15 built-in case types.
func BuiltinTypes() []TypeSpec {
	return []TypeSpec{
		{Name: TypeBan, Restricts: FamilyBan},
		{Name: TypeHackban, Restricts: FamilyBan},
		{Name: TypeTempban, Restricts: FamilyBan, Expiry: ExpiryRequired},
		{Name: TypeKick},
		{Name: TypeTimeout, Restricts: FamilyTimeout, Expiry: ExpiryRequired, MaxDuration: MaxTimeout},
		{Name: TypeWarn},
		{Name: TypeJail, Restricts: FamilyJail, Expiry: ExpiryOptional},
		{Name: TypeSnippetban, Restricts: FamilySnippet, Expiry: ExpiryOptional},
		{Name: TypePollban, Restricts: FamilyPoll, Expiry: ExpiryOptional},
		{Name: TypeUnban, Lifts: FamilyBan},
		{Name: TypeUntimeout, Lifts: FamilyTimeout},
		{Name: TypeUnjail, Lifts: FamilyJail},
		{Name: TypeSnippetunban, Lifts: FamilySnippet},
		{Name: TypePollunban, Lifts: FamilyPoll},
		{Name: TypeNote},
	}
}

var typeNamePattern = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)

// Registry is the set of case types a deployment accepts: the built-in ones
// and any registered custom types. It is immutable and safe for concurrent
// use.
type Registry struct {
	types map[string]TypeSpec
	names []string
	// families is what Families returns, computed once.
	families []Family
}

// NewRegistry returns a registry of the built-in types plus custom. Every
// problem with custom is reported at once.
func NewRegistry(custom ...TypeSpec) (*Registry, error) {
	r := &Registry{types: make(map[string]TypeSpec, 15+len(custom))}
	for _, t := range BuiltinTypes() {
		r.types[t.Name] = t
		r.names = append(r.names, t.Name)
	}
	families := map[Family]bool{}
	for _, t := range r.types {
		if f := t.Family(); f != FamilyNone {
			families[f] = true
		}
	}
	for _, t := range custom {
		if t.Restricts != FamilyNone {
			families[t.Restricts] = true
		}
	}
	var errs []error
	for _, t := range custom {
		switch {
		case len(t.Name) > maxTypeNameLen || !typeNamePattern.MatchString(t.Name):
			errs = append(errs, fmt.Errorf("type %q: name must be upper case letters, digits and underscores, at most %d characters", t.Name, maxTypeNameLen))
			continue
		case r.types[t.Name].Name != "":
			errs = append(errs, fmt.Errorf("type %q: already registered", t.Name))
			continue
		case t.Restricts != FamilyNone && t.Lifts != FamilyNone:
			errs = append(errs, fmt.Errorf("type %q: restricts and lifts at once", t.Name))
		case t.Lifts != FamilyNone && !families[t.Lifts]:
			errs = append(errs, fmt.Errorf("type %q: lifts family %q that no type restricts", t.Name, t.Lifts))
		case t.Expiry != ExpiryNever && t.Restricts == FamilyNone:
			errs = append(errs, fmt.Errorf("type %q: only a restricting type can expire", t.Name))
		case t.Expiry < ExpiryNever || t.Expiry > ExpiryRequired:
			errs = append(errs, fmt.Errorf("type %q: unknown expiry rule %d", t.Name, t.Expiry))
		case t.MaxDuration < 0:
			errs = append(errs, fmt.Errorf("type %q: negative max duration", t.Name))
		}
		r.types[t.Name] = t
		r.names = append(r.names, t.Name)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("case type registry: %w", err)
	}
	for _, t := range r.types {
		if t.Restricts != FamilyNone && !slices.Contains(r.families, t.Restricts) {
			r.families = append(r.families, t.Restricts)
		}
	}
	slices.Sort(r.families)
	return r, nil
}

// DefaultRegistry returns a registry of the built-in types only.
func DefaultRegistry() *Registry {
	r, err := NewRegistry()
	if err != nil {
		panic(err) // the built-in types are valid; a test guards this
	}
	return r
}

// Lookup returns the spec of the named type.
func (r *Registry) Lookup(name string) (TypeSpec, bool) {
	t, ok := r.types[name]
	return t, ok
}

// Types returns every registered type, built-in ones first, in order of
// registration.
func (r *Registry) Types() []TypeSpec {
	out := make([]TypeSpec, 0, len(r.names))
	for _, n := range r.names {
		out = append(out, r.types[n])
	}
	return out
}

// Families returns every family some type restricts, sorted.
func (r *Registry) Families() []Family { return slices.Clone(r.families) }
