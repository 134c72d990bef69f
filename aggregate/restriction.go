package aggregate

import "slices"

// Restriction applies the one restriction rule to cases, which must be one
// user's cases in one guild (in any order): it returns the case that puts
// the user under family, or nil when the user is not under it. The user is
// under the family when the latest (by case number) active, undeleted case
// of a type that restricts or lifts the family is a restricting case whose
// expiry has not been processed.
func Restriction(reg *Registry, family Family, cases []*Case) *Case {
	if reg == nil {
		reg = defaultRegistry
	}
	var latest *Case
	for _, c := range cases {
		if !Counts(reg, family, c) {
			continue
		}
		if latest == nil || c.CaseNumber > latest.CaseNumber {
			latest = c
		}
	}
	if latest == nil || !Restricting(reg, family, latest) {
		return nil
	}
	return latest
}

// Restrictions returns, for every family the user is under, the case that
// puts them there. It applies Restriction's rule to every family in one
// pass over cases, looking each case's type up once.
func Restrictions(reg *Registry, cases []*Case) map[Family]*Case {
	if reg == nil {
		reg = defaultRegistry
	}
	families := reg.families
	// latest[i] is the latest counting case of families[i]. A registry has
	// a handful of families; more than fit here take the slower way.
	var buf [8]*Case
	if len(families) > len(buf) {
		out := map[Family]*Case{}
		for _, f := range families {
			if c := Restriction(reg, f, cases); c != nil {
				out[f] = c
			}
		}
		return out
	}
	latest := buf[:len(families)]
	for _, c := range cases {
		if c == nil || c.Deleted || c.Status != StatusActive {
			continue
		}
		spec, ok := reg.Lookup(c.Type)
		if !ok {
			continue
		}
		i := slices.Index(families, spec.Family())
		if i < 0 {
			continue // FamilyNone, or a family no type restricts
		}
		if latest[i] == nil || c.CaseNumber > latest[i].CaseNumber {
			latest[i] = c
		}
	}
	out := map[Family]*Case{}
	for i, f := range families {
		if c := latest[i]; c != nil && Restricting(reg, f, c) {
			out[f] = c
		}
	}
	return out
}

// Counts reports whether c takes part in the restriction rule for family:
// it is active, not deleted, and its type restricts or lifts family.
func Counts(reg *Registry, family Family, c *Case) bool {
	if c == nil || c.Deleted || c.Status != StatusActive || family == FamilyNone {
		return false
	}
	spec, ok := reg.Lookup(c.Type)
	return ok && spec.Family() == family
}

// Restricting reports whether c, if it is the latest counting case of its
// family, puts the user under family: its type restricts family and its
// expiry has not been processed. No case restricts FamilyNone.
func Restricting(reg *Registry, family Family, c *Case) bool {
	if c == nil || family == FamilyNone {
		return false
	}
	spec, ok := reg.Lookup(c.Type)
	return ok && spec.Restricts == family && !c.ExpiryProcessed
}
