package command_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/micro"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/command"
	"github.com/modledger/modledger/events"
)

// openConcurrently opens n WARN cases in guild from workers goroutines and
// returns the case numbers the replies gave.
func openConcurrently(t *testing.T, client *command.Client, guild events.Snowflake, n, workers int) []uint32 {
	t.Helper()
	var (
		next    atomic.Int64
		mu      sync.Mutex
		numbers []uint32
		wg      sync.WaitGroup
	)
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				r, err := client.CaseOpen(t.Context(), guild, warnParams(events.Snowflake(1000+w)))
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				numbers = append(numbers, r.Case.CaseNumber)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("open: %v", err)
	}
	return numbers
}

// requireExactly fails unless numbers are exactly 1..n, each once.
func requireExactly(t *testing.T, what string, numbers []uint32, n int) {
	t.Helper()
	slices.Sort(numbers)
	if len(numbers) != n {
		t.Fatalf("%s: %d numbers, want %d", what, len(numbers), n)
	}
	for i, got := range numbers {
		if got != uint32(i+1) {
			t.Fatalf("%s: numbers[%d] = %d, want %d (gap or duplicate)", what, i, got, i+1)
		}
	}
}

func TestOpenNumbersGaplessUnderContentionAcrossProcesses(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// Two more command services in separate OS processes join the queue
	// group; the in-process one stops taking requests so that every open
	// goes through the two processes.
	startServiceProcess(t, b.env.URL)
	startServiceProcess(t, b.env.URL)
	if err := b.svc.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	const n, workers = 3000, 32
	numbers := openConcurrently(t, b.client, testGuild, n, workers)
	requireExactly(t, "replies", numbers, n)

	var stored []uint32
	for _, e := range b.storedEvents(t, events.Subjects{}.GuildOpened(testGuild)) {
		stored = append(stored, e.CaseNumber)
	}
	requireExactly(t, "stream", stored, n)

	// Both processes answered opens.
	stats := serviceStats(t, b)
	if len(stats) != 2 {
		t.Fatalf("%d service instances answered stats, want 2", len(stats))
	}
	for _, s := range stats {
		if s < 100 {
			t.Fatalf("a process handled only %d opens; requests were not spread (%v)", s, stats)
		}
	}
}

// serviceStats returns, per running service instance, how many open
// requests it handled.
func serviceStats(t *testing.T, b *testBundle) []int {
	t.Helper()
	sub, err := b.nc.SubscribeSync(b.nc.NewRespInbox())
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := b.nc.PublishRequest("$SRV.STATS."+command.ServiceName, sub.Subject, nil); err != nil {
		t.Fatal(err)
	}
	var out []int
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 500e6)
		m, err := sub.NextMsgWithContext(ctx)
		cancel()
		if err != nil {
			return out
		}
		var st micro.Stats
		if err := json.Unmarshal(m.Data, &st); err != nil {
			t.Fatal(err)
		}
		for _, ep := range st.Endpoints {
			if ep.Name == aggregate.CommandOpen {
				out = append(out, ep.NumRequests)
			}
		}
	}
}

func TestOpenNumbersPerGuildManyGuilds(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.startService(t) // a second instance in the queue group contends too
	const guilds, perGuild = 200, 8
	var wg sync.WaitGroup
	results := make([][]uint32, guilds)
	for g := 0; g < guilds; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[g] = openConcurrently(t, b.client, events.Snowflake(5000+g), perGuild, 2)
		}()
	}
	wg.Wait()
	for g := 0; g < guilds; g++ {
		requireExactly(t, fmt.Sprintf("guild %d", 5000+g), results[g], perGuild)
	}
	if got := b.msgCount(t); got != guilds*perGuild {
		t.Fatalf("stream holds %d messages, want %d", got, guilds*perGuild)
	}
}

