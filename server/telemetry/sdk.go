package telemetry

import (
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.temporal.io/sdk/client"
)

// Metrics keeps what is reported through Handler, for a scrape: counters as
// NAME_total, gauges as NAME, timers as the histogram NAME_seconds, each
// labelled with its tags. The Temporal SDK reports to it (namespace,
// task_queue, workflow_type, activity_type, operation, … under the names of
// Temporal's SDK metrics reference, so its dashboards read them as they are),
// and so do Rampart's activities and webhook, through the same interface.
type Metrics struct {
	mu       sync.Mutex
	series   map[seriesKey]*series
	families map[string]kind // to keep a family of one kind
	// buckets are the histograms' upper bounds in seconds, les the same as
	// "le" label values.
	buckets []float64
	les     []string
}

// seriesKey finds a series by what the SDK asks for, so that a lookup builds
// no string.
type seriesKey struct {
	name   string
	kind   kind
	labels string
}

type kind string

const (
	counterKind   kind = "counter"
	gaugeKind     kind = "gauge"
	histogramKind kind = "histogram"
)

// NewMetrics returns an empty set of metrics. Timers become histograms with
// buckets from a workflow task on a quiet machine (a millisecond) to an
// activity that waits out a vendor (minutes).
func NewMetrics() *Metrics {
	buckets := []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300}
	les := make([]string, len(buckets))
	for i, b := range buckets {
		les[i] = strconv.FormatFloat(b, 'f', -1, 64)
	}
	return &Metrics{series: map[seriesKey]*series{}, families: map[string]kind{}, buckets: buckets, les: les}
}

// Handler is what the Temporal client is given (client.Options.MetricsHandler).
func (m *Metrics) Handler() client.MetricsHandler { return handler{m: m} }

// Write appends every series kept so far, families in name order.
func (m *Metrics) Write(e *Exposition) {
	m.mu.Lock()
	all := slices.Collect(maps.Values(m.series))
	m.mu.Unlock()
	slices.SortFunc(all, func(a, b *series) int {
		if c := strings.Compare(a.family, b.family); c != 0 {
			return c
		}
		return strings.Compare(a.key, b.key)
	})
	for i, s := range all {
		if i == 0 || all[i-1].family != s.family {
			e.Family(s.family, string(s.kind), "")
		}
		s.write(e, m.les)
	}
}

// get finds or makes the series of the SDK's metric name as kind, with
// labels; a family asked for as two kinds keeps the first, and the other's
// values go nowhere.
func (m *Metrics) get(name string, k kind, labels []string, key string) *series {
	id := seriesKey{name: name, kind: k, labels: key}
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.series[id]; ok {
		return s
	}
	family := sanitize(name)
	switch k {
	case counterKind:
		family += "_total"
	case histogramKind:
		family += "_seconds"
	}
	if have, ok := m.families[family]; ok && have != k {
		return nil
	}
	s := &series{family: family, kind: k, labels: labels, key: key}
	if k == histogramKind {
		s.bounds, s.buckets = m.buckets, make([]uint64, len(m.buckets))
	}
	m.families[family] = k
	m.series[id] = s
	return s
}

// handler carries the tags of the SDK's WithTags calls, rendered once.
type handler struct {
	m      *Metrics
	tags   map[string]string
	labels []string // sanitized names and values, alternating, names sorted
	// key is labels joined: a series' identity.
	key string
}

func (h handler) WithTags(tags map[string]string) client.MetricsHandler {
	merged := make(map[string]string, len(h.tags)+len(tags))
	maps.Copy(merged, h.tags)
	maps.Copy(merged, tags)
	names := make([]string, 0, len(merged))
	for k := range merged {
		names = append(names, k)
	}
	slices.SortFunc(names, func(a, b string) int { return strings.Compare(sanitize(a), sanitize(b)) })
	labels := make([]string, 0, 2*len(names))
	for _, k := range names {
		labels = append(labels, sanitize(k), merged[k])
	}
	return handler{m: h.m, tags: merged, labels: labels, key: strings.Join(labels, "\xff")}
}

func (h handler) Counter(name string) client.MetricsCounter {
	return h.m.get(name, counterKind, h.labels, h.key)
}

func (h handler) Gauge(name string) client.MetricsGauge {
	return h.m.get(name, gaugeKind, h.labels, h.key)
}

func (h handler) Timer(name string) client.MetricsTimer {
	return h.m.get(name, histogramKind, h.labels, h.key)
}

// series is one labelled value of a family. A nil series takes values and
// keeps none.
type series struct {
	family string
	kind   kind
	labels []string
	key    string

	count atomic.Int64  // counter
	gauge atomic.Uint64 // gauge: float64 bits

	mu      sync.Mutex // histogram
	bounds  []float64  // the Metrics' buckets, shared and never changed
	buckets []uint64   // counts per bound, not cumulative; +Inf is total
	total   uint64
	sum     float64
}

func (s *series) Inc(n int64) {
	if s != nil {
		s.count.Add(n)
	}
}

func (s *series) Update(v float64) {
	if s != nil {
		s.gauge.Store(math.Float64bits(v))
	}
}

func (s *series) Record(d time.Duration) {
	if s == nil {
		return
	}
	v := max(d, 0).Seconds()
	i, _ := slices.BinarySearch(s.bounds, v) // the first bound >= v
	s.mu.Lock()
	if i < len(s.buckets) {
		s.buckets[i]++
	}
	s.total++
	s.sum += v
	s.mu.Unlock()
}

// write appends the series; les are its histogram bounds as label values.
func (s *series) write(e *Exposition, les []string) {
	switch s.kind {
	case counterKind:
		e.Sample(s.family, float64(s.count.Load()), s.labels...)
	case gaugeKind:
		e.Sample(s.family, math.Float64frombits(s.gauge.Load()), s.labels...)
	case histogramKind:
		s.mu.Lock()
		buckets, total, sum := slices.Clone(s.buckets), s.total, s.sum
		s.mu.Unlock()
		withLE := append(slices.Clone(s.labels), "le", "")
		var cumulative uint64
		for i, le := range les {
			cumulative += buckets[i]
			withLE[len(withLE)-1] = le
			e.Sample(s.family+"_bucket", float64(cumulative), withLE...)
		}
		withLE[len(withLE)-1] = "+Inf"
		e.Sample(s.family+"_bucket", float64(total), withLE...)
		e.Sample(s.family+"_sum", sum, s.labels...)
		e.Sample(s.family+"_count", float64(total), s.labels...)
	}
}
