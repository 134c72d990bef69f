// Package natsserver runs an embedded NATS server with JetStream inside the
// current process.
//
// It backs the zero-configuration `modledger dev` command and the real-service
// tests (through internal/testenv). It installs no signal handlers and keeps
// no package state: every [Start] returns an independent [Server] that the
// caller stops with [Server.Shutdown].
//
// # Durability
//
// JetStream's default flushes its files to disk every two minutes, so a crash
// of the machine can lose acknowledged messages. [Config.SyncAlways] makes the
// server fsync before it acknowledges a publish (`sync_interval: always` in a
// server configuration file). The ledger's invariants assume that mode, so
// every caller in this repository sets it.
//
// # Logging
//
// Server log lines go to [Config.Logger]. Notices and debug lines are logged at
// [slog.LevelDebug] because a healthy server is chatty; warnings and errors keep
// their levels. Protocol tracing is never enabled.
package natsserver
