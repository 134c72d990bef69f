package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/modledger/modledger/events"
	"github.com/modledger/modledger/events/shred"
	"github.com/modledger/modledger/events/subscription"
)

// eventsTailSinceDefault is how far back `events tail` starts when neither
// --since nor --from-seq is given.
const eventsTailSinceDefault = time.Hour

// eventsTailCmd prints the ledger's events as they are stored.
type eventsTailCmd struct {
	humanFlags
	allGuilds  bool
	caseNumber string
	eventNames string
	since      string
	fromSeq    uint64
	follow     bool
	limit      int
}

func eventsTailCommand() subcommand {
	return subcommand{
		name:    "events tail",
		summary: "Print the ledger's events from the stream, one line each, and follow new ones.",
		usage:   "[flags]",
		examples: `  modledger events tail
  modledger events tail --since 24h --event opened,closed
  modledger events tail --from-seq 1 --follow=false
  modledger events tail --case 12 --since all --follow=false
  modledger events tail --all-guilds --json | jq -c '{seq, event, guild_id}'
  modledger events tail --limit 1 --follow=false --json`,
		flags: func(fs *flag.FlagSet, getenv func(string) string) runner {
			c := &eventsTailCmd{}
			c.register(fs, getenv, needGuild|optGuild|needStream)
			fs.BoolVar(&c.allGuilds, "all-guilds", false, "every guild's events (without --guild or MODLEDGER_GUILD, every guild is the default)")
			fs.StringVar(&c.caseNumber, "case", "", "only the events of this case (needs the guild)")
			fs.StringVar(&c.eventNames, "event", "", "only these events, comma separated: "+eventNameList())
			fs.StringVar(&c.since, "since", "", "start at the events stored at or after: a time, a local date, how long ago (24h, 7d), or all. Defaults to 1h")
			fs.Uint64Var(&c.fromSeq, "from-seq", 0, "start at this stream sequence")
			fs.BoolVar(&c.follow, "follow", true, "keep waiting for new events; false stops at the end of the stream")
			fs.IntVar(&c.limit, "limit", 0, "stop after this many events (0: no limit)")
			return c
		},
	}
}

func eventNameList() string {
	names := make([]string, 0, len(events.Names()))
	for _, n := range events.Names() {
		names = append(names, string(n))
	}
	return strings.Join(names, ", ")
}

// tailPlan is where a tail starts and what it reads.
type tailPlan struct {
	filter  subscription.Filter
	since   time.Time // zero: not by time
	fromSeq uint64    // zero: not by sequence
	all     bool      // from the first event
}

func (c *eventsTailCmd) plan(env *cliEnv) (tailPlan, error) {
	var p tailPlan
	if _, err := c.args(env, 0, 0, "[flags]"); err != nil {
		return p, err
	}
	g, err := c.check()
	if err != nil {
		return p, err
	}
	if !c.allGuilds {
		p.filter.Guild = g
	}
	if c.caseNumber != "" {
		n, err := parseCaseNumber(c.caseNumber)
		if err != nil {
			return p, err
		}
		if p.filter.Guild == 0 {
			return p, usageError{"--case needs the guild: give --guild (or MODLEDGER_GUILD), not --all-guilds"}
		}
		p.filter.Case = n
	}
	for _, name := range strings.Split(c.eventNames, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if !slices.Contains(events.Names(), events.Name(name)) {
			return p, usageError{fmt.Sprintf("--event %q: want event names: %s", name, eventNameList())}
		}
		p.filter.Events = append(p.filter.Events, events.Name(name))
	}
	if c.limit < 0 {
		return p, usageError{"--limit must not be negative"}
	}
	clk := env.clock()
	switch {
	case c.since != "" && c.fromSeq != 0:
		return p, usageError{"give --since or --from-seq, not both"}
	case c.fromSeq != 0:
		p.fromSeq = c.fromSeq
	case c.since == "all":
		p.all = true
	case c.since != "":
		t, err := parseTime("--since", c.since, clk.now, clk.loc, true)
		if err != nil {
			return p, err
		}
		p.since = t
	default:
		p.since = clk.now.Add(-eventsTailSinceDefault).UTC()
	}
	return p, nil
}

