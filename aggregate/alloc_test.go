package aggregate_test

import (
	"testing"

	"github.com/modledger/modledger/aggregate"
)

// TestApplyAllocs fails when folding a common change into a case allocates
// more than the state it adds: a reason change grows the reason history
// (one allocation), a close adds nothing. It does not run in parallel:
// testing.AllocsPerRun counts the allocations of the whole process.
func TestApplyAllocs(t *testing.T) {
	max := map[string]float64{"reason_amended": 1, "closed": 0}
	for _, ab := range applyBenches(t) {
		want, ok := max[ab.name]
		if !ok {
			continue
		}
		delete(max, ab.name)
		var c aggregate.Case
		got := testing.AllocsPerRun(100, func() {
			c = *ab.base // a shallow copy: the history is full and grows
			if err := c.Apply(ab.event); err != nil {
				t.Fatal(err)
			}
		})
		if got > want {
			t.Errorf("Apply %s: %v allocations, want at most %v", ab.name, got, want)
		}
	}
	if len(max) > 0 {
		t.Fatalf("no event for %v", max)
	}
}
