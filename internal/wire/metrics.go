package wire

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// OutcomeOK is the outcome label of a request answered with a result; an
// error reply's outcome is its Code.
const OutcomeOK = "ok"

// RequestMetrics counts a dispatcher's requests by endpoint and outcome and
// times them by endpoint. The zero value and nil record nothing.
type RequestMetrics struct {
	total    *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewRequestMetrics registers modledger_<kind>s_total{<kind>,outcome} and
// modledger_<kind>_duration_seconds{<kind>} with reg, where kind names what
// the endpoints serve ("command", "query"). A nil reg registers nothing and
// returns nil, which records nothing.
func NewRequestMetrics(reg prometheus.Registerer, kind string) (*RequestMetrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &RequestMetrics{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "modledger", Name: kind + "s_total",
			Help: fmt.Sprintf("%ss answered, by %s and outcome (ok or the error code).", kind, kind),
		}, []string{kind, "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "modledger", Name: kind + "_duration_seconds",
			Help:    fmt.Sprintf("Time from a %s's arrival to its reply, by %s.", kind, kind),
			Buckets: LatencyBuckets,
		}, []string{kind}),
	}
	if err := Register(reg, m.total, m.duration); err != nil {
		return nil, err
	}
	return m, nil
}

// LatencyBuckets are the histogram buckets, in seconds, of request and
// append latencies: 100µs to 10s.
var LatencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Observe records one request of endpoint that took d and ended with code
// (nil for a result).
func (m *RequestMetrics) Observe(endpoint string, e *Error, d time.Duration) {
	if m == nil {
		return
	}
	outcome := OutcomeOK
	if e != nil {
		outcome = string(e.Code)
	}
	m.total.WithLabelValues(endpoint, outcome).Inc()
	m.duration.WithLabelValues(endpoint).Observe(d.Seconds())
}

// Register registers every collector with reg. A collector registered
// already is an error: two services of one kind in a process need their
// own registries (prometheus.WrapRegistererWith adds a telling label).
func Register(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return fmt.Errorf("register metrics: %w (give each service its own registerer)", err)
			}
			return fmt.Errorf("register metrics: %w", err)
		}
	}
	return nil
}
