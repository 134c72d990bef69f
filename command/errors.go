package command

import (
	"github.com/modledger/modledger/internal/wire"
)

// Code is an error category of the wire contract, shared with the query
// service (projection.ErrorCode is the same type).
type Code = wire.Code

// The error codes of the wire contract, with the HTTP-like status each is
// sent with in the Nats-Service-Error-Code header.
const (
	CodeInvalidArgument = wire.CodeInvalidArgument // 400
	CodeNotFound        = wire.CodeNotFound        // 404
	CodeConflict        = wire.CodeConflict        // 409
	CodeUnavailable     = wire.CodeUnavailable     // 503
	CodeInternal        = wire.CodeInternal        // 500
)

// ErrUnavailable is matched by errors of code unavailable: the ledger could
// not be reached or could not store the command in time. Such a command may
// or may not have been appended; retrying it with the same command id is
// safe.
var ErrUnavailable = wire.NewSentinel(wire.CodeUnavailable, "ledger unavailable")

// ErrInternal is matched by errors of code internal.
var ErrInternal = wire.NewSentinel(wire.CodeInternal, "ledger internal error")

// Error is an error reply of the command service, as sent on the wire in
// {"error": {...}} and as returned by [Client]. errors.Is matches it
// against the sentinel of its code: [aggregate.ErrInvalidArgument],
// [aggregate.ErrCaseNotFound] (and [aggregate.ErrCaseDeleted] when the case
// is deleted), [aggregate.ErrConflict], [ErrUnavailable] or [ErrInternal].
// It is the query service's error type too (projection.QueryError).
type Error = wire.Error

// invalidf returns a wire invalid_argument error for field.
func invalidf(field, format string, args ...any) *Error {
	return wire.Invalidf(field, format, args...)
}
