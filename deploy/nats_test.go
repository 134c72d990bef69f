package deploy_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/modledger/modledger/command"
	"github.com/modledger/modledger/events"
	"github.com/modledger/modledger/events/shred"
	"github.com/modledger/modledger/events/subscription"
	"github.com/modledger/modledger/internal/testenv"
	"github.com/modledger/modledger/projection"
)

// Every node's file parses with the server library and has the settings the
// ledger relies on: JetStream with sync_interval always, a 3-node cluster,
// and the accounts and users of accounts.conf.
func TestNATSConfigParses(t *testing.T) {
	t.Parallel()
	pubs := map[string]string{}
	for _, role := range natsRoles {
		pub, _ := roleKeys[role].PublicKey()
		pubs[pub] = role
	}
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("nats-%d", i)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			opts, err := server.ProcessConfigFile(filepath.Join("nats", name+".conf"))
			if err != nil {
				t.Fatal(err)
			}
			check := func(what string, got, want any) {
				t.Helper()
				if got != want {
					t.Errorf("%s: got %v, want %v", what, got, want)
				}
			}
			check("server_name", opts.ServerName, name)
			check("port", opts.Port, 4221+i)
			check("cluster port", opts.Cluster.Port, 6221+i)
			check("monitor port", opts.HTTPPort, 8221+i)
			check("cluster name", opts.Cluster.Name, "modledger")
			check("routes", len(opts.Routes), 3)
			check("jetstream", opts.JetStream, true)
			check("sync_interval always", opts.SyncAlways, true)
			check("store_dir", opts.StoreDir, "/var/lib/nats/"+name)
			check("max_payload", opts.MaxPayload, int32(1<<20))
			check("system_account", opts.SystemAccount, "SYS")
			check("users", len(opts.Nkeys), len(natsRoles))
			for _, u := range opts.Nkeys {
				role, ok := pubs[u.Nkey]
				if !ok {
					t.Errorf("user %s: not one of the test's role keys", u.Nkey)
					continue
				}
				wantAcc := "LEDGER"
				if role == "SYS" {
					wantAcc = "SYS"
				}
				if u.Account == nil || u.Account.Name != wantAcc {
					t.Errorf("role %s: account %v, want %s", role, u.Account, wantAcc)
				}
				if role != "SYS" && (u.Permissions == nil || u.Permissions.Publish == nil || u.Permissions.Subscribe == nil) {
					t.Errorf("role %s: publish and subscribe permissions must both be set (an absent one allows everything)", role)
				}
			}
		})
	}
}

// bot-user.sh refuses what would widen a bot's permissions.
func TestBotUserScriptRejectsBadInput(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{},
		{"1128457362048573440"},
		{"*", "UABC"},
		{">", "UABC"},
		{"1128457362048573440.>", "UABC"},
		{"0123", "UABC"},
		{"1128457362048573440", "SUABC"},
		{"1128457362048573440", "UABC", "a.b"},
		{"1128457362048573440", "UABC", "*"},
	} {
		out, err := runBotUser(args...)
		if err == nil {
			t.Errorf("bot-user.sh %q: succeeded, printed %s", args, out)
		}
	}
}

