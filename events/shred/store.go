package shred

import (
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/modledger/modledger/events"
)

// Store defaults and limits.
const (
	// StreamSuffix is appended to the ledger's stream name to name its key
	// stream: MODLEDGER_KEYS beside MODLEDGER.
	StreamSuffix = "_KEYS"
	// CacheSizeDefault bounds the keys a Store keeps in memory.
	CacheSizeDefault = 100_000
	// CacheTTLDefault is how long a Store trusts a key it has read before
	// it reads it again, so that a key deleted by another process stops
	// opening text here soon after.
	CacheTTLDefault = time.Minute
	// APITimeoutDefault bounds one JetStream request when the caller's
	// context has no deadline.
	APITimeoutDefault = 5 * time.Second
	// GetManyChunk is how many keys one batched direct get asks for.
	GetManyChunk = 512
	// PublishMax is the most keys one Publish stores (the server's limit
	// on an atomic batch is 1000 messages).
	PublishMax = 1000
)

// StreamName returns the name of the key stream that belongs to the
// ledger's stream ledgerStream.
func StreamName(ledgerStream string) string { return ledgerStream + StreamSuffix }

// Subject returns the subject key id is stored under.
func Subject(prefix string, id uuid.UUID) string { return prefix + ".key." + id.String() }

// Subjects returns the filter of every key's subject.
func Subjects(prefix string) string { return prefix + ".key.>" }

// StreamConfig is the key stream as the command service creates it.
type StreamConfig struct {
	// Name is the key stream's name, StreamName of the ledger's stream.
	Name string
	// Prefix is the subject prefix, the ledger's.
	Prefix string
	// Replicas is the replica count, the ledger stream's.
	Replicas int
}

// jetStreamConfig is the key stream: file storage like the ledger, no
// limits (a key lives until its case is redacted), deletes allowed (that is
// how a key is destroyed), purges denied (a purge would shred every case at
// once and without secure erase), direct gets and atomic batches.
func (c StreamConfig) jetStreamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:               c.Name,
		Description:        "modledger: per-case data keys; deleting one erases its case's personal text",
		Subjects:           []string{Subjects(c.Prefix)},
		Storage:            jetstream.FileStorage,
		Retention:          jetstream.LimitsPolicy,
		Replicas:           c.Replicas,
		MaxMsgs:            -1,
		MaxBytes:           -1,
		MaxMsgsPerSubject:  -1,
		Discard:            jetstream.DiscardNew,
		DenyDelete:         false,
		DenyPurge:          true,
		AllowDirect:        true,
		AllowAtomicPublish: true,
	}
}

// EnsureStream creates the key stream, or checks an existing one: it
// refuses one whose subjects or storage differ, that has limits (they
// would destroy keys of live cases) or that denies deletes (keys could not
// be destroyed), and turns on direct gets and atomic batches if they are
// off.
func EnsureStream(ctx context.Context, js jetstream.JetStream, cfg StreamConfig) (jetstream.Stream, error) {
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	want := cfg.jetStreamConfig()
	s, err := js.Stream(ctx, cfg.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = js.CreateStream(ctx, want)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return nil, fmt.Errorf("create key stream %s: %w", cfg.Name, err)
		}
		s, err = js.Stream(ctx, cfg.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("look up key stream %s: %w", cfg.Name, err)
	}
	have := s.CachedInfo().Config
	var bad []error
	if !slices.Contains(have.Subjects, want.Subjects[0]) {
		bad = append(bad, fmt.Errorf("subjects %v do not include %s", have.Subjects, want.Subjects[0]))
	}
	if have.Storage != jetstream.FileStorage {
		bad = append(bad, fmt.Errorf("storage is %s, want file", have.Storage))
	}
	if have.MaxAge != 0 || have.MaxMsgs > 0 || have.MaxBytes > 0 || have.MaxMsgsPerSubject > 0 {
		bad = append(bad, errors.New("has age, message or size limits; they would destroy the keys of live cases"))
	}
	if have.DenyDelete {
		bad = append(bad, errors.New("denies deletes; keys could not be destroyed on redaction"))
	}
	if err := errors.Join(bad...); err != nil {
		return nil, fmt.Errorf("stream %s is not a key stream: %w", cfg.Name, err)
	}
	if !have.AllowDirect || !have.AllowAtomicPublish {
		upd := have
		upd.AllowDirect, upd.AllowAtomicPublish = true, true
		if s, err = js.UpdateStream(ctx, upd); err != nil {
			return nil, fmt.Errorf("key stream %s needs allow_direct and allow_atomic, and updating it failed: %w", cfg.Name, err)
		}
	}
	return s, nil
}

