package command

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/modledger/modledger/events"
	"github.com/modledger/modledger/events/shred"
)

// Headers the ledger writes on every event.
const (
	// HeaderEvent carries the event's name.
	HeaderEvent = "Modledger-Event"
	// HeaderClaim marks a claim message and names what it claims.
	HeaderClaim = "Modledger-Claim"
)

// JetStream API error codes the ledger acts on.
const (
	errCodeWrongLastSeq         = 10071
	errCodeWrongLastSeqConst    = 10164
	errCodeDuplicateInProcess   = 10158
	errCodeBatchIncomplete      = 10176
	errCodeBatchDuplicateMsgID  = 10201
	errCodeBatchTooManyInflight = 10210
)

// Append outcomes that the service handles.
var (
	// errWrongLastSeq: another writer appended first; refresh and retry.
	errWrongLastSeq = errors.New("wrong last sequence")
	// errDuplicate: a message of the batch carries a command id the server
	// has already stored; the command was appended before.
	errDuplicate = errors.New("duplicate command id")
)

// storedMsg is one message read back from the stream.
type storedMsg struct {
	Subject string
	Seq     uint64
	Header  nats.Header
	Data    []byte
	Time    time.Time
}

// outMsg is one message to append and the checks it carries.
type outMsg struct {
	subject string
	msgID   string
	header  map[string]string
	data    []byte
	// expect, when expectSet, is the last sequence expectSubject must have.
	expectSet     bool
	expect        uint64
	expectSubject string
}

// pubAck is the server's reply to a publish or a batch commit.
type pubAck struct {
	Stream    string    `json:"stream"`
	Seq       uint64    `json:"seq"`
	Duplicate bool      `json:"duplicate,omitempty"`
	BatchID   string    `json:"batch,omitempty"`
	Count     int       `json:"count,omitempty"`
	Error     *apiError `json:"error,omitempty"`
}

type apiError struct {
	Code        int    `json:"code"`
	ErrCode     int    `json:"err_code"`
	Description string `json:"description"`
}

// ledger reads and appends the stream's messages. It knows the wire format
// of events but nothing of the domain's rules.
type ledger struct {
	nc         *nats.Conn
	stream     string
	subjects   events.Subjects
	codec      *events.Codec
	keys       *shred.Store
	window     time.Duration
	apiTimeout time.Duration
	metrics    *metrics
}

// withTimeout gives ctx the ledger's API timeout when it has no deadline.
func (l *ledger) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, l.apiTimeout)
}

// directGetRequest is the body of a JetStream direct get.
type directGetRequest struct {
	Seq       uint64     `json:"seq,omitempty"`
	LastFor   string     `json:"last_by_subj,omitempty"`
	NextFor   string     `json:"next_by_subj,omitempty"`
	Batch     int        `json:"batch,omitempty"`
	StartTime *time.Time `json:"start_time,omitempty"`
}

// errNoMessage is returned by getOne when no message matches.
var errNoMessage = errors.New("no message")

// getOne returns one message by direct get.
func (l *ledger) getOne(ctx context.Context, req directGetRequest) (storedMsg, error) {
	ctx, cancel := l.withTimeout(ctx)
	defer cancel()
	body, _ := json.Marshal(req)
	resp, err := l.nc.RequestWithContext(ctx, "$JS.API.DIRECT.GET."+l.stream, body)
	if err != nil {
		return storedMsg{}, transient(fmt.Errorf("direct get: %w", err))
	}
	return parseDirect(resp)
}

// parseDirect reads a direct get reply: a message, or a status.
func parseDirect(m *nats.Msg) (storedMsg, error) {
	if status := m.Header.Get("Status"); status != "" && len(m.Data) == 0 {
		switch status {
		case "404":
			return storedMsg{}, errNoMessage
		case "204":
			return storedMsg{}, errEndOfBatch
		}
		return storedMsg{}, transient(fmt.Errorf("direct get: status %s: %s", status, m.Header.Get("Description")))
	}
	seq, err := strconv.ParseUint(m.Header.Get("Nats-Sequence"), 10, 64)
	if err != nil {
		return storedMsg{}, fmt.Errorf("direct get: bad sequence header %q", m.Header.Get("Nats-Sequence"))
	}
	ts, _ := time.Parse(time.RFC3339Nano, m.Header.Get("Nats-Time-Stamp"))
	return storedMsg{Subject: m.Header.Get("Nats-Subject"), Seq: seq, Header: m.Header, Data: m.Data, Time: ts}, nil
}

var errEndOfBatch = errors.New("end of batch")

// directBatchSize is how many messages one batched direct get asks for.
const directBatchSize = 256

