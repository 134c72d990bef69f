package main

import (
	"math"
	"math/bits"
	"sync"
	"time"
)

// histSubBits sets the histogram's precision: each power of two is split
// into 2^(histSubBits-1) buckets, so a recorded value is known within
// 1/64 (1.6%) of itself, as an HDR histogram with two significant digits.
const histSubBits = 7

const (
	histSub  = 1 << histSubBits // values below this have a bucket each
	histHalf = histSub / 2      // buckets per power of two above it
	// histBuckets covers every int64: 63 powers of two above histSub.
	histBuckets = histSub + (64-histSubBits)*histHalf
)

// latencyHist is a log-bucket latency histogram in the manner of
// HdrHistogram: constant memory, values recorded within 1.6%, exact count,
// min, max and mean. The zero value is ready; it is safe for concurrent use.
type latencyHist struct {
	mu     sync.Mutex
	counts []uint64 // allocated on the first record
	n      uint64
	sum    float64
	min    int64
	max    int64
}

// histIndex returns the bucket of v (v >= 0).
func histIndex(v int64) int {
	if v < histSub {
		return int(v)
	}
	e := bits.Len64(uint64(v)) - histSubBits // >= 1: v>>e is in [histHalf, histSub)
	return histSub + (e-1)*histHalf + int(v>>e) - histHalf
}

// histUpper returns the highest value that falls in bucket i.
func histUpper(i int) int64 {
	if i < histSub {
		return int64(i)
	}
	e := (i-histSub)/histHalf + 1
	m := uint64((i-histSub)%histHalf + histHalf)
	if u := (m+1)<<e - 1; u <= math.MaxInt64 {
		return int64(u)
	}
	return math.MaxInt64
}

// Record adds one duration.
func (h *latencyHist) Record(d time.Duration) {
	v := max(int64(d), 0)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.counts == nil {
		h.counts = make([]uint64, histBuckets)
	}
	h.counts[histIndex(v)]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += float64(v)
}

// Merge adds every value recorded in o.
func (h *latencyHist) Merge(o *latencyHist) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.n == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.counts == nil {
		h.counts = make([]uint64, histBuckets)
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
}

// Count returns how many values were recorded.
func (h *latencyHist) Count() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}

// Percentile returns the value below or at which q (0 to 100) percent of
// the recorded values fall: the upper end of that value's bucket, never
// above the largest value recorded. It is 0 for an empty histogram.
func (h *latencyHist) Percentile(q float64) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q / 100 * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(min(max(histUpper(i), h.min), h.max))
		}
	}
	return time.Duration(h.max)
}

// Max returns the largest value recorded.
func (h *latencyHist) Max() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return time.Duration(h.max)
}

// Mean returns the mean of the recorded values.
func (h *latencyHist) Mean() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.n))
}