// Config configures a Store.
type Config struct {
	// Conn is the NATS connection. Required.
	Conn *nats.Conn
	// Stream is the key stream's name. Required; see StreamName.
	Stream string
	// Prefix is the subject prefix. Defaults to "modledger".
	Prefix string
	// CacheSize bounds the keys kept in memory. Defaults to 100000.
	CacheSize int
	// CacheTTL is how long a key read is trusted. Defaults to 1 minute.
	CacheTTL time.Duration
	// APITimeout bounds one request when the context has no deadline.
	// Defaults to 5s.
	APITimeout time.Duration
}

// Store reads, publishes and destroys data keys in the key stream, with a
// bounded cache. It is safe for concurrent use.
type Store struct {
	cfg Config

	mu    sync.Mutex
	lru   *list.List // of *entry, most recent first
	byID  map[uuid.UUID]*list.Element
	clock func() time.Time

	deleted atomic.Uint64
}

// Deleted returns how many keys this store has destroyed.
func (s *Store) Deleted() uint64 { return s.deleted.Load() }

// entry is a cached key, or a key known to be gone (key nil).
type entry struct {
	id  uuid.UUID
	key *Key
	at  time.Time
}

// NewStore returns a Store.
func NewStore(cfg Config) (*Store, error) {
	if cfg.Prefix == "" {
		cfg.Prefix = events.DefaultPrefix
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = CacheSizeDefault
	}
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = CacheTTLDefault
	}
	if cfg.APITimeout == 0 {
		cfg.APITimeout = APITimeoutDefault
	}
	var errs []error
	if cfg.Conn == nil {
		errs = append(errs, errors.New("a NATS connection is required"))
	}
	if cfg.Stream == "" {
		errs = append(errs, errors.New("the key stream's name is required"))
	}
	if cfg.CacheSize < 1 || cfg.CacheTTL < 0 || cfg.APITimeout < 0 {
		errs = append(errs, errors.New("cache size, cache TTL and API timeout must be positive"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("key store: %w", err)
	}
	return &Store{cfg: cfg, lru: list.New(), byID: map[uuid.UUID]*list.Element{}, clock: time.Now}, nil
}

// withTimeout gives ctx the API timeout when it has no deadline.
func (s *Store) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, s.cfg.APITimeout)
}

// cached returns the cached entry of id: known reports whether the cache
// knows it (k nil then means gone).
func (s *Store) cached(id uuid.UUID) (k *Key, known bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	el, ok := s.byID[id]
	if !ok {
		return nil, false
	}
	en := el.Value.(*entry)
	if en.key != nil && s.clock().Sub(en.at) > s.cfg.CacheTTL {
		s.lru.Remove(el)
		delete(s.byID, id)
		return nil, false
	}
	s.lru.MoveToFront(el)
	return en.key, true
}

// remember caches k as the key of id (nil: gone).
func (s *Store) remember(id uuid.UUID, k *Key) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.byID[id]; ok {
		en := el.Value.(*entry)
		en.key, en.at = k, s.clock()
		s.lru.MoveToFront(el)
		return
	}
	s.byID[id] = s.lru.PushFront(&entry{id: id, key: k, at: s.clock()})
	for s.lru.Len() > s.cfg.CacheSize {
		last := s.lru.Back()
		s.lru.Remove(last)
		delete(s.byID, last.Value.(*entry).id)
	}
}

// Get returns the key id names, or nil when it is gone.
func (s *Store) Get(ctx context.Context, id uuid.UUID) (*Key, error) {
	if k, known := s.cached(id); known {
		return k, nil
	}
	m, err := s.GetMany(ctx, []uuid.UUID{id})
	if err != nil {
		return nil, err
	}
	return m[id], nil
}