func TestOpenSameCommandThreeTimesMakesOneCase(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := tempbanParams(b.clock, 7)
	p.CommandID = uuid.Must(uuid.NewV7())
	var replies []string
	for range 3 {
		r, err := b.client.CaseOpen(t.Context(), testGuild, p)
		if err != nil {
			t.Fatal(err)
		}
		j, _ := json.Marshal(r)
		replies = append(replies, string(j))
	}
	if replies[0] != replies[1] || replies[1] != replies[2] {
		t.Fatalf("replies differ:\n%s\n%s\n%s", replies[0], replies[1], replies[2])
	}
	if got := b.msgCount(t); got != 1 {
		t.Fatalf("stream holds %d messages, want 1", got)
	}
	var first command.Result
	_ = json.Unmarshal([]byte(replies[0]), &first)
	if first.Case.CaseNumber != 1 || first.Appended != 1 {
		t.Fatalf("first reply: case %d appended %d", first.Case.CaseNumber, first.Appended)
	}
	next, err := b.client.CaseOpen(t.Context(), testGuild, warnParams(8))
	if err != nil {
		t.Fatal(err)
	}
	if next.Case.CaseNumber != 2 {
		t.Fatalf("next open got number %d, want 2", next.Case.CaseNumber)
	}
}

func TestOpenSameCommandFromAnotherProcessAfterCacheIsStale(t *testing.T) {
	t.Parallel()
	b := setup(t)
	other := b.startService(t)
	_ = other
	p := warnParams(7)
	p.CommandID = uuid.Must(uuid.NewV7())
	// Retries land on either instance; every reply is the first one.
	for range 10 {
		r, err := b.client.CaseOpen(t.Context(), testGuild, p)
		if err != nil {
			t.Fatal(err)
		}
		if r.Case.CaseNumber != 1 || r.Appended != 1 {
			t.Fatalf("reply: case %d appended %d", r.Case.CaseNumber, r.Appended)
		}
		if _, err := b.client.CaseOpen(t.Context(), testGuild+1, warnParams(9)); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(b.storedEvents(t, events.Subjects{}.Guild(testGuild))); got != 1 {
		t.Fatalf("guild has %d events, want 1", got)
	}
}

func TestOpenExternalIDMakesOneCase(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.startService(t)
	const workers = 20
	var wg sync.WaitGroup
	res := make([]*command.Result, workers)
	errs := make([]error, workers)
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := command.OpenParams{CaseFields: events.CaseFields{
				Type: aggregate.TypeBan, UserID: 77, ModeratorID: 42, Source: aggregate.SourceAuditLog,
				ExternalID: "audit-log-entry-123",
			}}
			res[i], errs[i] = b.client.CaseOpen(t.Context(), testGuild, p)
		}()
	}
	wg.Wait()
	appended := 0
	for i := range workers {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if res[i].Case.CaseNumber != 1 || res[i].Case.ExternalID != "audit-log-entry-123" {
			t.Fatalf("reply %d: case %d external id %q", i, res[i].Case.CaseNumber, res[i].Case.ExternalID)
		}
		appended += res[i].Appended
	}
	if appended != 1 {
		t.Fatalf("appended %d in all, want 1", appended)
	}
	if got := b.msgCount(t); got != 2 {
		t.Fatalf("stream holds %d messages, want 2 (the case and its external id claim)", got)
	}
	// The same external id in another guild is another case.
	p := command.OpenParams{CaseFields: events.CaseFields{Type: aggregate.TypeBan, UserID: 77, ModeratorID: 42, ExternalID: "audit-log-entry-123"}}
	r, err := b.client.CaseOpen(t.Context(), testGuild+1, p)
	if err != nil || r.Appended != 1 || r.Case.CaseNumber != 1 {
		t.Fatalf("other guild: %+v %v", r, err)
	}
}

