package command

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/google/uuid"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/events"
)

// caseRefHolder is implemented by change params through their CaseRef.
type caseRefHolder interface {
	metaHolder
	ref() *CaseRef
}

// decodeChange decodes a change command's body and checks what every
// change needs: a case number and an actor.
func decodeChange(body []byte, p caseRefHolder) *Error {
	if werr := decodeParams(body, MaxSingleRequestBytes, p); werr != nil {
		return werr
	}
	if p.ref().CaseNumber == 0 {
		return invalidf("case_number", "is required: the case's number in the guild, from 1")
	}
	if p.meta().ActorID.IsZero() {
		return invalidf("actor_id", "is required: the id of who makes the change")
	}
	return nil
}

// runChange decodes a change command and applies it to its case.
func runChange[P any, PP interface {
	*P
	caseRefHolder
}](s *Service, ctx context.Context, guild events.Snowflake, body []byte, toCommand func(*P) aggregate.Command) (any, error) {
	p := PP(new(P))
	if werr := decodeChange(body, p); werr != nil {
		return nil, werr
	}
	cmd := toCommand(p)
	meta := *p.meta()
	meta.command = cmd.CommandName()
	return s.change(ctx, guild, *p.ref(), meta, cmd)
}

func (s *Service) handleUpdate(ctx context.Context, guild events.Snowflake, body []byte) (any, error) {
	return runChange(s, ctx, guild, body, func(p *UpdateParams) aggregate.Command {
		return aggregate.UpdateCase{
			Reason:      p.Reason,
			Status:      p.Status,
			ExpiresAt:   p.ExpiresAt.Time,
			ClearExpiry: p.ExpiresAt.Set && p.ExpiresAt.Time == nil,
			Metadata:    p.Metadata,
		}
	})
}

func (s *Service) handleClose(ctx context.Context, guild events.Snowflake, body []byte) (any, error) {
	return runChange(s, ctx, guild, body, func(p *CloseParams) aggregate.Command {
		return aggregate.CloseCase{Reason: p.Reason}
	})
}

func (s *Service) handleReopen(ctx context.Context, guild events.Snowflake, body []byte) (any, error) {
	return runChange(s, ctx, guild, body, func(p *ReopenParams) aggregate.Command {
		return aggregate.ReopenCase{Reason: p.Reason}
	})
}

func (s *Service) handleAddNote(ctx context.Context, guild events.Snowflake, body []byte) (any, error) {
	return runChange(s, ctx, guild, body, func(p *AddNoteParams) aggregate.Command {
		return aggregate.AddNote{NoteID: newUUID(), Text: p.Text, EvidenceURLs: p.EvidenceURLs}
	})
}

func (s *Service) handleLinkModLog(ctx context.Context, guild events.Snowflake, body []byte) (any, error) {
	return runChange(s, ctx, guild, body, func(p *LinkModLogParams) aggregate.Command {
		return aggregate.LinkModLog{MessageID: p.ModLogMessageID, ChannelID: p.ModLogChannelID}
	})
}

func (s *Service) handleMarkExpiryProcessed(ctx context.Context, guild events.Snowflake, body []byte) (any, error) {
	return runChange(s, ctx, guild, body, func(p *MarkExpiryProcessedParams) aggregate.Command {
		return aggregate.MarkExpiryProcessed{}
	})
}

func (s *Service) handleDelete(ctx context.Context, guild events.Snowflake, body []byte) (any, error) {
	return runChange(s, ctx, guild, body, func(p *DeleteParams) aggregate.Command {
		return aggregate.DeleteCase{Reason: p.Reason}
	})
}

func (s *Service) handleRedact(ctx context.Context, guild events.Snowflake, body []byte) (any, error) {
	return runChange(s, ctx, guild, body, func(p *RedactParams) aggregate.Command {
		return aggregate.RedactCase{Reason: p.Reason}
	})
}