// GetMany returns the keys ids name; a key that is gone is absent from the
// map. Keys the cache does not hold are read with batched direct gets
// (multi_last), GetManyChunk keys a request, so a rebuild reads a batch's
// keys in one round trip, not one per case.
func (s *Store) GetMany(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]*Key, error) {
	out := make(map[uuid.UUID]*Key, len(ids))
	var missing []uuid.UUID
	for _, id := range ids {
		if _, done := out[id]; done {
			continue
		}
		if k, known := s.cached(id); known {
			if k != nil {
				out[id] = k
			}
			continue
		}
		if !slices.Contains(missing, id) {
			missing = append(missing, id)
		}
	}
	for len(missing) > 0 {
		n := min(len(missing), GetManyChunk)
		if err := s.fetch(ctx, missing[:n], out); err != nil {
			return nil, err
		}
		missing = missing[n:]
	}
	return out, nil
}

// fetch reads the keys ids with one batched direct get into out, and
// remembers those that are gone.
func (s *Store) fetch(ctx context.Context, ids []uuid.UUID, out map[uuid.UUID]*Key) error {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	nc := s.cfg.Conn
	subjects := make([]string, len(ids))
	for i, id := range ids {
		subjects[i] = Subject(s.cfg.Prefix, id)
	}
	body, err := json.Marshal(struct {
		MultiLast []string `json:"multi_last"`
		Batch     int      `json:"batch"`
	}{subjects, len(ids)})
	if err != nil {
		return fmt.Errorf("read %d keys: %w", len(ids), err)
	}
	inbox := nc.NewRespInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return fmt.Errorf("read %d keys: subscribe: %w", len(ids), err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.PublishRequest("$JS.API.DIRECT.GET."+s.cfg.Stream, inbox, body); err != nil {
		return fmt.Errorf("read %d keys: %w", len(ids), err)
	}
	found := make(map[uuid.UUID]bool, len(ids))
	for {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return fmt.Errorf("read %d keys from %s: %w", len(ids), s.cfg.Stream, err)
		}
		if status := m.Header.Get("Status"); status != "" && len(m.Data) == 0 {
			if status == "404" || status == "204" {
				break
			}
			return fmt.Errorf("read %d keys from %s: status %s: %s", len(ids), s.cfg.Stream, status, m.Header.Get("Description"))
		}
		subj := m.Header.Get("Nats-Subject")
		id, err := uuid.Parse(subj[strings.LastIndexByte(subj, '.')+1:])
		if err != nil {
			return fmt.Errorf("read keys from %s: message on %q is not a key", s.cfg.Stream, subj)
		}
		k, err := NewKey(id, m.Data)
		if err != nil {
			return fmt.Errorf("read keys from %s: %w", s.cfg.Stream, err)
		}
		k.Seq, _ = strconv.ParseUint(m.Header.Get("Nats-Sequence"), 10, 64)
		found[id] = true
		out[id] = k
		s.remember(id, k)
	}
	for _, id := range ids {
		if !found[id] {
			s.remember(id, nil)
		}
	}
	return nil
}