func TestOpenManyContiguousNumbers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for range 3 {
		if _, err := b.client.CaseOpen(t.Context(), testGuild, warnParams(1)); err != nil {
			t.Fatal(err)
		}
	}
	p := command.OpenManyParams{Meta: meta(42)}
	for i := range 500 {
		p.Cases = append(p.Cases, events.CaseFields{Type: aggregate.TypeBan, UserID: events.Snowflake(10_000 + i), ModeratorID: 42, Reason: "raid"})
	}
	r, err := b.client.CaseOpenMany(t.Context(), testGuild, p)
	if err != nil {
		t.Fatal(err)
	}
	if r.Appended != 500 || len(r.Cases) != 500 {
		t.Fatalf("appended %d, %d cases", r.Appended, len(r.Cases))
	}
	for i, c := range r.Cases {
		if c.CaseNumber != uint32(4+i) || c.UserID != events.Snowflake(10_000+i) || c.Version != r.Seq-499+uint64(i) {
			t.Fatalf("case %d: number %d user %d version %d (seq %d)", i, c.CaseNumber, c.UserID, c.Version, r.Seq)
		}
	}
	again, err := b.client.CaseOpenMany(t.Context(), testGuild, p)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(r)
	c, _ := json.Marshal(again)
	if string(a) != string(c) {
		t.Fatalf("replayed open_many reply differs")
	}
	if got := b.msgCount(t); got != 503 {
		t.Fatalf("stream holds %d messages, want 503", got)
	}
}

func TestOpenManyWithOneInvalidCaseAppendsNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := command.OpenManyParams{Meta: meta(42)}
	for i := range 500 {
		p.Cases = append(p.Cases, events.CaseFields{Type: aggregate.TypeBan, UserID: events.Snowflake(10_000 + i), ModeratorID: 42})
	}
	p.Cases[250].Type = "YEET"
	_, err := b.client.CaseOpenMany(t.Context(), testGuild, p)
	var we *command.Error
	if !errors.As(err, &we) || we.Code != command.CodeInvalidArgument || we.Field != "cases[250].type" {
		t.Fatalf("err = %v, want invalid_argument on cases[250].type", err)
	}
	if !errors.Is(err, aggregate.ErrInvalidArgument) {
		t.Fatalf("errors.Is(err, ErrInvalidArgument) is false for %v", err)
	}
	if got := b.msgCount(t); got != 0 {
		t.Fatalf("stream holds %d messages, want 0", got)
	}
}

func TestImportKeepsNumbersAndNextOpenFollows(t *testing.T) {
	t.Parallel()
	b := setup(t)
	created := b.clock.Now().AddDate(-1, 0, 0)
	p := command.ImportParams{Meta: meta(42)}
	for _, n := range []uint32{5, 7, 9} {
		p.Cases = append(p.Cases, aggregate.ImportCase{
			CaseFields: events.CaseFields{Type: aggregate.TypeWarn, UserID: 3, ModeratorID: 4, Reason: "old"},
			CaseNumber: n, CreatedAt: created, ImportedFrom: "tux",
		})
	}
	r, err := b.client.CaseImport(t.Context(), testGuild, p)
	if err != nil {
		t.Fatal(err)
	}
	if r.Appended != 3 || r.Cases[2].CaseNumber != 9 || !r.Cases[0].CreatedAt.Equal(created) || r.Cases[0].Source != aggregate.SourceImport {
		t.Fatalf("import reply: %+v", r.Cases[0])
	}
	o, err := b.client.CaseOpen(t.Context(), testGuild, warnParams(1))
	if err != nil || o.Case.CaseNumber != 10 {
		t.Fatalf("open after import: %+v %v", o, err)
	}
	low := command.ImportParams{Meta: meta(42), Cases: p.Cases[:1]}
	_, err = b.client.CaseImport(t.Context(), testGuild, low)
	if !errors.Is(err, aggregate.ErrInvalidArgument) {
		t.Fatalf("import below the last number: err = %v", err)
	}
}

