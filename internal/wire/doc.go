// Package wire holds the wire conventions shared by modledger's NATS
// services, the command service (command.Service) and the query service
// (projection.QueryService), so that a bot sees one contract:
//
//   - error codes with their HTTP-like statuses ([Code]), and the error
//     reply {"error": {"code", "message", "field", "deleted"}} ([Error]),
//     which errors.Is matches against the aggregate's sentinels and the
//     services' own ([NewSentinel]);
//   - the translation of a service's errors into that form ([ErrorOf]);
//   - strict JSON decoding of request bodies, with errors that name the
//     wire field at fault ([Decode]);
//   - the endpoint dispatcher ([Dispatcher]): requests copied out of
//     micro.Request, served in goroutines bounded by a maximum in flight,
//     answered with JSON or with an error reply carrying micro's
//     Nats-Service-Error-Code and Nats-Service-Error headers.
//
// The public names live in command and projection (command.Error and
// projection.QueryError are aliases of [Error]); this package is not a
// stable API of its own.
package wire
