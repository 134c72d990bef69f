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
	// GetManyChunk is how many blocks (of BlockKeys keys each) one batched
	// direct get asks for.
	GetManyChunk = 64
	// PublishMax is the most keys one Publish stores: 16 blocks, one
	// atomic batch of 16 messages of 8 KiB.
	PublishMax = 16 * BlockKeys
	// DeleteAttemptsMax bounds how often Delete retries its compare-and-set
	// when other deletions in the same block keep winning.
	DeleteAttemptsMax = 1000
)

// StreamName returns the name of the key stream that belongs to the
// ledger's stream ledgerStream.
func StreamName(ledgerStream string) string { return ledgerStream + StreamSuffix }

// Subject returns the subject key id is stored under: its block's,
// <prefix>.key.<block_id> (see BlockID).
func Subject(prefix string, id uuid.UUID) string { return prefix + ".key." + BlockID(id).String() }

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
		Description:        "modledger: per-case data keys, 256 to a message; zeroing one erases its case's personal text",
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
	// CacheSize bounds the keys kept in memory, in whole blocks of
	// BlockKeys. Defaults to 100000.
	CacheSize int
	// CacheTTL is how long a key read is trusted. Defaults to 1 minute.
	CacheTTL time.Duration
	// APITimeout bounds one request when the context has no deadline.
	// Defaults to 5s.
	APITimeout time.Duration
}

// Store reads, publishes and destroys data keys in the key stream, with a
// bounded cache of blocks. It is safe for concurrent use.
type Store struct {
	cfg       Config
	maxBlocks int

	mu    sync.Mutex
	lru   *list.List // of *block, most recent first
	byID  map[uuid.UUID]*list.Element
	clock func() time.Time

	deleted atomic.Uint64
}

// Deleted returns how many keys this store has destroyed.
func (s *Store) Deleted() uint64 { return s.deleted.Load() }

// block is a cached block, or a block known to be gone (data nil).
type block struct {
	id   uuid.UUID
	seq  uint64
	data []byte          // the block message as stored
	keys [BlockKeys]*Key // made on first use
	at   time.Time
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
	return &Store{cfg: cfg, maxBlocks: (cfg.CacheSize + BlockKeys - 1) / BlockKeys,
		lru: list.New(), byID: map[uuid.UUID]*list.Element{}, clock: time.Now}, nil
}

// withTimeout gives ctx the API timeout when it has no deadline.
func (s *Store) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, s.cfg.APITimeout)
}

// cached returns the cached key id: known reports whether the cache knows
// it (k nil then means gone). A zeroed slot or a missing block is gone for
// good; a live key is trusted for the cache TTL.
func (s *Store) cached(id uuid.UUID) (k *Key, known bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	el, ok := s.byID[BlockID(id)]
	if !ok {
		return nil, false
	}
	b := el.Value.(*block)
	if k, gone := b.key(id); gone {
		s.lru.MoveToFront(el)
		return nil, true
	} else if s.clock().Sub(b.at) <= s.cfg.CacheTTL {
		s.lru.MoveToFront(el)
		return k, true
	}
	s.lru.Remove(el)
	delete(s.byID, b.id)
	return nil, false
}

// key returns the key id in b, or gone when its slot is zeroed or b does
// not exist. The caller holds the store's lock when b is cached.
func (b *block) key(id uuid.UUID) (k *Key, gone bool) {
	if b.data == nil {
		return nil, true
	}
	i := Slot(id)
	if b.keys[i] != nil {
		return b.keys[i], false
	}
	raw := b.data[1+i*KeySize : 1+(i+1)*KeySize]
	if zeroed(raw) {
		return nil, true
	}
	k, err := NewKey(id, raw)
	if err != nil { // never: raw has KeySize bytes
		return nil, true
	}
	k.Seq = b.seq
	b.keys[i] = k
	return k, false
}

// remember caches b, unless the cache holds a newer version of it.
func (s *Store) remember(b *block) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.byID[b.id]; ok {
		if have := el.Value.(*block); have.data != nil && have.seq > b.seq {
			return
		}
		el.Value = b
		s.lru.MoveToFront(el)
		return
	}
	s.byID[b.id] = s.lru.PushFront(b)
	for s.lru.Len() > s.maxBlocks {
		last := s.lru.Back()
		s.lru.Remove(last)
		delete(s.byID, last.Value.(*block).id)
	}
}

