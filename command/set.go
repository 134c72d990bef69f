package command

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/events"
	"github.com/modledger/modledger/internal/wire"
)

// Limits of set commands.
const (
	// SetLimitDefault is how many cases a set command acts on when its
	// request names no limit.
	SetLimitDefault = 1000
	// SetLimitMax is the most cases one set command acts on.
	SetLimitMax = 10_000
)

// queryCaseNumbers is the read side's query that set commands resolve a
// filter with (projection.QueryCaseNumbers; command does not import
// projection).
const queryCaseNumbers = "case_numbers"

// The wire names of the set commands.
const (
	CommandCloseMany  = "close_many"
	CommandReopenMany = "reopen_many"
	CommandDeleteMany = "delete_many"
	CommandRedactMany = "redact_many"
	CommandUpdateMany = "update_many"
)

// Why a case a set command selected was left unchanged.
const (
	UnchangedNoOp            = "no_op"             // the command changes nothing on it
	UnchangedNoLongerMatches = "no_longer_matches" // it changed since the filter was resolved
	UnchangedDeleted         = "deleted"           // it was deleted since
)

// SetParams selects the cases a set command acts on: those matching
// Filter, the listed CaseNumbers, or with All every case of the guild.
// Exactly one of the three is required.
type SetParams struct {
	Meta
	// Filter selects undeleted cases by their current fields.
	Filter *aggregate.CaseFilter `json:"filter,omitempty"`
	// CaseNumbers lists the cases explicitly.
	CaseNumbers []uint32 `json:"case_numbers,omitempty"`
	// All selects every undeleted case of the guild.
	All bool `json:"all,omitzero"`
	// MaxCaseNumber leaves out cases numbered above it. Defaults to the
	// guild's last case number when the command arrives: cases opened
	// after that are never touched. Pass a reply's LastCaseNumber to
	// repeat a set command on the same cases.
	MaxCaseNumber uint32 `json:"max_case_number,omitzero"`
	// Limit bounds the cases acted on, 1 to SetLimitMax. Defaults to
	// SetLimitDefault; the reply's More says when more matched.
	Limit int `json:"limit,omitzero"`
	// DryRun answers with what the command would change, and appends
	// nothing.
	DryRun bool `json:"dry_run,omitzero"`
}

func (p *SetParams) set() *SetParams { return p }

// setHolder is implemented by the set commands' params through SetParams.
type setHolder interface {
	metaHolder
	set() *SetParams
}

// CloseManyParams closes every selected case.
type CloseManyParams struct {
	SetParams
	Reason string `json:"reason,omitempty"`
}

// ReopenManyParams reopens every selected case.
type ReopenManyParams struct {
	SetParams
	Reason string `json:"reason,omitempty"`
}

// DeleteManyParams deletes every selected case.
type DeleteManyParams struct {
	SetParams
	Reason string `json:"reason,omitempty"`
}

// RedactManyParams redacts every selected case. A filter never selects
// deleted cases; list them in CaseNumbers to redact them.
type RedactManyParams struct {
	SetParams
	Reason string `json:"reason,omitempty"`
}

// UpdateManyParams changes the reason, expiry or metadata of every
// selected case.
type UpdateManyParams struct {
	SetParams
	Reason *string `json:"reason,omitempty"`
	// ExpiresAt moves the expiry; null removes it.
	ExpiresAt OptionalTime `json:"expires_at,omitzero"`
	// Metadata replaces the metadata object.
	Metadata json.RawMessage `json:"metadata,omitempty"`
}

// SetResult is the reply to a set command.
type SetResult struct {
	// Seq is the read model's stream sequence the filter was resolved at;
	// 0 for an explicit list of case numbers.
	Seq uint64 `json:"seq"`
	// LastCaseNumber is the highest case number considered: the guild's
	// last case when the command arrived, or MaxCaseNumber.
	LastCaseNumber uint32 `json:"last_case_number"`
	// Matched is how many cases were selected (at most the limit).
	Matched int `json:"matched"`
	// More reports that more cases matched than the limit.
	More bool `json:"more"`
	// DryRun repeats the request's flag: nothing was appended.
	DryRun bool `json:"dry_run,omitzero"`
	// Changed are the cases the command changed (or would change).
	Changed []SetChanged `json:"changed"`
	// Unchanged are the selected cases it left as they were, with why.
	Unchanged []SetUnchanged `json:"unchanged"`
	// Failed are the selected cases it could not change, with the error.
	Failed []SetFailed `json:"failed"`
	// Appended is how many events the command appended in all.
	Appended int `json:"appended"`
}

// SetChanged is a case a set command changed.
type SetChanged struct {
	CaseNumber uint32 `json:"case_number"`
	// Seq is the stream sequence of the case's last new event; 0 in a dry
	// run.
	Seq uint64 `json:"seq,omitzero"`
	// Appended is how many events the change appended (would append).
	Appended int `json:"appended"`
}

