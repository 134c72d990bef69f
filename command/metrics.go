package command

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/modledger/modledger/internal/wire"
)

// Outcomes of an append, as the modledger_appends_total metric labels them.
const (
	appendOK        = "ok"
	appendConflict  = "conflict"  // a concurrency check was lost
	appendDuplicate = "duplicate" // the server had the message id already
	appendError     = "error"
)

// metrics are the command service's own Prometheus metrics, beyond the
// dispatcher's per-command counts and latencies. A nil *metrics records
// nothing.
type metrics struct {
	requests *wire.RequestMetrics
	appends  *prometheus.CounterVec
	latency  prometheus.Histogram
	batch    prometheus.Histogram
	retries  *prometheus.CounterVec
	groups   *prometheus.CounterVec
	members  prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	req, err := wire.NewRequestMetrics(reg, "command")
	if err != nil {
		return nil, err
	}
	m := &metrics{
		requests: req,
		appends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "modledger", Name: "appends_total",
			Help: "Appends to the stream, by outcome: ok, conflict (an optimistic-concurrency check was lost), duplicate, error.",
		}, []string{"outcome"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "modledger", Name: "append_duration_seconds",
			Help:    "Time from publishing an append (one message or an atomic batch) to the stream's acknowledgement.",
			Buckets: wire.LatencyBuckets,
		}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "modledger", Name: "append_batch_messages",
			Help:    "Messages per append: 1 for a single event, more for an atomic batch.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 11),
		}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "modledger", Name: "command_retries_total",
			Help: "Command attempts retried, by reason: conflict (another writer appended first), duplicate, transient (a NATS error).",
		}, []string{"reason"}),
	}
	m.groups = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "modledger", Name: "group_commits_total",
		Help: "Combined appends (group commit), by outcome: ok, or split (the combined batch failed and its members were sent on their own).",
	}, []string{"outcome"})
	m.members = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "modledger", Name: "group_commit_members",
		Help:    "Appends combined into one atomic batch by group commit.",
		Buckets: prometheus.ExponentialBuckets(2, 2, 10),
	})
	if err := wire.Register(reg, m.appends, m.latency, m.batch, m.retries, m.groups, m.members); err != nil {
		return nil, err
	}
	return m, nil
}

// registerCaches adds a gauge of the entries in the guild and case position
// caches, read at each scrape; they are bounded by Config.CacheSize.
func (m *metrics) registerCaches(reg prometheus.Registerer, guilds, cases func() int) error {
	if m == nil {
		return nil
	}
	var gauges []prometheus.Collector
	for _, c := range []struct {
		name string
		n    func() int
	}{{"guild", guilds}, {"case", cases}} {
		gauges = append(gauges, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "modledger", Name: "command_cache_entries",
			Help:        "Positions the command service keeps in memory, by cache: guild (newest case of a guild) or case (a case's events and state). Bounded by the cache size.",
			ConstLabels: prometheus.Labels{"cache": c.name},
		}, func() float64 { return float64(c.n()) }))
	}
	return wire.Register(reg, gauges...)
}

// observeAppend records one append of n messages.
func (m *metrics) observeAppend(n int, d time.Duration, err error) {
	if m == nil {
		return
	}
	outcome := appendOK
	switch {
	case err == nil:
		m.latency.Observe(d.Seconds())
		m.batch.Observe(float64(n))
	case errors.Is(err, errWrongLastSeq):
		outcome = appendConflict
	case errors.Is(err, errDuplicate):
		outcome = appendDuplicate
	default:
		outcome = appendError
	}
	m.appends.WithLabelValues(outcome).Inc()
}

// observeRetry records a retried attempt that failed with err.
func (m *metrics) observeRetry(err error) {
	if m == nil {
		return
	}
	reason := "transient"
	switch {
	case errors.Is(err, errWrongLastSeq):
		reason = appendConflict
	case errors.Is(err, errDuplicate):
		reason = appendDuplicate
	}
	m.retries.WithLabelValues(reason).Inc()
}

// requestMetrics are the dispatcher's per-command metrics.
func (m *metrics) requestMetrics() *wire.RequestMetrics {
	if m == nil {
		return nil
	}
	return m.requests
}

// observeGroup records one combined append of members appends.
func (m *metrics) observeGroup(members int, _ time.Duration, err error) {
	if m == nil {
		return
	}
	m.members.Observe(float64(members))
	if err != nil {
		m.groups.WithLabelValues("split").Inc()
		return
	}
	m.groups.WithLabelValues("ok").Inc()
}
