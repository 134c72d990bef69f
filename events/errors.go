package events

import "errors"

// Sentinel errors of the events package. Decoding errors wrap one of them.
var (
	// ErrInvalidSnowflake is returned for a snowflake that is not a decimal
	// integer greater than zero that fits in an int64.
	ErrInvalidSnowflake = errors.New("invalid snowflake")
	// ErrMalformedEvent is returned when bytes cannot be decoded as an event.
	ErrMalformedEvent = errors.New("malformed event")
	// ErrUnknownEvent is returned for an event name this version does not know.
	ErrUnknownEvent = errors.New("unknown event")
	// ErrUnsupportedVersion is returned for a schema version newer than this
	// build knows, or older than any upcaster can bring forward.
	ErrUnsupportedVersion = errors.New("unsupported schema version")
	// ErrBadSubject is returned when a subject is not a case event subject.
	ErrBadSubject = errors.New("not a case event subject")
)