// scan calls fn for every message on filter from sequence from (or from
// the first message at or after since, when since is not zero), in order,
// until fn returns false or the messages run out.
func (l *ledger) scan(ctx context.Context, filter string, from uint64, since time.Time, fn func(storedMsg) (bool, error)) error {
	ctx, cancel := l.withTimeout(ctx)
	defer cancel()
	inbox := l.nc.NewRespInbox()
	sub, err := l.nc.SubscribeSync(inbox)
	if err != nil {
		return transient(fmt.Errorf("scan %s: subscribe: %w", filter, err))
	}
	defer func() { _ = sub.Unsubscribe() }()
	if from == 0 {
		from = 1
	}
	for {
		req := directGetRequest{Seq: from, NextFor: filter, Batch: directBatchSize}
		if !since.IsZero() {
			req.Seq = 0
			req.StartTime = &since
			since = time.Time{}
		}
		body, _ := json.Marshal(req)
		if err := l.nc.PublishRequest("$JS.API.DIRECT.GET."+l.stream, inbox, body); err != nil {
			return transient(fmt.Errorf("scan %s: %w", filter, err))
		}
		var last uint64
		pending := uint64(0)
		got := 0
		for {
			m, err := sub.NextMsgWithContext(ctx)
			if err != nil {
				return transient(fmt.Errorf("scan %s: %w", filter, err))
			}
			sm, err := parseDirect(m)
			if errors.Is(err, errNoMessage) {
				return nil
			}
			if errors.Is(err, errEndOfBatch) {
				pending, _ = strconv.ParseUint(m.Header.Get("Nats-Num-Pending"), 10, 64)
				break
			}
			if err != nil {
				return err
			}
			got++
			last = sm.Seq
			more, err := fn(sm)
			if err != nil || !more {
				return err
			}
		}
		if pending == 0 || got == 0 {
			return nil
		}
		from = last + 1
	}
}

// lastOpened returns the number and stream sequence of the guild's newest
// case, or zeros when the guild has none.
func (l *ledger) lastOpened(ctx context.Context, guild events.Snowflake) (uint32, uint64, error) {
	m, err := l.getOne(ctx, directGetRequest{LastFor: l.subjects.GuildOpened(guild)})
	if errors.Is(err, errNoMessage) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, err
	}
	cs, err := l.subjects.ParseCase(m.Subject)
	if err != nil {
		return 0, 0, fmt.Errorf("last case of guild %d: %w", guild, err)
	}
	return cs.CaseNumber, m.Seq, nil
}

// loadCase returns the events of case number of guild, oldest first, or
// none when there is no such case.
//
// It never asks the server for a message past the case's last one. Once the
// stream holds more than 64k subjects, nats-server (2.15) answers a wildcard
// "next message" request that finds nothing by reading every block after
// its start, and a batched one by counting pending messages the same way:
// with a million cases, loading a case cost 100 ms of the server's time. So
// the case's last event comes first (last_by_subj on the case's subjects,
// which the server answers from its subject index); a case of one event is
// then loaded in one request. Otherwise the opening event and the events up
// to the last follow, one request each, each ending at a message known to
// exist. Events appended meanwhile are not read: the change decided on this
// state expects the last one read, so the server refuses it and the case is
// loaded again.
func (l *ledger) loadCase(ctx context.Context, guild events.Snowflake, number uint32) ([]events.Event, error) {
	all := l.subjects.CaseAll(guild, number)
	last, err := l.getOne(ctx, directGetRequest{LastFor: all})
	if errors.Is(err, errNoMessage) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	lastEv, err := l.decode(ctx, last)
	if err != nil {
		return nil, err
	}
	if lastEv.Event == events.NameCaseOpened || lastEv.Event == events.NameCaseImported {
		return []events.Event{lastEv}, nil
	}
	first, err := l.getOne(ctx, directGetRequest{LastFor: l.subjects.Case(guild, number, events.NameCaseOpened)})
	if errors.Is(err, errNoMessage) {
		return nil, fmt.Errorf("load case %d of guild %d: it has events but no opening event", number, guild)
	}
	if err != nil {
		return nil, err
	}
	e, err := l.decode(ctx, first)
	if err != nil {
		return nil, err
	}
	evs := []events.Event{e}
	for seq := first.Seq; ; {
		m, err := l.getOne(ctx, directGetRequest{Seq: seq + 1, NextFor: all})
		if errors.Is(err, errNoMessage) {
			return nil, fmt.Errorf("load case %d of guild %d: its event at sequence %d is gone", number, guild, last.Seq)
		}
		if err != nil {
			return nil, err
		}
		if m.Seq >= last.Seq {
			return append(evs, lastEv), nil
		}
		if e, err = l.decode(ctx, m); err != nil {
			return nil, err
		}
		evs = append(evs, e)
		seq = m.Seq
	}
}

