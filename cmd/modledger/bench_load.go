package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/command"
	"github.com/modledger/modledger/events"
	"github.com/modledger/modledger/internal/wire"
	"github.com/modledger/modledger/projection"
)

// benchOp is one kind of request the load sends.
type benchOp int

const (
	opOpen benchOp = iota
	opClose
	opReopen
	opUpdate
	opNote
	opCaseGet
	opUserCases
	opUserRestriction
	opGuildStatistics
	numBenchOps
)

// benchOpNames are the operations' names in the report: the wire names of
// the commands and queries.
var benchOpNames = [numBenchOps]string{"open", "close", "reopen", "update", "add_note", "case_get", "user_cases", "user_restriction", "guild_statistics"}

// Classes of operations, as --mix names them.
const (
	classOpens   = "opens"
	classChanges = "changes"
	classQueries = "queries"
)

func (o benchOp) class() string {
	switch {
	case o == opOpen:
		return classOpens
	case o <= opNote:
		return classChanges
	}
	return classQueries
}

// The people the load acts as and on.
const (
	benchUsersPerGuild                  = 200
	benchModerators                     = 10
	benchUserBase      events.Snowflake = 300000000000000000
	benchModeratorBase events.Snowflake = 200000000000000000
	benchUserCasesPage                  = 50
)

var benchTypes = []string{aggregate.TypeBan, aggregate.TypeWarn, aggregate.TypeKick, aggregate.TypeWarn}

// benchCaseFields are the fields of the i-th open of a worker.
func benchCaseFields(worker, i, user int) events.CaseFields {
	return events.CaseFields{
		Type:        benchTypes[i%len(benchTypes)],
		UserID:      benchUserBase + events.Snowflake(user),
		ModeratorID: benchModeratorBase + events.Snowflake(1+worker%benchModerators),
		Reason:      "bench: posted invite links in #general after two warnings",
		Source:      "command",
	}
}

// ownedCase is a case a worker opened or was given by the seed; only that
// worker changes it, so its status is known without asking.
type ownedCase struct {
	guild  int
	number uint32
	closed bool
	edits  int
}

// loadRun is one run of the load.
type loadRun struct {
	c      *benchCmd
	t      *benchTarget
	logger *slog.Logger
	guilds []events.Snowflake

	hists  [numBenchOps]latencyHist
	opErrs [numBenchOps]atomic.Int64
	errMu  sync.Mutex
	errs   map[string]int64

	numMu   sync.Mutex
	numbers [][]uint32 // per guild: the numbers replies gave opened cases
	maxSeq  atomic.Uint64
	owned   [][]ownedCase // per worker
	issued  atomic.Int64
	cases   atomic.Int64 // cases opened by the timed load
	changed atomic.Int64 // events appended by the timed load's changes
}

// runLoad seeds the guilds, runs the timed load, and measures what follows
// it: the ledger's counters, the projection's lag and catch-up, and the
// case numbers.
func runLoad(ctx context.Context, c *benchCmd, t *benchTarget, logger *slog.Logger) (*loadReport, error) {
	r := &loadRun{c: c, t: t, logger: logger, errs: map[string]int64{}, owned: make([][]ownedCase, c.clients)}
	// Fresh guild ids each run, so that a running ledger's earlier cases
	// do not count.
	base := events.Snowflake(100000000000000000 + rand.Uint64N(800000000000000000))
	for i := range c.guilds {
		r.guilds = append(r.guilds, base+events.Snowflake(i))
	}
	r.numbers = make([][]uint32, c.guilds)
	if err := r.seedGuilds(ctx); err != nil {
		return nil, err
	}
	if r.t.startProjector == nil {
		if err := r.waitProjected(ctx, r.maxSeq.Load()); err != nil {
			return nil, fmt.Errorf("wait for the seeded cases in the read models: %w", err)
		}
	}
	startSeq := r.streamLastSeq(ctx)
	before, _ := scrapeLedgerMetrics(ctx, t.metricsURL)

	start := time.Now()
	r.runWorkers(ctx, start)
	loadEnd := time.Now()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}

	rep := &loadReport{DurationSeconds: loadEnd.Sub(start).Seconds(), Guilds: r.guilds}
	r.fillOps(rep)
	if after, err := scrapeLedgerMetrics(ctx, t.metricsURL); err == nil && after != nil {
		rep.Server = ledgerCounters(before, after)
	} else if err != nil {
		logger.Warn("bench: read the ledger's metrics", "url", t.metricsURL, "error", err)
	}
	rep.Projection = r.measureProjection(ctx, start, loadEnd, startSeq)
	rep.Numbers = verifyNumbers(ctx, t, r.guilds, r.numbers)
	return rep, nil
}