func TestImportRetriedGetsItsFirstReply(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := command.ImportParams{Meta: meta(42)}
	for _, n := range []uint32{1, 2} {
		p.Cases = append(p.Cases, aggregate.ImportCase{
			CaseFields: events.CaseFields{Type: aggregate.TypeWarn, UserID: 3, ModeratorID: 4},
			CaseNumber: n, CreatedAt: b.clock.Now().Add(-time.Hour),
		})
	}
	first, err := b.client.CaseImport(t.Context(), testGuild, p)
	if err != nil {
		t.Fatal(err)
	}
	again, err := b.client.CaseImport(t.Context(), testGuild, p)
	if err != nil {
		t.Fatalf("retried import: %v", err)
	}
	a, _ := json.Marshal(first)
	c, _ := json.Marshal(again)
	if string(a) != string(c) {
		t.Fatalf("retried import reply differs:\n%s\n%s", a, c)
	}
	if got := b.msgCount(t); got != 2 {
		t.Fatalf("stream holds %d messages, want 2", got)
	}
}

func TestOpenReusingAChangesCommandIDIsAConflict(t *testing.T) {
	t.Parallel()
	b := setup(t)
	opened, err := b.client.CaseOpen(t.Context(), testGuild, warnParams(1))
	if err != nil {
		t.Fatal(err)
	}
	m := meta(42)
	if _, err := b.client.CaseClose(t.Context(), testGuild, command.CloseParams{Meta: m, CaseRef: command.CaseRef{CaseNumber: opened.Case.CaseNumber}}); err != nil {
		t.Fatal(err)
	}
	p := warnParams(2)
	p.Meta = m
	if _, err := b.client.CaseOpen(t.Context(), testGuild, p); !errors.Is(err, aggregate.ErrConflict) {
		t.Fatalf("open with a used command id: err = %v, want conflict", err)
	}
}

// TestOpenRetriedAfterItsExpiryPassedGetsItsFirstReply: a tempban stored
// by a first attempt whose reply was lost is retried after its expiry
// passed. Validation alone would refuse it (the expiry is no longer in the
// future); the retry gets its first reply and appends nothing.
func TestOpenRetriedAfterItsExpiryPassedGetsItsFirstReply(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := tempbanParams(b.clock, 5)
	p.Meta = meta(42)
	first, err := b.client.CaseOpen(t.Context(), testGuild, p)
	if err != nil {
		t.Fatal(err)
	}
	many := command.OpenManyParams{Meta: meta(42), Cases: []events.CaseFields{tempbanParams(b.clock, 6).CaseFields, tempbanParams(b.clock, 7).CaseFields}}
	firstMany, err := b.client.CaseOpenMany(t.Context(), testGuild, many)
	if err != nil {
		t.Fatal(err)
	}
	stored := b.msgCount(t)
	b.clock.Advance(48 * time.Hour)
	again, err := b.client.CaseOpen(t.Context(), testGuild, p)
	if err != nil || again.Case.CaseNumber != first.Case.CaseNumber || again.Appended != 1 || again.Seq != first.Seq {
		t.Fatalf("retried open: %+v %v, want its first reply %+v", again, err, first)
	}
	againMany, err := b.client.CaseOpenMany(t.Context(), testGuild, many)
	if err != nil || len(againMany.Cases) != 2 || againMany.Cases[1].CaseNumber != firstMany.Cases[1].CaseNumber || againMany.Seq != firstMany.Seq {
		t.Fatalf("retried open_many: %+v %v, want its first reply %+v", againMany, err, firstMany)
	}
	if b.msgCount(t) != stored {
		t.Fatal("a retry appended")
	}
	// A new command with an expiry in the past is still refused.
	p.Meta = meta(42)
	if _, err := b.client.CaseOpen(t.Context(), testGuild, p); !errors.Is(err, aggregate.ErrInvalidArgument) {
		t.Fatalf("a new open with a past expiry: %v", err)
	}
}
