package projection

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/modledger/modledger/aggregate"
)

// Sentinel errors of the query API. errors.Is matches them against the
// errors of [Queries] and of [QueryClient] alike.
//
// ErrInvalidArgument and ErrNotFound are the same values as
// [aggregate.ErrInvalidArgument] and [aggregate.ErrCaseNotFound], which the
// command side returns, so one check serves commands and queries. A query
// on a deleted case also matches [aggregate.ErrCaseDeleted].
var (
	// ErrInvalidArgument is matched by every bad parameter; the error is
	// an [*aggregate.ValidationError] naming the field.
	ErrInvalidArgument = aggregate.ErrInvalidArgument
	// ErrNotFound is matched when the case asked for does not exist (or is
	// deleted and the query did not include deleted cases).
	ErrNotFound = aggregate.ErrCaseNotFound
	// ErrUnavailable is matched when the read model could not answer: the
	// database is unreachable or timed out, the projection has no active
	// generation yet, or it did not reach the request's min_seq in time.
	// Retrying later is safe: queries change nothing.
	ErrUnavailable = errors.New("read model unavailable")
	// ErrInternal is matched by a [*QueryError] of code internal.
	ErrInternal = errors.New("read model internal error")
)

// ErrorCode is an error category of the wire contract. The codes and their
// statuses are the command service's (command.Code); the query side keeps
// its own copy because projection may not import command.
type ErrorCode string

// The error codes of the wire contract, with the HTTP-like status each is
// sent with in the Nats-Service-Error-Code header.
const (
	CodeInvalidArgument ErrorCode = "invalid_argument" // 400
	CodeNotFound        ErrorCode = "not_found"        // 404
	CodeConflict        ErrorCode = "conflict"         // 409, never sent by queries
	CodeUnavailable     ErrorCode = "unavailable"      // 503
	CodeInternal        ErrorCode = "internal"         // 500
)

// Status returns the HTTP-like status of the code.
func (c ErrorCode) Status() int {
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

// QueryError is an error reply of the query service, as sent on the wire in
// {"error": {...}} and as returned by [QueryClient]. errors.Is matches it
// against the sentinel of its code: [ErrInvalidArgument], [ErrNotFound]
// (and [aggregate.ErrCaseDeleted] when Deleted is set), [ErrUnavailable] or
// [ErrInternal].
type QueryError struct {
	Code    ErrorCode `json:"code"`
	Message string    `json:"message"`
	// Field names the request field at fault, for invalid_argument.
	Field string `json:"field,omitempty"`
	// Deleted is set on not_found when the case exists but is deleted.
	Deleted bool `json:"deleted,omitempty"`
}

// Error returns the message with its code and field.
func (e *QueryError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s: %s", e.Code, e.Field, e.Message)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Is matches e against the sentinel of its code.
func (e *QueryError) Is(target error) bool {
	switch target {
	case ErrInvalidArgument:
		return e.Code == CodeInvalidArgument
	case ErrNotFound:
		return e.Code == CodeNotFound
	case aggregate.ErrCaseDeleted:
		return e.Code == CodeNotFound && e.Deleted
	case ErrUnavailable:
		return e.Code == CodeUnavailable
	case ErrInternal:
		return e.Code == CodeInternal
	}
	return false
}

// queryErrorReply is the body of an error reply.
type queryErrorReply struct {
	Error *QueryError `json:"error"`
}

// toQueryError translates an error of a query into its wire form. The
// message of an internal error is not sent (it may hold SQL details); the
// service logs it instead.
func toQueryError(err error) *QueryError {
	var qe *QueryError
	if errors.As(err, &qe) {
		return qe
	}
	var ve *aggregate.ValidationError
	switch {
	case errors.As(err, &ve):
		return &QueryError{Code: CodeInvalidArgument, Message: ve.Message, Field: ve.Field}
	case errors.Is(err, ErrInvalidArgument):
		return &QueryError{Code: CodeInvalidArgument, Message: err.Error()}
	case errors.Is(err, ErrNotFound):
		return &QueryError{Code: CodeNotFound, Message: err.Error(), Deleted: errors.Is(err, aggregate.ErrCaseDeleted)}
	case errors.Is(err, ErrUnavailable):
		return &QueryError{Code: CodeUnavailable, Message: err.Error()}
	}
	return &QueryError{Code: CodeInternal, Message: "internal error"}
}

// decodeQueryErrorReply reads an error reply body; ok is false when the body
// is not one.
func decodeQueryErrorReply(b []byte) (*QueryError, bool) {
	var r queryErrorReply
	if err := json.Unmarshal(b, &r); err != nil || r.Error == nil || r.Error.Code == "" {
		return nil, false
	}
	return r.Error, true
}

// invalidParam returns a validation error for field.
func invalidParam(field, format string, args ...any) error {
	return &aggregate.ValidationError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// interpretError translates a database error: what means "try again later"
// (no generation yet, a lost or refused connection, a timeout, a
// cancellation) wraps ErrUnavailable; anything else is returned as it is
// and reported as internal.
func interpretError(err error) error {
	if err == nil {
		return nil
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "42P01" || pgErr.Code == "3F000": // undefined_table, invalid_schema_name
			return fmt.Errorf("%w: %w: %w", ErrUnavailable, ErrNoGeneration, err)
		case pgErr.Code == "57014", // query_canceled (statement_timeout)
			strings.HasPrefix(pgErr.Code, "08"),  // connection exception
			strings.HasPrefix(pgErr.Code, "53"),  // insufficient resources
			strings.HasPrefix(pgErr.Code, "57P"): // shutdown, cannot connect now
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return err
	}
	var connErr *pgconn.ConnectError
	var netErr net.Error
	switch {
	case errors.Is(err, ErrUnavailable):
		return err
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.As(err, &connErr), errors.As(err, &netErr), pgconn.Timeout(err), pgconn.SafeToRetry(err):
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}