// seedGuilds opens --seed cases in every guild with open_many, so that
// changes and queries have cases from the start.
func (r *loadRun) seedGuilds(ctx context.Context) error {
	if r.c.seed == 0 {
		return nil
	}
	next := make(chan int)
	errc := make(chan error, r.c.clients)
	var wg sync.WaitGroup
	for w := range min(r.c.clients, len(r.guilds)) {
		wg.Go(func() {
			for g := range next {
				cases := make([]events.CaseFields, r.c.seed)
				for k := range cases {
					cases[k] = benchCaseFields(k, k, k%benchUsersPerGuild+1)
				}
				rctx, cancel := context.WithTimeout(ctx, r.c.timeout)
				res, err := r.t.cmds[w%len(r.t.cmds)].CaseOpenMany(rctx, r.guilds[g], command.OpenManyParams{Cases: cases})
				cancel()
				if err != nil {
					errc <- fmt.Errorf("seed guild %d: %w", r.guilds[g], err)
					return
				}
				r.noteSeq(res.Seq)
				r.numMu.Lock()
				for k, cs := range res.Cases {
					r.numbers[g] = append(r.numbers[g], cs.CaseNumber)
					owner := (g*r.c.seed + k) % r.c.clients
					r.owned[owner] = append(r.owned[owner], ownedCase{guild: g, number: cs.CaseNumber})
				}
				r.numMu.Unlock()
			}
		})
	}
	var err error
feed:
	for g := range r.guilds {
		select {
		case next <- g:
		case err = <-errc:
			break feed
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errc:
		default:
		}
	}
	return err
}

// runWorkers runs the clients until --duration or --count: each sends its
// next request when the last is answered (closed loop), or takes the
// scheduled start times of --rate (open loop).
func (r *loadRun) runWorkers(ctx context.Context, start time.Time) {
	var deadline time.Time
	if r.c.duration > 0 {
		deadline = start.Add(r.c.duration)
	}
	more := func() bool {
		if ctx.Err() != nil || (!deadline.IsZero() && !time.Now().Before(deadline)) {
			return false
		}
		return r.c.count == 0 || r.issued.Add(1) <= r.c.count
	}
	var ticks chan time.Time
	if r.c.rate > 0 {
		ticks = make(chan time.Time, r.c.clients)
		go r.schedule(ctx, start, deadline, ticks)
	}
	var wg sync.WaitGroup
	for w := range r.c.clients {
		rng := rand.New(rand.NewPCG(uint64(start.UnixNano()), uint64(w)))
		wg.Go(func() {
			if ticks != nil {
				for at := range ticks {
					r.one(ctx, w, rng, at)
				}
				return
			}
			for more() {
				r.one(ctx, w, rng, time.Now())
			}
		})
	}
	wg.Wait()
}

// schedule sends the start time of each operation at --rate, and closes
// ticks at the deadline or --count. When the clients fall behind, the
// times stay on schedule, so that the latency counts the wait
// (no coordinated omission).
func (r *loadRun) schedule(ctx context.Context, start, deadline time.Time, ticks chan<- time.Time) {
	defer close(ticks)
	interval := float64(time.Second) / r.c.rate
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for i := int64(0); r.c.count == 0 || i < r.c.count; i++ {
		at := start.Add(time.Duration(float64(i) * interval))
		if !deadline.IsZero() && !at.Before(deadline) {
			return
		}
		if d := time.Until(at); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-ctx.Done():
				return
			}
		}
		select {
		case ticks <- at:
		case <-ctx.Done():
			return
		}
	}
}

// one picks and sends one operation, and records its latency from at.
func (r *loadRun) one(ctx context.Context, w int, rng *rand.Rand, at time.Time) {
	op, oc := r.pick(w, rng)
	rctx, cancel := context.WithTimeout(ctx, r.c.timeout)
	err := r.do(rctx, w, rng, op, oc)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return // interrupted: neither a result nor an error of the ledger
		}
		r.opErrs[op].Add(1)
		r.errMu.Lock()
		r.errs[benchErrCode(err)]++
		r.errMu.Unlock()
		if r.logger.Enabled(ctx, slog.LevelDebug) {
			r.logger.Debug("bench: request failed", "op", benchOpNames[op], "error", err)
		}
		return
	}
	r.hists[op].Record(time.Since(at))
}

