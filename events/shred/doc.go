// Package shred makes a case's personal text erasable although the ledger's
// stream is immutable (crypto-shredding).
//
// Every case that carries personal text has a data key: 32 random bytes for
// AES-256-GCM, one key per case, never per user. The personal fields of the
// case's events (reasons, note texts and evidence links, metadata, roles)
// are sealed with it before the events are appended: [Seal] moves them into
// the event's Sealed field as ciphertext and sets its KeyID; the payload
// keeps everything else. [Open] puts them back. Deleting the key, with the
// stream's secure erase, leaves ciphertext that nobody can open: the text is
// gone from the stream, from its replicas' disks and from every later backup.
//
// # Keys
//
// The keys live in a stream of their own beside the ledger's (see
// [StreamName]), one message per key on <prefix>.key.<key_id>, file storage,
// no limits, deletes allowed. A [Store] reads them (one batched direct get
// for many keys, see [Store.GetMany]), keeps them in a bounded cache,
// publishes new ones ([Store.Publish]) and erases them ([Store.Delete]). A
// [Pool] keeps keys that are already durable in the key stream, so opening
// a case never waits for a key: the key is stored before any event names
// it, and the open itself is still one append.
//
// # Additional data
//
// The ciphertext is bound to the event that carries it: the guild, the case
// id, the event id and the event name are the AEAD's additional data, so a
// sealed field cannot be moved to another event or another case.
//
// # A key that is gone
//
// An event whose key has been deleted opens with its personal fields empty,
// as a redacted case shows them. Key ids are random, so a key that is gone
// never comes back, and stores remember that.
package shred
