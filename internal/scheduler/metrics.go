package scheduler

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/modledger/modledger/internal/wire"
)

// metrics are the scheduler's Prometheus metrics. A nil *metrics records
// nothing.
type metrics struct {
	expiries *prometheus.CounterVec
	lateness prometheus.Histogram
	leading  prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &metrics{
		expiries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "modledger", Name: "expiries_total",
			Help: "Expire commands sent by the scheduler, by outcome: ok or error (retried).",
		}, []string{"outcome"}),
		lateness: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "modledger", Name: "expiry_lateness_seconds",
			Help:    "Time from a case's expiry to the scheduler's expire command being answered.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}),
		leading: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "modledger", Name: "scheduler_leading",
			Help: "1 while this process's scheduler holds the lead, else 0.",
		}),
	}
	if err := wire.Register(reg, m.expiries, m.lateness, m.leading); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *metrics) observeExpire(late time.Duration, err error) {
	if m == nil {
		return
	}
	if err != nil {
		m.expiries.WithLabelValues("error").Inc()
		return
	}
	m.expiries.WithLabelValues("ok").Inc()
	m.lateness.Observe(max(late, 0).Seconds())
}

func (m *metrics) setLeading(v bool) {
	if m == nil {
		return
	}
	if v {
		m.leading.Set(1)
	} else {
		m.leading.Set(0)
	}
}
