package scheduler_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/command"
	"github.com/modledger/modledger/events"
	"github.com/modledger/modledger/internal/scheduler"
	"github.com/modledger/modledger/internal/testenv"
	"github.com/modledger/modledger/projection"
)

type bundle struct {
	env    *testenv.NATSEnv
	js     jetstream.JetStream
	client *command.Client
	dsn    string
	pool   *pgxpool.Pool
	store  *projection.Store
}

// setup starts NATS, a command service on the real clock, a migrated read
// model and a projector.
func setup(t *testing.T) *bundle {
	t.Helper()
	env := testenv.NATS(t)
	b := &bundle{env: env, js: env.JetStream(t), dsn: testenv.Postgres(t)}
	svc, err := command.NewService(command.Config{Conn: env.Conn(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop(context.Background()) })
	if b.client, err = command.NewClient(env.Conn(t)); err != nil {
		t.Fatal(err)
	}
	if b.pool, err = pgxpool.New(t.Context(), b.dsn); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.pool.Close)
	if b.store, err = projection.NewStore(b.pool, projection.SchemaDefault); err != nil {
		t.Fatal(err)
	}
	if err := b.store.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	p, err := projection.NewProjector(projection.ProjectorConfig{JetStream: b.js, Store: b.store, Projection: projection.NewCasesProjection(nil), Logger: testenv.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop(context.Background()) })
	return b
}

// child is a scheduler in a child process.
type child struct {
	cmd     *exec.Cmd
	leading chan struct{}
	done    chan error
}

func (b *bundle) spawn(t *testing.T) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChildNATS+"="+b.env.URL, envChildDSN+"="+b.dsn)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, leading: make(chan struct{}), done: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == "leading" {
				close(c.leading)
			}
		}
		c.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-c.done
	})
	return c
}

