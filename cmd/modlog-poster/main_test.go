package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/command"
	"github.com/modledger/modledger/events"
	"github.com/modledger/modledger/internal/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startPoster runs the poster until the returned stop is called.
func startPoster(t *testing.T, url string, out *syncBuffer) func() {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, config{natsURL: url, durable: "modlog-poster", channelID: 555, botID: 99}, out, testenv.Logger(t))
	}()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("poster: %v", err)
		}
	}
}

func TestPosterPostsEachCaseOnceAndLinksIt(t *testing.T) {
	env := testenv.NATS(t)
	svc, err := command.NewService(command.Config{Conn: env.Conn(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop(context.Background()) })
	client, err := command.NewClient(env.Conn(t))
	if err != nil {
		t.Fatal(err)
	}
	open := func(user events.Snowflake) *command.Result {
		r, err := client.CaseOpen(t.Context(), 1, command.OpenParams{CaseFields: events.CaseFields{
			Type: aggregate.TypeWarn, UserID: user, ModeratorID: 7, Reason: "spam"}})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for u := range 3 {
		open(events.Snowflake(10 + u))
	}
	var out syncBuffer
	stop := startPoster(t, env.URL, &out)
	js := env.JetStream(t)
	linked := func() int {
		s, err := js.Stream(t.Context(), command.StreamNameDefault)
		if err != nil {
			return -1
		}
		info, err := s.Info(t.Context(), jetstream.WithSubjectFilter("modledger.case.1.*.mod_log_linked"))
		if err != nil {
			return -1
		}
		n := 0
		for _, c := range info.State.Subjects {
			n += int(c)
		}
		return n
	}
	testenv.Eventually(t, 10*time.Second, func() bool { return linked() == 3 }, "cases not linked: %s", &out)
	stop()
	// A restart continues where the durable consumer stopped: nothing is
	// posted twice, the new case once.
	stop = startPoster(t, env.URL, &out)
	defer stop()
	r := open(20)
	testenv.Eventually(t, 10*time.Second, func() bool { return linked() == 4 }, "the new case was not linked")
	if n := strings.Count(out.String(), "#mod-log 555"); n != 4 {
		t.Fatalf("%d posts, want 4:\n%s", n, out.String())
	}
	if !strings.Contains(out.String(), "Case #4 WARN | user 20 | moderator 7 | spam") {
		t.Fatalf("post of case 4 missing:\n%s", out.String())
	}
	// The case shows where it was posted.
	got, err := client.CaseLinkModLog(t.Context(), 1, command.LinkModLogParams{
		Meta: command.Meta{ActorID: 99}, CaseRef: command.CaseRef{CaseNumber: r.Case.CaseNumber},
		ModLogMessageID: messageID(r.Case.CaseID), ModLogChannelID: 555})
	if err != nil || got.Appended != 0 || got.Case.ModLogMessageID != messageID(r.Case.CaseID) {
		t.Fatalf("the case is not linked to its post: %+v %v", got, err)
	}
}