// decode decodes a stored event, opens its sealed personal text with the
// case's key (empty when the key is gone) and sets its sequence.
func (l *ledger) decode(ctx context.Context, m storedMsg) (events.Event, error) {
	e, err := l.codec.Decode(m.Data)
	if err != nil {
		return events.Event{}, fmt.Errorf("event at sequence %d (%s): %w", m.Seq, m.Subject, err)
	}
	if err := l.keys.OpenEvent(ctx, &e); err != nil {
		if errors.Is(err, shred.ErrSealBroken) {
			return events.Event{}, fmt.Errorf("event at sequence %d (%s): %w", m.Seq, m.Subject, err)
		}
		return events.Event{}, transient(fmt.Errorf("event at sequence %d (%s): %w", m.Seq, m.Subject, err))
	}
	e.Seq = m.Seq
	return e, nil
}

// findCommand returns the events a command appended on filter within the
// duplicate window, oldest first; none when it appended nothing there.
func (l *ledger) findCommand(ctx context.Context, filter string, commandID uuid.UUID, now time.Time) ([]events.Event, error) {
	since := now.Add(-l.window - time.Minute)
	var out []events.Event
	err := l.scan(ctx, filter, 0, since, func(m storedMsg) (bool, error) {
		// Sealed or not: only the command's own events are opened, below.
		e, err := l.codec.Decode(m.Data)
		if err != nil {
			return false, fmt.Errorf("event at sequence %d (%s): %w", m.Seq, m.Subject, err)
		}
		e.Seq = m.Seq
		if e.CommandID == commandID {
			out = append(out, e)
		} else if len(out) > 0 {
			return false, nil // a command's events are contiguous
		}
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	if err := l.keys.OpenEvents(ctx, out); err != nil {
		if errors.Is(err, shred.ErrSealBroken) {
			return nil, err
		}
		return nil, transient(err)
	}
	return out, nil
}

// append stores msgs: one message as a plain publish, more as one atomic
// batch. The acknowledgement's Seq is the last message's sequence; an
// atomic batch's messages have consecutive sequences.
func (l *ledger) append(ctx context.Context, msgs []outMsg) (ack pubAck, err error) {
	start := time.Now()
	defer func() { l.metrics.observeAppend(len(msgs), time.Since(start), err) }()
	ctx, cancel := l.withTimeout(ctx)
	defer cancel()
	batchID := ""
	if len(msgs) > 1 {
		batchID = uuid.NewString()
	}
	var reply *nats.Msg
	for i, om := range msgs {
		m := nats.NewMsg(om.subject)
		m.Data = om.data
		for k, v := range om.header {
			m.Header.Set(k, v)
		}
		if om.msgID != "" {
			m.Header.Set(nats.MsgIdHdr, om.msgID)
		}
		if om.expectSet {
			m.Header.Set(nats.ExpectedLastSubjSeqHdr, strconv.FormatUint(om.expect, 10))
			m.Header.Set("Nats-Expected-Last-Subject-Sequence-Subject", om.expectSubject)
		}
		if batchID != "" {
			m.Header.Set("Nats-Batch-Id", batchID)
			m.Header.Set("Nats-Batch-Sequence", strconv.Itoa(i+1))
			if i < len(msgs)-1 {
				if err := l.nc.PublishMsg(m); err != nil {
					return pubAck{}, transient(fmt.Errorf("publish batch message %d: %w", i+1, err))
				}
				continue
			}
			m.Header.Set("Nats-Batch-Commit", "1")
		}
		r, err := l.nc.RequestMsgWithContext(ctx, m)
		if err != nil {
			return pubAck{}, transient(fmt.Errorf("publish: %w", err))
		}
		reply = r
	}
	if err := json.Unmarshal(reply.Data, &ack); err != nil {
		return pubAck{}, transient(fmt.Errorf("publish: unreadable acknowledgement %q", reply.Data))
	}
	if ack.Error != nil {
		return pubAck{}, classifyAPIError(ack.Error)
	}
	if ack.Seq == 0 {
		return pubAck{}, transient(fmt.Errorf("publish: acknowledgement without a sequence: %s", reply.Data))
	}
	return ack, nil
}

// classifyAPIError turns a JetStream API error into one the service acts on.
func classifyAPIError(e *apiError) error {
	err := fmt.Errorf("jetstream: %s (code %d, err_code %d)", e.Description, e.Code, e.ErrCode)
	switch e.ErrCode {
	case errCodeWrongLastSeq, errCodeWrongLastSeqConst:
		return fmt.Errorf("%w: %w", errWrongLastSeq, err)
	case errCodeBatchDuplicateMsgID:
		return fmt.Errorf("%w: %w", errDuplicate, err)
	case errCodeDuplicateInProcess, errCodeBatchIncomplete, errCodeBatchTooManyInflight:
		return transient(err)
	}
	if e.Code == 503 || e.Code == 429 || e.Code == 408 {
		return transient(err)
	}
	return err
}

// transientError marks an operational error that is safe to retry: a
// retried append carries the same message ids and checks.
type transientError struct{ err error }

func (e transientError) Error() string { return e.err.Error() }
func (e transientError) Unwrap() error { return e.err }

func transient(err error) error { return transientError{err: err} }

func isTransient(err error) bool {
	var t transientError
	return errors.As(err, &t)
}
