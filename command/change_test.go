package command_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/command"
	"github.com/modledger/modledger/events"
)

func ptr[T any](v T) *T { return &v }

// openTempban opens a TEMPBAN for user and returns its number.
func openTempban(t *testing.T, b *testBundle, guild events.Snowflake) *command.Result {
	t.Helper()
	r, err := b.client.CaseOpen(t.Context(), guild, tempbanParams(b.clock, 7))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestChangeLifecycle(t *testing.T) {
	t.Parallel()
	b := setup(t)
	opened := openTempban(t, b, testGuild)
	ref := command.CaseRef{CaseNumber: opened.Case.CaseNumber, CaseID: opened.Case.CaseID}
	ctx := t.Context()
	newExp := b.clock.Now().Add(48 * time.Hour)

	steps := []struct {
		name     string
		do       func() (*command.Result, error)
		appended int
		check    func(c *aggregate.Case) bool
	}{
		{"update reason and expiry", func() (*command.Result, error) {
			return b.client.CaseUpdate(ctx, testGuild, command.UpdateParams{Meta: meta(42), CaseRef: ref,
				Reason: ptr("spam in #general"), ExpiresAt: command.SetTime(newExp)})
		}, 2, func(c *aggregate.Case) bool {
			return c.Reason == "spam in #general" && c.ExpiresAt.Equal(newExp) && len(c.ReasonHistory) == 2
		}},
		{"same update again is a no-op", func() (*command.Result, error) {
			return b.client.CaseUpdate(ctx, testGuild, command.UpdateParams{Meta: meta(42), CaseRef: ref,
				Reason: ptr("spam in #general"), ExpiresAt: command.SetTime(newExp)})
		}, 0, nil},
		{"metadata", func() (*command.Result, error) {
			return b.client.CaseUpdate(ctx, testGuild, command.UpdateParams{Meta: meta(42), CaseRef: ref,
				Metadata: json.RawMessage(`{"channel": "general", "messages": 12}`)})
		}, 1, func(c *aggregate.Case) bool { return string(c.Metadata) == `{"channel":"general","messages":12}` }},
		{"note", func() (*command.Result, error) {
			return b.client.CaseAddNote(ctx, testGuild, command.AddNoteParams{Meta: meta(43), CaseRef: ref,
				Text: "appealed by mail", EvidenceURLs: []string{"https://example.com/shot.png"}})
		}, 1, func(c *aggregate.Case) bool { return len(c.Notes) == 1 && c.Notes[0].AuthorID == 43 }},
		{"link mod log", func() (*command.Result, error) {
			return b.client.CaseLinkModLog(ctx, testGuild, command.LinkModLogParams{Meta: meta(42), CaseRef: ref, ModLogMessageID: 999})
		}, 1, func(c *aggregate.Case) bool { return c.ModLogMessageID == 999 }},
		{"same link is a no-op", func() (*command.Result, error) {
			return b.client.CaseLinkModLog(ctx, testGuild, command.LinkModLogParams{Meta: meta(42), CaseRef: ref, ModLogMessageID: 999})
		}, 0, nil},
		{"close", func() (*command.Result, error) {
			return b.client.CaseClose(ctx, testGuild, command.CloseParams{Meta: meta(42), CaseRef: ref, Reason: "wrong user"})
		}, 1, func(c *aggregate.Case) bool { return c.Status == aggregate.StatusClosed }},
		{"close a closed case is a no-op", func() (*command.Result, error) {
			return b.client.CaseClose(ctx, testGuild, command.CloseParams{Meta: meta(42), CaseRef: ref})
		}, 0, nil},
		{"reopen", func() (*command.Result, error) {
			return b.client.CaseReopen(ctx, testGuild, command.ReopenParams{Meta: meta(42), CaseRef: ref})
		}, 1, func(c *aggregate.Case) bool { return c.Status == aggregate.StatusActive }},
		{"delete", func() (*command.Result, error) {
			return b.client.CaseDelete(ctx, testGuild, command.DeleteParams{Meta: meta(42), CaseRef: ref, Reason: "gdpr"})
		}, 1, func(c *aggregate.Case) bool { return c.Deleted }},
		{"delete again is a no-op", func() (*command.Result, error) {
			return b.client.CaseDelete(ctx, testGuild, command.DeleteParams{Meta: meta(42), CaseRef: ref})
		}, 0, nil},
		{"redact a deleted case", func() (*command.Result, error) {
			return b.client.CaseRedact(ctx, testGuild, command.RedactParams{Meta: meta(42), CaseRef: ref})
		}, 1, func(c *aggregate.Case) bool {
			return c.Redacted && c.Reason == "" && c.Notes[0].Text == "" && c.CaseNumber == 1
		}},
	}
	version := opened.Seq
	events := 1
	for _, st := range steps {
		r, err := st.do()
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if r.Appended != st.appended {
			t.Fatalf("%s: appended %d, want %d", st.name, r.Appended, st.appended)
		}
		events += st.appended
		if st.appended > 0 && r.Seq <= version || st.appended == 0 && r.Seq != version {
			t.Fatalf("%s: seq %d after version %d", st.name, r.Seq, version)
		}
		version = r.Seq
		if r.Case.Version != r.Seq || r.Case.Events != events || r.Case.CaseNumber != 1 {
			t.Fatalf("%s: case version %d events %d number %d", st.name, r.Case.Version, r.Case.Events, r.Case.CaseNumber)
		}
		if st.check != nil && !st.check(r.Case) {
			t.Fatalf("%s: case state %+v", st.name, r.Case)
		}
	}
	if got := b.msgCount(t); got != uint64(events) {
		t.Fatalf("stream holds %d messages, want %d", got, events)
	}
	// A deleted case cannot change.
	_, err := b.client.CaseClose(ctx, testGuild, command.CloseParams{Meta: meta(42), CaseRef: ref})
	if !errors.Is(err, aggregate.ErrCaseDeleted) || !errors.Is(err, aggregate.ErrCaseNotFound) {
		t.Fatalf("close a deleted case: err = %v", err)
	}
	// A fresh service (no cache) folds the same state from the stream.
	fresh := setupClientOnNewService(t, b)
	r, err := fresh.CaseDelete(ctx, testGuild, command.DeleteParams{Meta: meta(42), CaseRef: ref})
	if err != nil || r.Appended != 0 || r.Case.Events != events || !r.Case.Redacted {
		t.Fatalf("fresh service: %+v %v", r, err)
	}
}

// setupClientOnNewService stops the bundle's service and starts a new one,
// so that nothing is cached.
func setupClientOnNewService(t *testing.T, b *testBundle) *command.Client {
	t.Helper()
	if err := b.svc.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	b.svc = b.startService(t)
	return b.client
}

func TestChangeSameCommandTwiceAppendsOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.startService(t)
	opened := openTempban(t, b, testGuild)
	p := command.UpdateParams{Meta: meta(42), CaseRef: command.CaseRef{CaseNumber: opened.Case.CaseNumber},
		Reason: ptr("new reason"), Metadata: json.RawMessage(`{"a":1}`)}
	var first []byte
	for i := range 5 {
		r, err := b.client.CaseUpdate(t.Context(), testGuild, p)
		if err != nil {
			t.Fatal(err)
		}
		j, _ := json.Marshal(r)
		if i == 0 {
			first = j
		} else if string(j) != string(first) {
			t.Fatalf("reply %d differs:\n%s\n%s", i, first, j)
		}
	}
	// A later command changes the case; the old command's retry still gets
	// its first reply.
	if _, err := b.client.CaseClose(t.Context(), testGuild, command.CloseParams{Meta: meta(42), CaseRef: p.CaseRef}); err != nil {
		t.Fatal(err)
	}
	r, err := b.client.CaseUpdate(t.Context(), testGuild, p)
	if err != nil {
		t.Fatal(err)
	}
	if j, _ := json.Marshal(r); string(j) != string(first) {
		t.Fatalf("retry after a later change got:\n%s\nwant\n%s", j, first)
	}
	if got := b.msgCount(t); got != 4 {
		t.Fatalf("stream holds %d messages, want 4", got)
	}
}

