package aggregate

import (
	"errors"
	"fmt"
)

// Sentinel errors returned by [Decide] and [Case.Apply].
var (
	// ErrInvalidArgument is wrapped by every [*ValidationError].
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrCaseNotFound is returned for a change to a case that does not exist.
	ErrCaseNotFound = errors.New("case not found")
	// ErrCaseDeleted is returned for a change to a deleted case.
	ErrCaseDeleted = errors.New("case is deleted")
	// ErrConflict is returned when the case's state forbids the command
	// (an expiry change after the expiry was processed, an open of a case
	// that exists, an expiry that is not due yet).
	ErrConflict = errors.New("conflict")
	// ErrBadEvent is returned by Apply for an event that cannot follow the
	// case's history (a change before the case was opened, a second open).
	ErrBadEvent = errors.New("event does not fit the case")
)

// ValidationError reports bad input: which field, and what is wrong with it.
type ValidationError struct {
	// Field is the snake_case name of the field on the wire, or empty when
	// the input as a whole is wrong.
	Field string
	// Message says what is wrong, in lower case.
	Message string
}

// Error returns "field: message".
func (e *ValidationError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

// Unwrap returns ErrInvalidArgument.
func (e *ValidationError) Unwrap() error { return ErrInvalidArgument }

// invalid returns a *ValidationError for field.
func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Message: fmt.Sprintf(format, args...)}
}
