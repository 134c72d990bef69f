// Command modlog-poster is an example consumer of modledger: it follows new
// cases with a durable subscription, posts each one to a mod-log channel
// (here: prints it), and links the message back to the case with
// link_mod_log, so the case shows where it was posted. It is the whole loop
// a bot runs, in about a hundred lines.
//
//	go run ./cmd/modlog-poster --nats-url nats://127.0.0.1:4222 --channel-id 1128461095570931752
//
// Posting is idempotent: the message id is derived from the case id, so a
// redelivered event posts the same message and links the same id again,
// which the ledger answers as a no-op. A real bot would look the case up
// (its mod_log_message_id) before posting to Discord.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/modledger/modledger/command"
	"github.com/modledger/modledger/events"
	"github.com/modledger/modledger/events/subscription"
)

// config is the poster's command line.
type config struct {
	natsURL   string
	durable   string
	guild     uint64
	channelID uint64
	botID     uint64
}

func main() {
	var cfg config
	flag.StringVar(&cfg.natsURL, "nats-url", envOr("MODLEDGER_NATS_URL", nats.DefaultURL), "NATS server URL")
	flag.StringVar(&cfg.durable, "durable", "modlog-poster", "durable consumer name: a restart continues where it stopped")
	flag.Uint64Var(&cfg.guild, "guild", 0, "only this guild (0: every guild)")
	flag.Uint64Var(&cfg.channelID, "channel-id", 1128461095570931752, "the mod-log channel")
	flag.Uint64Var(&cfg.botID, "bot-id", 1097204518803394560, "the bot's own user id, recorded as the actor of link_mod_log")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, os.Stdout, slog.New(slog.NewTextHandler(os.Stderr, nil))); err != nil {
		fmt.Fprintln(os.Stderr, "modlog-poster:", err)
		os.Exit(1)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// run posts every new case until ctx is done.
func run(ctx context.Context, cfg config, out io.Writer, logger *slog.Logger) error {
	nc, err := nats.Connect(cfg.natsURL, nats.Name("modlog-poster"))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	client, err := command.NewClient(nc)
	if err != nil {
		return err
	}
	channel := events.Snowflake(cfg.channelID)
	sub, err := subscription.Subscribe(ctx, js, subscription.Config{
		Durable: cfg.durable,
		Filter:  subscription.Filter{Guild: events.Snowflake(cfg.guild), Events: []events.Name{events.NameCaseOpened}},
		Start:   subscription.StartBeginning(),
		Logger:  logger,
	}, func(ctx context.Context, e events.Event) error {
		opened := e.Data.(events.CaseOpened)
		msgID := messageID(e.CaseID)
		// "Post" the case: a real bot sends an embed to the channel here.
		fmt.Fprintf(out, "#mod-log %d | message %d | Case #%d %s | user %d | moderator %d | %s\n",
			channel, msgID, e.CaseNumber, opened.Type, opened.UserID, opened.ModeratorID, reasonOr(opened.Reason))
		// Link the message back to the case. Errors are returned, so the
		// event is delivered again after a backoff.
		_, err := client.CaseLinkModLog(ctx, e.GuildID, command.LinkModLogParams{
			Meta:            command.Meta{CommandID: uuid.NewSHA1(e.CaseID, []byte("mod-log")), ActorID: events.Snowflake(cfg.botID)},
			CaseRef:         command.CaseRef{CaseNumber: e.CaseNumber, CaseID: e.CaseID},
			ModLogMessageID: msgID,
			ModLogChannelID: channel,
		})
		return err
	})
	if err != nil {
		return err
	}
	logger.Info("posting new cases to the mod log", "consumer", sub.ConsumerName())
	<-ctx.Done()
	return sub.Stop(context.Background())
}

// messageID stands in for the id Discord gives the posted message: derived
// from the case id, so posting again gives the same one.
func messageID(caseID uuid.UUID) events.Snowflake {
	sum := sha256.Sum256(caseID[:])
	return events.Snowflake(binary.BigEndian.Uint64(sum[:8])>>2 + 1)
}

func reasonOr(r string) string {
	if r == "" {
		return "No reason provided"
	}
	return r
}