// OpenEvents opens every sealed event of evs in place, reading the keys
// they need in batches. An event whose key is gone opens with its personal
// fields empty.
func (s *Store) OpenEvents(ctx context.Context, evs []events.Event) error {
	var ids []uuid.UUID
	for i := range evs {
		if len(evs[i].Sealed) > 0 {
			ids = append(ids, evs[i].KeyID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	keys, err := s.GetMany(ctx, ids)
	if err != nil {
		return err
	}
	for i := range evs {
		if err := Open(&evs[i], keys[evs[i].KeyID]); err != nil {
			return err
		}
	}
	return nil
}

// OpenEvent opens one sealed event in place; see OpenEvents.
func (s *Store) OpenEvent(ctx context.Context, e *events.Event) error {
	if len(e.Sealed) == 0 {
		return nil
	}
	k, err := s.Get(ctx, e.KeyID)
	if err != nil {
		return err
	}
	return Open(e, k)
}

// Gone reports whether the store knows the key id to be gone, without a
// request.
func (s *Store) Gone(id uuid.UUID) bool {
	k, known := s.cached(id)
	return known && k == nil
}

// Delete destroys the key id: its message is deleted with secure erase, so
// the stream overwrites its bytes on disk. Deleting a key that is gone is
// not an error.
func (s *Store) Delete(ctx context.Context, id uuid.UUID) error {
	k, err := s.Get(ctx, id)
	if err != nil {
		return fmt.Errorf("delete key %s: %w", id, err)
	}
	if k == nil {
		return nil
	}
	if k.Seq == 0 {
		// A key from a publish whose sequence is unknown: read it again.
		s.forget(id)
		if k, err = s.Get(ctx, id); err != nil || k == nil {
			return err
		}
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	body, _ := json.Marshal(struct {
		Seq uint64 `json:"seq"`
	}{k.Seq})
	resp, err := s.cfg.Conn.RequestWithContext(ctx, "$JS.API.STREAM.MSG.DELETE."+s.cfg.Stream, body)
	if err != nil {
		return fmt.Errorf("delete key %s: %w", id, err)
	}
	var r struct {
		Success bool      `json:"success"`
		Error   *apiError `json:"error"`
	}
	if err := json.Unmarshal(resp.Data, &r); err != nil {
		return fmt.Errorf("delete key %s: unreadable reply %q", id, resp.Data)
	}
	if r.Error != nil {
		// Deleted meanwhile (another process, a retry)? Then it is done.
		s.forget(id)
		if k, gerr := s.Get(ctx, id); gerr == nil && k == nil {
			return nil
		}
		return fmt.Errorf("delete key %s: jetstream: %s (code %d, err_code %d)", id, r.Error.Description, r.Error.Code, r.Error.ErrCode)
	}
	if r.Error == nil && !r.Success {
		return fmt.Errorf("delete key %s: the server did not delete it: %s", id, resp.Data)
	}
	s.deleted.Add(1)
	s.remember(id, nil)
	return nil
}

type apiError struct {
	Code        int    `json:"code"`
	ErrCode     int    `json:"err_code"`
	Description string `json:"description"`
}

// forget drops id from the cache.
func (s *Store) forget(id uuid.UUID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.byID[id]; ok {
		s.lru.Remove(el)
		delete(s.byID, id)
	}
}

// Publish makes n new keys (at most PublishMax) and stores them in the key
// stream as one atomic batch; when it returns, they are durable (the
// stream's acknowledgement), and cached.
func (s *Store) Publish(ctx context.Context, n int) ([]*Key, error) {
	if n < 1 || n > PublishMax {
		return nil, fmt.Errorf("publish keys: %d keys, want 1 to %d", n, PublishMax)
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	keys, err := randomKeys(n)
	if err != nil {
		return nil, err
	}
	nc := s.cfg.Conn
	batchID := uuid.NewString()
	var reply *nats.Msg
	// One message and one header, reused: a publish copies them out.
	m := &nats.Msg{}
	seq := []string{""}
	if n > 1 {
		m.Header = nats.Header{"Nats-Batch-Id": {batchID}, "Nats-Batch-Sequence": seq}
	}
	for i, k := range keys {
		m.Subject, m.Data = Subject(s.cfg.Prefix, k.ID), k.raw[:]
		if n > 1 {
			seq[0] = strconv.Itoa(i + 1)
			if i < n-1 {
				if err := nc.PublishMsg(m); err != nil {
					return nil, fmt.Errorf("publish keys: %w", err)
				}
				continue
			}
			m.Header["Nats-Batch-Commit"] = []string{"1"}
		}
		r, err := nc.RequestMsgWithContext(ctx, m)
		if err != nil {
			return nil, fmt.Errorf("publish %d keys: %w", n, err)
		}
		reply = r
	}
	var ack struct {
		Seq   uint64    `json:"seq"`
		Error *apiError `json:"error"`
	}
	if err := json.Unmarshal(reply.Data, &ack); err != nil {
		return nil, fmt.Errorf("publish %d keys: unreadable acknowledgement %q", n, reply.Data)
	}
	if ack.Error != nil {
		return nil, fmt.Errorf("publish %d keys: jetstream: %s (code %d, err_code %d)", n, ack.Error.Description, ack.Error.Code, ack.Error.ErrCode)
	}
	if ack.Seq < uint64(n) {
		return nil, fmt.Errorf("publish %d keys: acknowledgement without a sequence: %s", n, reply.Data)
	}
	for i, k := range keys {
		k.Seq = ack.Seq - uint64(n-1-i)
		s.remember(k.ID, k)
	}
	return keys, nil
}