// SetUnchanged is a selected case a set command left as it was.
type SetUnchanged struct {
	CaseNumber uint32 `json:"case_number"`
	// Why is UnchangedNoOp, UnchangedNoLongerMatches or UnchangedDeleted.
	Why string `json:"why"`
}

// SetFailed is a selected case a set command could not change.
type SetFailed struct {
	CaseNumber uint32 `json:"case_number"`
	Error      *Error `json:"error"`
}

func (s *Service) handleCloseMany(ctx context.Context, guild events.Snowflake, body []byte) (any, error) {
	return runSet(s, ctx, guild, body, func(p *CloseManyParams) aggregate.Command { return aggregate.CloseCase{Reason: p.Reason} })
}

func (s *Service) handleReopenMany(ctx context.Context, guild events.Snowflake, body []byte) (any, error) {
	return runSet(s, ctx, guild, body, func(p *ReopenManyParams) aggregate.Command { return aggregate.ReopenCase{Reason: p.Reason} })
}

func (s *Service) handleDeleteMany(ctx context.Context, guild events.Snowflake, body []byte) (any, error) {
	return runSet(s, ctx, guild, body, func(p *DeleteManyParams) aggregate.Command { return aggregate.DeleteCase{Reason: p.Reason} })
}

func (s *Service) handleRedactMany(ctx context.Context, guild events.Snowflake, body []byte) (any, error) {
	return runSet(s, ctx, guild, body, func(p *RedactManyParams) aggregate.Command { return aggregate.RedactCase{Reason: p.Reason} })
}

func (s *Service) handleUpdateMany(ctx context.Context, guild events.Snowflake, body []byte) (any, error) {
	return runSet(s, ctx, guild, body, func(p *UpdateManyParams) aggregate.Command {
		return aggregate.UpdateCase{
			Reason:      p.Reason,
			ExpiresAt:   p.ExpiresAt.Time,
			ClearExpiry: p.ExpiresAt.Set && p.ExpiresAt.Time == nil,
			Metadata:    p.Metadata,
		}
	})
}

// runSet decodes a set command and applies it to every case it selects.
func runSet[P any, PP interface {
	*P
	setHolder
}](s *Service, ctx context.Context, guild events.Snowflake, body []byte, toCommand func(*P) aggregate.Command) (any, error) {
	p := PP(new(P))
	if werr := decodeParams(body, MaxRequestBytes, p); werr != nil {
		return nil, werr
	}
	sp := p.set()
	if err := s.validateSet(sp); err != nil {
		return nil, err
	}
	meta := *p.meta()
	cmd := toCommand(p)
	meta.command = cmd.CommandName() + "_many"
	return s.applySet(ctx, guild, sp, meta, cmd)
}

// validateSet checks a set command's selection, actor and limit.
func (s *Service) validateSet(p *SetParams) error {
	if p.ActorID.IsZero() {
		return invalidf("actor_id", "is required: the id of who makes the change")
	}
	chosen := 0
	if p.Filter != nil {
		chosen++
		if p.Filter.IsZero() {
			return invalidf("filter", "is empty: name at least one field, or send \"all\": true to act on every case")
		}
		if err := p.Filter.Validate(s.cfg.Registry, "filter."); err != nil {
			return err
		}
	}
	if len(p.CaseNumbers) > 0 {
		chosen++
		if slices.Contains(p.CaseNumbers, 0) {
			return invalidf("case_numbers", "case numbers start at 1")
		}
	}
	if p.All {
		chosen++
	}
	if chosen != 1 {
		return invalidf("", "select cases with exactly one of filter, case_numbers, or \"all\": true")
	}
	switch {
	case p.Limit == 0:
		p.Limit = SetLimitDefault
	case p.Limit < 0 || p.Limit > SetLimitMax:
		return invalidf("limit", "%d: must be 1 to %d", p.Limit, SetLimitMax)
	}
	if len(p.CaseNumbers) > p.Limit {
		return invalidf("case_numbers", "%d cases, more than the limit %d", len(p.CaseNumbers), p.Limit)
	}
	return nil
}

