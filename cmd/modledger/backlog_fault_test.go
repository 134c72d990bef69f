package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/command"
	"github.com/modledger/modledger/events"
	"github.com/modledger/modledger/internal/testenv"
)

// backlogLongEnv set to 1 makes TestBacklogAndStalledConsumersDoNotSlowCommands
// put a million events in the stream instead of a hundred thousand.
const backlogLongEnv = "MODLEDGER_LONG"

// raceBuild reports whether the test binary runs with the race detector.
func raceBuild() bool {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "-race" {
				return s.Value == "true"
			}
		}
	}
	return false
}

// latencies are one phase's command round trips.
type latencies struct {
	mu      sync.Mutex
	d       []time.Duration
	errs    []error
	elapsed time.Duration
}

func (l *latencies) add(d time.Duration, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.errs = append(l.errs, err)
		return
	}
	l.d = append(l.d, d)
}

// quantile returns the q-quantile (0 < q <= 1) of the round trips.
func (l *latencies) quantile(q float64) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return 0
	}
	s := slices.Clone(l.d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*q))]
}

func (l *latencies) String() string {
	l.mu.Lock()
	n, errs := len(l.d), len(l.errs)
	l.mu.Unlock()
	return fmt.Sprintf("%d commands in %s (%.0f/s), %d errors, p50 %s, p99 %s, max %s",
		n, l.elapsed.Round(time.Millisecond), float64(n)/l.elapsed.Seconds(), errs,
		l.quantile(0.5).Round(10*time.Microsecond), l.quantile(0.99).Round(10*time.Microsecond), l.quantile(1).Round(10*time.Microsecond))
}

// stalledCoreSubscriber subscribes to subject on a raw connection to the
// server at natsURL and then never reads from it: the server's writes to
// it back up as they would to a process that hangs.
func stalledCoreSubscriber(t *testing.T, natsURL, subject, name string) net.Conn {
	t.Helper()
	u, err := url.Parse(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	// Keep the socket's receive buffer small, so the server's side backs
	// up after little data rather than after the kernel's megabytes.
	_ = conn.(*net.TCPConn).SetReadBuffer(4096)
	r := bufio.NewReader(conn)
	if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "INFO ") {
		t.Fatalf("stalled subscriber: %q %v", line, err)
	}
	if _, err := fmt.Fprintf(conn, "CONNECT {\"verbose\":false,\"pedantic\":false,\"name\":%q}\r\nSUB %s 1\r\nPING\r\n", name, subject); err != nil {
		t.Fatal(err)
	}
	if line, err := r.ReadString('\n'); err != nil || line != "PONG\r\n" {
		t.Fatalf("stalled subscriber: %q %v", line, err)
	}
	return conn
}

