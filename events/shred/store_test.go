package shred_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/modledger/modledger/events/shred"
	"github.com/modledger/modledger/internal/testenv"
)

type storeBundle struct {
	env   *testenv.NATSEnv
	js    jetstream.JetStream
	store *shred.Store
}

func setupStore(t *testing.T) *storeBundle {
	t.Helper()
	env := testenv.NATS(t)
	js := env.JetStream(t)
	if _, err := shred.EnsureStream(t.Context(), js, shred.StreamConfig{Name: "T_KEYS", Prefix: "t"}); err != nil {
		t.Fatal(err)
	}
	st, err := shred.NewStore(shred.Config{Conn: js.Conn(), Stream: "T_KEYS", Prefix: "t"})
	if err != nil {
		t.Fatal(err)
	}
	return &storeBundle{env: env, js: js, store: st}
}

// rawKey reads a key's bytes as they are stored, in the latest version
// of its block; nil when the slot is zeroed or the block missing.
func (b *storeBundle) rawKey(t *testing.T, id uuid.UUID) []byte {
	t.Helper()
	s, err := b.js.Stream(t.Context(), "T_KEYS")
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(t.Context(), shred.Subject("t", id))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return shred.KeyInBlock(m.Data, id)
}

func TestStorePublishGetDelete(t *testing.T) {
	t.Parallel()
	b := setupStore(t)
	ctx := t.Context()
	keys, err := b.store.Publish(ctx, 700)
	if err != nil {
		t.Fatal(err)
	}
	// A fresh store (nothing cached) reads them all, three blocks.
	fresh, err := shred.NewStore(shred.Config{Conn: b.js.Conn(), Stream: "T_KEYS", Prefix: "t"})
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]uuid.UUID, 0, len(keys)+1)
	for _, k := range keys {
		ids = append(ids, k.ID)
	}
	unknown := uuid.New()
	ids = append(ids, unknown)
	got, err := fresh.GetMany(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 3*shred.BlockKeys {
		t.Fatalf("published %d keys for 700, want 3 whole blocks", len(keys))
	}
	if len(got) != len(keys) {
		t.Fatalf("read %d keys, want %d", len(got), len(keys))
	}
	for _, k := range keys {
		g := got[k.ID]
		if g == nil || g.Seq != k.Seq {
			t.Fatalf("key %s read as %+v, want sequence %d", k.ID, g, k.Seq)
		}
	}
	if !fresh.Gone(unknown) {
		t.Fatal("a key that does not exist is not known as gone")
	}

	victim := keys[123]
	raw := b.rawKey(t, victim.ID)
	if len(b.env.StoreContains(t, raw)) == 0 {
		t.Fatal("the key's bytes are not in the store directory: the scan cannot prove anything")
	}
	if err := fresh.Delete(ctx, victim.ID); err != nil {
		t.Fatal(err)
	}
	if err := fresh.Delete(ctx, victim.ID); err != nil {
		t.Fatalf("delete again: %v", err)
	}
	// Another store, which had the key cached, deletes it again: the server
	// says there is no such message, and that is success.
	if err := b.store.Delete(ctx, victim.ID); err != nil {
		t.Fatalf("delete from a stale cache: %v", err)
	}
	third, err := shred.NewStore(shred.Config{Conn: b.js.Conn(), Stream: "T_KEYS", Prefix: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if k, err := third.Get(ctx, victim.ID); err != nil || k != nil {
		t.Fatalf("deleted key read as %v, %v", k, err)
	}
	if k, err := third.Get(ctx, keys[124].ID); err != nil || k == nil {
		t.Fatalf("a neighbour of the deleted key read as %v, %v", k, err)
	}
	if found := b.env.StoreContains(t, raw); len(found) > 0 {
		t.Fatalf("the deleted key's bytes are still on disk in %v", found)
	}
}

func TestEnsureStreamRefusesAStreamThatCannotDeleteKeys(t *testing.T) {
	t.Parallel()
	env := testenv.NATS(t)
	js := env.JetStream(t)
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "BAD_KEYS", Subjects: []string{"bad.key.>"}, DenyDelete: true}); err != nil {
		t.Fatal(err)
	}
	_, err := shred.EnsureStream(t.Context(), js, shred.StreamConfig{Name: "BAD_KEYS", Prefix: "bad"})
	if err == nil || !strings.Contains(err.Error(), "denies deletes") {
		t.Fatalf("EnsureStream on a stream that denies deletes: %v", err)
	}
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "AGED_KEYS", Subjects: []string{"aged.key.>"}, MaxAge: time.Hour}); err != nil {
		t.Fatal(err)
	}
	_, err = shred.EnsureStream(t.Context(), js, shred.StreamConfig{Name: "AGED_KEYS", Prefix: "aged"})
	if err == nil || !strings.Contains(err.Error(), "limits") {
		t.Fatalf("EnsureStream on a stream with a max age: %v", err)
	}
	s, err := shred.EnsureStream(t.Context(), js, shred.StreamConfig{Name: "GOOD_KEYS", Prefix: "good"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	if cfg.DenyDelete || !cfg.DenyPurge || !cfg.AllowDirect || cfg.Storage != jetstream.FileStorage {
		t.Fatalf("key stream config %+v", cfg)
	}
}

func TestPoolHandsOutStoredKeysOnce(t *testing.T) {
	t.Parallel()
	b := setupStore(t)
	pool := b.store.NewPool(&shred.PoolOpts{Size: 8})
	if _, err := pool.Take(t.Context()); err == nil {
		t.Fatal("a pool that was not started handed out a key")
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pool.Start(ctx)
	defer pool.Stop()
	seen := map[uuid.UUID]bool{}
	for range shred.BlockKeys + 50 { // several refills, a block each
		k, err := pool.Take(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if seen[k.ID] {
			t.Fatalf("key %s handed out twice", k.ID)
		}
		seen[k.ID] = true
		// Stored before it is handed out.
		if raw := b.rawKey(t, k.ID); len(raw) != shred.KeySize {
			t.Fatalf("key %s stored as %d bytes", k.ID, len(raw))
		}
	}
	pool.Stop()
	pool.Stop()
}

func TestPublishedKeyIDsAreRandomUUIDs(t *testing.T) {
	t.Parallel()
	b := setupStore(t)
	keys, err := b.store.Publish(t.Context(), 50)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uuid.UUID]bool{}
	for _, k := range keys {
		if k.ID.Version() != 4 || k.ID.Variant() != uuid.RFC4122 || seen[k.ID] {
			t.Fatalf("key id %s", k.ID)
		}
		seen[k.ID] = true
		if raw := b.rawKey(t, k.ID); len(raw) != shred.KeySize {
			t.Fatalf("key %s stored as %d bytes", k.ID, len(raw))
		}
	}
}
