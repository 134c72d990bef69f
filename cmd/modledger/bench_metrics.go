package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ledgerMetrics are the samples of one scrape of a ledger's /metrics (the
// Prometheus text format), keyed by metric name, then by the sample's
// label set as written ({a="x",b="y"}, "" for none).
type ledgerMetrics map[string]map[string]float64

// scrapeLedgerMetrics reads url; nil and no error when url is empty.
func scrapeLedgerMetrics(ctx context.Context, url string) (ledgerMetrics, error) {
	if url == "" {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("--metrics-url: %w", err)
	}
	// No keep-alive: the bench scrapes a few times and leaves no idle
	// connection behind.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return parseLedgerMetrics(resp.Body)
}

// parseLedgerMetrics reads the Prometheus text format: comments are
// skipped, each sample line is name{labels} value [timestamp].
func parseLedgerMetrics(r io.Reader) (ledgerMetrics, error) {
	m := ledgerMetrics{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name, labels := line, ""
		if i := strings.IndexByte(line, '{'); i >= 0 {
			j := strings.LastIndexByte(line, '}')
			if j < i {
				continue
			}
			name, labels, line = line[:i], line[i:j+1], strings.TrimSpace(line[j+1:])
		} else {
			name, line, _ = strings.Cut(line, " ")
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue
		}
		if m[name] == nil {
			m[name] = map[string]float64{}
		}
		m[name][labels] = v
	}
	return m, sc.Err()
}

// value returns the sample of name whose label key has value val (or the
// only sample when key is empty).
func (m ledgerMetrics) value(name, key, val string) (float64, bool) {
	for labels, v := range m[name] {
		if key == "" || strings.Contains(labels, key+`="`+val+`"`) {
			return v, true
		}
	}
	return 0, false
}

// byLabel returns name's samples by the value of label key.
func (m ledgerMetrics) byLabel(name, key string) map[string]float64 {
	out := map[string]float64{}
	for labels, v := range m[name] {
		_, rest, ok := strings.Cut(labels, key+`="`)
		if !ok {
			continue
		}
		val, _, _ := strings.Cut(rest, `"`)
		out[val] += v
	}
	return out
}

// ledgerCounters are the command service's retries and appends during the
// load: the difference of two scrapes.
func ledgerCounters(before, after ledgerMetrics) *serverReport {
	diff := func(name, key string) map[string]int64 {
		out := map[string]int64{}
		b := before.byLabel(name, key)
		for k, v := range after.byLabel(name, key) {
			if d := int64(v - b[k]); d != 0 {
				out[k] = d
			}
		}
		return out
	}
	return &serverReport{
		Retries: diff("modledger_command_retries_total", "reason"),
		Appends: diff("modledger_appends_total", "outcome"),
	}
}
