package command_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/command"
	"github.com/modledger/modledger/events"
	"github.com/modledger/modledger/internal/testenv"
)

// natsServerProcess is a nats-server binary, built from the module this
// repository depends on, run as its own process so that it can be killed.
type natsServerProcess struct {
	bin, conf string
	port      int
	cmd       *exec.Cmd
	done      chan struct{}
}

func buildNATSServer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "nats-server")
	cmd := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "github.com/nats-io/nats-server/v2")
	cmd.Dir = testenv.ModuleRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build nats-server: %v\n%s", err, out)
	}
	return bin
}

func newNATSServerProcess(t *testing.T, bin string) *natsServerProcess {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir := t.TempDir()
	conf := filepath.Join(dir, "nats.conf")
	body := fmt.Sprintf("listen: 127.0.0.1:%d\nserver_name: fault\njetstream {\n  store_dir: %q\n  sync_interval: always\n}\n", port, filepath.Join(dir, "js"))
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &natsServerProcess{bin: bin, conf: conf, port: port}
	p.start(t)
	t.Cleanup(p.kill)
	return p
}

func (p *natsServerProcess) url() string { return "nats://127.0.0.1:" + strconv.Itoa(p.port) }

func (p *natsServerProcess) start(t *testing.T) {
	t.Helper()
	p.cmd = exec.Command(p.bin, "-c", p.conf)
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(p.cmd, p.done)
	testenv.Eventually(t, 20*time.Second, func() bool {
		nc, err := nats.Connect(p.url())
		if err != nil {
			return false
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			return false
		}
		_, err = js.AccountInfo(t.Context())
		return err == nil
	}, "nats-server did not start")
}

// kill stops the server with SIGKILL: no flush, no goodbye.
func (p *natsServerProcess) kill() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// acked is a command that got a success reply.
type acked struct {
	guild  events.Snowflake
	number uint32
	caseID uuid.UUID
	cmdID  uuid.UUID
}

// TestNATSServerKilledUnderLoad opens cases from many clients while the NATS
// server is killed with SIGKILL and restarted on its store, three times. No
// acknowledged case is lost, numbers stay gapless and unique per guild, and
// clients that got errors retry with the same command id and get exactly
// one case.
func TestNATSServerKilledUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a nats-server")
	}
	srv := newNATSServerProcess(t, buildNATSServer(t))
	opts := []nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(50 * time.Millisecond), nats.ReconnectBufSize(-1)}
	svcConn, err := nats.Connect(srv.url(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer svcConn.Close()
	svc, err := command.NewService(command.Config{Conn: svcConn, Logger: testenv.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = svc.Stop(ctx)
	}()
	clientConn, err := nats.Connect(srv.url(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer clientConn.Close()
	client, err := command.NewClient(clientConn, command.WithAttemptTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}

	const clients, guilds = 8, 4
	var (
		mu                 sync.Mutex
		got                []acked
		sent, failed, lost atomic.Int64
		stop               = make(chan struct{})
		wg                 sync.WaitGroup
	)
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				guild := events.Snowflake(1 + (w+i)%guilds)
				p := command.OpenParams{Meta: command.Meta{CommandID: uuid.Must(uuid.NewV7())},
					CaseFields: events.CaseFields{Type: aggregate.TypeWarn, UserID: events.Snowflake(100 + w), ModeratorID: 7}}
				sent.Add(1)
				// Retry with the same command id until it is answered.
				deadline := time.Now().Add(60 * time.Second)
				for {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					r, err := client.CaseOpen(ctx, guild, p)
					cancel()
					if err == nil {
						mu.Lock()
						got = append(got, acked{guild, r.Case.CaseNumber, r.Case.CaseID, p.CommandID})
						mu.Unlock()
						break
					}
					failed.Add(1)
					if time.Now().After(deadline) || errors.Is(err, aggregate.ErrInvalidArgument) {
						lost.Add(1)
						t.Errorf("open %s never answered: %v", p.CommandID, err)
						break
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	start := time.Now()
	var recovery []time.Duration
	for range 3 {
		time.Sleep(700 * time.Millisecond)
		before := countAcked(&mu, &got)
		srv.kill()
		time.Sleep(100 * time.Millisecond)
		srv.start(t)
		restarted := time.Now()
		testenv.Eventually(t, 30*time.Second, func() bool { return countAcked(&mu, &got) > before }, "no command succeeded after the restart")
		recovery = append(recovery, time.Since(restarted))
	}
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	elapsed := time.Since(start)

	// Every acknowledged case is in the stream with its number and id; the
	// numbers of each guild are 1..n; each command made one case.
	js, err := jetstream.New(clientConn)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(t.Context(), command.StreamNameDefault)
	if err != nil {
		t.Fatal(err)
	}
	codec, err := events.NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	subj := events.Subjects{Prefix: events.DefaultPrefix}
	stored := map[events.Snowflake]map[uint32]events.Event{}
	byCommand := map[uuid.UUID]int{}
	last := stream.CachedInfo().State.LastSeq
	for seq := uint64(1); seq <= last; seq++ {
		m, err := stream.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatalf("seq %d: %v", seq, err)
		}
		if _, err := subj.ParseCase(m.Subject); err != nil {
			continue // a claim
		}
		ev, err := codec.Decode(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		if stored[ev.GuildID] == nil {
			stored[ev.GuildID] = map[uint32]events.Event{}
		}
		if _, dup := stored[ev.GuildID][ev.CaseNumber]; dup {
			t.Fatalf("guild %d: case %d opened twice", ev.GuildID, ev.CaseNumber)
		}
		stored[ev.GuildID][ev.CaseNumber] = ev
		byCommand[ev.CommandID]++
	}
	total := 0
	for g, cases := range stored {
		for n := uint32(1); n <= uint32(len(cases)); n++ {
			if _, ok := cases[n]; !ok {
				t.Fatalf("guild %d: %d cases but no case %d", g, len(cases), n)
			}
		}
		total += len(cases)
	}
	for _, a := range got {
		ev, ok := stored[a.guild][a.number]
		if !ok || ev.CaseID != a.caseID || ev.CommandID != a.cmdID {
			t.Fatalf("acknowledged case %d of guild %d (command %s) is not in the stream as answered", a.number, a.guild, a.cmdID)
		}
		if byCommand[a.cmdID] != 1 {
			t.Fatalf("command %s made %d cases", a.cmdID, byCommand[a.cmdID])
		}
	}
	if len(got) != total {
		t.Fatalf("%d cases acknowledged, %d in the stream", len(got), total)
	}
	t.Logf("%d opens sent in %s with 3 SIGKILLs of nats-server: %d acknowledged, %d found in the stream, %d failed attempts retried with their command id, %d lost; recovery after each restart %v",
		sent.Load(), elapsed.Round(time.Millisecond), len(got), total, failed.Load(), lost.Load(), recovery)
}

func countAcked(mu *sync.Mutex, got *[]acked) int {
	mu.Lock()
	defer mu.Unlock()
	return len(*got)
}