// pick chooses the next operation by the mix; a change needs a case of the
// worker's own, and becomes an open while it has none.
func (r *loadRun) pick(w int, rng *rand.Rand) (benchOp, *ownedCase) {
	m := r.c.mix
	n := rng.IntN(m.total())
	switch {
	case n < m.Opens:
		return opOpen, nil
	case n < m.Opens+m.Changes:
		if len(r.owned[w]) == 0 {
			return opOpen, nil
		}
		oc := &r.owned[w][rng.IntN(len(r.owned[w]))]
		switch rng.IntN(3) {
		case 0:
			if oc.closed {
				return opReopen, oc
			}
			return opClose, oc
		case 1:
			return opUpdate, oc
		}
		return opNote, oc
	}
	return opCaseGet + benchOp(rng.IntN(int(opGuildStatistics-opCaseGet)+1)), nil
}

// do sends one request and keeps what the reply says.
func (r *loadRun) do(ctx context.Context, w int, rng *rand.Rand, op benchOp, oc *ownedCase) error {
	cmds := r.t.cmds[w%len(r.t.cmds)]
	qc := r.t.queries[w%len(r.t.queries)]
	guild := rng.IntN(len(r.guilds))
	user := benchUserBase + events.Snowflake(1+rng.IntN(benchUsersPerGuild))
	actor := benchModeratorBase + events.Snowflake(1+w%benchModerators)
	var res *command.Result
	var err error
	if r.c.bulk > 1 && op.class() == classChanges {
		return r.bulkChange(ctx, w, cmds, oc, actor)
	}
	switch op {
	case opOpen:
		if r.c.raid {
			guild = 0
		}
		if r.c.bulk > 1 {
			return r.bulkOpen(ctx, w, rng, cmds, guild)
		}
		res, err = cmds.CaseOpen(ctx, r.guilds[guild], command.OpenParams{CaseFields: benchCaseFields(w, rng.IntN(len(benchTypes)), int(user-benchUserBase))})
		if err == nil {
			r.opened(w, guild, res.Case.CaseNumber)
		}
	case opClose:
		res, err = cmds.CaseClose(ctx, r.guilds[oc.guild], command.CloseParams{Meta: command.Meta{ActorID: actor}, CaseRef: command.CaseRef{CaseNumber: oc.number}, Reason: "bench: appealed"})
		if err == nil {
			oc.closed = true
		}
	case opReopen:
		res, err = cmds.CaseReopen(ctx, r.guilds[oc.guild], command.ReopenParams{Meta: command.Meta{ActorID: actor}, CaseRef: command.CaseRef{CaseNumber: oc.number}, Reason: "bench: appeal denied"})
		if err == nil {
			oc.closed = false
		}
	case opUpdate:
		oc.edits++
		reason := fmt.Sprintf("bench: posted invite links in #general after two warnings (edit %d)", oc.edits)
		res, err = cmds.CaseUpdate(ctx, r.guilds[oc.guild], command.UpdateParams{Meta: command.Meta{ActorID: actor}, CaseRef: command.CaseRef{CaseNumber: oc.number}, Reason: &reason})
	case opNote:
		res, err = cmds.CaseAddNote(ctx, r.guilds[oc.guild], command.AddNoteParams{Meta: command.Meta{ActorID: actor}, CaseRef: command.CaseRef{CaseNumber: oc.number},
			Text: "bench: the user came back on an alt account", EvidenceURLs: []string{"https://example.com/evidence/1.png"}})
	case opCaseGet:
		_, err = qc.CaseGet(ctx, r.guilds[guild], projection.CaseGetParams{CaseNumber: uint32(1 + rng.IntN(r.c.seed))})
	case opUserCases:
		_, err = qc.UserCases(ctx, r.guilds[guild], projection.UserCasesParams{UserID: user, PageParams: projection.PageParams{Limit: benchUserCasesPage}})
	case opUserRestriction:
		_, err = qc.UserRestriction(ctx, r.guilds[guild], projection.UserRestrictionParams{UserID: user, Family: aggregate.FamilyBan})
	case opGuildStatistics:
		_, err = qc.GuildStatistics(ctx, r.guilds[guild], projection.GuildStatisticsParams{})
	}
	if res != nil {
		r.noteSeq(res.Seq)
	}
	return err
}

