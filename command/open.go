package command

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/cenkalti/backoff/v4"
	"github.com/google/uuid"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/events"
)

// newCase is one case an open, open_many or import creates.
type newCase struct {
	payload events.Payload
	fields  events.CaseFields
	// number is the case's number for imports; zero for opens, which take
	// the guild's next.
	number uint32
	actor  events.Snowflake
	// result is set once the case is settled: appended, or found made
	// already for its external id.
	result *Result
	// keyID is the data key taken from the pool for the case's personal
	// text, kept across the attempts of one command.
	keyID uuid.UUID
}

// claim is the body of an external id claim message.
type claim struct {
	GuildID    events.Snowflake `json:"guild_id"`
	CaseNumber uint32           `json:"case_number"`
	CaseID     uuid.UUID        `json:"case_id"`
	ExternalID string           `json:"external_id"`
	CommandID  uuid.UUID        `json:"command_id"`
}

// claimMsg is the claim message of a case's external id, which expects its
// subject to be empty; nil when the case has none.
func (s *Service) claimMsg(guild events.Snowflake, number uint32, caseID uuid.UUID, externalID string, commandID uuid.UUID) *outMsg {
	if externalID == "" {
		return nil
	}
	body, _ := json.Marshal(claim{GuildID: guild, CaseNumber: number, CaseID: caseID, ExternalID: externalID, CommandID: commandID})
	subj := s.subj.ExternalIDClaim(guild, hashExternalID(externalID))
	return &outMsg{subject: subj, header: map[string]string{HeaderClaim: "external_id"}, data: body,
		expectSet: true, expect: 0, expectSubject: subj}
}

// hashExternalID makes an external id, which may hold any character, into a
// subject token.
func hashExternalID(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:16])
}

func (s *Service) handleOpen(ctx context.Context, guild events.Snowflake, body []byte) (any, error) {
	var p OpenParams
	if werr := decodeParams(body, MaxSingleRequestBytes, &p); werr != nil {
		return nil, werr
	}
	p.command = aggregate.CommandOpen
	nc, err := s.decideOpen(p.Meta, p.CaseFields, "")
	if err != nil {
		if res := s.earlierOpens(ctx, guild, p.Meta, err); res != nil {
			return res[0], nil
		}
		return nil, err
	}
	var guard openGuard
	if p.UnlessActive.Set {
		family, err := s.unlessActiveFamily(p.UnlessActive, p.Type)
		if err != nil {
			return nil, err
		}
		guard = s.unlessActive(guild, p.Meta, p.UserID, family)
	}
	var res []*Result
	if guard == nil {
		res, err = s.openCombined(ctx, guild, p.Meta, nc)
	} else {
		res, err = s.create(ctx, guild, p.Meta, []*newCase{nc}, false, guard)
	}
	if err != nil {
		return nil, err
	}
	return res[0], nil
}

func (s *Service) handleOpenMany(ctx context.Context, guild events.Snowflake, body []byte) (any, error) {
	var p OpenManyParams
	if werr := decodeParams(body, MaxRequestBytes, &p); werr != nil {
		return nil, werr
	}
	if len(p.Cases) == 0 {
		return nil, invalidf("cases", "is required: at least one case")
	}
	p.command = aggregate.CommandOpenMany
	cases := make([]*newCase, len(p.Cases))
	for i, f := range p.Cases {
		nc, err := s.decideOpen(p.Meta, f, fmt.Sprintf("cases[%d].", i))
		if err != nil {
			if res := s.earlierOpens(ctx, guild, p.Meta, err); len(res) == len(p.Cases) {
				return manyResult(res), nil
			}
			return nil, err
		}
		cases[i] = nc
	}
	if err := checkBatch(cases); err != nil {
		return nil, err
	}
	res, err := s.create(ctx, guild, p.Meta, cases, false, nil)
	if err != nil {
		return nil, err
	}
	return manyResult(res), nil
}

