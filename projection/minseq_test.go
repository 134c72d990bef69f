package projection

import (
	"context"
	"testing"

	"github.com/modledger/modledger/command"
	"github.com/modledger/modledger/events"
	"github.com/modledger/modledger/internal/testenv"
)

// A bot that opens a case and at once queries it with the reply's seq as
// min_seq reads its own write, every time: the query waits for the
// projector instead of answering not_found.
func TestReadYourWritesOverNATS(t *testing.T) {
	t.Parallel()
	b := setupLedger(t)
	b.startProjector(t)
	q, err := NewQueries(b.pool, SchemaDefault, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(q.Close)
	qs, err := NewQueryService(QueryServiceConfig{Conn: b.env.Conn(t), Queries: q, Store: b.store, Logger: testenv.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := qs.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = qs.Stop(context.Background()) })
	qc, err := NewQueryClient(b.env.Conn(t))
	if err != nil {
		t.Fatal(err)
	}
	const tries = 1000
	for i := range tries {
		r, err := b.client.CaseOpen(t.Context(), 77, command.OpenParams{CaseFields: events.CaseFields{
			Type: "WARN", UserID: events.Snowflake(1 + i%50), ModeratorID: 9, Reason: "read me back"}})
		if err != nil {
			t.Fatal(err)
		}
		got, err := qc.CaseGet(t.Context(), 77, CaseGetParams{QueryMeta: QueryMeta{MinSeq: r.Seq}, CaseNumber: r.Case.CaseNumber})
		if err != nil {
			t.Fatalf("try %d: query case %d with min_seq %d: %v", i, r.Case.CaseNumber, r.Seq, err)
		}
		if got.Case.CaseID != r.Case.CaseID || got.Case.Version != r.Seq {
			t.Fatalf("try %d: read case %s version %d, wrote %s at %d", i, got.Case.CaseID, got.Case.Version, r.Case.CaseID, r.Seq)
		}
	}
}
