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
	"strings"
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

func buildNATSServer(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "nats-server")
	cmd := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "github.com/nats-io/nats-server/v2")
	cmd.Dir = testenv.ModuleRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build nats-server: %v\n%s", err, out)
	}
	return bin
}

// freePorts returns n ports free at the time of asking.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var out []int
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return out
}

// newNATSServerProcess runs a single server; cluster, when set, is the
// config's cluster block.
func newNATSServerProcess(t *testing.T, bin string) *natsServerProcess {
	t.Helper()
	p := configureNATSServer(t, bin, "fault", freePorts(t, 1)[0], "")
	p.start(t)
	return p
}

func configureNATSServer(t testing.TB, bin, name string, port int, cluster string) *natsServerProcess {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "nats.conf")
	body := fmt.Sprintf("listen: 127.0.0.1:%d\nserver_name: %s\njetstream {\n  store_dir: %q\n  sync_interval: always\n}\n%s", port, name, filepath.Join(dir, "js"), cluster)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &natsServerProcess{bin: bin, conf: conf, port: port}
	t.Cleanup(p.kill)
	return p
}

func (p *natsServerProcess) url() string { return "nats://127.0.0.1:" + strconv.Itoa(p.port) }

func (p *natsServerProcess) start(t testing.TB) {
	t.Helper()
	p.launch(t)
	p.waitReady(t)
}

// launch starts the process without waiting for it.
func (p *natsServerProcess) launch(t testing.TB) {
	t.Helper()
	p.cmd = exec.Command(p.bin, "-c", p.conf)
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(p.cmd, p.done)
}

// waitReady waits until JetStream answers through the server.
func (p *natsServerProcess) waitReady(t testing.TB) {
	t.Helper()
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
	openLoadUnderFaults(t, srv.url(), 1, "3 SIGKILLs of nats-server", func() time.Time {
		srv.kill()
		time.Sleep(100 * time.Millisecond)
		srv.start(t)
		return time.Now()
	})
}

// TestClusterNodeKilledUnderLoad runs three nats-server processes as a
// JetStream cluster with the ledger's stream on R3, and kills the node that
// leads the stream with SIGKILL three times under load, restarting it each
// time: leader changes surface as retries, and nothing acknowledged is
// lost.
func TestClusterNodeKilledUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills nats-servers")
	}
	bin := buildNATSServer(t)
	ports := freePorts(t, 6)
	var routes []string
	for i := range 3 {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", ports[3+i]))
	}
	nodes := make([]*natsServerProcess, 3)
	var urls []string
	for i := range nodes {
		cluster := fmt.Sprintf("cluster {\n  name: ledger\n  listen: 127.0.0.1:%d\n  routes: [%s]\n}\n", ports[3+i], strings.Join(routes, ", "))
		nodes[i] = configureNATSServer(t, bin, fmt.Sprintf("n%d", i+1), ports[i], cluster)
		nodes[i].launch(t)
		urls = append(urls, nodes[i].url())
	}
	for _, n := range nodes {
		n.waitReady(t)
	}
	url := strings.Join(urls, ",")
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	openLoadUnderFaults(t, url, 3, "3 SIGKILLs of the stream's leader in a 3-node cluster (R3)", func() time.Time {
		// Kill whichever node leads the stream now.
		var leader string
		testenv.Eventually(t, 30*time.Second, func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			s, err := js.Stream(ctx, command.StreamNameDefault)
			if err != nil || s.CachedInfo().Cluster == nil {
				return false
			}
			leader = s.CachedInfo().Cluster.Leader
			return leader != ""
		}, "the stream has no leader")
		for i, n := range nodes {
			if fmt.Sprintf("n%d", i+1) == leader {
				n.kill()
				time.Sleep(time.Second)
				n.launch(t)
				n.waitReady(t)
			}
		}
		return time.Now()
	})
}

// openLoadUnderFaults opens cases from 8 clients in 4 guilds through a
// command service on url while fault runs three times (it returns when the
// system is whole again), then checks that every acknowledged case is in
// the stream as answered, that each guild's numbers are 1..n, and that each
// command made one case.
func openLoadUnderFaults(t *testing.T, url string, replicas int, what string, fault func() time.Time) {
	t.Helper()
	opts := []nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(50 * time.Millisecond), nats.ReconnectBufSize(-1)}
	svcConn, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer svcConn.Close()
	svc, err := command.NewService(command.Config{Conn: svcConn, Logger: testenv.Logger(t),
		Stream: command.StreamConfig{Replicas: replicas}})
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
	clientConn, err := nats.Connect(url, opts...)
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
		restarted := fault()
		testenv.Eventually(t, 30*time.Second, func() bool { return countAcked(&mu, &got) > before }, "no command succeeded after the fault")
		recovery = append(recovery, time.Since(restarted).Round(time.Millisecond))
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
	t.Logf("%d opens sent in %s with %s: %d acknowledged, %d found in the stream, %d failed attempts retried with their command id, %d lost; first success after each restart %v",
		sent.Load(), elapsed.Round(time.Millisecond), what, len(got), total, failed.Load(), lost.Load(), recovery)
}

func countAcked(mu *sync.Mutex, got *[]acked) int {
	mu.Lock()
	defer mu.Unlock()
	return len(*got)
}
