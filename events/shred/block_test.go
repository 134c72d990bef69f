package shred_test

import (
	"bytes"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/modledger/modledger/events"
	"github.com/modledger/modledger/events/shred"
)

// publishBlock stores one block and returns its keys and the bytes of the
// block as stored.
func (b *storeBundle) publishBlock(t *testing.T) ([]*shred.Key, []byte) {
	t.Helper()
	keys, err := b.store.Publish(t.Context(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != shred.BlockKeys {
		t.Fatalf("published %d keys, want one block of %d", len(keys), shred.BlockKeys)
	}
	return keys, b.lastBlock(t, keys[0].ID)
}

// lastBlock returns the latest version of the block of key id.
func (b *storeBundle) lastBlock(t *testing.T, id uuid.UUID) []byte {
	t.Helper()
	s, err := b.js.Stream(t.Context(), "T_KEYS")
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(t.Context(), shred.Subject("t", id))
	if err != nil {
		t.Fatal(err)
	}
	return m.Data
}

// versions returns how many versions of key id's block the stream holds.
func (b *storeBundle) versions(t *testing.T, id uuid.UUID) uint64 {
	t.Helper()
	s, err := b.js.Stream(t.Context(), "T_KEYS")
	if err != nil {
		t.Fatal(err)
	}
	subj := shred.Subject("t", id)
	info, err := s.Info(t.Context(), jetstream.WithSubjectFilter(subj))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects[subj]
}

func (b *storeBundle) newStore(t *testing.T) *shred.Store {
	t.Helper()
	st, err := shred.NewStore(shred.Config{Conn: b.env.Conn(t), Stream: "T_KEYS", Prefix: "t"})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestBlockKeyIDs(t *testing.T) {
	t.Parallel()
	b := setupStore(t)
	keys, data := b.publishBlock(t)
	block := shred.BlockID(keys[0].ID)
	if block[15] != 0 || block.Version() != 4 {
		t.Fatalf("block id %s", block)
	}
	for i, k := range keys {
		if shred.BlockID(k.ID) != block || shred.Slot(k.ID) != i || shred.SlotID(block, i) != k.ID {
			t.Fatalf("key %d has id %s in block %s", i, k.ID, block)
		}
		if shred.Subject("t", k.ID) != "t.key."+block.String() {
			t.Fatalf("key %s on subject %s", k.ID, shred.Subject("t", k.ID))
		}
	}
	if len(data) != shred.BlockSize || data[0] != shred.BlockVersion {
		t.Fatalf("block stored as %d bytes of format %d", len(data), data[0])
	}
	if b.versions(t, block) != 1 {
		t.Fatal("a new block is not one message")
	}
}

// Two cases whose keys share a block: the one redacted no longer opens,
// the other still does.
func TestDeleteOneKeyOfABlockKeepsItsNeighbours(t *testing.T) {
	t.Parallel()
	b := setupStore(t)
	keys, _ := b.publishBlock(t)
	redacted, kept := event(events.CaseReasonAmended{Reason: "the redacted case"}), event(events.CaseReasonAmended{Reason: "the other case"})
	if err := shred.Seal(&redacted, keys[10]); err != nil {
		t.Fatal(err)
	}
	if err := shred.Seal(&kept, keys[11]); err != nil {
		t.Fatal(err)
	}
	raw := b.rawKey(t, keys[10].ID)
	if err := b.store.Delete(t.Context(), keys[10].ID); err != nil {
		t.Fatal(err)
	}
	if b.store.Deleted() != 1 {
		t.Fatalf("Deleted() = %d", b.store.Deleted())
	}
	fresh := b.newStore(t)
	evs := []events.Event{redacted, kept}
	if err := fresh.OpenEvents(t.Context(), evs); err != nil {
		t.Fatal(err)
	}
	if r := evs[0].Data.(events.CaseReasonAmended).Reason; r != "" {
		t.Fatalf("the redacted case opens to %q", r)
	}
	if r := evs[1].Data.(events.CaseReasonAmended).Reason; r != "the other case" {
		t.Fatalf("the other case opens to %q", r)
	}
	if !fresh.Gone(keys[10].ID) || fresh.Gone(keys[11].ID) {
		t.Fatal("the fresh store does not know which key is gone")
	}
	if found := b.env.StoreContains(t, raw); len(found) > 0 {
		t.Fatalf("the deleted key's bytes are still on disk in %v", found)
	}
	if found := b.env.StoreContains(t, b.rawKey(t, keys[11].ID)); len(found) == 0 {
		t.Fatal("the neighbour's bytes are not on disk: the scan proves nothing")
	}
	if n := b.versions(t, keys[0].ID); n != 1 {
		t.Fatalf("%d versions of the block left, want 1", n)
	}
}

// Deletions of different slots of one block, at once from two stores on
// separate connections, each win their compare-and-set in turn: none
// brings back a key another zeroed.
func TestConcurrentDeletesInOneBlock(t *testing.T) {
	t.Parallel()
	b := setupStore(t)
	keys, before := b.publishBlock(t)
	stores := []*shred.Store{b.newStore(t), b.newStore(t)}
	victims := map[int]bool{}
	for i := range 20 {
		victims[3+i*11] = true
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	n := 0
	for slot := range victims {
		st := stores[n%2]
		n++
		wg.Go(func() {
			if err := st.Delete(t.Context(), keys[slot].ID); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}
	if d := stores[0].Deleted() + stores[1].Deleted(); d != 20 {
		t.Errorf("the stores destroyed %d keys, want 20", d)
	}
	after := b.lastBlock(t, keys[0].ID)
	for i, k := range keys {
		got := shred.KeyInBlock(after, k.ID)
		if victims[i] {
			if got != nil {
				t.Errorf("slot %d not zeroed", i)
			}
			continue
		}
		if !bytes.Equal(got, shred.KeyInBlock(before, k.ID)) {
			t.Errorf("slot %d changed", i)
		}
	}
	if n := b.versions(t, keys[0].ID); n != 1 {
		t.Fatalf("%d versions of the block left, want 1", n)
	}
	for i := range victims {
		if found := b.env.StoreContains(t, shred.KeyInBlock(before, keys[i].ID)); len(found) > 0 {
			t.Fatalf("slot %d's key is still on disk in %v", i, found)
		}
	}
}

// A deletion that stopped after publishing the zeroed block but before
// erasing the old version is finished by the next deletion of any slot of
// the block, or of the same slot again.
func TestDeleteRepairsACrashBetweenPublishAndErase(t *testing.T) {
	t.Parallel()
	b := setupStore(t)
	for _, again := range []bool{false, true} {
		keys, data := b.publishBlock(t)
		raw := bytes.Clone(shred.KeyInBlock(data, keys[3].ID))
		zeroed := bytes.Clone(data)
		clear(zeroed[1+3*shred.KeySize : 1+4*shred.KeySize])
		if _, err := b.js.Publish(t.Context(), shred.Subject("t", keys[3].ID), zeroed); err != nil {
			t.Fatal(err)
		}
		if n := b.versions(t, keys[0].ID); n != 2 {
			t.Fatalf("%d versions of the block after the crash, want 2", n)
		}
		if len(b.env.StoreContains(t, raw)) == 0 {
			t.Fatal("the key's bytes are not on disk after the crash: the scan proves nothing")
		}
		next := keys[200]
		if again {
			next = keys[3]
		}
		if err := b.newStore(t).Delete(t.Context(), next.ID); err != nil {
			t.Fatal(err)
		}
		if n := b.versions(t, keys[0].ID); n != 1 {
			t.Fatalf("%d versions of the block left, want 1", n)
		}
		if found := b.env.StoreContains(t, raw); len(found) > 0 {
			t.Fatalf("the key deleted before the crash is still on disk in %v", found)
		}
		if b.rawKey(t, keys[3].ID) != nil || b.rawKey(t, next.ID) != nil || b.rawKey(t, keys[100].ID) == nil {
			t.Fatal("the block's slots are not as deleted")
		}
	}
}