func (s *Service) handleImport(ctx context.Context, guild events.Snowflake, body []byte) (any, error) {
	var p ImportParams
	if werr := decodeParams(body, MaxRequestBytes, &p); werr != nil {
		return nil, werr
	}
	if len(p.Cases) == 0 {
		return nil, invalidf("cases", "is required: at least one case")
	}
	now := s.now()
	cases := make([]*newCase, len(p.Cases))
	for i, ic := range p.Cases {
		prefix := fmt.Sprintf("cases[%d].", i)
		if i > 0 && ic.CaseNumber <= p.Cases[i-1].CaseNumber {
			return nil, invalidf(prefix+"case_number", "must be above the previous case's number %d", p.Cases[i-1].CaseNumber)
		}
		actor := actorOf(p.Meta, ic.CaseFields)
		payloads, err := aggregate.Decide(aggregate.Env{Now: now, Registry: s.cfg.Registry, ActorID: actor}, nil, ic)
		if err != nil {
			return nil, prefixField(err, prefix)
		}
		imp := payloads[0].(events.CaseImported)
		cases[i] = &newCase{payload: imp, fields: imp.CaseFields, number: ic.CaseNumber, actor: actor}
	}
	if err := checkBatch(cases); err != nil {
		return nil, err
	}
	p.command = aggregate.CommandImport
	res, err := s.create(ctx, guild, p.Meta, cases, true, nil)
	if err != nil {
		return nil, err
	}
	return manyResult(res), nil
}

func actorOf(meta Meta, f events.CaseFields) events.Snowflake {
	if !meta.ActorID.IsZero() {
		return meta.ActorID
	}
	return f.ModeratorID
}

// decideOpen validates one case to open; field names get prefix.
func (s *Service) decideOpen(meta Meta, f events.CaseFields, prefix string) (*newCase, error) {
	actor := actorOf(meta, f)
	env := aggregate.Env{Now: s.now(), Registry: s.cfg.Registry, ActorID: actor}
	payloads, err := aggregate.Decide(env, nil, aggregate.OpenCase{CaseFields: f})
	if err != nil {
		return nil, prefixField(err, prefix)
	}
	op := payloads[0].(events.CaseOpened)
	return &newCase{payload: op, fields: op.CaseFields, actor: actor}, nil
}

// earlierOpens returns the first replies of an open or open_many that
// validation refused (err) but that an earlier attempt stored: the rule
// that depends on the time (an expiry in the future) fails a late retry of
// a command the ledger accepted, and a retry must get its first reply. It
// looks back as far as the duplicate window (and a minute), and returns nil
// when it finds nothing or cannot look.
func (s *Service) earlierOpens(ctx context.Context, guild events.Snowflake, meta Meta, err error) []*Result {
	// Only the expiry's rule depends on the time: other refusals would
	// have refused the first attempt too, and need no look back.
	var ve *aggregate.ValidationError
	if !errors.As(err, &ve) || !strings.HasSuffix(ve.Field, "expires_at") || meta.CommandID == uuid.Nil {
		return nil
	}
	found, ferr := s.ledger.findCommand(ctx, s.subj.GuildOpened(guild), meta.CommandID, s.cfg.Now())
	if ferr != nil || len(found) == 0 {
		return nil
	}
	cases := make([]*newCase, len(found))
	pending := make([]int, len(found))
	for i := range found {
		cases[i], pending[i] = &newCase{}, i
	}
	if err := s.settleFrom(ctx, guild, meta, cases, pending, found); err != nil {
		return nil
	}
	return results(cases)
}

// prefixField puts prefix before the field of a validation error.
func prefixField(err error, prefix string) error {
	var ve *aggregate.ValidationError
	if prefix == "" || !errors.As(err, &ve) {
		return err
	}
	return &aggregate.ValidationError{Field: prefix + ve.Field, Message: ve.Message}
}

