package command

import (
	"sync"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/events"
)

// lockable is an entry of a positionCache: it is locked while a command
// works with it, and only an unlocked entry is evicted.
type lockable interface {
	TryLock() bool
	Unlock()
}

// positionCache holds the command service's positions (per guild, per case)
// so that the common path is one publish. It is bounded: past max entries,
// unlocked entries are dropped. A dropped or stale entry costs a read, never
// correctness: every append carries the server-side check of the position
// it was decided on.
type positionCache[K comparable, V lockable] struct {
	mu      sync.Mutex
	entries map[K]V
	max     int
	newV    func() V
}

func newPositionCache[K comparable, V lockable](max int, newV func() V) *positionCache[K, V] {
	return &positionCache[K, V]{entries: make(map[K]V), max: max, newV: newV}
}

// get returns the entry of k, making one when there is none.
func (c *positionCache[K, V]) get(k K) V {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.entries[k]; ok {
		return v
	}
	if len(c.entries) >= c.max {
		c.evictLocked()
	}
	v := c.newV()
	c.entries[k] = v
	return v
}

// evictLocked drops about a sixteenth of the entries, those not in use, in
// the map's random order.
func (c *positionCache[K, V]) evictLocked() {
	n := c.max/16 + 1
	for k, v := range c.entries {
		if n == 0 {
			return
		}
		if v.TryLock() {
			delete(c.entries, k)
			v.Unlock()
			n--
		}
	}
}

// len returns the number of entries.
func (c *positionCache[K, V]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// guildKey and caseKey key the caches.
type caseKey struct {
	guild  events.Snowflake
	number uint32
}

// guildPosition is what the service knows of a guild's newest case. Its
// mutex serialises the opens of one guild within the process.
type guildPosition struct {
	sync.Mutex
	loaded     bool
	lastNumber uint32
	lastSeq    uint64

	// waiting are the opens of the guild that wait for the lock; whoever
	// takes it next opens them all in one append (see openCombined).
	qmu     sync.Mutex
	waiting []*openWaiter
}

// caseState is a case's events and their fold. Its mutex serialises the
// changes to one case within the process.
type caseState struct {
	sync.Mutex
	evs   []events.Event
	state *aggregate.Case
}

func (c *caseState) reset() {
	c.evs = nil
	c.state = nil
}
