package subscription

import (
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Start is where a new consumer begins in the stream. It applies only when
// the subscription creates its consumer: an existing durable keeps its
// position (see [Config.Reset]). The zero Start is [StartNew].
type Start struct {
	kind startKind
	seq  uint64
	time time.Time
}

type startKind int

const (
	startNew startKind = iota
	startBeginning
	startSeq
	startTime
)

// StartNew starts with the first event stored after the consumer is
// created: only new events.
func StartNew() Start { return Start{kind: startNew} }

// StartBeginning starts with the first event in the stream: the whole
// history.
func StartBeginning() Start { return Start{kind: startBeginning} }

// StartSeq starts with the event at stream sequence seq (or the first one
// after it that the filter selects). seq is at least 1; a reply's "seq" or
// an [events.Event]'s Seq plus one resumes after that event.
func StartSeq(seq uint64) Start { return Start{kind: startSeq, seq: seq} }

// StartAt starts with the first event the server stored at or after t. The
// time is the server's receive time of the message, which is within
// milliseconds of the event's OccurredAt.
func StartAt(t time.Time) Start { return Start{kind: startTime, time: t} }

// String describes s: "new", "beginning", "seq 42" or "time <RFC 3339>".
func (s Start) String() string {
	switch s.kind {
	case startBeginning:
		return "beginning"
	case startSeq:
		return "seq " + strconv.FormatUint(s.seq, 10)
	case startTime:
		return "time " + s.time.UTC().Format(time.RFC3339Nano)
	default:
		return "new"
	}
}

// apply sets the deliver policy of a consumer about to be created.
func (s Start) apply(cfg *jetstream.ConsumerConfig) {
	cfg.OptStartSeq, cfg.OptStartTime = 0, nil
	switch s.kind {
	case startBeginning:
		cfg.DeliverPolicy = jetstream.DeliverAllPolicy
	case startSeq:
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = s.seq
	case startTime:
		cfg.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		t := s.time.UTC()
		cfg.OptStartTime = &t
	default:
		cfg.DeliverPolicy = jetstream.DeliverNewPolicy
	}
}