// checkBatch refuses a batch that repeats an external id or that would not
// fit in one atomic batch.
func checkBatch(cases []*newCase) error {
	seen := map[string]int{}
	msgs := 0
	for i, c := range cases {
		msgs++
		if id := c.fields.ExternalID; id != "" {
			msgs++
			if j, dup := seen[id]; dup {
				return invalidf(fmt.Sprintf("cases[%d].external_id", i), "repeats the external id of cases[%d]", j)
			}
			seen[id] = i
		}
	}
	if msgs > MaxCasesPerBatch {
		return invalidf("cases", "%d cases with %d external ids make %d messages; one atomic batch holds at most %d", len(cases), msgs-len(cases), msgs, MaxCasesPerBatch)
	}
	return nil
}

func manyResult(res []*Result) *ManyResult {
	out := &ManyResult{Cases: make([]*aggregate.Case, len(res))}
	for i, r := range res {
		out.Cases[i] = r.Case
		out.Seq = max(out.Seq, r.Seq)
		out.Appended += r.Appended
	}
	return out
}

// create appends new cases of one guild in one atomic batch. Opens take the
// guild's next numbers; imports bring theirs, which must lie above the
// guild's last. The first message expects the last sequence of the guild's
// case register (<prefix>.case.<guild>.*.opened) to be the one the numbers
// were taken from, so two writers can never give out one number; each
// external id's claim expects its claim subject to be empty, so one external
// id can never make two cases.
//
// guard, when set, runs at the guild position each attempt appends at; a
// result from it settles the (single) case without appending.
func (s *Service) create(ctx context.Context, guild events.Snowflake, meta Meta, cases []*newCase, imported bool, guard openGuard) ([]*Result, error) {
	gp := s.guilds.get(guild)
	gp.Lock()
	defer gp.Unlock()
	return s.createLocked(ctx, guild, gp, meta, cases, imported, guard)
}

// createLocked is create for a caller that holds gp, the guild's position.
func (s *Service) createLocked(ctx context.Context, guild events.Snowflake, gp *guildPosition, meta Meta, cases []*newCase, imported bool, guard openGuard) ([]*Result, error) {
	if imported {
		gp.loaded = false
	}
	dupSeen := false
	return retry(ctx, s, func() ([]*Result, error) {
		var pending []int
		for i, c := range cases {
			if c.result == nil {
				pending = append(pending, i)
			}
		}
		if len(pending) == 0 {
			return results(cases), nil
		}
		if !gp.loaded {
			n, seq, err := s.ledger.lastOpened(ctx, guild)
			if err != nil {
				return nil, retryable(err)
			}
			gp.loaded, gp.lastNumber, gp.lastSeq = true, n, seq
		}
		if guard != nil {
			r, err := guard(ctx, gp.lastNumber, gp.lastSeq)
			if err != nil {
				return nil, retryable(err)
			}
			if r != nil {
				cases[0].result = r
				return results(cases), nil
			}
		}
		now := s.now()
		var evs []events.Event
		var claims []outMsg
		next := gp.lastNumber
		for _, i := range pending {
			c := cases[i]
			if imported {
				if c.number <= next {
					// Either this import was stored by an earlier attempt
					// (its first reply is due), or the number is taken.
					if settled, err := s.settleImported(ctx, guild, meta, cases, pending); err != nil || settled {
						if err != nil {
							return nil, err
						}
						return results(cases), nil
					}
					return nil, backoff.Permanent(invalidf(fmt.Sprintf("cases[%d].case_number", i), "%d is not above the guild's last case number %d", c.number, next))
				}
				next = c.number
			} else {
				next++
			}
			caseID := newUUID()
			ev := s.newEvents(guild, next, caseID, meta, c.actor, now, []events.Payload{c.payload})
			if err := s.assignKeys(ctx, nil, ev, &c.keyID); err != nil {
				return nil, retryable(err)
			}
			evs = append(evs, ev[0])
			if cm := s.claimMsg(guild, next, caseID, c.fields.ExternalID, meta.CommandID); cm != nil {
				claims = append(claims, *cm)
			}
		}
		msgs := make([]outMsg, 0, len(evs)+len(claims))
		for k, ev := range evs {
			m, err := s.eventMsgs(ctx, []events.Event{ev}, pending[k])
			if err != nil {
				return nil, retryable(err)
			}
			msgs = append(msgs, m[0])
		}
		msgs[0].expectSet, msgs[0].expect, msgs[0].expectSubject = true, gp.lastSeq, s.subj.GuildOpened(guild)
		msgs = append(msgs, claims...)

		ack, err := s.commit.append(ctx, msgs)
		switch {
		case err == nil && !ack.Duplicate:
			first := ack.Seq - uint64(len(msgs)) + 1
			for k, i := range pending {
				evs[k].Seq = first + uint64(k)
				st, err := aggregate.Fold(evs[k : k+1])
				if err != nil {
					return nil, backoff.Permanent(err)
				}
				cases[i].result = &Result{Case: st, Seq: evs[k].Seq, Appended: 1}
				s.remember(evs[k], st)
			}
			gp.lastNumber, gp.lastSeq = next, evs[len(evs)-1].Seq
			return results(cases), nil
		case err == nil && ack.Duplicate:
			// A single message the server had stored already: this
			// command's earlier attempt. Its reply is rebuilt from there.
			gp.loaded = false
			if err := s.settleDuplicate(ctx, guild, meta, cases, pending, ack.Seq); err != nil {
				return nil, err
			}
			return results(cases), nil
		case errors.Is(err, errWrongLastSeq), errors.Is(err, errDuplicate):
			gp.loaded = false
			if errors.Is(err, errDuplicate) {
				if dupSeen {
					return nil, backoff.Permanent(fmt.Errorf("%w: command_id %s was already used by another command", aggregate.ErrConflict, meta.CommandID))
				}
				dupSeen = true
			}
			settled, serr := s.settleClaims(ctx, guild, meta, cases, pending, imported)
			if serr != nil {
				return nil, serr
			}
			if settled == 0 && errors.Is(err, errDuplicate) {
				if err := s.settleFromStream(ctx, guild, meta, cases, pending); err != nil {
					return nil, err
				}
				return results(cases), nil
			}
			return nil, err
		case isTransient(err):
			gp.loaded = false
			return nil, err
		}
		return nil, backoff.Permanent(err)
	})
}

