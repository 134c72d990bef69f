// Package events holds modledger's immutable case events: the envelope every
// event carries, one payload type per event, the JSON codec that writes and
// reads them with stable snake_case names, the schema versions and upcasters
// that let an old event decode into today's type, and the NATS subject names
// under which events are stored.
//
// # Wire shape
//
// An event is one JSON object: the envelope fields at the top level and the
// event's own fields under "data":
//
//	{"event_id":"0192...","event":"closed","schema_version":1,
//	 "guild_id":"1234","case_number":7,"case_id":"0192...",
//	 "occurred_at":"2026-11-25T12:00:00Z","actor_id":"99",
//	 "command_id":"...","correlation_id":"...",
//	 "data":{"reason":"appeal accepted"}}
//
// Snowflakes are JSON strings, as in Discord's API; numbers are accepted when
// decoding. Times are RFC 3339 in UTC.
//
// # Codec paths
//
// [Codec] writes and reads the events of this package field by field,
// without reflection: one allocation to encode a typical event, and to
// decode one only the payload and its strings. What that path does not
// cover (a payload type of another package, an unknown or duplicate key, an
// old schema version, any error) goes through encoding/json, which the
// field-by-field path matches byte for byte and value for value; the
// package's tests compare the two on random and edited events.
//
// # Subjects
//
// Events are stored under <prefix>.case.<guild_id>.<case_number>.<event>,
// for example modledger.case.1234.7.closed. See [Subjects].
//
// # Schema versions
//
// Every payload type has a current schema version ([CurrentVersion]). An event
// written with an older version is passed through the upcasters registered for
// its name, in order, before it is decoded (see [Upcaster] and [NewCodec]).
// Event names and field names are never renamed.
package events
