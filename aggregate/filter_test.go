package aggregate_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/modledger/modledger/aggregate"
)

func TestCaseFilterMatches(t *testing.T) {
	t.Parallel()
	warn := mk(1, aggregate.TypeWarn)               // created t0+1m, no expiry
	tempban := mk(2, aggregate.TypeTempban)         // created t0+2m, expires t0+1h2m
	closedBan := mk(3, aggregate.TypeBan, closed)   // created t0+3m
	gone := mk(4, aggregate.TypeWarn, deleted)      // never matches
	done := mk(5, aggregate.TypeTimeout, processed) // expiry processed
	other := mk(6, aggregate.TypeWarn, func(c *aggregate.Case) { c.UserID = 99; c.ModeratorID = 98 })
	all := []*aggregate.Case{warn, tempban, closedBan, gone, done, other}
	tests := []struct {
		name   string
		filter aggregate.CaseFilter
		want   []uint32
	}{
		{"zero matches every undeleted case", aggregate.CaseFilter{}, []uint32{1, 2, 3, 5, 6}},
		{"user", aggregate.CaseFilter{UserID: userID}, []uint32{1, 2, 3, 5}},
		{"moderator", aggregate.CaseFilter{ModeratorID: 98}, []uint32{6}},
		{"types", aggregate.CaseFilter{Types: []string{aggregate.TypeBan, aggregate.TypeTempban}}, []uint32{2, 3}},
		{"active", aggregate.CaseFilter{Status: aggregate.StatusActive}, []uint32{1, 2, 5, 6}},
		{"closed", aggregate.CaseFilter{Status: aggregate.StatusClosed}, []uint32{3}},
		{"created at or after", aggregate.CaseFilter{CreatedAfter: t0.Add(3 * time.Minute)}, []uint32{3, 5, 6}},
		{"created before", aggregate.CaseFilter{CreatedBefore: t0.Add(3 * time.Minute)}, []uint32{1, 2}},
		{"expires before", aggregate.CaseFilter{ExpiresBefore: t0.Add(90 * time.Minute)}, []uint32{2, 5}},
		{"expires before, not yet", aggregate.CaseFilter{ExpiresBefore: t0.Add(62 * time.Minute)}, nil},
		{"has expiry", aggregate.CaseFilter{HasExpiry: ptr(true)}, []uint32{2, 5}},
		{"has no expiry", aggregate.CaseFilter{HasExpiry: ptr(false)}, []uint32{1, 3, 6}},
		{"expiry processed", aggregate.CaseFilter{ExpiryProcessed: ptr(true)}, []uint32{5}},
		{"all fields at once", aggregate.CaseFilter{UserID: userID, Status: aggregate.StatusActive, Types: []string{aggregate.TypeTempban}, HasExpiry: ptr(true), ExpiryProcessed: ptr(false)}, []uint32{2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []uint32
			for _, c := range all {
				if tc.filter.Matches(c) {
					got = append(got, c.CaseNumber)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("matched %v, want %v", got, tc.want)
			}
		})
	}
	if (&aggregate.CaseFilter{}).Matches(nil) {
		t.Error("a nil case matched")
	}
}

func TestCaseFilterValidateAndIsZero(t *testing.T) {
	t.Parallel()
	if !(&aggregate.CaseFilter{}).IsZero() || (&aggregate.CaseFilter{HasExpiry: ptr(false)}).IsZero() {
		t.Fatal("IsZero is wrong")
	}
	bad := []struct {
		filter aggregate.CaseFilter
		field  string
	}{
		{aggregate.CaseFilter{Types: []string{"WARN", "SLAP"}}, "filter.types[1]"},
		{aggregate.CaseFilter{Types: make([]string, aggregate.FilterTypesMax+1)}, "filter.types"},
		{aggregate.CaseFilter{Status: "expired"}, "filter.status"},
		{aggregate.CaseFilter{CreatedAfter: t0, CreatedBefore: t0}, "filter.created_before"},
	}
	for _, b := range bad {
		err := b.filter.Validate(nil, "filter.")
		var ve *aggregate.ValidationError
		if !errors.As(err, &ve) || ve.Field != b.field || !errors.Is(err, aggregate.ErrInvalidArgument) {
			t.Errorf("Validate(%+v) = %v, want a validation error on %s", b.filter, err, b.field)
		}
	}
	ok := aggregate.CaseFilter{UserID: userID, Types: []string{"BAN"}, Status: aggregate.StatusClosed, CreatedAfter: t0, CreatedBefore: t0.Add(time.Hour)}
	if err := ok.Validate(nil, "filter."); err != nil {
		t.Fatal(err)
	}
	if got := aggregate.DefaultRegistry().FamilyTypes(aggregate.FamilyBan); !slices.Equal(got, []string{"BAN", "HACKBAN", "TEMPBAN", "UNBAN"}) {
		t.Fatalf("ban family types %v", got)
	}
}
