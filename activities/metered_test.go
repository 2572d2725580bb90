package activities_test

import (
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"

	"github.com/rampart-soar/rampart/activities"
	"github.com/rampart-soar/rampart/integrations/crowdstrike"
	"github.com/rampart-soar/rampart/workflows"
)

// capturing keeps what activities report, by metric name and tags.
type capturing struct {
	mu     *sync.Mutex
	tags   map[string]string
	counts map[string]int64
	timers map[string]int
	took   map[string]time.Duration // timed in all
}

func newCapturing() capturing {
	return capturing{mu: &sync.Mutex{}, counts: map[string]int64{}, timers: map[string]int{}, took: map[string]time.Duration{}}
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
	return timerFunc(func(d time.Duration) { c.mu.Lock(); c.timers[id]++; c.took[id] += d; c.mu.Unlock() })
}

type (
	counterFunc func(int64)
	gaugeFunc   func(float64)
	timerFunc   func(time.Duration)
)

func (f counterFunc) Inc(n int64)          { f(n) }
func (f gaugeFunc) Update(v float64)       { f(v) }
func (f timerFunc) Record(d time.Duration) { f(d) }

// metered is a fixture whose activities report to a capturing handler, and
// whose EDR is metered as a worker's is.
func metered(t *testing.T) (*fixture, capturing) {
	t.Helper()
	f := newFixture(t)
	metrics := newCapturing()
	suite := &testsuite.WorkflowTestSuite{}
	suite.SetMetricsHandler(metrics)
	f.env = suite.NewTestActivityEnvironment()
	f.acts.EDR = activities.MeterEDR(f.acts.EDR)
	f.acts.Register(f.env)
	return f, metrics
}

func TestVendorCallsAreMeteredByOperationAndOutcome(t *testing.T) {
	f, metrics := metered(t)

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
	for id, n := range metrics.timers {
		if strings.HasPrefix(id, activities.MetricIntegrationCallLatency+"{") {
			timed += n
		}
	}
	if int64(timed) != total {
		t.Errorf("%d calls counted, %d timed", total, timed)
	}
}

func TestAnAlertsOutcomeIsCountedAndTimedOnce(t *testing.T) {
	f, metrics := metered(t)
	received := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	finish := workflows.FinishInput{Ref: f.ref, Outcome: workflows.OutcomeContained, At: received.Add(4 * time.Second), ReceivedAt: received}
	if _, err := f.env.ExecuteActivity(workflows.ActivityFinish, finish); err != nil {
		t.Fatal(err)
	}
	finish.Closed, finish.At = true, received.Add(10*time.Minute) // the end of the dedup window repeats the outcome
	if _, err := f.env.ExecuteActivity(workflows.ActivityFinish, finish); err != nil {
		t.Fatal(err)
	}
	metrics.mu.Lock()
	defer metrics.mu.Unlock()
	id := "{outcome=contained,activity_type=" + workflows.ActivityFinish + "}"
	if n := metrics.counts[activities.MetricAlertOutcomes+id]; n != 1 {
		t.Errorf("outcomes counted: %v", metrics.counts)
	}
	if n, took := metrics.timers[activities.MetricAlertTimeToOutcome+id], metrics.took[activities.MetricAlertTimeToOutcome+id]; n != 1 || took != 4*time.Second {
		t.Errorf("outcomes timed: %v %v; want one of 4s", metrics.timers, metrics.took)
	}
}
