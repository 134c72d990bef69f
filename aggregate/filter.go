package aggregate

import (
	"fmt"
	"time"

	"github.com/modledger/modledger/events"
)

// CaseFilter selects cases for a set command (close_many, delete_many, ...)
// by fields every case has and that the ledger can check against a case's
// current state, so that a set command decides each case on the state it
// changes. Its JSON is a subset of the read side's case filter. A deleted
// case never matches.
type CaseFilter struct {
	// UserID selects the cases of one member.
	UserID events.Snowflake `json:"user_id,omitzero"`
	// ModeratorID selects the cases one moderator opened.
	ModeratorID events.Snowflake `json:"moderator_id,omitzero"`
	// Types selects cases of any of these types.
	Types []string `json:"types,omitempty"`
	// Status selects active or closed cases.
	Status Status `json:"status,omitempty"`
	// CreatedAfter selects cases created at or after it.
	CreatedAfter time.Time `json:"created_after,omitzero"`
	// CreatedBefore selects cases created before it.
	CreatedBefore time.Time `json:"created_before,omitzero"`
	// ExpiresBefore selects cases with an expiry before it.
	ExpiresBefore time.Time `json:"expires_before,omitzero"`
	// HasExpiry selects cases with (true) or without (false) an expiry.
	HasExpiry *bool `json:"has_expiry,omitempty"`
	// ExpiryProcessed selects cases whose expiry was (true) or was not
	// (false) processed.
	ExpiryProcessed *bool `json:"expiry_processed,omitempty"`
}

// FilterTypesMax bounds CaseFilter.Types.
const FilterTypesMax = 32

// IsZero reports whether the filter sets no field: it would match every
// case.
func (f *CaseFilter) IsZero() bool {
	return f.UserID.IsZero() && f.ModeratorID.IsZero() && len(f.Types) == 0 && f.Status == "" &&
		f.CreatedAfter.IsZero() && f.CreatedBefore.IsZero() && f.ExpiresBefore.IsZero() &&
		f.HasExpiry == nil && f.ExpiryProcessed == nil
}

// Validate checks the filter's fields; field names in errors are prefixed
// with prefix ("filter.").
func (f *CaseFilter) Validate(reg *Registry, prefix string) error {
	if reg == nil {
		reg = defaultRegistry
	}
	if len(f.Types) > FilterTypesMax {
		return invalid(prefix+"types", "%d types, at most %d", len(f.Types), FilterTypesMax)
	}
	for i, t := range f.Types {
		if _, ok := reg.Lookup(t); !ok {
			return invalid(fmt.Sprintf("%stypes[%d]", prefix, i), "unknown case type %q", t)
		}
	}
	switch f.Status {
	case "", StatusActive, StatusClosed:
	default:
		return invalid(prefix+"status", "%q: want active or closed", f.Status)
	}
	if !f.CreatedAfter.IsZero() && !f.CreatedBefore.IsZero() && !f.CreatedAfter.Before(f.CreatedBefore) {
		return invalid(prefix+"created_before", "must be after created_after")
	}
	return nil
}

// Matches reports whether c is an undeleted case the filter selects.
func (f *CaseFilter) Matches(c *Case) bool {
	if c == nil || c.Deleted {
		return false
	}
	switch {
	case !f.UserID.IsZero() && c.UserID != f.UserID,
		!f.ModeratorID.IsZero() && c.ModeratorID != f.ModeratorID,
		f.Status != "" && c.Status != f.Status,
		!f.CreatedAfter.IsZero() && c.CreatedAt.Before(f.CreatedAfter),
		!f.CreatedBefore.IsZero() && !c.CreatedAt.Before(f.CreatedBefore),
		!f.ExpiresBefore.IsZero() && (c.ExpiresAt == nil || !c.ExpiresAt.Before(f.ExpiresBefore)),
		f.HasExpiry != nil && *f.HasExpiry != (c.ExpiresAt != nil),
		f.ExpiryProcessed != nil && *f.ExpiryProcessed != c.ExpiryProcessed:
		return false
	}
	if len(f.Types) == 0 {
		return true
	}
	for _, t := range f.Types {
		if t == c.Type {
			return true
		}
	}
	return false
}

// FamilyTypes returns the names of the types that restrict or lift family.
func (r *Registry) FamilyTypes(family Family) []string {
	var out []string
	for _, t := range r.Types() {
		if t.Family() == family {
			out = append(out, t.Name)
		}
	}
	return out
}
