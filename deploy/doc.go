// Package deploy holds no code: it is the home of the ledger's deployment
// files and of the tests that check them.
//
//   - nats/: nats-server configuration of a 3-node JetStream cluster with
//     one account and a user per role, each with the least subject
//     permissions it needs, and bot-user.sh, which prints a bot's user entry
//     limited to one guild.
//   - postgres/: roles.sql, the owner, writer and read-only roles.
//   - compose/, kubernetes/, systemd/: the same ledger run with docker
//     compose, on Kubernetes, and as systemd units.
//   - dev/: scripts for development and CI.
//
// The tests parse the NATS configuration with the server library, start a
// server from it and prove, role by role, that what docs/security.md says is
// allowed is allowed and what it says is denied is denied; they apply
// roles.sql to a fresh database and prove the PostgreSQL grants the same
// way. docs/operations.md says how to deploy and run the ledger.
package deploy
