package command

import (
	"context"
	"errors"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/events"
)

// Opens in one guild are numbered one after the other, under the guild's
// lock, so group commit alone cannot combine them. openCombined does: an
// open queues itself on the guild, then takes the lock; whoever gets the
// lock opens every queued case in one append (consecutive numbers, one
// check on the guild's register), and hands each its result. While one
// append is on its way, the next group gathers, so a raid of many
// moderators in one guild costs a round trip per group, not per case.

// combineMax bounds the opens combined in one append.
const combineMax = MaxCasesPerBatch / 2

// openWaiter is one queued open.
type openWaiter struct {
	meta Meta
	nc   *newCase
	done chan openOutcome
}

type openOutcome struct {
	res []*Result
	err error
}

// openCombined opens one case, combined with the other opens of the guild
// that wait at the same time.
func (s *Service) openCombined(ctx context.Context, guild events.Snowflake, meta Meta, nc *newCase) ([]*Result, error) {
	gp := s.guilds.get(guild)
	w := &openWaiter{meta: meta, nc: nc, done: make(chan openOutcome, 1)}
	gp.qmu.Lock()
	gp.waiting = append(gp.waiting, w)
	gp.qmu.Unlock()
	gp.Lock()
	select {
	case o := <-w.done: // the group of an earlier holder had it
		gp.Unlock()
		return o.res, o.err
	default:
	}
	gp.qmu.Lock()
	group := gp.waiting
	if len(group) > combineMax {
		group = group[:combineMax]
	}
	gp.waiting = append([]*openWaiter(nil), gp.waiting[len(group):]...)
	gp.qmu.Unlock()
	s.openGroup(ctx, guild, gp, group)
	gp.Unlock()
	o := <-w.done
	return o.res, o.err
}

// openGroup opens the cases of group (which holds at least the caller's
// own) and answers each waiter. The caller holds gp.
func (s *Service) openGroup(ctx context.Context, guild events.Snowflake, gp *guildPosition, group []*openWaiter) {
	if len(group) > 1 {
		// The group's append runs for all of them, whoever's context it
		// was: bound it by the service's own limits instead.
		gctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.RetryTimeout+s.cfg.APITimeout)
		ok := s.appendGroup(gctx, guild, gp, group)
		cancel()
		if ok {
			return
		}
	}
	// A lone open, or a group whose append failed (a lost check, a retried
	// command id, an external id made already): each on its own, with
	// every rule of a single open.
	for _, w := range group {
		res, err := s.createLocked(ctx, guild, gp, w.meta, []*newCase{w.nc}, false, nil)
		w.done <- openOutcome{res, err}
	}
}

// appendGroup appends the group's cases in one atomic batch, trying again
// once when the guild's register moved. It reports false, having answered
// nobody, when the group must go case by case.
func (s *Service) appendGroup(ctx context.Context, guild events.Snowflake, gp *guildPosition, group []*openWaiter) bool {
	for attempt := 0; attempt < 2; attempt++ {
		if !gp.loaded {
			n, seq, err := s.ledger.lastOpened(ctx, guild)
			if err != nil {
				return false
			}
			gp.loaded, gp.lastNumber, gp.lastSeq = true, n, seq
		}
		now := s.now()
		evs := make([]events.Event, len(group))
		var msgs, claims []outMsg
		next := gp.lastNumber
		for i, w := range group {
			next++
			evs[i] = s.newEvents(guild, next, newUUID(), w.meta, w.nc.actor, now, []events.Payload{w.nc.payload})[0]
			if err := s.assignKeys(ctx, nil, evs[i:i+1], &w.nc.keyID); err != nil {
				return false
			}
			m, err := s.eventMsgs(ctx, evs[i:i+1], 0)
			if err != nil {
				return false
			}
			msgs = append(msgs, m[0])
			if c := s.claimMsg(guild, next, evs[i].CaseID, w.nc.fields.ExternalID, w.meta.CommandID); c != nil {
				claims = append(claims, *c)
			}
		}
		msgs[0].expectSet, msgs[0].expect, msgs[0].expectSubject = true, gp.lastSeq, s.subj.GuildOpened(guild)
		msgs = append(msgs, claims...)
		ack, err := s.commit.append(ctx, msgs)
		if err != nil {
			gp.loaded = false
			if errors.Is(err, errWrongLastSeq) && len(claims) == 0 {
				continue // another writer opened a case: number again
			}
			return false
		}
		first := ack.Seq - uint64(len(msgs)) + 1
		for i, w := range group {
			evs[i].Seq = first + uint64(i)
			st, err := aggregate.Fold(evs[i : i+1])
			if err != nil {
				w.done <- openOutcome{err: err}
				continue
			}
			s.remember(evs[i], st)
			w.done <- openOutcome{res: []*Result{{Case: st, Seq: evs[i].Seq, Appended: 1}}}
		}
		gp.lastNumber, gp.lastSeq = next, evs[len(evs)-1].Seq
		return true
	}
	return false
}