// keyOf returns the key id of b (nil: gone), under the store's lock since
// b may be cached.
func (s *Store) keyOf(b *block, id uuid.UUID) *Key {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, _ := b.key(id)
	return k
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
// map. The blocks holding keys the cache does not have are read with
// batched direct gets (multi_last), GetManyChunk blocks a request, so a
// rebuild reads a batch's keys in a round trip or two, not one per case.
func (s *Store) GetMany(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]*Key, error) {
	out := make(map[uuid.UUID]*Key, len(ids))
	var (
		missing []uuid.UUID // keys
		blocks  []uuid.UUID
		wanted  = map[uuid.UUID]bool{}
	)
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
		missing = append(missing, id)
		if b := BlockID(id); !wanted[b] {
			wanted[b] = true
			blocks = append(blocks, b)
		}
	}
	if len(blocks) == 0 {
		return out, nil
	}
	got := make(map[uuid.UUID]*block, len(blocks))
	for len(blocks) > 0 {
		n := min(len(blocks), GetManyChunk)
		if err := s.fetch(ctx, blocks[:n], got); err != nil {
			return nil, err
		}
		blocks = blocks[n:]
	}
	for _, id := range missing {
		if k := s.keyOf(got[BlockID(id)], id); k != nil {
			out[id] = k
		}
	}
	return out, nil
}

// fetch reads the blocks ids with one batched direct get into got (a
// block that does not exist as one without data), and caches them.
func (s *Store) fetch(ctx context.Context, ids []uuid.UUID, got map[uuid.UUID]*block) error {
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
		return fmt.Errorf("read %d key blocks: %w", len(ids), err)
	}
	inbox := nc.NewRespInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return fmt.Errorf("read %d key blocks: subscribe: %w", len(ids), err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.PublishRequest("$JS.API.DIRECT.GET."+s.cfg.Stream, inbox, body); err != nil {
		return fmt.Errorf("read %d key blocks: %w", len(ids), err)
	}
	now := s.clock()
	for {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return fmt.Errorf("read %d key blocks from %s: %w", len(ids), s.cfg.Stream, err)
		}
		if status := m.Header.Get("Status"); status != "" && len(m.Data) == 0 {
			if status == "404" || status == "204" {
				break
			}
			return fmt.Errorf("read %d key blocks from %s: status %s: %s", len(ids), s.cfg.Stream, status, m.Header.Get("Description"))
		}
		b, err := s.parseBlock(m.Header.Get("Nats-Subject"), m.Header.Get("Nats-Sequence"), m.Data)
		if err != nil {
			return fmt.Errorf("read key blocks from %s: %w", s.cfg.Stream, err)
		}
		b.at = now
		got[b.id] = b
		s.remember(b)
	}
	for _, id := range ids {
		if got[id] == nil {
			b := &block{id: id, at: now}
			got[id] = b
			s.remember(b)
		}
	}
	return nil
}