// results returns the settled results of cases, in order.
func results(cases []*newCase) []*Result {
	out := make([]*Result, len(cases))
	for i, c := range cases {
		out[i] = c.result
	}
	return out
}

// remember puts a new case in the case cache, when nobody is using its entry.
func (s *Service) remember(ev events.Event, st *aggregate.Case) {
	cs := s.cases.get(caseKey{guild: ev.GuildID, number: ev.CaseNumber})
	if cs.TryLock() {
		cs.evs, cs.state = []events.Event{ev}, st.Clone()
		cs.Unlock()
	}
}

// settleClaims looks up the claims of the pending cases' external ids. A
// claim made by this very command (an earlier attempt that was stored)
// settles the case with its first reply; a claim made by another command
// settles an open with the existing case and appends nothing, and fails an
// import. It returns how many cases it settled.
func (s *Service) settleClaims(ctx context.Context, guild events.Snowflake, meta Meta, cases []*newCase, pending []int, imported bool) (int, error) {
	settled := 0
	for _, i := range pending {
		c := cases[i]
		if c.fields.ExternalID == "" {
			continue
		}
		m, err := s.ledger.getOne(ctx, directGetRequest{LastFor: s.subj.ExternalIDClaim(guild, hashExternalID(c.fields.ExternalID))})
		if errors.Is(err, errNoMessage) {
			continue
		}
		if err != nil {
			return settled, retryable(err)
		}
		var cl claim
		if err := json.Unmarshal(m.Data, &cl); err != nil || cl.CaseNumber == 0 {
			return settled, backoff.Permanent(fmt.Errorf("unreadable external id claim at sequence %d", m.Seq))
		}
		evs, err := s.ledger.loadCase(ctx, guild, cl.CaseNumber)
		if err != nil {
			return settled, retryable(err)
		}
		r, err := replay(evs, meta)
		if err != nil {
			return settled, backoff.Permanent(err)
		}
		if r != nil {
			c.result = r
			settled++
			continue
		}
		if imported {
			return settled, backoff.Permanent(fmt.Errorf("%w: cases[%d].external_id already made case %d", aggregate.ErrConflict, i, cl.CaseNumber))
		}
		st, err := aggregate.Fold(evs)
		if err != nil || !st.Exists() {
			return settled, backoff.Permanent(fmt.Errorf("external id claim points at case %d, which cannot be read: %v", cl.CaseNumber, err))
		}
		c.result = &Result{Case: st, Seq: st.Version, Appended: 0}
		settled++
	}
	return settled, nil
}

