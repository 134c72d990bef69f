package command_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/command"
	"github.com/modledger/modledger/events"
	"github.com/modledger/modledger/internal/testenv"
	"github.com/modledger/modledger/projection"
)

// setupReadSide starts a command service, a projector and a query service
// on one NATS server and a fresh PostgreSQL database: what set commands
// and conditional opens need.
func setupReadSide(t *testing.T) *testBundle {
	t.Helper()
	b := setup(t)
	pool := testenv.PostgresPool(t)
	store, err := projection.NewStore(pool, projection.SchemaDefault)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	pr, err := projection.NewProjector(projection.ProjectorConfig{JetStream: b.js, Store: store,
		Projection: projection.NewCasesProjection(nil), IdleWait: 50 * time.Millisecond, Logger: testenv.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := pr.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	q, err := projection.NewQueries(pool, projection.SchemaDefault, nil)
	if err != nil {
		t.Fatal(err)
	}
	qs, err := projection.NewQueryService(projection.QueryServiceConfig{Conn: b.env.Conn(t), Queries: q, Logger: testenv.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := qs.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = qs.Stop(ctx)
		_ = pr.Stop(ctx)
		q.Close()
	})
	return b
}

const setGuild events.Snowflake = 555

// openAs opens a case of typ for user and returns its number.
func (b *testBundle) openAs(t *testing.T, typ string, user events.Snowflake) uint32 {
	t.Helper()
	p := command.OpenParams{CaseFields: events.CaseFields{Type: typ, UserID: user, ModeratorID: 42, Reason: "r"}}
	if spec, _ := aggregate.DefaultRegistry().Lookup(typ); spec.Expiry == aggregate.ExpiryRequired {
		exp := b.clock.Now().Add(time.Hour)
		p.ExpiresAt = &exp
	}
	r, err := b.client.CaseOpen(t.Context(), setGuild, p)
	if err != nil {
		t.Fatal(err)
	}
	return r.Case.CaseNumber
}

func numbersOf[T any](xs []T, f func(T) uint32) []uint32 {
	out := []uint32{}
	for _, x := range xs {
		out = append(out, f(x))
	}
	return out
}

func changedNumbers(r *command.SetResult) []uint32 {
	return numbersOf(r.Changed, func(c command.SetChanged) uint32 { return c.CaseNumber })
}

func TestSetCommands(t *testing.T) {
	b := setupReadSide(t)
	ctx := t.Context()
	const alice, bob events.Snowflake = 100, 200
	// 1 WARN alice, 2 BAN alice, 3 WARN bob, 4 TIMEOUT alice, 5 WARN alice (deleted), 6 WARN alice (closed)
	b.openAs(t, aggregate.TypeWarn, alice)
	b.openAs(t, aggregate.TypeBan, alice)
	b.openAs(t, aggregate.TypeWarn, bob)
	b.openAs(t, aggregate.TypeTimeout, alice)
	b.openAs(t, aggregate.TypeWarn, alice)
	b.openAs(t, aggregate.TypeWarn, alice)
	if _, err := b.client.CaseDelete(ctx, setGuild, command.DeleteParams{Meta: meta(42), CaseRef: command.CaseRef{CaseNumber: 5}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.client.CaseClose(ctx, setGuild, command.CloseParams{Meta: meta(42), CaseRef: command.CaseRef{CaseNumber: 6}}); err != nil {
		t.Fatal(err)
	}
	before := b.msgCount(t)

	// A dry run says what would change and appends nothing.
	sel := command.SetParams{Meta: meta(42), Filter: &aggregate.CaseFilter{UserID: alice}, DryRun: true}
	dry, err := b.client.CaseCloseMany(ctx, setGuild, command.CloseManyParams{SetParams: sel, Reason: "pardoned"})
	if err != nil {
		t.Fatal(err)
	}
	if got := changedNumbers(dry); !slices.Equal(got, []uint32{1, 2, 4}) || !dry.DryRun || dry.Appended != 0 || dry.Matched != 4 || dry.LastCaseNumber != 6 || dry.Seq == 0 {
		t.Fatalf("dry run %+v", dry)
	}
	if len(dry.Unchanged) != 1 || dry.Unchanged[0] != (command.SetUnchanged{CaseNumber: 6, Why: command.UnchangedNoOp}) {
		t.Fatalf("dry run unchanged %+v", dry.Unchanged)
	}
	if b.msgCount(t) != before {
		t.Fatal("a dry run appended")
	}

	// The real thing: alice's active cases close; the deleted one is not
	// selected, the closed one is a no-op.
	sel.DryRun = false
	res, err := b.client.CaseCloseMany(ctx, setGuild, command.CloseManyParams{SetParams: sel, Reason: "pardoned"})
	if err != nil {
		t.Fatal(err)
	}
	if got := changedNumbers(res); !slices.Equal(got, []uint32{1, 2, 4}) || res.Appended != 3 || len(res.Failed) != 0 {
		t.Fatalf("close_many %+v", res)
	}
	if b.msgCount(t) != before+3 {
		t.Fatalf("close_many appended %d messages, want 3", b.msgCount(t)-before)
	}
	// Repeated with its command id: the first reply's changes, nothing
	// appended.
	again, err := b.client.CaseCloseMany(ctx, setGuild, command.CloseManyParams{SetParams: sel, Reason: "pardoned"})
	if err != nil || !slices.Equal(changedNumbers(again), []uint32{1, 2, 4}) || b.msgCount(t) != before+3 {
		t.Fatalf("repeated close_many %+v %v", again, err)
	}

	// An explicit list: a missing case fails, a deleted one fails as
	// deleted, the rest reopen.
	ro, err := b.client.CaseReopenMany(ctx, setGuild, command.ReopenManyParams{SetParams: command.SetParams{Meta: meta(42), CaseNumbers: []uint32{2, 1, 5, 99, 2}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := changedNumbers(ro); !slices.Equal(got, []uint32{1, 2}) || len(ro.Failed) != 2 || ro.Failed[0].CaseNumber != 5 || !ro.Failed[0].Error.Deleted || ro.Failed[1].Error.Code != command.CodeNotFound {
		t.Fatalf("reopen_many %+v", ro)
	}

	// A limit: the reply says more matched.
	lim, err := b.client.CaseUpdateMany(ctx, setGuild, command.UpdateManyParams{SetParams: command.SetParams{Meta: meta(42), All: true, Limit: 2}, Reason: ptr("reviewed")})
	if err != nil || !slices.Equal(changedNumbers(lim), []uint32{1, 2}) || !lim.More || lim.Matched != 2 {
		t.Fatalf("update_many with a limit %+v %v", lim, err)
	}
	// max_case_number repeats a set on the same cases: a case opened
	// since is left alone.
	b.openAs(t, aggregate.TypeWarn, bob) // 7
	del, err := b.client.CaseDeleteMany(ctx, setGuild, command.DeleteManyParams{SetParams: command.SetParams{Meta: meta(42), Filter: &aggregate.CaseFilter{UserID: bob}, MaxCaseNumber: 6}})
	if err != nil || !slices.Equal(changedNumbers(del), []uint32{3}) || del.LastCaseNumber != 6 {
		t.Fatalf("delete_many up to 6 %+v %v", del, err)
	}
	// Redaction may reach deleted cases when listed.
	red, err := b.client.CaseRedactMany(ctx, setGuild, command.RedactManyParams{SetParams: command.SetParams{Meta: meta(42), CaseNumbers: []uint32{3, 5}}})
	if err != nil || !slices.Equal(changedNumbers(red), []uint32{3, 5}) {
		t.Fatalf("redact_many %+v %v", red, err)
	}

	// Bad selections are typed errors that append nothing.
	n := b.msgCount(t)
	for _, tc := range []struct {
		p     command.SetParams
		field string
	}{
		{command.SetParams{Meta: meta(42), Filter: &aggregate.CaseFilter{}}, "filter"},
		{command.SetParams{Meta: meta(42)}, ""},
		{command.SetParams{Meta: meta(42), All: true, CaseNumbers: []uint32{1}}, ""},
		{command.SetParams{Meta: meta(42), All: true, Limit: command.SetLimitMax + 1}, "limit"},
		{command.SetParams{Meta: meta(42), Filter: &aggregate.CaseFilter{Types: []string{"SLAP"}}}, "filter.types[0]"},
		{command.SetParams{Meta: meta(42), CaseNumbers: []uint32{0}}, "case_numbers"},
		{command.SetParams{Meta: command.Meta{}, All: true}, "actor_id"},
	} {
		_, err := b.client.CaseCloseMany(ctx, setGuild, command.CloseManyParams{SetParams: tc.p})
		var ce *command.Error
		if !errors.As(err, &ce) || ce.Code != command.CodeInvalidArgument || ce.Field != tc.field {
			t.Errorf("close_many %+v: %v, want invalid_argument on %q", tc.p, err, tc.field)
		}
	}
	// Unknown fields, in the body or the filter, over the wire.
	for _, body := range []string{
		`{"command_id":"0192f1a0-0000-7000-8000-0000000000a1","actor_id":"42","filter":{"user":"100"}}`,
		`{"command_id":"0192f1a0-0000-7000-8000-0000000000a2","actor_id":"42","all":true,"where":"1=1"}`,
		`{"command_id":"0192f1a0-0000-7000-8000-0000000000a3","actor_id":"42","filter":{"search":"raid"}}`,
	} {
		msg, err := b.nc.Request("modledger.cmd.555.close_many", []byte(body), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(msg.Data), `"code":"invalid_argument"`) {
			t.Errorf("close_many %s answered %s", body, msg.Data)
		}
	}
	if b.msgCount(t) != n {
		t.Fatal("a bad set command appended")
	}
}

// TestSetCommandRacesSingleCommands runs close_many over a user's cases
// while other goroutines reopen and close the same cases one by one: every
// command is applied exactly once per case and each case's events alternate
// as a serial order would make them.
func TestSetCommandRacesSingleCommands(t *testing.T) {
	b := setupReadSide(t)
	ctx := t.Context()
	const user events.Snowflake = 300
	var numbers []uint32
	for range 20 {
		numbers = append(numbers, b.openAs(t, aggregate.TypeWarn, user))
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, n := range numbers {
				if i%4 != w {
					continue
				}
				ref := command.CaseRef{CaseNumber: n}
				if _, err := b.client.CaseClose(ctx, setGuild, command.CloseParams{Meta: meta(43), CaseRef: ref}); err != nil {
					t.Error(err)
				}
				if _, err := b.client.CaseReopen(ctx, setGuild, command.ReopenParams{Meta: meta(43), CaseRef: ref}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	var set *command.SetResult
	wg.Add(1)
	go func() {
		defer wg.Done()
		var err error
		set, err = b.client.CaseCloseMany(ctx, setGuild, command.CloseManyParams{SetParams: command.SetParams{Meta: meta(42), CaseNumbers: numbers}})
		if err != nil {
			t.Error(err)
		}
	}()
	wg.Wait()
	if set == nil {
		return
	}
	if len(set.Changed)+len(set.Unchanged) != len(numbers) || len(set.Failed) != 0 {
		t.Fatalf("close_many %+v", set)
	}
	for _, n := range numbers {
		evs := b.storedEvents(t, "modledger.case.555."+strconv.Itoa(int(n))+".>")
		status := aggregate.StatusActive
		setCloses := 0
		for _, e := range evs[1:] {
			switch e.Data.EventName() {
			case events.NameCaseClosed:
				if status != aggregate.StatusActive {
					t.Fatalf("case %d closed twice in a row", n)
				}
				status = aggregate.StatusClosed
				if e.Command == command.CommandCloseMany {
					setCloses++
				}
			case events.NameCaseReopened:
				if status != aggregate.StatusClosed {
					t.Fatalf("case %d reopened while active", n)
				}
				status = aggregate.StatusActive
			}
		}
		changed := slices.ContainsFunc(set.Changed, func(c command.SetChanged) bool { return c.CaseNumber == n })
		if setCloses > 1 || changed != (setCloses == 1) {
			t.Fatalf("case %d: close_many closed it %d times, reply says changed=%v", n, setCloses, changed)
		}
	}
}

func TestOpenUnlessActive(t *testing.T) {
	b := setupReadSide(t)
	ctx := t.Context()
	const user events.Snowflake = 400
	ban := func(cmdMeta command.Meta) (*command.Result, error) {
		return b.client.CaseOpen(ctx, setGuild, command.OpenParams{Meta: cmdMeta,
			CaseFields:   events.CaseFields{Type: aggregate.TypeBan, UserID: user, ModeratorID: 42, Reason: "raid"},
			UnlessActive: command.UnlessActive{Set: true}})
	}
	// 50 moderators ban the user at once: one case.
	var wg sync.WaitGroup
	results := make([]*command.Result, 50)
	metas := make([]command.Meta, 50)
	for i := range results {
		metas[i] = meta(events.Snowflake(1000 + i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := ban(metas[i])
			if err != nil {
				t.Error(err)
				return
			}
			results[i] = r
		}()
	}
	wg.Wait()
	appended, maker := 0, -1
	for i, r := range results {
		if r == nil {
			t.FailNow()
		}
		appended += r.Appended
		if r.Appended == 1 {
			maker = i
		}
		if r.Case.CaseNumber != 1 {
			t.Fatalf("a conditional ban answered case %d, want 1", r.Case.CaseNumber)
		}
	}
	if appended != 1 || b.msgCount(t) != 1 {
		t.Fatalf("50 conditional bans appended %d cases (%d messages), want 1", appended, b.msgCount(t))
	}
	// A retry of the ban that made the case gets its first reply.
	if r, err := ban(metas[maker]); err != nil || r.Appended != 1 || r.Case.CaseNumber != 1 {
		t.Fatalf("retried conditional ban: %+v %v", r, err)
	}
	// After an UNBAN the next conditional ban opens a new case; a
	// conditional TIMEOUT is not blocked by the ban family.
	b.openAs(t, aggregate.TypeUnban, user) // 2
	r, err := ban(meta(42))
	if err != nil || r.Appended != 1 || r.Case.CaseNumber != 3 {
		t.Fatalf("conditional ban after an unban: %+v %v", r, err)
	}
	r, err = ban(meta(42))
	if err != nil || r.Appended != 0 || r.Case.CaseNumber != 3 {
		t.Fatalf("conditional ban while banned: %+v %v", r, err)
	}
	// A closed ban no longer restricts.
	if _, err := b.client.CaseClose(ctx, setGuild, command.CloseParams{Meta: meta(42), CaseRef: command.CaseRef{CaseNumber: 3}}); err != nil {
		t.Fatal(err)
	}
	if r, err = ban(meta(42)); err != nil || r.Appended != 1 || r.Case.CaseNumber != 4 {
		t.Fatalf("conditional ban after the ban was closed: %+v %v", r, err)
	}
	// A family named explicitly, and bad families.
	exp := b.clock.Now().Add(time.Hour)
	r, err = b.client.CaseOpen(ctx, setGuild, command.OpenParams{Meta: meta(42),
		CaseFields:   events.CaseFields{Type: aggregate.TypeTempban, UserID: user, ModeratorID: 42, ExpiresAt: &exp},
		UnlessActive: command.UnlessActive{Set: true, Family: aggregate.FamilyBan}})
	if err != nil || r.Appended != 0 || r.Case.CaseNumber != 4 {
		t.Fatalf("conditional tempban while banned: %+v %v", r, err)
	}
	for _, tc := range []struct {
		typ string
		u   command.UnlessActive
	}{
		{aggregate.TypeWarn, command.UnlessActive{Set: true}},
		{aggregate.TypeBan, command.UnlessActive{Set: true, Family: "hug"}},
	} {
		_, err := b.client.CaseOpen(ctx, setGuild, command.OpenParams{Meta: meta(42),
			CaseFields: events.CaseFields{Type: tc.typ, UserID: user, ModeratorID: 42}, UnlessActive: tc.u})
		var ce *command.Error
		if !errors.As(err, &ce) || ce.Field != "unless_active" {
			t.Errorf("open %s %+v: %v, want invalid_argument on unless_active", tc.typ, tc.u, err)
		}
	}
}
