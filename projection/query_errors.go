package projection

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/internal/wire"
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
	ErrUnavailable = wire.NewSentinel(wire.CodeUnavailable, "read model unavailable")
	// ErrInternal is matched by a [*QueryError] of code internal.
	ErrInternal = wire.NewSentinel(wire.CodeInternal, "read model internal error")
)

// ErrorCode is an error category of the wire contract: the command
// service's (command.Code is the same type).
type ErrorCode = wire.Code

// The error codes of the wire contract, with the HTTP-like status each is
// sent with in the Nats-Service-Error-Code header.
const (
	CodeInvalidArgument = wire.CodeInvalidArgument // 400
	CodeNotFound        = wire.CodeNotFound        // 404
	CodeConflict        = wire.CodeConflict        // 409, never sent by queries
	CodeUnavailable     = wire.CodeUnavailable     // 503
	CodeInternal        = wire.CodeInternal        // 500
)

// QueryError is an error reply of the query service, as sent on the wire in
// {"error": {...}} and as returned by [QueryClient]. errors.Is matches it
// against the sentinel of its code: [ErrInvalidArgument], [ErrNotFound]
// (and [aggregate.ErrCaseDeleted] when Deleted is set), [ErrUnavailable] or
// [ErrInternal]. It is the command service's error type too
// (command.Error).
type QueryError = wire.Error

// toQueryError translates an error of a query into its wire form. The
// message of an internal error is not sent (it may hold SQL details); the
// service logs it instead.
func toQueryError(err error) *QueryError {
	var qe *QueryError
	if errors.As(err, &qe) {
		return qe
	}
	qe = wire.ErrorOf(err)
	if qe.Code == CodeInternal {
		qe.Message = "internal error"
	}
	return qe
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