// applySet resolves the selection and applies cmd to each case.
func (s *Service) applySet(ctx context.Context, guild events.Snowflake, p *SetParams, meta Meta, cmd aggregate.Command) (*SetResult, error) {
	last, _, err := retryData(ctx, s, func() (uint32, uint64, error) { return s.ledger.lastOpened(ctx, guild) })
	if err != nil {
		return nil, err
	}
	if p.MaxCaseNumber > 0 && p.MaxCaseNumber < last {
		last = p.MaxCaseNumber
	}
	res := &SetResult{LastCaseNumber: last, DryRun: p.DryRun,
		Changed: []SetChanged{}, Unchanged: []SetUnchanged{}, Failed: []SetFailed{}}
	var numbers []uint32
	if len(p.CaseNumbers) > 0 {
		numbers = slices.Clone(p.CaseNumbers)
		slices.Sort(numbers)
		numbers = slices.Compact(numbers)
	} else {
		var filter aggregate.CaseFilter
		if p.Filter != nil {
			filter = *p.Filter
		}
		r, err := s.resolveFilter(ctx, guild, filter, last, p.Limit)
		if err != nil {
			return nil, err
		}
		numbers, res.More, res.Seq = r.CaseNumbers, r.More, r.Seq
	}
	res.Matched = len(numbers)
	// Chunks of cases go out as atomic batches; a case's events are never
	// split between batches.
	for len(numbers) > 0 {
		n, err := s.applySetChunk(ctx, guild, numbers, p, meta, cmd, res)
		if err != nil {
			return nil, err
		}
		numbers = numbers[n:]
	}
	return res, nil
}

// caseNumbersReply is the read side's answer to case_numbers.
type caseNumbersReply struct {
	CaseNumbers []uint32 `json:"case_numbers"`
	More        bool     `json:"more"`
	Seq         uint64   `json:"seq"`
}

// resolveFilter asks the read side for the undeleted cases numbered up to
// last that match filter, once its read model has every event of the guild
// stored before now.
func (s *Service) resolveFilter(ctx context.Context, guild events.Snowflake, filter aggregate.CaseFilter, last uint32, limit int) (*caseNumbersReply, error) {
	if last == 0 {
		return &caseNumbersReply{}, nil
	}
	m, err := s.ledger.getOne(ctx, directGetRequest{LastFor: s.subj.Guild(guild)})
	if err != nil {
		return nil, fmt.Errorf("resolve filter: last event of guild %d: %w", guild, err)
	}
	return s.caseNumbers(ctx, guild, filter, false, last, m.Seq, limit)
}

// caseNumbers asks the read side, once its read model holds minSeq, for
// the numbers of the cases up to maxNumber that match filter.
func (s *Service) caseNumbers(ctx context.Context, guild events.Snowflake, filter aggregate.CaseFilter, includeDeleted bool, maxNumber uint32, minSeq uint64, limit int) (*caseNumbersReply, error) {
	req := struct {
		aggregate.CaseFilter
		IncludeDeleted bool   `json:"include_deleted,omitzero"`
		MinSeq         uint64 `json:"min_seq"`
		MaxCaseNumber  uint32 `json:"max_case_number"`
		Limit          int    `json:"limit"`
	}{filter, includeDeleted, minSeq, maxNumber, limit}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RetryTimeout)
	defer cancel()
	msg, err := s.cfg.Conn.RequestWithContext(ctx, s.subj.Query(guild, queryCaseNumbers), body)
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) {
			return nil, fmt.Errorf("%w: set commands and conditional opens read the read side, and no query service answers", ErrUnavailable)
		}
		return nil, fmt.Errorf("%w: case numbers from the read side: %w", ErrUnavailable, err)
	}
	if we := wire.ReplyError(msg); we != nil {
		if we.Code == wire.CodeInvalidArgument && we.Field != "" {
			we.Field = "filter." + we.Field
		}
		return nil, we
	}
	var r caseNumbersReply
	if err := json.Unmarshal(msg.Data, &r); err != nil {
		return nil, fmt.Errorf("case numbers from the read side: unreadable reply: %w", err)
	}
	return &r, nil
}

// setCase is one case of a chunk, while it is decided.
type setCase struct {
	number uint32
	cs     *caseState
	evs    []events.Event
}

