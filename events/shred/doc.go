// Package shred makes a case's personal text erasable although the ledger's
// stream is immutable (crypto-shredding).
//
// Every case that carries personal text has a data key: 32 random bytes for
// AES-256-GCM, one key per case, never per user. The personal fields of the
// case's events (reasons, note texts and evidence links, metadata, roles)
// are sealed with it before the events are appended: [Seal] moves them into
// the event's Sealed field as ciphertext and sets its KeyID; the payload
// keeps everything else. [Open] puts them back. Destroying the key, with the
// stream's secure erase, leaves ciphertext that nobody can open: the text is
// gone from the stream, from its replicas' disks and from every later backup.
//
// # Keys, 256 to a block
//
// The keys live in a stream of their own beside the ledger's (see
// [StreamName]), file storage, no limits, deletes allowed. One message, a
// block, holds [BlockKeys] keys: a format byte ([BlockVersion]) and 256
// slots of 32 bytes, on <prefix>.key.<block_id>. A block id is a random
// UUID whose last byte is zero; the key in slot i has the block's id with
// its last byte i ([BlockID], [Slot], [SlotID]). So a key id is still a
// UUID, events name it as before, and every call that takes a key id finds
// its block. One message per key doubled the messages the server stores
// for a new case; a block costs one message per 256 cases, and a reader
// catching up fetches one block for 256 cases.
//
// A [Store] reads blocks (one batched direct get for many, see
// [Store.GetMany]), keeps them in a bounded cache, publishes new ones
// ([Store.Publish]) and destroys single keys ([Store.Delete]). A [Pool]
// hands out the slots of blocks that are already durable in the key
// stream, so opening a case never waits for a key: the key is stored
// before any event names it, and the open itself is still one append.
//
// # Destroying one key
//
// A block is never rewritten in place: [Store.Delete] publishes a new
// version of the block with the key's slot zeroed, expecting the version
// it read to be the block's latest (Nats-Expected-Last-Subject-Sequence,
// so two deletions in one block never undo each other: the loser reads
// again and retries), then deletes every older version of the block with
// secure erase. A zeroed slot is a key that is gone. The erase step runs
// on every Delete of any slot of the block, so it also finishes a deletion
// that stopped between the publish and the erase.
//
// # Additional data
//
// The ciphertext is bound to the event that carries it: the guild, the case
// id, the event id and the event name are the AEAD's additional data, so a
// sealed field cannot be moved to another event or another case.
//
// # A key that is gone
//
// An event whose key has been destroyed (its slot zeroed, or its block
// missing) opens with its personal fields empty, as a redacted case shows
// them. A zeroed slot is never filled again and block ids are random, so a
// key that is gone never comes back, and stores remember that.
//
// Key streams written before blocks (one 32-byte message per key, during
// this release's development only) are not read: delete such a stream.
package shred
