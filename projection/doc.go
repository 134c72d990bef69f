// Package projection builds modledger's PostgreSQL read models from the
// case events in JetStream, and answers queries from them.
//
// # Schemas and generations
//
// The control schema (default "modledger") holds the projections table and,
// for each read-model table, a view. A projection's tables live in a schema
// of their own per generation, <schema>_<projection>_g<N>. A projector
// applies events to the active generation; a rebuild fills a new
// generation from sequence 1 beside it, catches up to the head of the
// stream, and repoints the views in one transaction, so queries never see
// a half-built model. Control-schema and generation DDL are migrations run
// by jackc/tern under its advisory lock, so several processes may start at
// once.
//
// # Exactly once
//
// A projector applies a batch of events and writes its checkpoint (the last
// stream sequence applied) in one transaction, then acknowledges the batch.
// Events at or below the checkpoint are skipped, so a redelivered event is
// never applied twice, and an event it cannot decode or apply stops the
// projection with an error instead of being skipped.
package projection
