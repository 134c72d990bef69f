package command

import (
	"encoding/json"
	"errors"
	"fmt"

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

// Status returns the HTTP-like status of the code.
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

// ErrUnavailable is matched by errors of code unavailable: the ledger could
// not be reached or could not store the command in time. Such a command may
// or may not have been appended; retrying it with the same command id is
// safe.
var ErrUnavailable = errors.New("ledger unavailable")

// ErrInternal is matched by errors of code internal.
var ErrInternal = errors.New("ledger internal error")

// Error is an error reply of the command service, as sent on the wire and
// as returned by [Client]. errors.Is matches it against the sentinel of its
// code: [aggregate.ErrInvalidArgument], [aggregate.ErrCaseNotFound] (and
// [aggregate.ErrCaseDeleted] when the case is deleted),
// [aggregate.ErrConflict], [ErrUnavailable] or [ErrInternal].
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
	case ErrUnavailable:
		return e.Code == CodeUnavailable
	case ErrInternal:
		return e.Code == CodeInternal
	}
	return false
}

// errorReply is the body of an error reply.
type errorReply struct {
	Error *Error `json:"error"`
}

// toWireError translates an error of the service into its wire form.
func toWireError(err error) *Error {
	var we *Error
	if errors.As(err, &we) {
		return we
	}
	var ve *aggregate.ValidationError
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
	case errors.Is(err, ErrUnavailable):
		return &Error{Code: CodeUnavailable, Message: err.Error()}
	}
	return &Error{Code: CodeInternal, Message: err.Error()}
}

// invalidf returns a wire invalid_argument error for field.
func invalidf(field, format string, args ...any) *Error {
	return &Error{Code: CodeInvalidArgument, Field: field, Message: fmt.Sprintf(format, args...)}
}

// decodeErrorReply reads an error reply body; ok is false when the body is
// not one.
func decodeErrorReply(b []byte) (*Error, bool) {
	var r errorReply
	if err := json.Unmarshal(b, &r); err != nil || r.Error == nil || r.Error.Code == "" {
		return nil, false
	}
	return r.Error, true
}
