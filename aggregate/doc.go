// Package aggregate is modledger's pure domain: the case-type registry, the
// state of a case as the fold of its events, the decision of a command into
// the events to append, and the one restriction rule. It does no I/O, reads
// no clock and makes no ids: the caller passes the time and the ids in, so
// every function here gives the same answer for the same input.
//
// # Fold and decide
//
// [Case.Apply] folds one event into a case; [Fold] folds a list. [Decide]
// checks a [Command] against a case's state and the rules of DOMAIN.md and
// returns the payloads to append, or a typed error: a [*ValidationError]
// (errors.Is [ErrInvalidArgument]), [ErrCaseNotFound], [ErrCaseDeleted] or
// [ErrConflict]. A command that would change nothing returns no payloads and
// no error: the caller appends nothing and tells the user so.
//
// # Restrictions
//
// A user is under a restriction family in a guild when the latest (by case
// number) active, undeleted case of that family for that user is a
// restricting case whose expiry has not been processed. [Restriction] and
// [Restrictions] implement that rule once, for the command side and the read
// side alike.
package aggregate