// settleDuplicate settles a single open that the server reported as a
// duplicate of the message at seq.
func (s *Service) settleDuplicate(ctx context.Context, guild events.Snowflake, meta Meta, cases []*newCase, pending []int, seq uint64) error {
	m, err := s.ledger.getOne(ctx, directGetRequest{Seq: seq})
	if err != nil {
		return retryable(err)
	}
	ev, err := s.ledger.decode(ctx, m)
	if err != nil {
		return retryable(err)
	}
	if ev.CommandID != meta.CommandID || ev.GuildID != guild || !ev.Event.Creates() || len(pending) != 1 {
		return backoff.Permanent(fmt.Errorf("%w: command_id %s was already used by another command", aggregate.ErrConflict, meta.CommandID))
	}
	return s.settleFrom(ctx, guild, meta, cases, pending, []events.Event{ev})
}

// settleImported settles an import whose cases this very command stored
// before: each pending case's number holds a case it opened. It reports
// false, settling nothing, when any of them does not.
func (s *Service) settleImported(ctx context.Context, guild events.Snowflake, meta Meta, cases []*newCase, pending []int) (bool, error) {
	found := make([]*Result, len(pending))
	for k, i := range pending {
		evs, err := s.ledger.loadCase(ctx, guild, cases[i].number)
		if err != nil {
			return false, retryable(err)
		}
		if len(evs) == 0 || evs[0].CommandID != meta.CommandID {
			return false, nil
		}
		r, err := replay(evs, meta)
		if err != nil {
			return false, backoff.Permanent(err)
		}
		found[k] = r
	}
	for k, i := range pending {
		cases[i].result = found[k]
	}
	return true, nil
}

// settleFromStream settles the pending cases of a command whose batch the
// server refused as a duplicate: its earlier attempt is in the stream,
// within the duplicate window, on the guild's case register.
func (s *Service) settleFromStream(ctx context.Context, guild events.Snowflake, meta Meta, cases []*newCase, pending []int) error {
	found, err := s.ledger.findCommand(ctx, s.subj.GuildOpened(guild), meta.CommandID, s.cfg.Now())
	if err != nil {
		return retryable(err)
	}
	if len(found) != len(pending) {
		return backoff.Permanent(fmt.Errorf("%w: command_id %s was already used by another command", aggregate.ErrConflict, meta.CommandID))
	}
	return s.settleFrom(ctx, guild, meta, cases, pending, found)
}

// settleFrom gives each pending case the first reply of the case that
// opened[k] created.
func (s *Service) settleFrom(ctx context.Context, guild events.Snowflake, meta Meta, cases []*newCase, pending []int, opened []events.Event) error {
	for k, i := range pending {
		evs, err := s.ledger.loadCase(ctx, guild, opened[k].CaseNumber)
		if err != nil {
			return retryable(err)
		}
		r, err := replay(evs, meta)
		if err != nil {
			return backoff.Permanent(err)
		}
		if r == nil {
			return backoff.Permanent(fmt.Errorf("case %d opened by command %s cannot be read back", opened[k].CaseNumber, meta.CommandID))
		}
		cases[i].result = r
	}
	return nil
}

// retryable returns err for retry when it is transient and as permanent
// otherwise.
func retryable(err error) error {
	if isTransient(err) {
		return err
	}
	return backoff.Permanent(err)
}
