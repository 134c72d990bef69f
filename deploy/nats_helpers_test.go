package deploy_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/modledger/modledger/events"
	"github.com/modledger/modledger/internal/testenv"
)

// natsServer is a single JetStream server started from the shipped
// configuration of node nats-1, with bot users added by bot-user.sh.
type natsServer struct {
	url  string
	srv  *server.Server
	dir  string
	bots map[events.Snowflake]nkeys.KeyPair
}

// startNATS copies deploy/nats/*.conf into a temporary directory, adds one
// bot user per guild (printed by bot-user.sh, with extra consumer names),
// parses nats-1.conf and starts it as a single server: on a free port, with
// its store in a temporary directory, without cluster routes and monitoring.
// Accounts, users and permissions are the shipped ones.
func startNATS(t *testing.T, guilds ...events.Snowflake) *natsServer {
	t.Helper()
	dir := t.TempDir()
	files, err := filepath.Glob("nats/*.conf")
	if err != nil || len(files) == 0 {
		t.Fatalf("no NATS config files: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ns := &natsServer{dir: dir, bots: map[events.Snowflake]nkeys.KeyPair{}}
	var entries bytes.Buffer
	for _, g := range guilds {
		kp, err := nkeys.CreateUser()
		if err != nil {
			t.Fatal(err)
		}
		pub, _ := kp.PublicKey()
		ns.bots[g] = kp
		entries.Write(botUser(t, guildID(g), pub, "modlog"))
	}
	accounts := filepath.Join(dir, "accounts.conf")
	b, err := os.ReadFile(accounts)
	if err != nil {
		t.Fatal(err)
	}
	const marker = "      # end of bots\n"
	if !bytes.Contains(b, []byte(marker)) {
		t.Fatalf("accounts.conf has no line %q for bot-user.sh's entries", strings.TrimSpace(marker))
	}
	b = bytes.Replace(b, []byte(marker), append(entries.Bytes(), marker...), 1)
	if err := os.WriteFile(accounts, b, 0o600); err != nil {
		t.Fatal(err)
	}

	opts, err := server.ProcessConfigFile(filepath.Join(dir, "nats-1.conf"))
	if err != nil {
		t.Fatalf("parse nats-1.conf with %d bots: %v", len(guilds), err)
	}
	opts.Host, opts.Port = "127.0.0.1", -1
	opts.HTTPPort = 0
	opts.Cluster = server.ClusterOpts{}
	opts.Routes, opts.RoutesStr = nil, ""
	opts.StoreDir = t.TempDir()
	opts.NoSigs, opts.NoLog = true, true
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("start nats-server: %v", err)
	}
	srv.Start()
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not become ready")
	}
	ns.srv, ns.url = srv, srv.ClientURL()
	return ns
}

// botUser runs bot-user.sh and returns the user entry it prints.
func botUser(t *testing.T, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("sh", append([]string{"nats/bot-user.sh"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bot-user.sh %s: %v: %s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return out
}

// guildID is a guild's id as it appears in subjects.
func guildID(g events.Snowflake) string { return strconv.FormatUint(uint64(g), 10) }

// conn is a client connection that records the server's asynchronous
// errors, where permission violations arrive.
type conn struct {
	*nats.Conn
	mu       sync.Mutex
	errs     []string
	expected []string // violations the test provoked, lower case
}

// connectRole connects as one of the roles of accounts.conf.
func (ns *natsServer) connectRole(t *testing.T, role string, opts ...nats.Option) *conn {
	t.Helper()
	kp, ok := roleKeys[role]
	if !ok {
		t.Fatalf("no role %s", role)
	}
	return ns.connect(t, strings.ToLower(role), kp, opts...)
}

// connectBot connects as the bot of guild g, with the bot's inbox prefix.
func (ns *natsServer) connectBot(t *testing.T, g events.Snowflake, opts ...nats.Option) *conn {
	t.Helper()
	kp, ok := ns.bots[g]
	if !ok {
		t.Fatalf("no bot for guild %d", g)
	}
	opts = append([]nats.Option{nats.CustomInboxPrefix("_INBOX.bot." + guildID(g))}, opts...)
	return ns.connect(t, "bot_"+guildID(g), kp, opts...)
}

// connect authenticates with the seed in a file, as a deployed process does
// (MODLEDGER_NATS_NKEY).
func (ns *natsServer) connect(t *testing.T, name string, kp nkeys.KeyPair, opts ...nats.Option) *conn {
	t.Helper()
	seed, err := kp.Seed()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(ns.dir, name+".nk")
	if err := os.WriteFile(path, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	nkeyOpt, err := nats.NkeyOptionFromSeed(path)
	if err != nil {
		t.Fatal(err)
	}
	c := &conn{}
	all := append([]nats.Option{
		nkeyOpt,
		nats.Name(name + " " + t.Name()),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			c.mu.Lock()
			c.errs = append(c.errs, err.Error())
			c.mu.Unlock()
		}),
	}, opts...)
	nc, err := nats.Connect(ns.url, all...)
	if err != nil {
		t.Fatalf("connect as %s: %v", name, err)
	}
	t.Cleanup(nc.Close)
	c.Conn = nc
	return c
}

// violation waits for the server to report a permissions violation for op
// ("Publish" or "Subscription") on subject.
func (c *conn) violation(t *testing.T, op, subject string) {
	t.Helper()
	want := strings.ToLower(fmt.Sprintf("Permissions Violation for %s to %q", op, subject))
	c.mu.Lock()
	c.expected = append(c.expected, want)
	c.mu.Unlock()
	testenv.Eventually(t, 5*time.Second, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, e := range c.errs {
			if strings.Contains(strings.ToLower(e), want) {
				return true
			}
		}
		return false
	}, "no permissions violation for %s to %q; errors: %v", op, subject, c.errors())
}

// onlyExpectedErrors fails unless every error the server reported was a
// violation the test provoked: nothing the role needs was denied.
func (c *conn) onlyExpectedErrors(t *testing.T) {
	t.Helper()
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.errs {
		if !slices.ContainsFunc(c.expected, func(want string) bool { return strings.Contains(strings.ToLower(e), want) }) {
			t.Errorf("unexpected error on the connection: %s", e)
		}
	}
}

func (c *conn) errors() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.errs...)
}

// denyPublish publishes to subject and waits for the violation.
func (c *conn) denyPublish(t *testing.T, subject string) {
	t.Helper()
	if err := c.PublishRequest(subject, c.NewRespInbox(), []byte("{}")); err != nil {
		t.Fatalf("publish %s: %v", subject, err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	c.violation(t, "Publish", subject)
}

// denySubscribe subscribes to subject and waits for the violation.
func (c *conn) denySubscribe(t *testing.T, subject string) {
	t.Helper()
	sub, err := c.SubscribeSync(subject)
	if err != nil {
		t.Fatalf("subscribe %s: %v", subject, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	c.violation(t, "Subscription", subject)
}

// allowPublish sends a request to subject, where nobody listens: NATS
// answers "no responders" only to a publish it accepted.
func (c *conn) allowPublish(t *testing.T, subject string) {
	t.Helper()
	_, err := c.Request(subject, []byte("{}"), 5*time.Second)
	if err != nats.ErrNoResponders {
		t.Fatalf("request to %s: got %v, want no responders (an accepted publish)", subject, err)
	}
}