// bulkOpen sends one bulk ban: open_many of --bulk cases in guild, users
// picked at random.
func (r *loadRun) bulkOpen(ctx context.Context, w int, rng *rand.Rand, cmds *command.Client, guild int) error {
	cases := make([]events.CaseFields, r.c.bulk)
	for i := range cases {
		cases[i] = benchCaseFields(w, 0, 1+rng.IntN(benchUsersPerGuild)) // a bulk ban: BAN
	}
	res, err := cmds.CaseOpenMany(ctx, r.guilds[guild], command.OpenManyParams{Cases: cases})
	if err != nil {
		return err
	}
	for _, c := range res.Cases {
		r.opened(w, guild, c.CaseNumber)
	}
	r.noteSeq(res.Seq)
	return nil
}

// bulkChange sends one set command: close_many (or reopen_many when oc is
// closed) of oc and up to --bulk-1 more of worker w's cases in oc's guild
// that are in the same state, by number.
func (r *loadRun) bulkChange(ctx context.Context, w int, cmds *command.Client, oc *ownedCase, actor events.Snowflake) error {
	byNumber := map[uint32]*ownedCase{}
	numbers := make([]uint32, 0, r.c.bulk)
	for i := range r.owned[w] {
		c := &r.owned[w][i]
		if c.guild == oc.guild && c.closed == oc.closed && len(numbers) < r.c.bulk {
			numbers = append(numbers, c.number)
			byNumber[c.number] = c
		}
	}
	set := command.SetParams{Meta: command.Meta{ActorID: actor}, CaseNumbers: numbers, Limit: len(numbers)}
	var res *command.SetResult
	var err error
	if oc.closed {
		res, err = cmds.CaseReopenMany(ctx, r.guilds[oc.guild], command.ReopenManyParams{SetParams: set, Reason: "bench: appeals denied"})
	} else {
		res, err = cmds.CaseCloseMany(ctx, r.guilds[oc.guild], command.CloseManyParams{SetParams: set, Reason: "bench: appealed"})
	}
	if err != nil {
		return err
	}
	if len(res.Failed) > 0 {
		return fmt.Errorf("%s: %d of %d cases failed, the first: %v", map[bool]string{false: "close_many", true: "reopen_many"}[oc.closed],
			len(res.Failed), len(numbers), res.Failed[0].Error)
	}
	for _, c := range res.Changed {
		if oc := byNumber[c.CaseNumber]; oc != nil {
			oc.closed = !oc.closed
		}
		r.noteSeq(c.Seq)
	}
	r.changed.Add(int64(res.Appended))
	return nil
}

// opened records a case the timed load opened: its number for the numbering
// check, and the case as worker w's own.
func (r *loadRun) opened(w, guild int, number uint32) {
	r.numMu.Lock()
	r.numbers[guild] = append(r.numbers[guild], number)
	r.numMu.Unlock()
	r.owned[w] = append(r.owned[w], ownedCase{guild: guild, number: number})
	r.cases.Add(1)
}

func (r *loadRun) noteSeq(seq uint64) {
	for {
		cur := r.maxSeq.Load()
		if seq <= cur || r.maxSeq.CompareAndSwap(cur, seq) {
			return
		}
	}
}

