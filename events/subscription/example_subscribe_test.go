package subscription_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/command"
	"github.com/modledger/modledger/events"
	"github.com/modledger/modledger/events/subscription"
	"github.com/modledger/modledger/internal/natsserver"
)

// A mod-log poster: a durable subscription to the case openings and closings
// of one guild, handled in order.
func ExampleSubscribe() {
	ledger := startExampleLedger()
	defer ledger.close()
	ctx := context.Background()
	const guild events.Snowflake = 1128457362048573440

	js, err := jetstream.New(ledger.nc)
	if err != nil {
		log.Fatal(err)
	}
	closed := make(chan struct{})
	sub, err := subscription.Subscribe(ctx, js, subscription.Config{
		Durable: "modlog-poster",
		Filter:  subscription.Filter{Guild: guild, Events: []events.Name{events.NameCaseOpened, events.NameCaseClosed}},
		Start:   subscription.StartBeginning(),
	}, func(ctx context.Context, e events.Event) error {
		// A real poster sends a message to the mod-log channel here, and
		// remembers e.Seq so that a redelivery posts nothing twice.
		switch p := e.Data.(type) {
		case events.CaseOpened:
			fmt.Printf("case %d opened: %s of user %s: %s\n", e.CaseNumber, p.Type, p.UserID, p.Reason)
		case events.CaseClosed:
			fmt.Printf("case %d closed: %s\n", e.CaseNumber, p.Reason)
			close(closed)
		}
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}

	// Moderation happens: two cases, one of them closed on appeal.
	for _, f := range []events.CaseFields{
		{Type: aggregate.TypeWarn, UserID: 934871256019738654, ModeratorID: 272937604339466240, Reason: "spamming invite links"},
		{Type: aggregate.TypeKick, UserID: 613425648685547541, ModeratorID: 272937604339466240, Reason: "raid participant"},
	} {
		if _, err := ledger.client.CaseOpen(ctx, guild, command.OpenParams{CaseFields: f}); err != nil {
			log.Fatal(err)
		}
	}
	if _, err := ledger.client.CaseClose(ctx, guild, command.CloseParams{
		Meta:    command.Meta{ActorID: 272937604339466240},
		CaseRef: command.CaseRef{CaseNumber: 1},
		Reason:  "appeal accepted",
	}); err != nil {
		log.Fatal(err)
	}

	<-closed
	if err := sub.Stop(ctx); err != nil {
		log.Fatal(err)
	}
	// Output:
	// case 1 opened: WARN of user 934871256019738654: spamming invite links
	// case 2 opened: KICK of user 613425648685547541: raid participant
	// case 1 closed: appeal accepted
}

// The bot's expiry loop: when the ledger records that a tempban has run out,
// the bot lifts the ban on the platform and then reports it with
// mark_expiry_processed. Both steps are safe to repeat, as a redelivery
// would.
func ExampleSubscribe_expiries() {
	ledger := startExampleLedger()
	defer ledger.close()
	ctx := context.Background()
	const (
		guild events.Snowflake = 1128457362048573440
		bot   events.Snowflake = 1097204518803394560
	)

	js, err := jetstream.New(ledger.nc)
	if err != nil {
		log.Fatal(err)
	}
	processed := make(chan struct{})
	sub, err := subscription.Subscribe(ctx, js, subscription.Config{
		Durable: "expiry-lifter",
		Filter:  subscription.Filter{Events: []events.Name{events.NameCaseExpired}},
		Start:   subscription.StartBeginning(),
	}, func(ctx context.Context, e events.Event) error {
		// Lift the restriction on the platform (an unban here). An error
		// returned now has the event delivered again after a backoff.
		fmt.Printf("unban in guild %s, case %d\n", e.GuildID, e.CaseNumber)
		r, err := ledger.client.CaseMarkExpiryProcessed(ctx, e.GuildID, command.MarkExpiryProcessedParams{
			Meta:    command.Meta{ActorID: bot},
			CaseRef: command.CaseRef{CaseNumber: e.CaseNumber, CaseID: e.CaseID},
		})
		if err != nil {
			return err
		}
		fmt.Printf("case %d: expiry processed: %t\n", e.CaseNumber, r.Case.ExpiryProcessed)
		close(processed)
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}

	// A one-day tempban.
	expires := ledger.now().Add(24 * time.Hour)
	opened, err := ledger.client.CaseOpen(ctx, guild, command.OpenParams{CaseFields: events.CaseFields{
		Type: aggregate.TypeTempban, UserID: 934871256019738654, ModeratorID: 272937604339466240, ExpiresAt: &expires,
	}})
	if err != nil {
		log.Fatal(err)
	}
	// A day later the ledger's expiry scheduler appends "expired". Here
	// the example moves the ledger's clock and takes the scheduler's step.
	ledger.advance(25 * time.Hour)
	c := opened.Case
	if _, err := ledger.client.CaseExpire(ctx, guild, command.ExpireParams{
		Meta:      command.Meta{CommandID: command.ExpireCommandID(c.CaseID, *c.ExpiresAt), ActorID: bot},
		CaseRef:   command.CaseRef{CaseNumber: c.CaseNumber, CaseID: c.CaseID},
		ExpiresAt: *c.ExpiresAt,
	}); err != nil {
		log.Fatal(err)
	}

	<-processed
	if err := sub.Stop(ctx); err != nil {
		log.Fatal(err)
	}
	// Output:
	// unban in guild 1128457362048573440, case 1
	// case 1: expiry processed: true
}

// exampleLedger is an embedded NATS server with a command service, as
// `modledger dev` runs it, and a client connection.
type exampleLedger struct {
	srv    *natsserver.Server
	dir    string
	svc    *command.Service
	svcNC  *nats.Conn
	nc     *nats.Conn
	client *command.Client

	mu     sync.Mutex
	offset time.Duration
}

func startExampleLedger() *exampleLedger {
	l := &exampleLedger{}
	var err error
	if l.dir, err = os.MkdirTemp("", "modledger-example-"); err != nil {
		log.Fatal(err)
	}
	if l.srv, err = natsserver.Start(context.Background(), natsserver.Config{StoreDir: l.dir, SyncAlways: true}); err != nil {
		log.Fatal(err)
	}
	if l.svcNC, err = nats.Connect(l.srv.ClientURL()); err != nil {
		log.Fatal(err)
	}
	if l.svc, err = command.NewService(command.Config{Conn: l.svcNC, Now: l.now}); err != nil {
		log.Fatal(err)
	}
	if err := l.svc.Start(context.Background()); err != nil {
		log.Fatal(err)
	}
	if l.nc, err = nats.Connect(l.srv.ClientURL()); err != nil {
		log.Fatal(err)
	}
	if l.client, err = command.NewClient(l.nc); err != nil {
		log.Fatal(err)
	}
	return l
}

// now is the ledger's clock: the real time, moved on by advance.
func (l *exampleLedger) now() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return time.Now().Add(l.offset)
}

func (l *exampleLedger) advance(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.offset += d
}

func (l *exampleLedger) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.svc.Stop(ctx); err != nil {
		log.Print(err)
	}
	l.nc.Close()
	l.svcNC.Close()
	l.srv.Shutdown()
	_ = os.RemoveAll(l.dir)
}