// change decides cmd against case ref of guild and appends its events,
// expecting the case's last sequence to be the version it was decided on.
// A lost check (another writer changed the case) reloads the case and
// decides again. A command id found among the case's events gets the reply
// it got the first time.
func (s *Service) change(ctx context.Context, guild events.Snowflake, ref CaseRef, meta Meta, cmd aggregate.Command) (*Result, error) {
	key := caseKey{guild: guild, number: ref.CaseNumber}
	cs := s.cases.get(key)
	cs.Lock()
	defer cs.Unlock()
	dupSeen := false
	return retry(ctx, s, func() (*Result, error) {
		if cs.state == nil {
			if err := s.loadCase(ctx, cs, key); err != nil {
				return nil, err
			}
		}
		if cs.state == nil {
			return nil, backoff.Permanent(fmt.Errorf("%w: case %d in guild %d", aggregate.ErrCaseNotFound, ref.CaseNumber, guild))
		}
		if r, err := replay(cs.evs, meta); r != nil || err != nil {
			if err != nil {
				return nil, backoff.Permanent(err)
			}
			if cs.state.Redacted {
				// A redaction retried: its keys may still be there.
				if err := s.shredRedacted(ctx, cs.evs); err != nil {
					return nil, err
				}
			}
			return r, nil
		}
		if dupSeen {
			return nil, backoff.Permanent(fmt.Errorf("%w: command_id %s was already used by another command", aggregate.ErrConflict, meta.CommandID))
		}
		st := cs.state
		if ref.CaseID != uuid.Nil && ref.CaseID != st.CaseID {
			return nil, backoff.Permanent(fmt.Errorf("%w: case %d has id %s, not %s", aggregate.ErrConflict, ref.CaseNumber, st.CaseID, ref.CaseID))
		}
		now := s.now()
		payloads, err := aggregate.Decide(aggregate.Env{Now: now, Registry: s.cfg.Registry, ActorID: meta.ActorID}, st, cmd)
		if err != nil {
			return nil, backoff.Permanent(err)
		}
		if len(payloads) == 0 {
			return &Result{Case: st.Clone(), Seq: st.Version, Appended: 0}, nil
		}
		evs := s.newEvents(guild, st.CaseNumber, st.CaseID, meta, meta.ActorID, now, payloads)
		if err := s.assignKeys(ctx, cs.evs, evs, nil); err != nil {
			return nil, retryable(err)
		}
		msgs, err := s.eventMsgs(ctx, evs, 0)
		if err != nil {
			return nil, retryable(err)
		}
		msgs[0].expectSet, msgs[0].expect, msgs[0].expectSubject = true, st.Version, s.subj.CaseAll(guild, st.CaseNumber)
		ack, err := s.commit.append(ctx, msgs)
		if err != nil {
			cs.reset()
			if errors.Is(err, errDuplicate) {
				dupSeen = true
			}
			if errors.Is(err, errDuplicate) || errors.Is(err, errWrongLastSeq) || isTransient(err) {
				return nil, err
			}
			return nil, backoff.Permanent(err)
		}
		if ack.Duplicate {
			dupSeen = true
			cs.reset()
			return nil, errDuplicate
		}
		first := ack.Seq - uint64(len(evs)) + 1
		for i := range evs {
			evs[i].Seq = first + uint64(i)
			if err := st.Apply(evs[i]); err != nil {
				cs.reset()
				return nil, backoff.Permanent(fmt.Errorf("fold appended event: %w", err))
			}
		}
		cs.evs = append(cs.evs, evs...)
		if st.Redacted {
			// The redaction is stored: destroy the keys. If this fails,
			// the retry finds the command in the case's events and
			// destroys them then.
			if err := s.shredRedacted(ctx, cs.evs); err != nil {
				return nil, err
			}
		}
		return &Result{Case: st.Clone(), Seq: ack.Seq, Appended: len(evs)}, nil
	})
}