// The shipped permissions, role by role, against a real server: every
// service runs as its own user, a bot opens a case in its guild and reads it
// back, and each rule docs/security.md lists as allowed or denied is tried.
func TestNATSRoles(t *testing.T) {
	t.Parallel()
	const (
		g1 events.Snowflake = 1128457362048573440
		g2 events.Snowflake = 613425648685547541
	)
	ns := startNATS(t, g1, g2)
	ctx := t.Context()
	logger := testenv.Logger(t)

	// The command service creates the stream and answers commands.
	cmdConn := ns.connectRole(t, "COMMAND")
	svc, err := command.NewService(command.Config{Conn: cmdConn.Conn, Logger: logger.With("role", "command")})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		t.Fatalf("command service as the command user: %v", err)
	}
	t.Cleanup(func() { _ = svc.Stop(context.Background()) })

	// The read side. PostgreSQL's own roles are TestPostgresRoles's; here
	// the database user is the test's.
	pool := testenv.PostgresPool(t)
	store, err := projection.NewStore(pool, projection.SchemaDefault)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Activate(ctx, projection.NewCasesProjection(nil)); err != nil {
		t.Fatal(err)
	}
	projConn := ns.connectRole(t, "PROJECTOR")
	projJS, err := jetstream.New(projConn.Conn)
	if err != nil {
		t.Fatal(err)
	}
	pr, err := projection.NewProjector(projection.ProjectorConfig{JetStream: projJS, Store: store,
		Projection: projection.NewCasesProjection(nil), IdleWait: 50 * time.Millisecond, Logger: logger.With("role", "projector")})
	if err != nil {
		t.Fatal(err)
	}
	if err := pr.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pr.Stop(context.Background()) })
	queryConn := ns.connectRole(t, "QUERY")
	queries, err := projection.NewQueries(pool, projection.SchemaDefault, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(queries.Close)
	qs, err := projection.NewQueryService(projection.QueryServiceConfig{Conn: queryConn.Conn, Queries: queries, Store: store,
		Logger: logger.With("role", "query")})
	if err != nil {
		t.Fatal(err)
	}
	if err := qs.Start(ctx); err != nil {
		t.Fatalf("query service as the query user: %v", err)
	}
	t.Cleanup(func() { _ = qs.Stop(context.Background()) })

	warn := func(reason string) command.OpenParams {
		return command.OpenParams{CaseFields: events.CaseFields{Type: "WARN", UserID: 934871256019738654,
			ModeratorID: 272937604339466240, Reason: reason}}
	}
	// The other guild's bot has a case too, which guild 1's bot must not see.
	bot2 := ns.connectBot(t, g2)
	client2, err := command.NewClient(bot2.Conn, command.WithoutRetries())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client2.CaseOpen(ctx, g2, warn("guild 2's own business")); err != nil {
		t.Fatalf("bot of guild 2 opens a case in guild 2: %v", err)
	}
	// And guild 1 has one from before its bot subscribes.
	client1, err := command.NewClient(ns.connectBot(t, g1).Conn, command.WithoutRetries())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client1.CaseOpen(ctx, g1, warn("an earlier case")); err != nil {
		t.Fatalf("bot of guild 1 opens a case in guild 1: %v", err)
	}

	t.Run("bot", func(t *testing.T) {
		bot := ns.connectBot(t, g1)
		client, err := command.NewClient(bot.Conn, command.WithoutRetries())
		if err != nil {
			t.Fatal(err)
		}
		qc, err := projection.NewQueryClient(bot.Conn)
		if err != nil {
			t.Fatal(err)
		}
		js, err := jetstream.New(bot.Conn)
		if err != nil {
			t.Fatal(err)
		}

		// Allowed: its guild's events live on a core subscription, and from
		// the beginning through its durable consumers, acknowledged.
		live, err := bot.SubscribeSync(events.Subjects{}.Guild(g1))
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan events.Event, 16)
		for _, sc := range []subscription.Config{
			{Durable: "bot_" + guildID(g1), Filter: subscription.Filter{Guild: g1}, Start: subscription.StartBeginning()},
			{Durable: "bot_" + guildID(g1) + "_modlog", Filter: subscription.Filter{Guild: g1, Events: []events.Name{events.NameCaseOpened}},
				Start: subscription.StartBeginning()},
		} {
			sc.Logger = logger
			sub, err := subscription.Subscribe(ctx, js, sc, func(_ context.Context, e events.Event) error {
				got <- e
				return nil
			})
			if err != nil {
				t.Fatalf("bot subscribes with durable %s: %v", sc.Durable, err)
			}
			t.Cleanup(func() { _ = sub.Stop(context.Background()) })
		}

		// Allowed: a command in its guild, and a query that reads it back.
		res, err := client.CaseOpen(ctx, g1, warn("be nice"))
		if err != nil {
			t.Fatalf("bot opens a case in its guild: %v", err)
		}
		read, err := qc.CaseGet(ctx, g1, projection.CaseGetParams{QueryMeta: projection.QueryMeta{MinSeq: res.Seq},
			CaseNumber: res.Case.CaseNumber})
		if err != nil {
			t.Fatalf("bot queries its case: %v", err)
		}
		if read.Case.CaseID != res.Case.CaseID || read.Case.Reason != "be nice" {
			t.Fatalf("query read case %s with reason %q, opened %s (the projector opens sealed text with the key)",
				read.Case.CaseID, read.Case.Reason, res.Case.CaseID)
		}
		// A set command: the command service asks the query service for the
		// case numbers, as its own user.
		set, err := client.CaseCloseMany(ctx, g1, command.CloseManyParams{SetParams: command.SetParams{
			Meta: command.Meta{ActorID: 272937604339466240}, All: true, DryRun: true}})
		if err != nil || set.Matched != 2 {
			t.Fatalf("bot closes every case of its guild (dry run): %+v, %v", set, err)
		}
		if m, err := live.NextMsg(5 * time.Second); err != nil || m.Subject != (events.Subjects{}).Case(g1, res.Case.CaseNumber, events.NameCaseOpened) {
			t.Fatalf("core subscription on its guild: %v, %v", m, err)
		}
		// Both consumers deliver the earlier case and the new one, and
		// nothing of guild 2; the bot opens the sealed reason with the
		// case's key (a direct get on the key stream).
		var caseKey uuid.UUID
		for seen := 0; seen < 2; {
			select {
			case e := <-got:
				if e.GuildID != g1 {
					t.Fatalf("durable consumer delivered guild %d case %s", e.GuildID, e.CaseID)
				}
				if e.CaseID == res.Case.CaseID {
					if op, ok := e.Data.(events.CaseOpened); !ok || op.Reason != "be nice" || e.KeyID == uuid.Nil {
						t.Fatalf("the bot's consumer delivered %+v (key %s)", e.Data, e.KeyID)
					}
					caseKey = e.KeyID
					seen++
				}
			case <-time.After(5 * time.Second):
				t.Fatal("durable consumers did not deliver the new case")
			}
		}

		// Denied: another guild's commands and queries.
		short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		_, err = client.CaseOpen(short, g2, warn("not my guild"))
		cancel()
		if err == nil {
			t.Fatal("bot opened a case in another guild")
		}
		bot.violation(t, "Publish", "modledger.cmd."+guildID(g2)+".open")
		short, cancel = context.WithTimeout(ctx, 300*time.Millisecond)
		_, err = qc.CaseGet(short, g2, projection.CaseGetParams{CaseNumber: 1})
		cancel()
		if err == nil {
			t.Fatal("bot queried another guild")
		}
		bot.violation(t, "Publish", "modledger.query."+guildID(g2)+".case_get")

		// Allowed: a redaction, after which the command service (as its
		// own user) has destroyed the case's key.
		if _, err := client.CaseRedact(ctx, g1, command.RedactParams{Meta: command.Meta{ActorID: 272937604339466240},
			CaseRef: command.CaseRef{CaseNumber: res.Case.CaseNumber}}); err != nil {
			t.Fatalf("bot redacts a case: %v", err)
		}
		fresh, err := shred.NewStore(shred.Config{Conn: bot.Conn, Stream: "MODLEDGER_KEYS"})
		if err != nil {
			t.Fatal(err)
		}
		if k, err := fresh.Get(ctx, caseKey); err != nil || k != nil {
			t.Fatalf("the redacted case's key read as %v, %v; want it gone", k, err)
		}

		// Denied: the scheduler's command, writing events or claims
		// directly, managing or reading the stream directly, writing or
		// deleting data keys, managing the key stream.
		for _, subj := range []string{
			"modledger.key.x",
			"$JS.API.STREAM.MSG.DELETE.MODLEDGER_KEYS",
			"$JS.API.STREAM.PURGE.MODLEDGER_KEYS",
			"$JS.API.STREAM.DELETE.MODLEDGER_KEYS",
			"$JS.API.STREAM.UPDATE.MODLEDGER_KEYS",
			"$JS.API.STREAM.MSG.GET.MODLEDGER_KEYS",
			"modledger.cmd." + guildID(g1) + ".expire",
			"modledger.case." + guildID(g1) + ".1.opened",
			"modledger.claim." + guildID(g1) + ".external_id.x",
			"$JS.API.STREAM.DELETE.MODLEDGER",
			"$JS.API.STREAM.PURGE.MODLEDGER",
			"$JS.API.STREAM.UPDATE.MODLEDGER",
			"$JS.API.STREAM.MSG.DELETE.MODLEDGER",
			"$JS.API.DIRECT.GET.MODLEDGER",
			"$JS.API.STREAM.MSG.GET.MODLEDGER",
			"$JS.API.CONSUMER.MSG.NEXT.MODLEDGER." + projection.ConsumerName(projection.CasesName),
			"$JS.API.CONSUMER.DELETE.MODLEDGER." + projection.ConsumerName(projection.CasesName),
			"$JS.API.CONSUMER.MSG.NEXT.MODLEDGER.bot_" + guildID(g2),
		} {
			bot.denyPublish(t, subj)
		}

		// Denied: other guilds' events, every event, other users' replies.
		for _, subj := range []string{
			events.Subjects{}.Guild(g2),
			"modledger.case.>",
			"modledger.case.*.*.opened",
			"_INBOX.>",
			"modledger.cmd." + guildID(g1) + ".open",
		} {
			bot.denySubscribe(t, subj)
		}

		// Denied: a consumer whose filter reaches beyond its guild, or one of
		// another name.
		for _, cfg := range []jetstream.ConsumerConfig{
			{Durable: "bot_" + guildID(g1), FilterSubject: events.Subjects{}.Guild(g2)},
			{Durable: "bot_" + guildID(g1), FilterSubject: "modledger.case.>"},
			{Durable: "bot_" + guildID(g1), FilterSubjects: []string{events.Subjects{}.Guild(g1), events.Subjects{}.Guild(g2)}},
			{Durable: "other", FilterSubject: events.Subjects{}.Guild(g1)},
		} {
			short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			_, err := js.CreateOrUpdateConsumer(short, "MODLEDGER", cfg)
			cancel()
			if err == nil {
				t.Fatalf("bot created consumer %+v", cfg)
			}
			subj := "$JS.API.CONSUMER.CREATE.MODLEDGER." + cfg.Durable
			if cfg.FilterSubject != "" {
				subj += "." + cfg.FilterSubject
			}
			bot.violation(t, "Publish", subj)
		}
		// The server checks that the filter in the body is the one in the
		// subject the permissions allowed.
		body, _ := json.Marshal(map[string]any{"stream_name": "MODLEDGER", "config": map[string]any{
			"durable_name": "bot_" + guildID(g1), "filter_subject": "modledger.case.>", "ack_policy": "explicit"}})
		reply, err := bot.Request("$JS.API.CONSUMER.CREATE.MODLEDGER.bot_"+guildID(g1)+"."+events.Subjects{}.Guild(g1), body, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var apiResp struct {
			Error *struct {
				Description string `json:"description"`
			} `json:"error"`
		}
		if err := json.Unmarshal(reply.Data, &apiResp); err != nil || apiResp.Error == nil {
			t.Fatalf("server accepted a consumer whose filter is not the subject's: %s", reply.Data)
		}
		bot.onlyExpectedErrors(t)
	})

	t.Run("command", func(t *testing.T) {
		c := ns.connectRole(t, "COMMAND")
		for _, subj := range []string{
			"$JS.API.STREAM.DELETE.MODLEDGER",
			"$JS.API.STREAM.PURGE.MODLEDGER",
			"$JS.API.STREAM.UPDATE.MODLEDGER",
			"$JS.API.STREAM.MSG.DELETE.MODLEDGER",
			"$JS.API.STREAM.CREATE.OTHER",
			"$JS.API.STREAM.DELETE.MODLEDGER_KEYS",
			"$JS.API.STREAM.PURGE.MODLEDGER_KEYS",
			"$JS.API.STREAM.UPDATE.MODLEDGER_KEYS",
			"$JS.API.CONSUMER.CREATE.MODLEDGER_KEYS.x",
			"$JS.API.CONSUMER.CREATE.MODLEDGER.x",
			"$JS.API.CONSUMER.DELETE.MODLEDGER." + projection.ConsumerName(projection.CasesName),
			"modledger.cmd." + guildID(g1) + ".open",
			"modledger.query." + guildID(g1) + ".case_get",
		} {
			c.denyPublish(t, subj)
		}
		c.denySubscribe(t, "modledger.case.>")
		// The endpoints only in the service's queue group.
		c.denySubscribe(t, "modledger.cmd.*.open")
		sub, err := c.QueueSubscribeSync("modledger.cmd.*.open", "elsewhere")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Unsubscribe() })
		c.violation(t, "Subscription", "modledger.cmd.*.open")
		c.onlyExpectedErrors(t)
		// The service itself: it created the stream and the key stream,
		// stored keys, read and appended (the bot's cases), destroyed the
		// redacted case's key, and was denied nothing.
		cmdConn.onlyExpectedErrors(t)
	})

	t.Run("projector", func(t *testing.T) {
		c := ns.connectRole(t, "PROJECTOR")
		js, err := jetstream.New(c.Conn)
		if err != nil {
			t.Fatal(err)
		}
		// Allowed: the live projection (it fed the bot's query above), a
		// rebuild with its ordered consumer, and the status.
		gen, err := projection.Rebuild(ctx, projection.RebuildConfig{JetStream: js, Store: store,
			Projection: projection.NewCasesProjection(nil), Logger: logger})
		if err != nil {
			t.Fatalf("rebuild as the projector user: %v", err)
		}
		if gen.Number < 2 {
			t.Fatalf("rebuild made generation %d", gen.Number)
		}
		st, err := projection.Status(ctx, js, store, "", "", projection.NewCasesProjection(nil))
		if err != nil || len(st) != 1 || st[0].Head == 0 {
			t.Fatalf("status as the projector user: %+v, %v", st, err)
		}
		for _, subj := range []string{
			"modledger.case." + guildID(g1) + ".1.opened",
			"modledger.cmd." + guildID(g1) + ".open",
			"$JS.API.STREAM.DELETE.MODLEDGER",
			"$JS.API.STREAM.PURGE.MODLEDGER",
			"$JS.API.STREAM.UPDATE.MODLEDGER",
			"$JS.API.STREAM.MSG.DELETE.MODLEDGER",
			"$JS.API.STREAM.CREATE.OTHER",
			"modledger.key.x",
			"$JS.API.STREAM.MSG.DELETE.MODLEDGER_KEYS",
			"$JS.API.STREAM.PURGE.MODLEDGER_KEYS",
		} {
			c.denyPublish(t, subj)
		}
		c.denySubscribe(t, "modledger.case.>")
		c.onlyExpectedErrors(t)
		projConn.onlyExpectedErrors(t)
	})

	t.Run("scheduler", func(t *testing.T) {
		c := ns.connectRole(t, "SCHEDULER")
		// Allowed: the expire command, in any guild; the reply (here a
		// validation error) comes back.
		m, err := c.Request("modledger.cmd."+guildID(g2)+".expire", []byte("{}"), 5*time.Second)
		if err != nil {
			t.Fatalf("scheduler sends expire: %v", err)
		}
		if m.Header.Get(serviceErrorHeader) == "" {
			t.Fatalf("expire with an empty body: want an error reply, got %s", m.Data)
		}
		readyStreamCheck(t, c)
		for _, subj := range []string{
			"modledger.cmd." + guildID(g1) + ".open",
			"modledger.cmd." + guildID(g1) + ".delete",
			"modledger.case." + guildID(g1) + ".1.expired",
			"$JS.API.DIRECT.GET.MODLEDGER",
			"$JS.API.DIRECT.GET.MODLEDGER_KEYS",
			"$JS.API.STREAM.UPDATE.MODLEDGER",
		} {
			c.denyPublish(t, subj)
		}
		c.denySubscribe(t, "modledger.case.>")
		c.onlyExpectedErrors(t)
	})

	t.Run("query", func(t *testing.T) {
		c := ns.connectRole(t, "QUERY")
		// Allowed: answering (the bot's query above) and the readiness
		// check; nothing else is published.
		readyStreamCheck(t, c)
		for _, subj := range []string{
			"modledger.case." + guildID(g1) + ".1.opened",
			"modledger.cmd." + guildID(g1) + ".open",
			"$JS.API.DIRECT.GET.MODLEDGER",
			// It reads the read model, where the projector has opened the
			// text already: no keys.
			"$JS.API.DIRECT.GET.MODLEDGER_KEYS",
			"$JS.API.STREAM.UPDATE.MODLEDGER",
			"_INBOX.someone_elses",
		} {
			c.denyPublish(t, subj)
		}
		c.denySubscribe(t, "modledger.case.>")
		c.denySubscribe(t, "modledger.query.*.case_get")
		sub, err := c.QueueSubscribeSync("modledger.query.*.case_get", "elsewhere")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Unsubscribe() })
		c.violation(t, "Subscription", "modledger.query.*.case_get")
		c.onlyExpectedErrors(t)
		queryConn.onlyExpectedErrors(t)
	})

	t.Run("subscriber", func(t *testing.T) {
		c := ns.connectRole(t, "SUBSCRIBER")
		js, err := jetstream.New(c.Conn)
		if err != nil {
			t.Fatal(err)
		}
		// Allowed: every guild's events, with a consumer of its own, and
		// queries.
		var mu sync.Mutex
		guilds := map[events.Snowflake]bool{}
		sub, err := subscription.Subscribe(ctx, js, subscription.Config{Durable: "dashboard", Start: subscription.StartBeginning(),
			Logger: logger}, func(_ context.Context, e events.Event) error {
			mu.Lock()
			// Sealed reasons open with their keys (direct gets on the
			// key stream).
			if op, ok := e.Data.(events.CaseOpened); ok && op.Reason != "" {
				guilds[e.GuildID] = true
			}
			mu.Unlock()
			return nil
		})
		if err != nil {
			t.Fatalf("subscriber subscribes to every event: %v", err)
		}
		t.Cleanup(func() { _ = sub.Stop(context.Background()) })
		testenv.Eventually(t, 5*time.Second, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return guilds[g1] && guilds[g2]
		}, "the subscriber's consumer did not deliver both guilds' events")
		qc, err := projection.NewQueryClient(c.Conn)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := qc.GuildCaseCount(ctx, g2, projection.GuildCaseCountParams{}); err != nil {
			t.Fatalf("subscriber queries: %v", err)
		}
		live, err := c.SubscribeSync("modledger.case.>")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = live.Unsubscribe() })
		// Stream information and single events, as the nats CLI and
		// modledger stream info read them.
		if _, err := js.AccountInfo(ctx); err != nil {
			t.Fatalf("account info: %v", err)
		}
		if names := js.StreamNames(ctx); names.Err() != nil {
			t.Fatalf("stream names: %v", names.Err())
		} else {
			for range names.Name() {
			}
		}
		s, err := js.Stream(ctx, "MODLEDGER")
		if err != nil {
			t.Fatalf("stream info: %v", err)
		}
		if _, err := s.GetMsg(ctx, 1); err != nil {
			t.Fatalf("direct get: %v", err)
		}
		if m, err := c.Request("$JS.API.STREAM.MSG.GET.MODLEDGER", []byte(`{"seq":1}`), 5*time.Second); err != nil ||
			!strings.Contains(string(m.Data), `"message"`) {
			t.Fatalf("stream message get: %v", err)
		}

		// Denied: commands, events, the stream's settings and contents, the
		// projector's consumer.
		for _, subj := range []string{
			"modledger.cmd." + guildID(g1) + ".open",
			"modledger.cmd." + guildID(g1) + ".expire",
			"modledger.case." + guildID(g1) + ".1.opened",
			"modledger.claim." + guildID(g1) + ".external_id.x",
			"$JS.API.STREAM.DELETE.MODLEDGER",
			"$JS.API.STREAM.PURGE.MODLEDGER",
			"$JS.API.STREAM.UPDATE.MODLEDGER",
			"$JS.API.STREAM.MSG.DELETE.MODLEDGER",
			"$JS.API.CONSUMER.CREATE.MODLEDGER." + projection.ConsumerName(projection.CasesName) + ".modledger.case.>",
			"$JS.API.CONSUMER.DELETE.MODLEDGER." + projection.ConsumerName(projection.CasesName),
			"$JS.API.CONSUMER.MSG.NEXT.MODLEDGER." + projection.ConsumerName(projection.CasesName),
			"modledger.key.x",
			"$JS.API.STREAM.MSG.DELETE.MODLEDGER_KEYS",
			"$JS.API.STREAM.PURGE.MODLEDGER_KEYS",
			"$JS.API.STREAM.DELETE.MODLEDGER_KEYS",
		} {
			c.denyPublish(t, subj)
		}
		c.denySubscribe(t, "modledger.cmd.>")
		c.onlyExpectedErrors(t)
	})

	t.Run("admin", func(t *testing.T) {
		c := ns.connectRole(t, "ADMIN")
		js, err := jetstream.New(c.Conn)
		if err != nil {
			t.Fatal(err)
		}
		// Allowed: micro service discovery and the stream's information.
		for _, svcName := range []string{command.ServiceName, projection.QueryServiceName} {
			m, err := c.Request("$SRV.PING."+svcName, nil, 5*time.Second)
			if err != nil || !strings.Contains(string(m.Data), `"name":"`+svcName+`"`) {
				t.Fatalf("nats micro ping %s: %v", svcName, err)
			}
		}
		s, err := js.Stream(ctx, "MODLEDGER")
		if err != nil {
			t.Fatal(err)
		}
		// Denied: deleting or purging the stream or its messages, writing
		// events.
		short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		err = js.DeleteStream(short, "MODLEDGER")
		cancel()
		if err == nil {
			t.Fatal("admin deleted the stream")
		}
		c.violation(t, "Publish", "$JS.API.STREAM.DELETE.MODLEDGER")
		for _, subj := range []string{
			"$JS.API.STREAM.PURGE.MODLEDGER",
			"$JS.API.STREAM.MSG.DELETE.MODLEDGER",
			"modledger.case." + guildID(g1) + ".1.opened",
			"modledger.claim." + guildID(g1) + ".external_id.x",
			"$JS.API.STREAM.DELETE.MODLEDGER_KEYS",
			"$JS.API.STREAM.PURGE.MODLEDGER_KEYS",
			"$JS.API.STREAM.MSG.DELETE.MODLEDGER_KEYS",
			"modledger.key.x",
		} {
			c.denyPublish(t, subj)
		}
		c.onlyExpectedErrors(t)

		// After all of the above, the stream is whole and still a ledger.
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !info.Config.DenyDelete || !info.Config.DenyPurge || info.Config.MaxAge != 0 || info.State.Msgs < 2 ||
			info.State.FirstSeq != 1 || info.State.NumDeleted != 0 {
			t.Fatalf("stream after the test: config %+v, state %+v", info.Config, info.State)
		}
		// The key stream lost exactly the redacted case's key: its block
		// was versioned with the slot zeroed, and the one older version
		// erased; every block is one message.
		ks, err := js.Stream(ctx, "MODLEDGER_KEYS")
		if err != nil {
			t.Fatal(err)
		}
		if kinfo := ks.CachedInfo(); kinfo.Config.DenyDelete || !kinfo.Config.DenyPurge ||
			kinfo.State.LastSeq-kinfo.State.Msgs != 1 || kinfo.State.NumSubjects != kinfo.State.Msgs {
			t.Fatalf("key stream after the test: config %+v, state %+v", kinfo.Config, kinfo.State)
		}
	})
	bot2.onlyExpectedErrors(t)
}

// readyStreamCheck does what /readyz does for every role: look the stream
// up.
func readyStreamCheck(t *testing.T, c *conn) {
	t.Helper()
	js, err := jetstream.New(c.Conn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Stream(t.Context(), "MODLEDGER"); err != nil {
		t.Fatalf("stream info (the /readyz check): %v", err)
	}
}

// serviceErrorHeader marks a NATS micro error reply.
const serviceErrorHeader = "Nats-Service-Error-Code"

func runBotUser(args ...string) ([]byte, error) {
	cmd := exec.Command("sh", append([]string{"nats/bot-user.sh"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, errors.Join(err, errors.New(string(out)))
	}
	return out, nil
}
