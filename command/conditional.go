package command

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/events"
)

// UnlessActive makes an open conditional: when the user is already under
// the restriction family, nothing is appended and the reply holds the case
// that restricts them, with appended 0. On the wire it is true (the opened
// type's own family) or a family name ("ban", "timeout", ...).
type UnlessActive struct {
	// Set makes the open conditional.
	Set bool
	// Family is the family to check; empty means the opened type's own.
	Family aggregate.Family
}

// IsZero reports whether the open is unconditional.
func (u UnlessActive) IsZero() bool { return !u.Set }

// MarshalJSON writes true or the family's name.
func (u UnlessActive) MarshalJSON() ([]byte, error) {
	if u.Family != aggregate.FamilyNone {
		return json.Marshal(string(u.Family))
	}
	return json.Marshal(u.Set)
}

// UnmarshalJSON reads true, false or a family name.
func (u *UnlessActive) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var f string
		if err := json.Unmarshal(b, &f); err != nil {
			return err
		}
		*u = UnlessActive{Set: true, Family: aggregate.Family(f)}
		return nil
	}
	var set bool
	if err := json.Unmarshal(b, &set); err != nil {
		return fmt.Errorf("want true, false or a restriction family")
	}
	*u = UnlessActive{Set: set}
	return nil
}

// unlessActiveCasesMax bounds the cases of one family a conditional open
// folds for one user.
const unlessActiveCasesMax = 10_000

// openGuard runs in an open's retry loop at the guild position the attempt
// appends at (the last opened case's number and stream sequence); a result
// settles the open without appending.
type openGuard func(ctx context.Context, lastNumber uint32, lastSeq uint64) (*Result, error)

// unlessActiveFamily returns the family an unless_active open checks.
func (s *Service) unlessActiveFamily(u UnlessActive, typ string) (aggregate.Family, error) {
	if u.Family != aggregate.FamilyNone {
		for _, f := range s.cfg.Registry.Families() {
			if f == u.Family {
				return f, nil
			}
		}
		return "", invalidf("unless_active", "unknown restriction family %q", u.Family)
	}
	spec, ok := s.cfg.Registry.Lookup(typ)
	if !ok || spec.Restricts == aggregate.FamilyNone {
		return "", invalidf("unless_active", "a %s case restricts nothing; name the family to check, e.g. \"ban\"", typ)
	}
	return spec.Restricts, nil
}

// unlessActive is the guard of a conditional open: it finds the user's
// cases of family numbered up to the position the open appends at, folds
// each from the stream, and applies the restriction rule. Which cases are
// the user's is immutable (a case's user and type never change), so the
// read side answers it exactly once its read model holds the position; the
// cases' states come from the stream. The open then appends expecting that
// very position, so any open in the guild between this check and the
// append (a second conditional ban, say) fails the server's check and the
// guard runs again at the new position.
func (s *Service) unlessActive(guild events.Snowflake, meta Meta, user events.Snowflake, family aggregate.Family) openGuard {
	filter := aggregate.CaseFilter{UserID: user, Types: s.cfg.Registry.FamilyTypes(family)}
	return func(ctx context.Context, lastNumber uint32, lastSeq uint64) (*Result, error) {
		if lastNumber == 0 {
			return nil, nil
		}
		r, err := s.caseNumbers(ctx, guild, filter, true, lastNumber, lastSeq, unlessActiveCasesMax)
		if err != nil {
			return nil, err
		}
		if r.More {
			return nil, fmt.Errorf("%w: user %d has more than %d cases of family %s", aggregate.ErrConflict, user, unlessActiveCasesMax, family)
		}
		cases := make([]*aggregate.Case, 0, len(r.CaseNumbers))
		evsOf := map[uint32][]events.Event{}
		for _, n := range r.CaseNumbers {
			evs, err := s.ledger.loadCase(ctx, guild, n)
			if err != nil {
				return nil, err
			}
			if len(evs) == 0 {
				continue
			}
			st, err := aggregate.Fold(evs)
			if err != nil {
				return nil, fmt.Errorf("fold case %d of guild %d: %w", n, guild, err)
			}
			cases = append(cases, st)
			evsOf[n] = evs
		}
		c := aggregate.Restriction(s.cfg.Registry, family, cases)
		if c == nil {
			return nil, nil
		}
		// The restricting case may be this very command's, from an
		// attempt that was stored: its first reply is due.
		if r, err := replay(evsOf[c.CaseNumber], meta); r != nil || err != nil {
			return r, err
		}
		return &Result{Case: c, Seq: c.Version, Appended: 0}, nil
	}
}
