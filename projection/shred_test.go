package projection

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/command"
	"github.com/modledger/modledger/events"
	"github.com/modledger/modledger/events/shred"
)

// readModelDump returns every row of every table of the cases projection,
// as JSON text in a stable order.
func readModelDump(t *testing.T, b *ledgerBundle) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, table := range []string{"cases", "case_events", "case_notes", "restrictions", "stats_guild", "stats_type",
		"stats_user", "stats_moderator", "stats_day"} {
		var s string
		err := b.pool.QueryRow(t.Context(), fmt.Sprintf(
			`SELECT coalesce(jsonb_agg(to_jsonb(t) ORDER BY to_jsonb(t)::text), '[]')::text FROM %s.%s t`, SchemaDefault, table)).Scan(&s)
		if err != nil {
			t.Fatalf("dump %s: %v", table, err)
		}
		out[table] = s
	}
	return out
}

// TestRebuildAfterRedactionEqualsTheLiveModel: the live projector read the
// redacted cases' text while their keys existed and blanked it on the
// redaction; a rebuild afterwards finds the keys gone. Both read models are
// the same, row for row, and neither holds the text.
func TestRebuildAfterRedactionEqualsTheLiveModel(t *testing.T) {
	t.Parallel()
	b := setupLedger(t)
	b.startProjector(t)
	ctx := t.Context()
	w := newWorkload(b.client, b.clock, 6)
	w.run(ctx, t, 600, 6, 11)

	// A case with text in every personal field, redacted.
	const g events.Snowflake = 4242
	meta := func() command.Meta { return command.Meta{CommandID: uuid.Must(uuid.NewV7()), ActorID: 7} }
	r, err := b.client.CaseOpen(ctx, g, command.OpenParams{Meta: meta(), CaseFields: events.CaseFields{Type: aggregate.TypeJail, UserID: 9,
		ModeratorID: 7, Reason: "secret reason", UserRoles: []events.Snowflake{555}, Metadata: json.RawMessage(`{"k":"secret meta"}`)}})
	if err != nil {
		t.Fatal(err)
	}
	ref := command.CaseRef{CaseNumber: r.Case.CaseNumber}
	amended := "secret amended"
	if _, err := b.client.CaseUpdate(ctx, g, command.UpdateParams{Meta: meta(), CaseRef: ref, Reason: &amended}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.client.CaseAddNote(ctx, g, command.AddNoteParams{Meta: meta(), CaseRef: ref, Text: "secret note",
		EvidenceURLs: []string{"https://x.test/secret.png"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.client.CaseClose(ctx, g, command.CloseParams{Meta: meta(), CaseRef: ref, Reason: "secret close"}); err != nil {
		t.Fatal(err)
	}
	b.waitCaughtUp(t, 60*time.Second)
	if dump := readModelDump(t, b); !strings.Contains(dump["case_notes"], "secret note") {
		t.Fatal("the read model does not show the note before the redaction")
	}
	if _, err := b.client.CaseRedact(ctx, g, command.RedactParams{Meta: meta(), CaseRef: ref}); err != nil {
		t.Fatal(err)
	}
	w.run(ctx, t, 200, 6, 12)
	b.waitCaughtUp(t, 60*time.Second)

	// Every redacted case's key is gone.
	evs := streamEvents(t, b.js)
	keys, err := shred.NewStore(shred.Config{Conn: b.js.Conn(), Stream: shred.StreamName(StreamDefault)})
	if err != nil {
		t.Fatal(err)
	}
	redacted := map[[2]uint64]bool{}
	var ids []uuid.UUID
	for i := len(evs) - 1; i >= 0; i-- { // newest first: keys before a redaction
		e := evs[i]
		k := [2]uint64{uint64(e.GuildID), uint64(e.CaseNumber)}
		if e.Event == events.NameCaseRedacted {
			redacted[k] = true
		} else if redacted[k] && e.KeyID != uuid.Nil {
			ids = append(ids, e.KeyID)
		}
	}
	if len(redacted) < 2 || len(ids) == 0 {
		t.Fatalf("%d redacted cases, %d keys of theirs: the workload proves nothing", len(redacted), len(ids))
	}
	found, err := keys.GetMany(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 0 {
		t.Fatalf("%d keys of redacted cases are still stored", len(found))
	}

	live := readModelDump(t, b)
	for table, rows := range live {
		if strings.Contains(rows, "secret") {
			t.Fatalf("live table %s holds redacted text: %s", table, rows)
		}
	}
	for _, incremental := range []bool{false, true} {
		if _, err := Rebuild(ctx, RebuildConfig{JetStream: b.js, Store: b.store, Projection: NewCasesProjection(nil),
			BatchSize: 300, Incremental: incremental}); err != nil {
			t.Fatal(err)
		}
		rebuilt := readModelDump(t, b)
		for table, rows := range live {
			if rebuilt[table] != rows {
				t.Fatalf("incremental %t: table %s after the rebuild differs from the live one:\nlive:    %.2000s\nrebuilt: %.2000s", incremental, table, rows, rebuilt[table])
			}
		}
	}
	verifyReadModel(t, b.pool, SchemaDefault, aggregate.DefaultRegistry(), evs)
}