// benchErrCode names an error for the report: the ledger's wire code, or
// timeout or other.
func benchErrCode(err error) string {
	var we *wire.Error
	switch {
	case errors.As(err, &we):
		return string(we.Code)
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	return "other"
}

// fillOps puts the counts and latencies in the report.
func (r *loadRun) fillOps(rep *loadReport) {
	secs := rep.DurationSeconds
	classes := map[string]*latencyHist{}
	classErrs := map[string]int64{}
	var all latencyHist
	var allErrs int64
	for op := range numBenchOps {
		h := &r.hists[op]
		errs := r.opErrs[op].Load()
		cl := op.class()
		if classes[cl] == nil {
			classes[cl] = &latencyHist{}
		}
		classes[cl].Merge(h)
		classErrs[cl] += errs
		all.Merge(h)
		allErrs += errs
		if h.Count() > 0 || errs > 0 {
			rep.Operations = append(rep.Operations, newOpReport(benchOpNames[op], h, errs, secs))
		}
	}
	for _, cl := range []string{classOpens, classChanges, classQueries} {
		rep.Classes = append(rep.Classes, newOpReport(cl, classes[cl], classErrs[cl], secs))
	}
	rep.All = newOpReport("all", &all, allErrs, secs)
	rep.ThroughputPerSec = rep.All.PerSec
	rep.Errors = r.errs
	rep.CasesOpened = r.cases.Load()
	rep.ChangesApplied = r.changed.Load()
	if r.c.bulk <= 1 {
		rep.ChangesApplied = int64(rep.class(classChanges).Count)
	}
	if secs > 0 {
		rep.CasesPerSec = float64(rep.CasesOpened) / secs
		rep.ChangesPerSec = float64(rep.ChangesApplied) / secs
	}
}

// streamLastSeq is the stream's last sequence, or the highest reply seq
// when the stream cannot be read.
func (r *loadRun) streamLastSeq(ctx context.Context) uint64 {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if st, err := r.t.js.Stream(ctx, r.t.stream); err == nil {
		if info, err := st.Info(ctx); err == nil {
			return info.State.LastSeq
		}
	}
	return r.maxSeq.Load()
}

// waitProjected returns once the read models hold stream sequence seq:
// a query with min_seq answers only then (or unavailable after the query
// service's wait, and it is asked again).
func (r *loadRun) waitProjected(ctx context.Context, seq uint64) error {
	if seq == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, benchCatchUpTimeout)
	defer cancel()
	for {
		_, err := r.t.queries[0].CaseGet(ctx, r.guilds[0], projection.CaseGetParams{QueryMeta: projection.QueryMeta{MinSeq: seq}, CaseNumber: 1})
		var we *wire.Error
		switch {
		case err == nil, errors.As(err, &we) && we.Code == wire.CodeNotFound:
			return nil
		case errors.As(err, &we) && we.Code == wire.CodeUnavailable && ctx.Err() == nil:
			select { // no responders answers at once: do not spin
			case <-time.After(50 * time.Millisecond):
			case <-ctx.Done():
			}
			continue
		}
		return err
	}
}

// measureProjection reports the projection's lag when the load ended, how
// long it took to hold every event after that, and its rate from the start
// of the load until then; with --backlog, from the projector's start.
func (r *loadRun) measureProjection(ctx context.Context, start, loadEnd time.Time, startSeq uint64) projectionReport {
	p := projectionReport{}
	maxSeq := r.maxSeq.Load()
	if maxSeq > startSeq {
		p.Events = maxSeq - startSeq
	}
	if st, ok, err := r.t.projectionStatus(ctx); ok {
		p.LagSource = "status"
		p.LagEventsAtEnd, p.LagSecondsAtEnd = st.LagEvents, st.LagSeconds
	} else if m, merr := scrapeLedgerMetrics(ctx, r.t.metricsURL); merr == nil && m != nil {
		if v, ok := m.value("modledger_projection_lag_events", "projection", projection.CasesName); ok {
			p.LagSource = "metrics"
			p.LagEventsAtEnd = uint64(v)
			p.LagSecondsAtEnd, _ = m.value("modledger_projection_lag_seconds", "projection", projection.CasesName)
		}
	} else if err != nil {
		r.logger.Warn("bench: projection status", "error", err)
	}
	from := start
	if r.t.startProjector != nil {
		// --backlog: everything since the last checkpoint waits for the
		// projector, which starts now.
		p.Backlog = true
		st, ok, _ := r.t.projectionStatus(ctx)
		if ok && maxSeq > st.Checkpoint {
			p.Events = maxSeq - st.Checkpoint
		}
		from = time.Now()
		if err := r.t.startProjector(ctx); err != nil {
			r.logger.Warn("bench: start the projector", "error", err)
			return p
		}
	}
	if err := r.waitProjected(ctx, maxSeq); err != nil {
		r.logger.Warn("bench: wait for the read models to catch up", "error", err)
		return p
	}
	done := time.Now()
	p.CaughtUp = true
	p.CatchUpSeconds = done.Sub(loadEnd).Seconds()
	if secs := done.Sub(from).Seconds(); secs > 0 {
		p.EventsPerSec = float64(p.Events) / secs
	}
	return p
}