// applySetChunk applies cmd to the first cases of numbers that fit in one
// atomic batch, and returns how many it took. A lost concurrency check on
// any of them reloads them all and decides again.
func (s *Service) applySetChunk(ctx context.Context, guild events.Snowflake, numbers []uint32, p *SetParams, meta Meta, cmd aggregate.Command, res *SetResult) (int, error) {
	// Lock in ascending number order: a single change locks one case, so
	// no two lockers wait on each other.
	var cases []*setCase
	for _, n := range numbers {
		cs := s.cases.get(caseKey{guild: guild, number: n})
		cs.Lock()
		cases = append(cases, &setCase{number: n, cs: cs})
		if len(cases) == MaxCasesPerBatch/4 {
			break
		}
	}
	defer func() {
		for _, c := range cases {
			c.cs.Unlock()
		}
	}()
	type outcome struct {
		changed   []SetChanged
		unchanged []SetUnchanged
		failed    []SetFailed
		appended  int
	}
	out, err := retry(ctx, s, func() (*outcome, error) {
		o := &outcome{}
		now := s.now()
		var msgs []outMsg
		var pending []*setCase
		for _, c := range cases {
			c.evs = nil
			key := caseKey{guild: guild, number: c.number}
			if c.cs.state == nil {
				if err := s.loadCase(ctx, c.cs, key); err != nil {
					return nil, err
				}
			}
			st := c.cs.state
			if st == nil {
				o.failed = append(o.failed, SetFailed{c.number, wire.ErrorOf(fmt.Errorf("%w: case %d in guild %d", aggregate.ErrCaseNotFound, c.number, guild))})
				continue
			}
			if r, err := replay(c.cs.evs, meta); r != nil || err != nil {
				if err != nil {
					o.failed = append(o.failed, SetFailed{c.number, wire.ErrorOf(err)})
				} else {
					if st.Redacted {
						if err := s.shredRedacted(ctx, c.cs.evs); err != nil {
							return nil, err
						}
					}
					o.changed = append(o.changed, SetChanged{c.number, r.Seq, r.Appended})
					o.appended += r.Appended
				}
				continue
			}
			if st.Deleted && len(p.CaseNumbers) == 0 {
				o.unchanged = append(o.unchanged, SetUnchanged{c.number, UnchangedDeleted})
				continue
			}
			if p.Filter != nil && !p.Filter.Matches(st) {
				o.unchanged = append(o.unchanged, SetUnchanged{c.number, UnchangedNoLongerMatches})
				continue
			}
			payloads, err := aggregate.Decide(aggregate.Env{Now: now, Registry: s.cfg.Registry, ActorID: meta.ActorID}, st, cmd)
			if err != nil {
				o.failed = append(o.failed, SetFailed{c.number, wire.ErrorOf(err)})
				continue
			}
			if len(payloads) == 0 {
				o.unchanged = append(o.unchanged, SetUnchanged{c.number, UnchangedNoOp})
				continue
			}
			c.evs = s.newEvents(guild, st.CaseNumber, st.CaseID, meta, meta.ActorID, now, payloads)
			if err := s.assignKeys(ctx, c.cs.evs, c.evs, nil); err != nil {
				return nil, retryable(err)
			}
			m, err := s.eventMsgs(ctx, c.evs, 0)
			if err != nil {
				return nil, retryable(err)
			}
			for i := range m {
				m[i].msgID = "" // replays are found by the command id in the case's events
			}
			m[0].expectSet, m[0].expect, m[0].expectSubject = true, st.Version, s.subj.CaseAll(guild, st.CaseNumber)
			msgs = append(msgs, m...)
			pending = append(pending, c)
		}
		if p.DryRun || len(msgs) == 0 {
			for _, c := range pending {
				o.changed = append(o.changed, SetChanged{CaseNumber: c.number, Appended: len(c.evs)})
				o.appended += len(c.evs)
			}
			if p.DryRun {
				o.appended = 0
			}
			return o, nil
		}
		ack, err := s.commit.append(ctx, msgs)
		if err != nil {
			for _, c := range pending {
				c.cs.reset()
			}
			if errors.Is(err, errWrongLastSeq) || isTransient(err) {
				return nil, err
			}
			return nil, backoff.Permanent(err)
		}
		seq := ack.Seq - uint64(len(msgs)) + 1
		for _, c := range pending {
			for i := range c.evs {
				c.evs[i].Seq = seq
				seq++
				if err := c.cs.state.Apply(c.evs[i]); err != nil {
					c.cs.reset()
					return nil, backoff.Permanent(fmt.Errorf("fold appended event: %w", err))
				}
			}
			c.cs.evs = append(c.cs.evs, c.evs...)
			if c.cs.state.Redacted {
				if err := s.shredRedacted(ctx, c.cs.evs); err != nil {
					return nil, err
				}
			}
			o.changed = append(o.changed, SetChanged{c.number, c.evs[len(c.evs)-1].Seq, len(c.evs)})
			o.appended += len(c.evs)
		}
		return o, nil
	})
	if err != nil {
		return 0, err
	}
	res.Changed = append(res.Changed, out.changed...)
	res.Unchanged = append(res.Unchanged, out.unchanged...)
	res.Failed = append(res.Failed, out.failed...)
	res.Appended += out.appended
	slices.SortFunc(res.Changed, func(a, b SetChanged) int { return int(a.CaseNumber) - int(b.CaseNumber) })
	return len(cases), nil
}

// retryData is retry for an operation with two results.
func retryData[A, B any](ctx context.Context, s *Service, op func() (A, B, error)) (A, B, error) {
	type pair struct {
		a A
		b B
	}
	r, err := retry(ctx, s, func() (pair, error) {
		a, b, err := op()
		if err != nil && !isTransient(err) {
			return pair{}, backoff.Permanent(err)
		}
		return pair{a, b}, err
	})
	return r.a, r.b, err
}
