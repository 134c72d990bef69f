package projection

import (
	"context"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/modledger/modledger/internal/wire"
)

// projectorMetrics are a projector's Prometheus metrics. A nil
// *projectorMetrics records nothing.
type projectorMetrics struct {
	applied  prometheus.Counter
	batch    prometheus.Histogram
	duration prometheus.Histogram
}

func newProjectorMetrics(reg prometheus.Registerer, projection string) (*projectorMetrics, error) {
	if reg == nil {
		return nil, nil
	}
	labels := prometheus.Labels{"projection": projection}
	m := &projectorMetrics{
		applied: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "modledger", Name: "projection_events_applied_total", ConstLabels: labels,
			Help: "Events applied to the read model by this process's projector.",
		}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "modledger", Name: "projection_batch_events", ConstLabels: labels,
			Help:    "Events per batch applied in one transaction.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8),
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "modledger", Name: "projection_batch_duration_seconds", ConstLabels: labels,
			Help:    "Time to apply one batch and commit it with its checkpoint.",
			Buckets: wire.LatencyBuckets,
		}),
	}
	if err := wire.Register(reg, m.applied, m.batch, m.duration); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *projectorMetrics) observe(events, applied int, d time.Duration) {
	if m == nil {
		return
	}
	m.applied.Add(float64(applied))
	m.batch.Observe(float64(events))
	m.duration.Observe(d.Seconds())
}

// LagCollector is a Prometheus collector that reads the projections'
// Status at each scrape: modledger_projection_lag_events, how many case
// events the read model has not applied, and
// modledger_projection_lag_seconds, how long the oldest of them has waited;
// modledger_projection_checkpoint and modledger_stream_head_sequence. Any
// process that reaches the stream and the database can serve it, leader or
// not. A failed read is logged and reported by
// modledger_projection_status_up 0.
type LagCollector struct {
	js          jetstream.JetStream
	store       *Store
	stream      string
	prefix      string
	projections []Projection
	timeout     time.Duration
	logger      *slog.Logger

	up, lagEvents, lagSeconds, checkpoint, head *prometheus.Desc
}

// NewLagCollector returns a collector of the projections' lag; register
// it with a prometheus.Registerer. logger may be nil.
func NewLagCollector(js jetstream.JetStream, store *Store, stream, prefix string, logger *slog.Logger, projections ...Projection) *LagCollector {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("modledger_"+name, help, labels, nil)
	}
	return &LagCollector{
		js: js, store: store, stream: stream, prefix: prefix, projections: projections,
		timeout: 5 * time.Second, logger: logger,
		up:         desc("projection_status_up", "1 when the projections' status could be read at this scrape, else 0."),
		lagEvents:  desc("projection_lag_events", "Case events in the stream the projection has not applied.", "projection"),
		lagSeconds: desc("projection_lag_seconds", "How long the oldest case event the projection has not applied has waited; 0 when caught up.", "projection"),
		checkpoint: desc("projection_checkpoint", "Stream sequence of the last event the projection applied.", "projection"),
		head:       desc("stream_head_sequence", "Stream sequence of the newest case event."),
	}
}

// Describe implements prometheus.Collector.
func (c *LagCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.lagEvents, c.lagSeconds, c.checkpoint, c.head} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *LagCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	sts, err := Status(ctx, c.js, c.store, c.stream, c.prefix, c.projections...)
	if err != nil {
		c.logger.Warn("metrics: projection status", "error", err)
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	for i, st := range sts {
		if i == 0 {
			ch <- prometheus.MustNewConstMetric(c.head, prometheus.GaugeValue, float64(st.Head))
		}
		ch <- prometheus.MustNewConstMetric(c.lagEvents, prometheus.GaugeValue, float64(st.LagEvents), st.Name)
		ch <- prometheus.MustNewConstMetric(c.lagSeconds, prometheus.GaugeValue, st.LagSeconds, st.Name)
		ch <- prometheus.MustNewConstMetric(c.checkpoint, prometheus.GaugeValue, float64(st.Checkpoint), st.Name)
	}
}