func TestEveryExpiryOnceAndOnTimeWithTwoSchedulersOneKilled(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const n = 1000
	base := time.Now().Add(3 * time.Second)
	spread := 4 * time.Second
	p := command.OpenManyParams{Meta: command.Meta{CommandID: uuid.Must(uuid.NewV7()), ActorID: 9}}
	for i := range n {
		exp := base.Add(spread * time.Duration(i) / n)
		p.Cases = append(p.Cases, events.CaseFields{Type: aggregate.TypeTempban, UserID: events.Snowflake(1 + i), ModeratorID: 9, ExpiresAt: &exp})
	}
	opened, err := b.client.CaseOpenMany(t.Context(), 1, p)
	if err != nil {
		t.Fatal(err)
	}
	a := b.spawn(t)
	select {
	case <-a.leading:
	case <-time.After(10 * time.Second):
		t.Fatal("the first scheduler did not take the lead")
	}
	standby := b.spawn(t)
	// Kill the leader in the middle of the expiries; the standby takes over.
	time.Sleep(time.Until(base.Add(spread / 2)))
	_ = a.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-standby.leading:
	case <-time.After(10 * time.Second):
		t.Fatal("the standby did not take over")
	}
	expiredCount := func() int {
		var expired int
		_ = b.pool.QueryRow(context.Background(), `SELECT count(*) FROM modledger.cases WHERE expired_at IS NOT NULL`).Scan(&expired)
		return expired
	}
	deadline := time.Now().Add(30 * time.Second)
	for expiredCount() != n {
		if time.Now().After(deadline) {
			var cp int64
			_ = b.pool.QueryRow(context.Background(), `SELECT seq FROM modledger.checkpoint`).Scan(&cp)
			s, _ := b.js.Stream(context.Background(), command.StreamNameDefault)
			info, _ := s.Info(context.Background(), jetstream.WithSubjectFilter("modledger.case.1.*.expired"))
			var inStream uint64
			for _, c := range info.State.Subjects {
				inStream += c
			}
			t.Fatalf("after 30s %d of %d cases expired in the read model (checkpoint %d, stream last %d); %d expired events in the stream",
				expiredCount(), n, cp, info.State.LastSeq, inStream)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Every case has exactly one CaseExpired, within a second of its time.
	codec, _ := events.NewCodec()
	cons, err := b.js.OrderedConsumer(t.Context(), command.StreamNameDefault, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{"modledger.case.1.*.expired"}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[uint32]int{}
	var worst time.Duration
	for len(got) < n {
		batch, err := cons.Fetch(n, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		fetched := 0
		for m := range batch.Messages() {
			fetched++
			e, err := codec.Decode(m.Data())
			if err != nil {
				t.Fatal(err)
			}
			got[e.CaseNumber]++
			late := e.OccurredAt.Sub(e.Data.(events.CaseExpired).ExpiresAt)
			worst = max(worst, late)
			if late < 0 || late > time.Second {
				t.Errorf("case %d expired %s after its time", e.CaseNumber, late)
			}
		}
		if fetched == 0 {
			break
		}
	}
	for _, c := range opened.Cases {
		if got[c.CaseNumber] != 1 {
			t.Fatalf("case %d has %d expired events, want 1", c.CaseNumber, got[c.CaseNumber])
		}
	}
	t.Logf("%d cases expired once each; the latest was %s late", n, worst)
}

func TestChangesBeforeTheExpiryMoveOrCancelIt(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s, err := scheduler.New(scheduler.Config{Store: b.store, Expire: scheduler.CommandExpirer(b.client, scheduler.SystemActorDefault),
		Logger: testenv.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop(context.Background()) })

	open := func(d time.Duration) *command.Result {
		exp := time.Now().Add(d)
		r, err := b.client.CaseOpen(t.Context(), 2, command.OpenParams{CaseFields: events.CaseFields{
			Type: aggregate.TypeTempban, UserID: 5, ModeratorID: 9, ExpiresAt: &exp}})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	meta := func() command.Meta { return command.Meta{CommandID: uuid.Must(uuid.NewV7()), ActorID: 9} }
	extended, shortened, closed, deleted, processed := open(2*time.Second), open(2*time.Second), open(2*time.Second), open(2*time.Second), open(time.Second)
	newLate := time.Now().Add(3 * time.Second)
	newEarly := time.Now().Add(500 * time.Millisecond)
	ref := func(r *command.Result) command.CaseRef { return command.CaseRef{CaseNumber: r.Case.CaseNumber} }
	steps := []error{
		func() error {
			_, err := b.client.CaseUpdate(t.Context(), 2, command.UpdateParams{Meta: meta(), CaseRef: ref(extended), ExpiresAt: command.SetTime(newLate)})
			return err
		}(),
		func() error {
			_, err := b.client.CaseUpdate(t.Context(), 2, command.UpdateParams{Meta: meta(), CaseRef: ref(shortened), ExpiresAt: command.SetTime(newEarly)})
			return err
		}(),
		func() error {
			_, err := b.client.CaseClose(t.Context(), 2, command.CloseParams{Meta: meta(), CaseRef: ref(closed)})
			return err
		}(),
		func() error {
			_, err := b.client.CaseDelete(t.Context(), 2, command.DeleteParams{Meta: meta(), CaseRef: ref(deleted)})
			return err
		}(),
	}
	for i, err := range steps {
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	// The bot lifts the last one's restriction once it expired, twice.
	expiredAt := func(r *command.Result) *time.Time {
		var at *time.Time
		_ = b.pool.QueryRow(context.Background(), `SELECT expired_at FROM modledger.cases WHERE guild_id = 2 AND case_number = $1`, r.Case.CaseNumber).Scan(&at)
		return at
	}
	testenv.Eventually(t, 10*time.Second, func() bool { return expiredAt(processed) != nil }, "case did not expire")
	for i := range 2 {
		r, err := b.client.CaseMarkExpiryProcessed(t.Context(), 2, command.MarkExpiryProcessedParams{Meta: meta(), CaseRef: ref(processed)})
		if err != nil || r.Appended != 1-i {
			t.Fatalf("mark processed %d: %+v %v", i, r, err)
		}
	}
	testenv.Eventually(t, 10*time.Second, func() bool { return expiredAt(extended) != nil }, "the extended case did not expire")
	if at := expiredAt(extended); at.Before(newLate) {
		t.Fatalf("the extended case expired at %s, before its new expiry %s", at, newLate)
	}
	if at := expiredAt(shortened); at == nil || at.Before(newEarly) || at.After(newEarly.Add(time.Second)) {
		t.Fatalf("the shortened case expired at %v, want within a second after %s", at, newEarly)
	}
	if expiredAt(closed) != nil || expiredAt(deleted) != nil {
		t.Fatal("a closed or deleted case expired")
	}
	// Each case has at most one expired event, and the history shows it.
	evs := streamCaseEvents(t, b, 2)
	per := map[uint32]int{}
	for _, e := range evs {
		if e.Event == events.NameCaseExpired {
			per[e.CaseNumber]++
		}
	}
	for _, r := range []*command.Result{extended, shortened, processed} {
		if per[r.Case.CaseNumber] != 1 {
			t.Fatalf("case %d has %d expired events", r.Case.CaseNumber, per[r.Case.CaseNumber])
		}
	}
	if per[closed.Case.CaseNumber]+per[deleted.Case.CaseNumber] != 0 {
		t.Fatal("a closed or deleted case has an expired event")
	}
}

// streamCaseEvents reads every event of a guild from the stream.
func streamCaseEvents(t *testing.T, b *bundle, guild events.Snowflake) []events.Event {
	t.Helper()
	codec, _ := events.NewCodec()
	cons, err := b.js.OrderedConsumer(t.Context(), command.StreamNameDefault, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{events.Subjects{}.Guild(guild)}})
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out []events.Event
	for uint64(len(out)) < info.NumPending {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			e, err := codec.Decode(m.Data())
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, e)
		}
	}
	return out
}

// A scheduler that starts (or takes over) with many expiries already due
// fires them all, with few workers.
func TestBacklogOfDueExpiriesWithFewWorkers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const n = 300
	exp := time.Now().Add(500 * time.Millisecond)
	p := command.OpenManyParams{Meta: command.Meta{CommandID: uuid.Must(uuid.NewV7()), ActorID: 9}}
	for i := range n {
		p.Cases = append(p.Cases, events.CaseFields{Type: aggregate.TypeTempban, UserID: events.Snowflake(1 + i), ModeratorID: 9, ExpiresAt: &exp})
	}
	if _, err := b.client.CaseOpenMany(t.Context(), 3, p); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(exp.Add(100 * time.Millisecond)))
	s, err := scheduler.New(scheduler.Config{Store: b.store, Expire: scheduler.CommandExpirer(b.client, scheduler.SystemActorDefault),
		Workers: 2, Logger: testenv.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop(context.Background()) })
	testenv.Eventually(t, 30*time.Second, func() bool {
		var expired int
		err := b.pool.QueryRow(context.Background(), `SELECT count(*) FROM modledger.cases WHERE guild_id = 3 AND expired_at IS NOT NULL`).Scan(&expired)
		return err == nil && expired == n
	}, "the backlog of due expiries was not worked off")
}
