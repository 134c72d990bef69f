package subscription

import (
	"context"
	"errors"
	"time"

	"github.com/modledger/modledger/events"
)

// Handler handles one decoded event. Returning nil acknowledges the event;
// returning an error has the server deliver it again after the next delay
// of [Config.Backoff] (see [Permanent] for errors that retrying cannot fix).
//
// Delivery is at least once: an event can reach a handler again after a
// crash, a lost acknowledgement or a redelivery, so a handler must be
// idempotent. e.EventID identifies the event; e.Seq, its stream sequence,
// rises with every event, so a handler that records the last Seq it applied
// can skip anything at or below it. [DeliveryFrom] tells a handler which
// delivery of the event it is running.
//
// ctx carries the values of the context given to [Subscribe]. It is not
// canceled by Stop, which waits for the handler, but it is canceled when
// the context given to Stop ends first.
type Handler func(ctx context.Context, e events.Event) error

// Permanent wraps err to say that handling the event again cannot succeed:
// the subscription gives it up at once (see [Poison]) instead of having it
// redelivered. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return "permanent: " + e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// IsPermanent reports whether err was wrapped by [Permanent].
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// Delivery describes one delivery of a message to this subscription.
type Delivery struct {
	// Subject is the message's subject,
	// <prefix>.case.<guild>.<number>.<token>.
	Subject string
	// Seq is the message's stream sequence (the event's Seq).
	Seq uint64
	// NumDelivered counts the deliveries of this message to the consumer,
	// this one included: 1 the first time.
	NumDelivered uint64
	// Stored is when the server stored the message.
	Stored time.Time
}

type deliveryKey struct{}

// DeliveryFrom returns the delivery a handler's ctx belongs to.
func DeliveryFrom(ctx context.Context) (Delivery, bool) {
	d, ok := ctx.Value(deliveryKey{}).(Delivery)
	return d, ok
}

// Poison is a message the subscription gives up on: it could not be decoded
// (Event is nil), the handler returned a [Permanent] error, or the handler
// failed on the last delivery [Config.MaxDeliver] allows. The subscription
// calls [Config.OnPoison] with it, logs it at error level and terminates the
// message (the server does not deliver it again to this consumer), so that
// one bad message does not hold up the ones behind it.
//
// Nothing is lost from the ledger: the stream keeps every event forever.
// After fixing the cause (a newer build that knows a newer schema version, a
// handler bug), replay it with a new consumer that starts at Seq.
type Poison struct {
	Delivery
	// Data is the message body as stored.
	Data []byte
	// Event is the decoded event, or nil when it could not be decoded.
	Event *events.Event
	// Err is why the message was given up: a decoding error (matching
	// events.ErrMalformedEvent, events.ErrUnknownEvent or
	// events.ErrUnsupportedVersion) or the handler's error.
	Err error
}
