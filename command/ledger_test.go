package command

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/events"
	"github.com/modledger/modledger/internal/testenv"
)

// TestLoadCaseReadsExactlyTheCaseEvents: a case's events, interleaved with
// other cases' and guilds', load in order and complete, whether the case
// has one event or several; a case that does not exist loads as none. The
// result equals a plain scan of the case's subjects.
func TestLoadCaseReadsExactlyTheCaseEvents(t *testing.T) {
	env := testenv.NATS(t)
	svc, err := NewService(Config{Conn: env.Conn(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = svc.Stop(ctx)
	})
	client, err := NewClient(env.Conn(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	open := func(g events.Snowflake) {
		t.Helper()
		if _, err := client.CaseOpen(ctx, g, OpenParams{CaseFields: events.CaseFields{Type: aggregate.TypeWarn, UserID: 5, ModeratorID: 7, Reason: "spam"}}); err != nil {
			t.Fatal(err)
		}
	}
	ref := func(n uint32) (Meta, CaseRef) { return Meta{ActorID: 7}, CaseRef{CaseNumber: n} }
	open(1) // guild 1 case 1
	open(1) // guild 1 case 2
	m, r := ref(1)
	if _, err := client.CaseAddNote(ctx, 1, AddNoteParams{Meta: m, CaseRef: r, Text: "evidence"}); err != nil {
		t.Fatal(err)
	}
	open(2) // guild 2 case 1
	m, r = ref(1)
	if _, err := client.CaseClose(ctx, 2, CloseParams{Meta: m, CaseRef: r}); err != nil {
		t.Fatal(err)
	}
	m, r = ref(1)
	if _, err := client.CaseClose(ctx, 1, CloseParams{Meta: m, CaseRef: r}); err != nil {
		t.Fatal(err)
	}
	open(1) // guild 1 case 3
	m, r = ref(1)
	if _, err := client.CaseReopen(ctx, 1, ReopenParams{Meta: m, CaseRef: r}); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		guild  events.Snowflake
		number uint32
		want   []events.Name
	}{
		{1, 1, []events.Name{events.NameCaseOpened, events.NameCaseNoteAdded, events.NameCaseClosed, events.NameCaseReopened}},
		{1, 2, []events.Name{events.NameCaseOpened}},
		{1, 3, []events.Name{events.NameCaseOpened}},
		{2, 1, []events.Name{events.NameCaseOpened, events.NameCaseClosed}},
		{1, 4, nil},
		{3, 1, nil},
	} {
		evs, err := svc.ledger.loadCase(ctx, tc.guild, tc.number)
		if err != nil {
			t.Fatalf("guild %d case %d: %v", tc.guild, tc.number, err)
		}
		var names []events.Name
		var scanned []uint64
		for _, e := range evs {
			names = append(names, e.Event)
			if e.GuildID != tc.guild || e.CaseNumber != tc.number {
				t.Errorf("guild %d case %d: loaded an event of guild %d case %d", tc.guild, tc.number, e.GuildID, e.CaseNumber)
			}
		}
		if !slices.Equal(names, tc.want) {
			t.Errorf("guild %d case %d: loaded %v, want %v", tc.guild, tc.number, names, tc.want)
		}
		err = svc.ledger.scan(ctx, svc.subj.CaseAll(tc.guild, tc.number), 1, time.Time{}, func(m storedMsg) (bool, error) {
			scanned = append(scanned, m.Seq)
			return true, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		var loaded []uint64
		for _, e := range evs {
			loaded = append(loaded, e.Seq)
		}
		if !slices.Equal(loaded, scanned) {
			t.Errorf("guild %d case %d: loaded sequences %v, a scan finds %v", tc.guild, tc.number, loaded, scanned)
		}
	}
}
