package wire

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/modledger/modledger/aggregate"
)

// Code is an error category of the wire contract.
type Code string

// The error codes of the wire contract, with the HTTP-like status each is
// sent with in the Nats-Service-Error-Code header.
const (
	CodeInvalidArgument Code = "invalid_argument" // 400
	CodeNotFound        Code = "not_found"        // 404
	CodeConflict        Code = "conflict"         // 409
	CodeUnavailable     Code = "unavailable"      // 503
	CodeInternal        Code = "internal"         // 500
)

// Status returns the HTTP-like status of the code; unknown codes are 500.
func (c Code) Status() int {
	switch c {
	case CodeInvalidArgument:
		return 400
	case CodeNotFound:
		return 404
	case CodeConflict:
		return 409
	case CodeUnavailable:
		return 503
	}
	return 500
}

// sentinel is an error value tied to a code; see NewSentinel.
type sentinel struct {
	code Code
	text string
}

func (s *sentinel) Error() string { return s.text }

// NewSentinel returns a sentinel error of code with text as its message:
// errors.Is matches an [*Error] of that code against it, and [ErrorOf]
// gives an error that wraps it that code. Each service makes its own, with
// its own text (command.ErrUnavailable is "ledger unavailable",
// projection.ErrUnavailable "read model unavailable"); an *Error matches
// every sentinel of its code.
func NewSentinel(code Code, text string) error { return &sentinel{code: code, text: text} }

// Error is an error reply, as sent on the wire in {"error": {...}} and as
// returned by the services' clients. errors.Is matches it against the
// sentinel of its code: [aggregate.ErrInvalidArgument],
// [aggregate.ErrCaseNotFound] (and [aggregate.ErrCaseDeleted] when Deleted
// is set), [aggregate.ErrConflict], or a sentinel made by [NewSentinel].
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
	// Field names the request field at fault, for invalid_argument.
	Field string `json:"field,omitempty"`
	// Deleted is set on not_found when the case exists but is deleted.
	Deleted bool `json:"deleted,omitempty"`
}

// Error returns the message with its code and field.
func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s: %s", e.Code, e.Field, e.Message)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Is matches e against the sentinel of its code.
func (e *Error) Is(target error) bool {
	switch target {
	case aggregate.ErrInvalidArgument:
		return e.Code == CodeInvalidArgument
	case aggregate.ErrCaseNotFound:
		return e.Code == CodeNotFound
	case aggregate.ErrCaseDeleted:
		return e.Code == CodeNotFound && e.Deleted
	case aggregate.ErrConflict:
		return e.Code == CodeConflict
	}
	if s, ok := target.(*sentinel); ok {
		return e.Code == s.code
	}
	return false
}

// Invalidf returns an invalid_argument error for field.
func Invalidf(field, format string, args ...any) *Error {
	return &Error{Code: CodeInvalidArgument, Field: field, Message: fmt.Sprintf(format, args...)}
}

// ErrorOf translates an error of a service into its wire form: an *Error in
// err's chain as it is; an [*aggregate.ValidationError] as invalid_argument
// naming its field; the aggregate's sentinels as invalid_argument,
// not_found (Deleted for [aggregate.ErrCaseDeleted]) and conflict; a
// sentinel of [NewSentinel] as its code; anything else as internal. The
// message is err's.
func ErrorOf(err error) *Error {
	var we *Error
	if errors.As(err, &we) {
		return we
	}
	var (
		ve *aggregate.ValidationError
		s  *sentinel
	)
	switch {
	case errors.As(err, &ve):
		return &Error{Code: CodeInvalidArgument, Message: ve.Message, Field: ve.Field}
	case errors.Is(err, aggregate.ErrInvalidArgument):
		return &Error{Code: CodeInvalidArgument, Message: err.Error()}
	case errors.Is(err, aggregate.ErrCaseDeleted):
		return &Error{Code: CodeNotFound, Message: err.Error(), Deleted: true}
	case errors.Is(err, aggregate.ErrCaseNotFound):
		return &Error{Code: CodeNotFound, Message: err.Error()}
	case errors.Is(err, aggregate.ErrConflict):
		return &Error{Code: CodeConflict, Message: err.Error()}
	case errors.As(err, &s):
		return &Error{Code: s.code, Message: err.Error()}
	}
	return &Error{Code: CodeInternal, Message: err.Error()}
}

// ErrorReply is the body of an error reply.
type ErrorReply struct {
	Error *Error `json:"error"`
}

// DecodeErrorReply reads an error reply body; ok is false when b is not
// one.
func DecodeErrorReply(b []byte) (e *Error, ok bool) {
	var r ErrorReply
	if err := json.Unmarshal(b, &r); err != nil || r.Error == nil || r.Error.Code == "" {
		return nil, false
	}
	return r.Error, true
}

// ReplyError returns the error a reply carries, or nil when msg is not an
// error reply (it has no Nats-Service-Error-Code header). A body that is
// not an error reply gives an internal error with the Nats-Service-Error
// header as its message.
func ReplyError(msg *nats.Msg) *Error {
	if msg.Header.Get(micro.ErrorCodeHeader) == "" {
		return nil
	}
	if e, ok := DecodeErrorReply(msg.Data); ok {
		return e
	}
	return &Error{Code: CodeInternal, Message: msg.Header.Get(micro.ErrorHeader)}
}