// loadCase reads a case's events from the stream into cs.
func (s *Service) loadCase(ctx context.Context, cs *caseState, key caseKey) error {
	evs, err := s.ledger.loadCase(ctx, key.guild, key.number)
	if err != nil {
		if isTransient(err) {
			return err
		}
		return backoff.Permanent(err)
	}
	if len(evs) == 0 {
		cs.reset()
		return nil
	}
	st, err := aggregate.Fold(evs)
	if err != nil {
		return backoff.Permanent(fmt.Errorf("fold case %d of guild %d: %w", key.number, key.guild, err))
	}
	if st.Redacted {
		// Repairs a crash between a redaction's append and its keys'
		// destruction.
		if err := s.shredRedacted(ctx, evs); err != nil {
			return err
		}
	}
	cs.evs, cs.state = evs, st
	return nil
}

// replay returns the reply a command got the first time, rebuilt from the
// case's events: the fold up to the command's last event. It returns nil
// when the command appended nothing to this case, and a conflict when the
// command id was used by another kind of command.
func replay(evs []events.Event, meta Meta) (*Result, error) {
	last, n := -1, 0
	for i, e := range evs {
		if e.CommandID == meta.CommandID {
			if e.Command != "" && meta.command != "" && e.Command != meta.command {
				return nil, fmt.Errorf("%w: command_id %s was already used by a %s command", aggregate.ErrConflict, meta.CommandID, e.Command)
			}
			last, n = i, n+1
		}
	}
	if last < 0 {
		return nil, nil
	}
	st, err := aggregate.Fold(evs[:last+1])
	if err != nil {
		return nil, err
	}
	return &Result{Case: st, Seq: evs[last].Seq, Appended: n}, nil
}

// newEvents wraps payloads of one case in envelopes.
func (s *Service) newEvents(guild events.Snowflake, number uint32, caseID uuid.UUID, meta Meta, actor events.Snowflake, now time.Time, payloads []events.Payload) []events.Event {
	corr := meta.CorrelationID
	if corr == uuid.Nil {
		corr = meta.CommandID
	}
	out := make([]events.Event, len(payloads))
	for i, p := range payloads {
		out[i] = events.Event{
			Envelope: events.Envelope{
				EventID:       newUUID(),
				Event:         p.EventName(),
				SchemaVersion: s.ledger.codec.Version(p.EventName()),
				GuildID:       guild,
				CaseNumber:    number,
				CaseID:        caseID,
				OccurredAt:    now,
				ActorID:       actor,
				CommandID:     meta.CommandID,
				Command:       meta.command,
				CorrelationID: corr,
			},
			Data: p,
		}
	}
	return out
}

// eventMsgs encodes events as messages, each sealed with the key its
// KeyID names (see assignKeys). The i-th event of a command gets the
// message id <command_id> for i = 0 and <command_id>:<i> after, where i
// counts from offset.
func (s *Service) eventMsgs(ctx context.Context, evs []events.Event, offset int) ([]outMsg, error) {
	out := make([]outMsg, len(evs))
	for i, e := range evs {
		e, err := s.seal(ctx, e)
		if err != nil {
			return nil, err
		}
		data, err := s.ledger.codec.Encode(e)
		if err != nil {
			return nil, err
		}
		out[i] = outMsg{
			subject: s.subj.Case(e.GuildID, e.CaseNumber, e.Data.EventName()),
			msgID:   msgID(e.CommandID, offset+i),
			header:  map[string]string{HeaderEvent: string(e.Data.EventName())},
			data:    data,
		}
	}
	return out, nil
}

func msgID(commandID uuid.UUID, i int) string {
	if i == 0 {
		return commandID.String()
	}
	return commandID.String() + ":" + strconv.Itoa(i)
}

// newUUID returns a UUIDv7; it falls back to a random UUID only if the
// clock-based generator fails.
func newUUID() uuid.UUID {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.New()
	}
	return id
}
