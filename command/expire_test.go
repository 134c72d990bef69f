package command_test

import (
	"errors"
	"testing"
	"time"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/command"
	"github.com/modledger/modledger/events"
)

func TestExpireAppendsOnceAtItsTime(t *testing.T) {
	t.Parallel()
	b := setup(t)
	opened := openTempban(t, b, testGuild)
	ref := command.CaseRef{CaseNumber: opened.Case.CaseNumber, CaseID: opened.Case.CaseID}
	exp := *opened.Case.ExpiresAt
	expire := func() (*command.Result, error) {
		return b.client.CaseExpire(t.Context(), testGuild, command.ExpireParams{
			Meta:    command.Meta{CommandID: command.ExpireCommandID(opened.Case.CaseID, exp), ActorID: 1},
			CaseRef: ref, ExpiresAt: exp,
		})
	}
	if _, err := expire(); !errors.Is(err, aggregate.ErrConflict) {
		t.Fatalf("expire before the time: err = %v, want conflict", err)
	}
	b.clock.Advance(25 * time.Hour)
	first, err := expire()
	if err != nil || first.Appended != 1 || first.Case.ExpiredAt == nil {
		t.Fatalf("expire: %+v %v", first, err)
	}
	// Two schedulers, or a retry: the same derived command id gets the
	// first reply; a second scheduler's stale cache loses the case's check
	// and finds the command among the case's events.
	other := b.startService(t)
	_ = other
	for range 4 {
		again, err := expire()
		if err != nil || again.Appended != 1 || again.Seq != first.Seq {
			t.Fatalf("expire again: %+v %v", again, err)
		}
	}
	evs := b.storedEvents(t, events.Subjects{}.CaseAll(testGuild, ref.CaseNumber))
	if n := countEvents(evs, events.NameCaseExpired); n != 1 {
		t.Fatalf("%d expired events, want 1", n)
	}
}

func countEvents(evs []events.Event, name events.Name) int {
	n := 0
	for _, e := range evs {
		if e.Event == name {
			n++
		}
	}
	return n
}

func TestExpireAfterAChangeIsANoOp(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		change func(b *testBundle, ref command.CaseRef) error
	}{
		{"extended", func(b *testBundle, ref command.CaseRef) error {
			_, err := b.client.CaseUpdate(t.Context(), testGuild, command.UpdateParams{Meta: meta(42), CaseRef: ref, ExpiresAt: command.SetTime(b.clock.Now().Add(72 * time.Hour))})
			return err
		}},
		{"shortened", func(b *testBundle, ref command.CaseRef) error {
			_, err := b.client.CaseUpdate(t.Context(), testGuild, command.UpdateParams{Meta: meta(42), CaseRef: ref, ExpiresAt: command.SetTime(b.clock.Now().Add(time.Hour))})
			return err
		}},
		{"closed", func(b *testBundle, ref command.CaseRef) error {
			_, err := b.client.CaseClose(t.Context(), testGuild, command.CloseParams{Meta: meta(42), CaseRef: ref})
			return err
		}},
		{"deleted", func(b *testBundle, ref command.CaseRef) error {
			_, err := b.client.CaseDelete(t.Context(), testGuild, command.DeleteParams{Meta: meta(42), CaseRef: ref})
			return err
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			opened := openTempban(t, b, testGuild)
			ref := command.CaseRef{CaseNumber: opened.Case.CaseNumber}
			if err := c.change(b, ref); err != nil {
				t.Fatal(err)
			}
			b.clock.Advance(25 * time.Hour)
			exp := *opened.Case.ExpiresAt
			r, err := b.client.CaseExpire(t.Context(), testGuild, command.ExpireParams{
				Meta: command.Meta{CommandID: command.ExpireCommandID(opened.Case.CaseID, exp), ActorID: 1}, CaseRef: ref, ExpiresAt: exp})
			if err != nil || r.Appended != 0 || r.Case.ExpiredAt != nil {
				t.Fatalf("expire the old expiry after the case was %s: %+v %v", c.name, r, err)
			}
		})
	}
}
