package shred

import (
	"crypto/rand"
	"fmt"

	"github.com/google/uuid"
)

// Block format.
const (
	// BlockKeys is how many keys one block holds: one message in the key
	// stream per BlockKeys keys.
	BlockKeys = 256
	// BlockVersion is the first byte of a block message: its format.
	BlockVersion = 1
	// BlockSize is the size of a block message: the format byte, then
	// BlockKeys keys of KeySize bytes, slot 0 first.
	BlockSize = 1 + BlockKeys*KeySize
)

// BlockID returns the id of the block that holds key id: id with its last
// byte zero. The key's slot in the block is that last byte (see Slot).
func BlockID(id uuid.UUID) uuid.UUID {
	id[15] = 0
	return id
}

// Slot returns the slot of key id in its block: the id's last byte.
func Slot(id uuid.UUID) int { return int(id[15]) }

// SlotID returns the key id of slot i of block b.
func SlotID(b uuid.UUID, i int) uuid.UUID {
	b[15] = byte(i)
	return b
}

// KeyInBlock returns the raw bytes of key id in block, a block message as
// stored: nil when the slot is zeroed (the key was destroyed) or block is
// not a block.
func KeyInBlock(block []byte, id uuid.UUID) []byte {
	if checkBlock(block) != nil {
		return nil
	}
	raw := block[1+Slot(id)*KeySize : 1+(Slot(id)+1)*KeySize]
	if zeroed(raw) {
		return nil
	}
	return raw
}

// checkBlock reports whether data is a block message.
func checkBlock(data []byte) error {
	if len(data) != BlockSize || data[0] != BlockVersion {
		v := -1
		if len(data) > 0 {
			v = int(data[0])
		}
		return fmt.Errorf("%d bytes of format %d, want %d bytes of format %d", len(data), v, BlockSize, BlockVersion)
	}
	return nil
}

// zeroed reports whether every byte of b is zero.
func zeroed(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// newBlocks makes n new blocks: each a random id (a random UUID with its
// last byte zero) and BlockKeys random keys, as block messages and as keys.
func newBlocks(n int) (ids []uuid.UUID, data [][]byte, keys []*Key, err error) {
	raw := make([]byte, n*(16+BlockKeys*KeySize))
	defer clear(raw)
	if _, err := rand.Read(raw); err != nil {
		return nil, nil, nil, fmt.Errorf("new data keys: %w", err)
	}
	ids, data, keys = make([]uuid.UUID, n), make([][]byte, n), make([]*Key, 0, n*BlockKeys)
	for b := range n {
		r := raw[b*(16+BlockKeys*KeySize) : (b+1)*(16+BlockKeys*KeySize)]
		var id uuid.UUID
		copy(id[:], r[:16])
		id[6] = id[6]&0x0f | 0x40 // version 4
		id[8] = id[8]&0x3f | 0x80 // RFC 4122 variant
		id[15] = 0
		ids[b] = id
		d := make([]byte, BlockSize)
		d[0] = BlockVersion
		copy(d[1:], r[16:])
		for i := range BlockKeys {
			k := d[1+i*KeySize : 1+(i+1)*KeySize]
			if zeroed(k) { // a zero slot means destroyed; never in 2^256
				return nil, nil, nil, fmt.Errorf("new data keys: crypto/rand returned %d zero bytes", KeySize)
			}
			key, err := NewKey(SlotID(id, i), k)
			if err != nil {
				return nil, nil, nil, err
			}
			keys = append(keys, key)
		}
		data[b] = d
	}
	return ids, data, keys, nil
}