func TestChangeConcurrentWritersOnOneCase(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.startService(t)
	opened := openTempban(t, b, testGuild)
	other := openTempban(t, b, testGuild)
	const notes = 60
	var wg sync.WaitGroup
	errs := make(chan error, notes)
	for i := range notes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ref := command.CaseRef{CaseNumber: opened.Case.CaseNumber}
			if i%3 == 0 {
				ref.CaseNumber = other.Case.CaseNumber
			}
			_, err := b.client.CaseAddNote(t.Context(), testGuild, command.AddNoteParams{Meta: meta(events.Snowflake(100 + i)), CaseRef: ref, Text: fmt.Sprintf("note %d", i)})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []uint32{opened.Case.CaseNumber, other.Case.CaseNumber} {
		evs := b.storedEvents(t, events.Subjects{}.CaseAll(testGuild, c))
		st, err := aggregate.Fold(evs)
		if err != nil {
			t.Fatal(err)
		}
		want := notes / 3
		if c == opened.Case.CaseNumber {
			want = notes - notes/3
		}
		if len(st.Notes) != want {
			t.Fatalf("case %d has %d notes, want %d", c, len(st.Notes), want)
		}
	}
}

func TestMarkExpiryProcessedOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	opened := openTempban(t, b, testGuild)
	ref := command.CaseRef{CaseNumber: opened.Case.CaseNumber}
	_, err := b.client.CaseMarkExpiryProcessed(t.Context(), testGuild, command.MarkExpiryProcessedParams{Meta: meta(42), CaseRef: ref})
	if !errors.Is(err, aggregate.ErrConflict) {
		t.Fatalf("before the expiry: err = %v, want conflict", err)
	}
	b.clock.Advance(25 * time.Hour)
	for i, want := range []int{1, 0} {
		r, err := b.client.CaseMarkExpiryProcessed(t.Context(), testGuild, command.MarkExpiryProcessedParams{Meta: meta(42), CaseRef: ref})
		if err != nil {
			t.Fatal(err)
		}
		if r.Appended != want || !r.Case.ExpiryProcessed || r.Case.ExpiryProcessedBy != 42 {
			t.Fatalf("mark %d: appended %d, case %+v", i, r.Appended, r.Case)
		}
	}
	_, err = b.client.CaseUpdate(t.Context(), testGuild, command.UpdateParams{Meta: meta(42), CaseRef: ref, ExpiresAt: command.SetTime(b.clock.Now().Add(time.Hour))})
	if !errors.Is(err, aggregate.ErrConflict) {
		t.Fatalf("change a processed expiry: err = %v, want conflict", err)
	}
}

func TestChangeCaseIDMustMatch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	opened := openTempban(t, b, testGuild)
	_, err := b.client.CaseClose(t.Context(), testGuild, command.CloseParams{Meta: meta(42),
		CaseRef: command.CaseRef{CaseNumber: opened.Case.CaseNumber, CaseID: uuid.Must(uuid.NewV7())}})
	if !errors.Is(err, aggregate.ErrConflict) {
		t.Fatalf("err = %v, want conflict", err)
	}
	if got := b.msgCount(t); got != 1 {
		t.Fatalf("stream holds %d messages, want 1", got)
	}
}
