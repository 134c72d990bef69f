package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/command"
	"github.com/modledger/modledger/events"
	"github.com/modledger/modledger/internal/testenv"
	"github.com/modledger/modledger/projection"
)

// roleProcess is one `modledger serve --roles R` process.
type roleProcess struct {
	role string
	cmd  *exec.Cmd
	done chan struct{}
}

func startRole(t *testing.T, bin, role string, env []string) *roleProcess {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--roles", role, "--log-level", "warn", "--metrics-addr", "")
	cmd.Env = env
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &roleProcess{role: role, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	return p
}

func (p *roleProcess) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// TestRolesKilledUnderLoad runs every role as its own process (two command
// services, two projectors, two schedulers, a query server), kills one at
// random with SIGKILL every few hundred milliseconds and starts it again,
// while bots open tempbans that expire during the run, close cases and read
// their writes. Afterwards: no acknowledged command is lost, the numbers are
// gapless, no event is applied twice to the read model, every expiry is
// emitted exactly once, and queries answer.
func TestRolesKilledUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("kills processes")
	}
	bin := buildBinary(t)
	nats := testenv.NATS(t)
	dsn := testenv.Postgres(t)
	env := append(slicesDeleteEnv(os.Environ(), "DATABASE_URL", "MODLEDGER_NATS_URL", "MODLEDGER_ROLES"),
		"MODLEDGER_NATS_URL="+nats.URL, "DATABASE_URL="+dsn)
	if out, err := exec.Command(bin, "migrate", "--database-url", dsn).CombinedOutput(); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	var mu sync.Mutex
	procs := []*roleProcess{}
	for _, role := range []string{"command", "command", "projector", "projector", "scheduler", "scheduler", "query"} {
		procs = append(procs, startRole(t, bin, role, env))
	}
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, p := range procs {
			p.kill()
		}
	})

	nc := nats.Conn(t)
	client, err := command.NewClient(nc)
	if err != nil {
		t.Fatal(err)
	}
	qc, err := projection.NewQueryClient(nc)
	if err != nil {
		t.Fatal(err)
	}
	const guilds = 3
	type acked struct {
		guild  events.Snowflake
		number uint32
		cmdID  uuid.UUID
	}
	var (
		ackMu             sync.Mutex
		got               []acked
		sent, retries     atomic.Int64
		reads, readErrors atomic.Int64
		stop              = make(chan struct{})
		wg                sync.WaitGroup
	)
	// do sends a command until it is answered, always with the same id. A
	// refusal is an answer: a tempban whose expiry passed while every
	// command service was down is refused, and appends nothing.
	var refused atomic.Int64
	do := func(send func(ctx context.Context) error) bool {
		for attempt := 0; attempt < 100; attempt++ {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			err := send(ctx)
			cancel()
			if err == nil {
				return true
			}
			if errors.Is(err, aggregate.ErrInvalidArgument) {
				refused.Add(1)
				return false
			}
			retries.Add(1)
			time.Sleep(50 * time.Millisecond)
		}
		t.Errorf("a command was never answered")
		return false
	}
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				guild := events.Snowflake(10 + (w+i)%guilds)
				exp := time.Now().Add(time.Duration(1000+rand.IntN(3000)) * time.Millisecond)
				p := command.OpenParams{Meta: command.Meta{CommandID: uuid.Must(uuid.NewV7())},
					CaseFields: events.CaseFields{Type: aggregate.TypeTempban, UserID: events.Snowflake(100 + w*1000 + i), ModeratorID: 7, ExpiresAt: &exp}}
				sent.Add(1)
				var r *command.Result
				if !do(func(ctx context.Context) (err error) { r, err = client.CaseOpen(ctx, guild, p); return err }) {
					continue
				}
				ackMu.Lock()
				got = append(got, acked{guild, r.Case.CaseNumber, p.CommandID})
				ackMu.Unlock()
				if i%3 == 0 { // close some before they expire
					cp := command.CloseParams{Meta: command.Meta{CommandID: uuid.Must(uuid.NewV7()), ActorID: 7}, CaseRef: command.CaseRef{CaseNumber: r.Case.CaseNumber}}
					do(func(ctx context.Context) error { _, err := client.CaseClose(ctx, guild, cp); return err })
				}
				// Read the write back, through whichever query server runs.
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, err := qc.CaseGet(ctx, guild, projection.CaseGetParams{QueryMeta: projection.QueryMeta{MinSeq: r.Seq}, CaseNumber: r.Case.CaseNumber})
				cancel()
				reads.Add(1)
				if err != nil {
					readErrors.Add(1)
				}
			}
		}()
	}
	start := time.Now()
	kills := map[string]int{}
	r := rand.New(rand.NewPCG(11, 11))
	for time.Since(start) < 8*time.Second {
		time.Sleep(time.Duration(200+r.IntN(400)) * time.Millisecond)
		mu.Lock()
		i := r.IntN(len(procs))
		procs[i].kill()
		kills[procs[i].role]++
		procs[i] = startRole(t, bin, procs[i].role, env)
		mu.Unlock()
	}
	close(stop)
	wg.Wait()
	loadTime := time.Since(start)

	// Let every expiry pass and be emitted, and the read model catch up.
	time.Sleep(4 * time.Second)
	js := nats.JetStream(t)
	stream, err := js.Stream(t.Context(), command.StreamNameDefault)
	if err != nil {
		t.Fatal(err)
	}
	codec, err := events.NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	subj := events.Subjects{Prefix: events.DefaultPrefix}
	type caseKey struct {
		guild  events.Snowflake
		number uint32
	}
	var evs map[caseKey][]events.Event
	var lastSeq uint64
	readStream := func() {
		evs = map[caseKey][]events.Event{}
		info, err := stream.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		lastSeq = info.State.LastSeq
		for seq := uint64(1); seq <= lastSeq; seq++ {
			m, err := stream.GetMsg(t.Context(), seq)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := subj.ParseCase(m.Subject); err != nil {
				continue
			}
			ev, err := codec.Decode(m.Data)
			if err != nil {
				t.Fatal(err)
			}
			ev.Seq = seq
			k := caseKey{ev.GuildID, ev.CaseNumber}
			evs[k] = append(evs[k], ev)
		}
	}
	// Every expiry of a case still active is emitted, once.
	testenv.Eventually(t, 30*time.Second, func() bool {
		readStream()
		for _, es := range evs {
			st, err := aggregate.Fold(es)
			if err != nil {
				t.Fatal(err)
			}
			if st.Status == aggregate.StatusActive && st.ExpiresAt != nil && st.ExpiredAt == nil {
				return false
			}
		}
		return true
	}, "not every expiry was emitted")
	expired := 0
	for k, es := range evs {
		n := 0
		for _, e := range es {
			if e.Data.EventName() == events.NameCaseExpired {
				n++
			}
		}
		if n > 1 {
			t.Fatalf("case %d of guild %d expired %d times", k.number, k.guild, n)
		}
		expired += n
	}
	// Acknowledged opens are there, numbers gapless, one case per command.
	for _, a := range got {
		es := evs[caseKey{a.guild, a.number}]
		if len(es) == 0 || es[0].CommandID != a.cmdID {
			t.Fatalf("acknowledged case %d of guild %d (command %s) is not in the stream", a.number, a.guild, a.cmdID)
		}
	}
	perGuild := map[events.Snowflake]int{}
	for k := range evs {
		perGuild[k.guild]++
	}
	for g, n := range perGuild {
		for i := uint32(1); i <= uint32(n); i++ {
			if _, ok := evs[caseKey{g, i}]; !ok {
				t.Fatalf("guild %d has %d cases but no case %d", g, n, i)
			}
		}
	}
	if len(evs) != len(got) {
		t.Fatalf("%d cases in the stream, %d acknowledged", len(evs), len(got))
	}
	// The read model holds each event once: per case, its event count and
	// version are the stream's; per guild, the statistics count each case
	// once.
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	testenv.Eventually(t, 60*time.Second, func() bool {
		var cp int64
		err := conn.QueryRow(t.Context(), `SELECT seq FROM modledger.checkpoint WHERE projection = 'cases'`).Scan(&cp)
		return err == nil && uint64(cp) >= lastSeq
	}, "the read model did not catch up")
	for k, es := range evs {
		var n, version int64
		if err := conn.QueryRow(t.Context(), `SELECT events, version FROM modledger.cases WHERE guild_id = $1 AND case_number = $2`,
			int64(k.guild), int64(k.number)).Scan(&n, &version); err != nil {
			t.Fatalf("case %d of guild %d: %v", k.number, k.guild, err)
		}
		if int(n) != len(es) || uint64(version) != es[len(es)-1].Seq {
			t.Fatalf("case %d of guild %d: read model has %d events at version %d, the stream %d at %d", k.number, k.guild, n, version, len(es), es[len(es)-1].Seq)
		}
	}
	for g, n := range perGuild {
		var total int64
		if err := conn.QueryRow(t.Context(), `SELECT total FROM modledger.stats_guild WHERE guild_id = $1`, int64(g)).Scan(&total); err != nil || int(total) != n {
			t.Fatalf("guild %d: statistics count %d cases (%v), the stream %d", g, total, err, n)
		}
	}
	// Queries answer once more.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if _, err := qc.CaseGet(ctx, got[0].guild, projection.CaseGetParams{CaseNumber: got[0].number}); err != nil {
		t.Fatalf("query after the run: %v", err)
	}
	var events_ int
	for _, es := range evs {
		events_ += len(es)
	}
	t.Logf("%s of load: %d opens sent, %d acknowledged, %d refused (expiry passed during an outage), %d in the stream (%d events, %d expiries, each once); %d failed attempts retried with their command id; %d reads, %d failed; kills %v",
		loadTime.Round(time.Millisecond), sent.Load(), len(got), refused.Load(), len(evs), events_, expired, retries.Load(), reads.Load(), readErrors.Load(), fmt.Sprint(kills))
}
