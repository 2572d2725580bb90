package activities_test

import (
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"

	"github.com/rampart-soar/rampart/activities"
	"github.com/rampart-soar/rampart/integrations/crowdstrike"
)

// capturing keeps what activities report, by metric name and tags.
type capturing struct {
	mu     *sync.Mutex
	tags   map[string]string
	counts map[string]int64
	timers map[string]int
}

func newCapturing() capturing {
	return capturing{mu: &sync.Mutex{}, counts: map[string]int64{}, timers: map[string]int{}}
}

func (c capturing) WithTags(tags map[string]string) client.MetricsHandler {
	merged := maps.Clone(c.tags)
	if merged == nil {
		merged = map[string]string{}
	}
	maps.Copy(merged, tags)
	c.tags = merged
	return c
}

// id is a metric's name with the tags a test asks about.
func (c capturing) id(name string) string {
	var parts []string
	for _, k := range []string{"integration", "operation", "outcome", "activity_type"} {
		if v, ok := c.tags[k]; ok {
			parts = append(parts, k+"="+v)
		}
	}
	return name + "{" + strings.Join(parts, ",") + "}"
}

func (c capturing) Counter(name string) client.MetricsCounter {
	id := c.id(name)
	return counterFunc(func(n int64) { c.mu.Lock(); c.counts[id] += n; c.mu.Unlock() })
}

func (c capturing) Gauge(string) client.MetricsGauge { return gaugeFunc(func(float64) {}) }

func (c capturing) Timer(name string) client.MetricsTimer {
	id := c.id(name)
	return timerFunc(func(time.Duration) { c.mu.Lock(); c.timers[id]++; c.mu.Unlock() })
}

type (
	counterFunc func(int64)
	gaugeFunc   func(float64)
	timerFunc   func(time.Duration)
)

func (f counterFunc) Inc(n int64)          { f(n) }
func (f gaugeFunc) Update(v float64)       { f(v) }
func (f timerFunc) Record(d time.Duration) { f(d) }

func TestVendorCallsAreMeteredByOperationAndOutcome(t *testing.T) {
	f := newFixture(t)
	metrics := newCapturing()
	suite := &testsuite.WorkflowTestSuite{}
	suite.SetMetricsHandler(metrics)
	f.env = suite.NewTestActivityEnvironment()
	f.acts.EDR = activities.MeterEDR(f.acts.EDR)
	f.acts.Register(f.env)

	f.sim.InjectFault(crowdstrike.Fault{Status: 503, Path: "/devices/entities/devices-actions/v2"})
	if _, err := f.isolate(t); err == nil {
		t.Fatal("the contain request the vendor refused did not fail the attempt")
	}
	if out, err := f.isolate(t); err != nil || out.Status != "contained" {
		t.Fatalf("retry: %+v %v", out, err)
	}

	metrics.mu.Lock()
	defer metrics.mu.Unlock()
	calls := func(op, outcome string) int64 {
		return metrics.counts["rampart_integration_calls{integration=crowdstrike,operation="+op+",outcome="+outcome+",activity_type=edr.isolate_host}"]
	}
	if calls("contain_host", "503") != 1 || calls("contain_host", "ok") != 1 {
		t.Errorf("contain calls by outcome: %v", metrics.counts)
	}
	// The retry reads the host before asking again, then polls until contained.
	if calls("get_host", "ok") < 2 {
		t.Errorf("get_host calls: %v", metrics.counts)
	}
	var total int64
	for id, n := range metrics.counts {
		if strings.HasPrefix(id, activities.MetricIntegrationCalls+"{") {
			total += n
		}
	}
	timed := 0
	for _, id := range slices.Collect(maps.Keys(metrics.timers)) {
		if strings.HasPrefix(id, activities.MetricIntegrationCallLatency+"{") {
			timed += metrics.timers[id]
		}
	}
	if int64(timed) != total {
		t.Errorf("%d calls counted, %d timed", total, timed)
	}
}
