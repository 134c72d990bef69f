package command

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/modledger/modledger/events"
	"github.com/modledger/modledger/events/shred"
)

// This file ties the command service to the cases' data keys (package
// events/shred): which key a new event is sealed with, the sealing itself
// when events are encoded, and the destruction of a case's keys once its
// redaction is stored.

// caseKeyID returns the key the case's next personal text is sealed with:
// the key of its latest sealed event, unless a redaction came after it
// (that key is destroyed) or the store knows it to be gone. Zero when the
// case has none: then a new key is taken from the pool.
func (s *Service) caseKeyID(evs []events.Event) uuid.UUID {
	var id uuid.UUID
	for i := range evs {
		if evs[i].KeyID != uuid.Nil {
			id = evs[i].KeyID
		}
		if evs[i].Event == events.NameCaseRedacted {
			id = uuid.Nil
		}
	}
	if id != uuid.Nil && s.keys.Gone(id) {
		return uuid.Nil
	}
	return id
}

// assignKeys names, on each event of evs that carries personal text, the
// key it is sealed with: the case's (see caseKeyID, from its events
// caseEvs), or one taken from the pool. *taken, when not nil, holds a key
// taken earlier for the same case (an open retried) and receives the one
// taken now.
func (s *Service) assignKeys(ctx context.Context, caseEvs []events.Event, evs []events.Event, taken *uuid.UUID) error {
	need := false
	for i := range evs {
		if shred.Personal(evs[i].Data) {
			need = true
			break
		}
	}
	if !need {
		return nil
	}
	id := s.caseKeyID(caseEvs)
	if id == uuid.Nil && taken != nil {
		id = *taken
	}
	if id == uuid.Nil {
		k, err := s.pool.Take(ctx)
		if err != nil {
			return transient(err)
		}
		id = k.ID
		if taken != nil {
			*taken = id
		}
	}
	for i := range evs {
		if shred.Personal(evs[i].Data) {
			evs[i].KeyID = id
		}
	}
	return nil
}

// seal returns e as it is written to the stream: sealed with the key its
// KeyID names, when it has one.
func (s *Service) seal(ctx context.Context, e events.Event) (events.Event, error) {
	if e.KeyID == uuid.Nil {
		return e, nil
	}
	k, err := s.keys.Get(ctx, e.KeyID)
	if err != nil {
		return e, transient(fmt.Errorf("seal %s event of case %d: %w", e.Event, e.CaseNumber, err))
	}
	if k == nil {
		return e, fmt.Errorf("seal %s event of case %d: key %s is gone", e.Event, e.CaseNumber, e.KeyID)
	}
	if err := shred.Seal(&e, k); err != nil {
		return e, err
	}
	return e, nil
}

// shredRedacted destroys the keys of a redacted case's text: every key
// named by an event before its last redaction. It then blanks that text in
// the events the service keeps in memory, so that no later reply (a
// replayed command) shows it. A key that is gone already costs nothing, so
// it is run after every redaction is stored, when a redaction is replayed,
// and whenever a redacted case is loaded: a crash between the redaction's
// append and the key's deletion is repaired by the next load.
func (s *Service) shredRedacted(ctx context.Context, evs []events.Event) error {
	last := -1
	for i := range evs {
		if evs[i].Event == events.NameCaseRedacted {
			last = i
		}
	}
	if last < 0 {
		return nil
	}
	var done []uuid.UUID
	for i := range evs[:last] {
		id := evs[i].KeyID
		if id == uuid.Nil || containsID(done, id) {
			continue
		}
		if err := s.keys.Delete(ctx, id); err != nil {
			return transient(fmt.Errorf("shred case %d of guild %d: %w", evs[i].CaseNumber, evs[i].GuildID, err))
		}
		done = append(done, id)
	}
	for i := range evs[:last] {
		shred.Strip(&evs[i])
	}
	return nil
}

func containsID(ids []uuid.UUID, id uuid.UUID) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}