// TestBacklogAndStalledConsumersDoNotSlowCommands measures durable commands
// (opens and reason changes from concurrent bots, each in its own guild,
// through command.Client and a command service on an embedded nats-server
// that syncs before it acknowledges) first with nothing else running, then
// while a projector (`modledger serve --roles projector`, its own process)
// catches up a backlog of 100,000 events (1,000,000 with MODLEDGER_LONG=1)
// put in the stream beforehand with open_many, beside a durable pull
// consumer stalled at max_ack_pending, an ordered consumer that is never
// read, and two core subscribers on modledger.case.> whose sockets are
// never read (one since before the backlog). Every command is
// acknowledged, case numbers are exact, the commands' p99 stays within
// max(10 x idle p99, 500ms), the projector catches up while the commands
// go on, and the read model converges to the stream.
func TestBacklogAndStalledConsumersDoNotSlowCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("loads a backlog of 100,000 events")
	}
	backlog := 100_000
	if os.Getenv(backlogLongEnv) == "1" {
		backlog = 1_000_000
	}
	const (
		bots        = 4
		idlePhase   = 4 * time.Second
		minBusy     = 5 * time.Second
		perOpenMany = command.MaxCasesPerBatch
	)
	maxBusy := 90 * time.Second
	if backlog > 100_000 {
		maxBusy = 10 * time.Minute
	}
	bin := buildBinary(t)
	nenv := testenv.NATS(t)
	dsn := testenv.Postgres(t)
	getenv := func(k string) string {
		switch k {
		case "DATABASE_URL":
			return dsn
		case "MODLEDGER_NATS_URL":
			return nenv.URL
		}
		return ""
	}
	var out, errOut syncBuffer
	if code := runWith(t.Context(), []string{"migrate"}, &out, &errOut, getenv); code != exitOK {
		t.Fatalf("migrate exited %d: %s", code, errOut.String())
	}
	svc, err := command.NewService(command.Config{Conn: nenv.Conn(t), Logger: testenv.Logger(t).With("component", "command")})
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
	client, err := command.NewClient(nenv.Conn(t))
	if err != nil {
		t.Fatal(err)
	}
	js := nenv.JetStream(t)
	stream, err := js.Stream(t.Context(), command.StreamNameDefault)
	if err != nil {
		t.Fatal(err)
	}

	// A core subscriber whose socket is never read, from before the
	// backlog: the backlog's events back up in the server for it.
	stalledCoreSubscriber(t, nenv.URL, "modledger.case.>", "stalled subscriber (since the backlog)")

	// The backlog: open_many of 1000 cases each, one guild a call, from
	// four loaders at once.
	loadStart := time.Now()
	calls := backlog / perOpenMany
	var next atomic.Int64
	var wg sync.WaitGroup
	loadErr := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(calls) {
					return
				}
				cases := make([]events.CaseFields, perOpenMany)
				for j := range cases {
					cases[j] = events.CaseFields{Type: aggregate.TypeBan, UserID: events.Snowflake(1_000_000 + j), ModeratorID: 7, Reason: "raid wave"}
				}
				ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
				r, err := client.CaseOpenMany(ctx, events.Snowflake(1_000_000+i), command.OpenManyParams{Cases: cases})
				cancel()
				if err == nil && r.Appended != perOpenMany {
					err = fmt.Errorf("open_many appended %d", r.Appended)
				}
				if err != nil {
					loadErr <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(loadErr)
	if err := <-loadErr; err != nil {
		t.Fatalf("load the backlog: %v", err)
	}
	loadTime := time.Since(loadStart)
	info, err := stream.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	head := info.State.LastSeq
	if info.State.Msgs != uint64(backlog) {
		t.Fatalf("the stream holds %d messages after the backlog, want %d", info.State.Msgs, backlog)
	}
	t.Logf("backlog: %d events by %d open_many in %s (%.0f events/s)", backlog, calls, loadTime.Round(time.Millisecond), float64(backlog)/loadTime.Seconds())

	// The bots: each opens a case in its own guild and changes its reason,
	// again and again, until stop; every number must follow the last.
	lastNumber := make([]uint32, bots)
	var numberErrs atomic.Int64
	runBots := func(l *latencies, until func() bool) {
		start := time.Now()
		var wg sync.WaitGroup
		for b := range bots {
			wg.Add(1)
			go func() {
				defer wg.Done()
				guild := events.Snowflake(10 + b)
				for i := 0; !until(); i++ {
					ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
					t0 := time.Now()
					r, err := client.CaseOpen(ctx, guild, command.OpenParams{CaseFields: events.CaseFields{
						Type: aggregate.TypeWarn, UserID: events.Snowflake(100 + i), ModeratorID: 7, Reason: "spam"}})
					l.add(time.Since(t0), err)
					if err == nil {
						if r.Case.CaseNumber != lastNumber[b]+1 {
							numberErrs.Add(1)
						}
						lastNumber[b] = r.Case.CaseNumber
						reason := fmt.Sprintf("spam, %d links", i)
						t0 = time.Now()
						u, err := client.CaseUpdate(ctx, guild, command.UpdateParams{Meta: command.Meta{ActorID: 7},
							CaseRef: command.CaseRef{CaseNumber: r.Case.CaseNumber}, Reason: &reason})
						l.add(time.Since(t0), err)
						if err == nil && (u.Appended != 1 || u.Case.Reason != reason) {
							numberErrs.Add(1)
						}
					}
					cancel()
				}
			}()
		}
		wg.Wait()
		l.elapsed = time.Since(start)
	}

	// (a) Nothing else runs.
	var idle latencies
	idleEnd := time.Now().Add(idlePhase)
	runBots(&idle, func() bool { return time.Now().After(idleEnd) })
	t.Logf("idle: %s", &idle)

	// The stalled consumers. A durable pull consumer that took its
	// max_ack_pending and acknowledges nothing:
	const maxAckPending = 1000
	durable, err := js.CreateOrUpdateConsumer(t.Context(), command.StreamNameDefault, jetstream.ConsumerConfig{
		Durable: "stalled_durable", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: maxAckPending, AckWait: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for got < maxAckPending {
		batch, err := durable.Fetch(maxAckPending-got, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for range batch.Messages() {
			got++
		}
	}
	// An ordered consumer over every case event that is never read past
	// the messages its client buffers:
	ordered, err := js.OrderedConsumer(t.Context(), command.StreamNameDefault, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"modledger.case.>"}})
	if err != nil {
		t.Fatal(err)
	}
	iter, err := ordered.Messages()
	if err != nil {
		t.Fatal(err)
	}
	defer iter.Stop()
	// A core subscriber whose socket is never read, from now on:
	stalledCoreSubscriber(t, nenv.URL, "modledger.case.>", "stalled subscriber")

	// (b) The projector catches up the backlog meanwhile.
	proj := exec.Command(bin, "serve", "--roles", "projector", "--log-level", "info", "--log-format", "text", "--metrics-addr", "")
	proj.Env = append(slicesDeleteEnv(os.Environ(), "DATABASE_URL", "MODLEDGER_NATS_URL", "MODLEDGER_ROLES"), "MODLEDGER_NATS_URL="+nenv.URL, "DATABASE_URL="+dsn)
	var projOut syncBuffer
	proj.Stdout, proj.Stderr = &projOut, &projOut
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	checkpoint := func() uint64 {
		var cp int64
		if err := conn.QueryRow(t.Context(), `SELECT seq FROM modledger.checkpoint WHERE projection = 'cases'`).Scan(&cp); err != nil {
			return 0
		}
		return uint64(cp)
	}
	projStart := time.Now()
	if err := proj.Start(); err != nil {
		t.Fatal(err)
	}
	projDone := make(chan struct{})
	go func() { _ = proj.Wait(); close(projDone) }()
	t.Cleanup(func() {
		_ = proj.Process.Signal(syscall.SIGTERM)
		select {
		case <-projDone:
		case <-time.After(20 * time.Second):
			_ = proj.Process.Kill()
			<-projDone
		}
	})
	var caughtUp atomic.Int64 // nanoseconds from the projector's start
	stopPoll := make(chan struct{})
	pollDone := make(chan struct{})
	go func() {
		defer close(pollDone)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopPoll:
				return
			case <-tick.C:
			}
			if checkpoint() >= head {
				caughtUp.Store(int64(time.Since(projStart)))
				return
			}
		}
	}()
	var busy latencies
	busyStart := time.Now()
	runBots(&busy, func() bool {
		select {
		case <-projDone:
			return true // the test fails below
		default:
		}
		since := time.Since(busyStart)
		return since > maxBusy || (since > minBusy && caughtUp.Load() > 0)
	})
	close(stopPoll)
	<-pollDone
	select {
	case <-projDone:
		t.Fatalf("the projector exited: %s", projOut.String())
	default:
	}
	t.Logf("while the projector catches up: %s", &busy)

	// Every command was acknowledged, numbers exact.
	for _, l := range []*latencies{&idle, &busy} {
		if len(l.errs) > 0 {
			t.Errorf("%d commands failed, the first: %v", len(l.errs), l.errs[0])
		}
	}
	if n := numberErrs.Load(); n > 0 {
		t.Errorf("%d replies with a case number out of order or a change not appended", n)
	}
	// Commands kept their pace: a consumer that held the publish path back
	// would show as seconds (a write deadline, an API timeout), not as the
	// milliseconds two busy cores add. The race detector slows this
	// process (the server and the command service) several times over.
	floor := 500 * time.Millisecond
	if raceBuild() {
		floor *= 4
	}
	bound := max(10*idle.quantile(0.99), floor)
	if p99 := busy.quantile(0.99); p99 > bound {
		t.Errorf("commands' p99 while the projector caught up and consumers stalled: %s, over %s (idle p99 %s)", p99, bound, idle.quantile(0.99))
	}
	// The stalled consumers are still stalled: they were not served at
	// the commands' expense, nor did they hold the commands back.
	dinfo, err := durable.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if dinfo.NumAckPending != maxAckPending {
		t.Errorf("stalled durable consumer: %d unacknowledged, want %d", dinfo.NumAckPending, maxAckPending)
	}
	varz, err := nenv.Server.Inner().Varz(&server.VarzOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// What the server holds for the subscriber that never reads, or why it
	// let it go.
	var stalledState []string
	connz, err := nenv.Server.Inner().Connz(&server.ConnzOptions{State: server.ConnAll})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range connz.Conns {
		if strings.HasPrefix(c.Name, "stalled subscriber") {
			if c.Reason != "" {
				stalledState = append(stalledState, fmt.Sprintf("%s: disconnected by the server (%s) after %d messages", c.Name, c.Reason, c.OutMsgs))
			} else {
				stalledState = append(stalledState, fmt.Sprintf("%s: connected, %d messages sent to it, %d bytes pending in the server", c.Name, c.OutMsgs, c.Pending))
			}
		}
	}

	// The read model converges: as many cases as the stream opened.
	info, err = stream.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	last := info.State.LastSeq
	testenv.Eventually(t, maxBusy+2*time.Minute, func() bool { return checkpoint() >= last }, "the projector did not reach sequence %d: %s", last, &projOut)
	converged := time.Since(projStart)
	opened, err := js.CreateConsumer(t.Context(), command.StreamNameDefault, jetstream.ConsumerConfig{
		FilterSubject: "modledger.case.*.*.opened", AckPolicy: jetstream.AckNonePolicy, InactiveThreshold: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	oinfo, err := opened.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	botOpens := 0
	for _, n := range lastNumber {
		botOpens += int(n)
	}
	var cases int64
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM modledger.cases`).Scan(&cases); err != nil {
		t.Fatal(err)
	}
	if want := uint64(backlog + botOpens); oinfo.NumPending != want || uint64(cases) != want {
		t.Errorf("cases: %d opened in the stream, %d in the read model, want %d (backlog %d, bots %d)", oinfo.NumPending, cases, want, backlog, botOpens)
	}
	rate := "not caught up while the bots ran"
	if caughtUp.Load() == 0 {
		t.Errorf("the projector did not catch up the backlog in %s while commands went on", maxBusy)
	}
	if ns := caughtUp.Load(); ns > 0 {
		d := time.Duration(ns)
		rate = fmt.Sprintf("caught up the backlog in %s (%.0f events/s)", d.Round(time.Millisecond), float64(head)/d.Seconds())
	}
	t.Logf("projector: %s; converged at sequence %d after %s; read model %d cases = stream", rate, last, converged.Round(time.Millisecond), cases)
	t.Logf("stalled: durable consumer %d unacknowledged (max_ack_pending %d, %d pending); core subscribers %s; server slow consumers %d; busy p99 %s against a bound of %s",
		dinfo.NumAckPending, maxAckPending, dinfo.NumPending, strings.Join(stalledState, "; "), varz.SlowConsumers, busy.quantile(0.99).Round(10*time.Microsecond), bound)
	t.Logf("projector log:\n%s", &projOut)
	if raceBuild() {
		t.Logf("race detector on: latencies are the race build's")
	}
}
