package projection

import (
	"testing"
	"time"

	"github.com/modledger/modledger/command"
	"github.com/modledger/modledger/events"
)

func TestStatusReportsCheckpointAndLag(t *testing.T) {
	t.Parallel()
	b := setupLedger(t)
	p := NewCasesProjection(nil)
	for i := range 5 {
		if _, err := b.client.CaseOpen(t.Context(), 1, command.OpenParams{CaseFields: events.CaseFields{
			Type: "WARN", UserID: events.Snowflake(1 + i), ModeratorID: 2}}); err != nil {
			t.Fatal(err)
		}
	}
	st, err := Status(t.Context(), b.js, b.store, "", "", p)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 1 || st[0].Generation != 0 || st[0].Head != 5 || st[0].Checkpoint != 0 || st[0].LagEvents != 5 || st[0].LagSeconds < 0 {
		t.Fatalf("before any projector: %+v", st)
	}
	b.startProjector(t)
	b.waitCaughtUp(t, 10*time.Second)
	st, err = Status(t.Context(), b.js, b.store, "", "", p)
	if err != nil {
		t.Fatal(err)
	}
	s := st[0]
	if s.Generation != 1 || s.Version != CasesVersion || s.CodeVersion != CasesVersion || s.Checkpoint != 5 || s.Head != 5 ||
		s.LagEvents != 0 || s.LagSeconds != 0 || s.CheckpointTime.IsZero() || s.SwappedAt.IsZero() {
		t.Fatalf("caught up: %+v", s)
	}
}