// parseBlock checks a block message read from the stream.
func (s *Store) parseBlock(subj, seq string, data []byte) (*block, error) {
	id, err := uuid.Parse(subj[strings.LastIndexByte(subj, '.')+1:])
	if err != nil || id[15] != 0 {
		return nil, fmt.Errorf("message on %q is not a key block", subj)
	}
	if err := checkBlock(data); err != nil {
		return nil, fmt.Errorf("message on %q is not a key block: %w", subj, err)
	}
	b := &block{id: id, data: data}
	b.seq, _ = strconv.ParseUint(seq, 10, 64)
	return b, nil
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

// Delete destroys the key id. It reads the latest version of the key's
// block; unless the key's slot is zero already, it publishes a new version
// with the slot zeroed, expecting the version it read to be the latest
// (compare-and-set: when another deletion in the same block got there
// first, it reads again and retries, so no deletion undoes another). Then
// it deletes every older version of the block with secure erase, so the
// stream overwrites their bytes on disk. That last step also finishes a
// deletion that stopped between the two (a crash), whichever slot of the
// block is deleted next. Deleting a key that is gone is not an error.
func (s *Store) Delete(ctx context.Context, id uuid.UUID) error {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	bid, i := BlockID(id), Slot(id)
	subj := Subject(s.cfg.Prefix, bid)
	var latest uint64
	for attempt := 1; ; attempt++ {
		seq, data, err := s.directGet(ctx, directGetRequest{LastBySubject: subj})
		if err != nil {
			return fmt.Errorf("delete key %s: read its block: %w", id, err)
		}
		if data == nil {
			s.remember(&block{id: bid, at: s.clock()})
			return nil
		}
		if err := checkBlock(data); err != nil {
			return fmt.Errorf("delete key %s: message on %q is not a key block: %w", id, subj, err)
		}
		slot := data[1+i*KeySize : 1+(i+1)*KeySize]
		if zeroed(slot) {
			s.remember(&block{id: bid, seq: seq, data: data, at: s.clock()})
			latest = seq
			break
		}
		clear(slot)
		newSeq, conflict, err := s.publishVersion(ctx, subj, data, seq)
		if err != nil {
			return fmt.Errorf("delete key %s: %w", id, err)
		}
		if conflict {
			if attempt >= DeleteAttemptsMax {
				return fmt.Errorf("delete key %s: block %s changed %d times while deleting", id, bid, attempt)
			}
			continue
		}
		s.deleted.Add(1)
		s.remember(&block{id: bid, seq: newSeq, data: data, at: s.clock()})
		latest = newSeq
		break
	}
	if err := s.eraseOlder(ctx, subj, latest); err != nil {
		return fmt.Errorf("delete key %s: erase the older versions of its block: %w", id, err)
	}
	return nil
}

// publishVersion publishes data as the new version of the block on subj,
// if the block's latest version is still at sequence last; conflict
// reports that it was not.
func (s *Store) publishVersion(ctx context.Context, subj string, data []byte, last uint64) (seq uint64, conflict bool, err error) {
	m := &nats.Msg{Subject: subj, Data: data, Header: nats.Header{
		"Nats-Expected-Last-Subject-Sequence": {strconv.FormatUint(last, 10)},
	}}
	reply, err := s.cfg.Conn.RequestMsgWithContext(ctx, m)
	if err != nil {
		return 0, false, fmt.Errorf("publish the block zeroed: %w", err)
	}
	var ack struct {
		Seq   uint64    `json:"seq"`
		Error *apiError `json:"error"`
	}
	if err := json.Unmarshal(reply.Data, &ack); err != nil {
		return 0, false, fmt.Errorf("publish the block zeroed: unreadable acknowledgement %q", reply.Data)
	}
	if ack.Error != nil {
		if ack.Error.ErrCode == errCodeWrongLastSequence || ack.Error.ErrCode == errCodeWrongLastSequenceConstant {
			return 0, true, nil
		}
		return 0, false, fmt.Errorf("publish the block zeroed: jetstream: %s (code %d, err_code %d)", ack.Error.Description, ack.Error.Code, ack.Error.ErrCode)
	}
	if ack.Seq == 0 {
		return 0, false, fmt.Errorf("publish the block zeroed: acknowledgement without a sequence: %s", reply.Data)
	}
	return ack.Seq, false, nil
}

// JetStream's error codes for a failed expected-last-sequence check.
const (
	errCodeWrongLastSequence         = 10071
	errCodeWrongLastSequenceConstant = 10164
)

// eraseOlder deletes, with secure erase, every message on subj before
// sequence latest, found with direct gets next_by_subj from the start.
// Messages deleted meanwhile by someone else are no error.
func (s *Store) eraseOlder(ctx context.Context, subj string, latest uint64) error {
	from := uint64(1)
	for {
		seq, data, err := s.directGet(ctx, directGetRequest{Seq: from, NextBySubject: subj})
		if err != nil {
			return err
		}
		if data == nil || seq >= latest {
			return nil
		}
		clear(data)
		if err := s.erase(ctx, seq); err != nil {
			return err
		}
		from = seq + 1
	}
}

// erase deletes the message at seq with secure erase; one that is gone
// already is no error.
func (s *Store) erase(ctx context.Context, seq uint64) error {
	body, _ := json.Marshal(struct {
		Seq uint64 `json:"seq"`
	}{seq})
	resp, err := s.cfg.Conn.RequestWithContext(ctx, "$JS.API.STREAM.MSG.DELETE."+s.cfg.Stream, body)
	if err != nil {
		return fmt.Errorf("erase message %d: %w", seq, err)
	}
	var r struct {
		Success bool      `json:"success"`
		Error   *apiError `json:"error"`
	}
	if err := json.Unmarshal(resp.Data, &r); err != nil {
		return fmt.Errorf("erase message %d: unreadable reply %q", seq, resp.Data)
	}
	if r.Error != nil {
		// Erased meanwhile (a concurrent deletion in the same block)?
		if _, data, gerr := s.directGet(ctx, directGetRequest{Seq: seq}); gerr == nil && data == nil {
			return nil
		}
		return fmt.Errorf("erase message %d: jetstream: %s (code %d, err_code %d)", seq, r.Error.Description, r.Error.Code, r.Error.ErrCode)
	}
	if !r.Success {
		return fmt.Errorf("erase message %d: the server did not delete it: %s", seq, resp.Data)
	}
	return nil
}

// directGetRequest is a direct get of one message.
type directGetRequest struct {
	Seq           uint64 `json:"seq,omitempty"`
	LastBySubject string `json:"last_by_subj,omitempty"`
	NextBySubject string `json:"next_by_subj,omitempty"`
}

// directGet reads one message of the key stream: its sequence and data,
// data nil when there is none.
func (s *Store) directGet(ctx context.Context, req directGetRequest) (uint64, []byte, error) {
	body, _ := json.Marshal(req)
	m, err := s.cfg.Conn.RequestWithContext(ctx, "$JS.API.DIRECT.GET."+s.cfg.Stream, body)
	if err != nil {
		return 0, nil, fmt.Errorf("direct get from %s: %w", s.cfg.Stream, err)
	}
	if status := m.Header.Get("Status"); status != "" && len(m.Data) == 0 {
		if status == "404" {
			return 0, nil, nil
		}
		return 0, nil, fmt.Errorf("direct get from %s: status %s: %s", s.cfg.Stream, status, m.Header.Get("Description"))
	}
	seq, err := strconv.ParseUint(m.Header.Get("Nats-Sequence"), 10, 64)
	if err != nil || len(m.Data) == 0 {
		return 0, nil, fmt.Errorf("direct get from %s: a reply without a sequence or data", s.cfg.Stream)
	}
	return seq, m.Data, nil
}

type apiError struct {
	Code        int    `json:"code"`
	ErrCode     int    `json:"err_code"`
	Description string `json:"description"`
}

// Publish stores at least n new keys (1 to PublishMax): whole blocks, so
// every key of ceil(n/BlockKeys) blocks, one message each, in one atomic
// batch. When it returns, they are durable (the stream's acknowledgement),
// and cached.
func (s *Store) Publish(ctx context.Context, n int) ([]*Key, error) {
	if n < 1 || n > PublishMax {
		return nil, fmt.Errorf("publish keys: %d keys, want 1 to %d", n, PublishMax)
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	nb := (n + BlockKeys - 1) / BlockKeys
	ids, data, keys, err := newBlocks(nb)
	if err != nil {
		return nil, err
	}
	nc := s.cfg.Conn
	var reply *nats.Msg
	// One message and one header, reused: a publish copies them out.
	m := &nats.Msg{}
	seq := []string{""}
	if nb > 1 {
		m.Header = nats.Header{"Nats-Batch-Id": {uuid.NewString()}, "Nats-Batch-Sequence": seq}
	}
	for i := range ids {
		m.Subject, m.Data = Subject(s.cfg.Prefix, ids[i]), data[i]
		if nb > 1 {
			seq[0] = strconv.Itoa(i + 1)
			if i < nb-1 {
				if err := nc.PublishMsg(m); err != nil {
					return nil, fmt.Errorf("publish %d key blocks: %w", nb, err)
				}
				continue
			}
			m.Header["Nats-Batch-Commit"] = []string{"1"}
		}
		r, err := nc.RequestMsgWithContext(ctx, m)
		if err != nil {
			return nil, fmt.Errorf("publish %d key blocks: %w", nb, err)
		}
		reply = r
	}
	var ack struct {
		Seq   uint64    `json:"seq"`
		Error *apiError `json:"error"`
	}
	if err := json.Unmarshal(reply.Data, &ack); err != nil {
		return nil, fmt.Errorf("publish %d key blocks: unreadable acknowledgement %q", nb, reply.Data)
	}
	if ack.Error != nil {
		return nil, fmt.Errorf("publish %d key blocks: jetstream: %s (code %d, err_code %d)", nb, ack.Error.Description, ack.Error.Code, ack.Error.ErrCode)
	}
	if ack.Seq < uint64(nb) {
		return nil, fmt.Errorf("publish %d key blocks: acknowledgement without a sequence: %s", nb, reply.Data)
	}
	now := s.clock()
	for i := range ids {
		b := &block{id: ids[i], seq: ack.Seq - uint64(nb-1-i), data: data[i], at: now}
		copy(b.keys[:], keys[i*BlockKeys:(i+1)*BlockKeys])
		for _, k := range b.keys {
			k.Seq = b.seq
		}
		s.remember(b)
	}
	return keys, nil
}