func (c *eventsTailCmd) Run(ctx context.Context, env *cliEnv) error {
	plan, err := c.plan(env)
	if err != nil {
		return err
	}
	s, err := c.connect(ctx, "modledger events tail")
	if err != nil {
		return err
	}
	defer s.close()
	js, err := jetstream.New(s.nc)
	if err != nil {
		return err
	}
	subjects := plan.filter.Subjects(events.Subjects{Prefix: c.prefix})
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: subjects, InactiveThreshold: time.Minute}
	switch {
	case plan.fromSeq != 0:
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, plan.fromSeq
	case !plan.since.IsZero():
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &plan.since
	default:
		cfg.DeliverPolicy = jetstream.DeliverAllPolicy
	}
	// Without --follow the tail ends at the last event stored now.
	var end uint64
	if !c.follow {
		last, lastTime, err := lastOfSubjects(s.ctx, s.nc, c.stream, subjects)
		if err != nil {
			return fmt.Errorf("find the end of stream %s: %w", c.stream, err)
		}
		if last == 0 || last < plan.fromSeq || (!plan.since.IsZero() && lastTime.Before(plan.since)) {
			return newTailWriter(env, c.json).end() // nothing to print
		}
		end = last
	}
	cons, err := js.OrderedConsumer(s.ctx, c.stream, cfg)
	if err != nil {
		return fmt.Errorf("read stream %s: %w", c.stream, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("read stream %s: %w", c.stream, err)
	}
	defer func() {
		it.Stop()
		// Leave no consumer behind (it would linger until its inactive
		// threshold and show in stream info).
		if info := cons.CachedInfo(); info != nil {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			_ = js.DeleteConsumer(dctx, c.stream, info.Name)
			cancel()
		}
	}()
	codec, err := events.NewCodec()
	if err != nil {
		return err
	}
	keys, err := shred.NewStore(shred.Config{Conn: s.nc, Stream: shred.StreamName(c.stream), Prefix: c.prefix})
	if err != nil {
		return err
	}
	out := newTailWriter(env, c.json)
	defer out.end()
	for printed := 0; c.limit == 0 || printed < c.limit; {
		// Following, wait as long as it takes (Ctrl-C ends it); otherwise
		// the events up to the end are there, and a silence of --timeout
		// means the server went away.
		var opts []jetstream.NextOpt
		if c.follow {
			opts = append(opts, jetstream.NextContext(ctx))
		} else {
			opts = append(opts, jetstream.NextMaxWait(c.timeout))
		}
		m, err := it.Next(opts...)
		switch {
		case err != nil && c.follow && ctx.Err() != nil:
			return nil // interrupted: a tail's normal end
		case err != nil:
			return fmt.Errorf("read stream %s: %w", c.stream, err)
		}
		md, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("read stream %s: %w", c.stream, err)
		}
		seq := md.Sequence.Stream
		e, err := codec.Decode(m.Data())
		if err == nil {
			// Sealed personal text opens with its case's key, or stays
			// empty when the key is gone (a redacted case).
			err = keys.OpenEvent(s.ctx, &e)
		}
		switch {
		case err != nil:
			out.flush()
			fmt.Fprintf(env.stderr, "modledger events tail: skipping the message at sequence %d (%s): %v\n", seq, m.Subject(), err)
		case plan.filter.Match(e):
			e.Seq = seq
			if err := out.write(e, md.NumPending == 0); err != nil {
				return err
			}
			printed++
		}
		if end != 0 && seq >= end {
			return nil
		}
	}
	return nil
}

// tailWriter prints events: JSON lines, or an aligned table that is flushed
// whenever the tail has caught up, so the backlog is aligned and new events
// show at once.
type tailWriter struct {
	env    *cliEnv
	json   bool
	clk    clock
	tw     *tabwriter.Writer
	header bool
	rows   int
}

func newTailWriter(env *cliEnv, asJSON bool) *tailWriter {
	return &tailWriter{env: env, json: asJSON, clk: env.clock(), tw: newTable(env.stdout)}
}

func (w *tailWriter) write(e events.Event, caughtUp bool) error {
	if w.json {
		we, err := toWireEvent(e)
		if err != nil {
			return err
		}
		b, err := json.Marshal(we)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w.env.stdout, "%s\n", b)
		return err
	}
	if !w.header {
		fmt.Fprintln(w.tw, "SEQ\tTIME\tGUILD\tCASE\tEVENT\tACTOR\tDETAILS")
		w.header = true
	}
	// A tail runs for long: the clock moves on.
	if w.env.now != nil {
		w.clk.now = w.env.now()
	}
	fmt.Fprintf(w.tw, "%d\t%s\t%s\t#%d\t%s\t%s\t%s\n", e.Seq, e.OccurredAt.In(w.clk.loc).Format(layoutSecond),
		e.GuildID, e.CaseNumber, e.Event, e.ActorID, w.clk.eventSummary(e))
	w.rows++
	if caughtUp || w.rows%500 == 0 {
		return w.flush()
	}
	return nil
}

func (w *tailWriter) flush() error { return w.tw.Flush() }

// end flushes what is left, and says so when there was nothing.
func (w *tailWriter) end() error {
	if w.rows == 0 && !w.json {
		fmt.Fprintln(w.env.stdout, "No events.")
	}
	return w.flush()
}

// lastOfSubjects returns the stream sequence and time of the last message on
// any of the subjects, or 0 when there is none.
func lastOfSubjects(ctx context.Context, nc *nats.Conn, stream string, subjects []string) (uint64, time.Time, error) {
	var (
		last     uint64
		lastTime time.Time
	)
	for _, subj := range subjects {
		seq, at, err := lastMsg(ctx, nc, stream, subj)
		if err != nil {
			return 0, time.Time{}, err
		}
		if seq > last {
			last, lastTime = seq, at
		}
	}
	return last, lastTime, nil
}
