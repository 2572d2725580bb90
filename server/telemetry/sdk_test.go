package telemetry_test

import (
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/rampart-soar/rampart/server/telemetry"
	"github.com/rampart-soar/rampart/server/telemetry/telemetrytest"
)

// parse writes m's exposition and reads it as Prometheus does.
func parse(t *testing.T, m *telemetry.Metrics) (map[string]*dto.MetricFamily, string) {
	t.Helper()
	var e telemetry.Exposition
	m.Write(&e)
	return telemetrytest.Parse(t, e.String()), e.String()
}

// labelled is the family's one series whose labels include want.
func labelled(t *testing.T, f *dto.MetricFamily, want map[string]string) *dto.Metric {
	t.Helper()
	found := telemetrytest.Series(f, want)
	if len(found) != 1 {
		t.Fatalf("%s has %d series with %v", f.GetName(), len(found), want)
	}
	return found[0]
}

func TestSDKMetricsKeepWhatTheSDKReports(t *testing.T) {
	m := telemetry.NewMetrics()
	worker := m.Handler().WithTags(map[string]string{"namespace": "default", "task_queue": "rampart"})
	isolate := worker.WithTags(map[string]string{"activity_type": "IsolateHost"})
	lookup := worker.WithTags(map[string]string{"activity_type": "LookupAsset"})

	isolate.Counter("temporal_activity_execution_failed").Inc(2)
	isolate.Counter("temporal_activity_execution_failed").Inc(1)
	lookup.Counter("temporal_activity_execution_failed").Inc(1)
	worker.Gauge("temporal_num_pollers").Update(5)
	worker.Gauge("temporal_num_pollers").Update(2) // a gauge keeps the last value
	for _, d := range []time.Duration{500 * time.Microsecond, 3 * time.Millisecond, 3 * time.Millisecond, 2 * time.Second, 10 * time.Minute, -time.Second} {
		isolate.Timer("temporal_activity_execution_latency").Record(d)
	}

	families, text := parse(t, m)
	failed := families["temporal_activity_execution_failed_total"]
	if failed.GetType() != dto.MetricType_COUNTER || len(failed.GetMetric()) != 2 {
		t.Fatalf("failures: %v\n%s", failed, text)
	}
	if got := labelled(t, failed, map[string]string{"activity_type": "IsolateHost", "namespace": "default", "task_queue": "rampart"}).GetCounter().GetValue(); got != 3 {
		t.Errorf("IsolateHost failures = %v, want 3", got)
	}
	if got := labelled(t, failed, map[string]string{"activity_type": "LookupAsset"}).GetCounter().GetValue(); got != 1 {
		t.Errorf("LookupAsset failures = %v, want 1", got)
	}
	pollers := families["temporal_num_pollers"]
	if pollers.GetType() != dto.MetricType_GAUGE || pollers.GetMetric()[0].GetGauge().GetValue() != 2 {
		t.Errorf("pollers: %v", pollers)
	}

	latency := families["temporal_activity_execution_latency_seconds"]
	if latency.GetType() != dto.MetricType_HISTOGRAM {
		t.Fatalf("latency is a %v\n%s", latency.GetType(), text)
	}
	h := latency.GetMetric()[0].GetHistogram()
	// A negative duration counts as zero.
	if h.GetSampleCount() != 6 || math.Abs(h.GetSampleSum()-602.0065) > 1e-9 {
		t.Errorf("count %d, sum %v; want 6 and 602.0065", h.GetSampleCount(), h.GetSampleSum())
	}
	want := map[float64]uint64{0.001: 2, 0.0025: 2, 0.005: 4, 1: 4, 2.5: 5, 300: 5}
	for _, b := range h.GetBucket() {
		if n, ok := want[b.GetUpperBound()]; ok && b.GetCumulativeCount() != n {
			t.Errorf("bucket le=%v holds %d, want %d (cumulative)", b.GetUpperBound(), b.GetCumulativeCount(), n)
		}
	}
	if !strings.Contains(text, `le="+Inf"} 6`) {
		t.Errorf("no +Inf bucket of 6:\n%s", text)
	}
}

func TestSDKMetricsTagsMergeAndAreSanitized(t *testing.T) {
	m := telemetry.NewMetrics()
	h := m.Handler().WithTags(map[string]string{"operation": "StartWorkflowExecution", "task-queue": `a "quoted"\queue`})
	h = h.WithTags(map[string]string{"operation": "SignalWithStartWorkflowExecution"}) // a later tag wins
	h.Counter("temporal.request").Inc(1)
	h.Counter("temporal.request").Inc(1)
	m.Handler().Counter("temporal.request").Inc(1) // no tags: its own series

	families, text := parse(t, m)
	requests := families["temporal_request_total"]
	if requests == nil || len(requests.GetMetric()) != 2 {
		t.Fatalf("requests:\n%s", text)
	}
	s := labelled(t, requests, map[string]string{"operation": "SignalWithStartWorkflowExecution", "task_queue": `a "quoted"\queue`})
	if s.GetCounter().GetValue() != 2 {
		t.Errorf("tagged requests = %v, want 2", s.GetCounter().GetValue())
	}
}

func TestSDKMetricsOneKindPerFamily(t *testing.T) {
	m := telemetry.NewMetrics()
	m.Handler().Gauge("temporal_slots_total").Update(9)
	m.Handler().Counter("temporal_slots").Inc(1) // the same family as a counter: dropped
	m.Handler().Counter("temporal_slots").Inc(1)
	families, text := parse(t, m)
	got := families["temporal_slots_total"]
	if len(families) != 1 || got.GetType() != dto.MetricType_GAUGE || len(got.GetMetric()) != 1 || got.GetMetric()[0].GetGauge().GetValue() != 9 {
		t.Fatalf("the family asked for first as a gauge stays one:\n%s", text)
	}
}

// The SDK reports from every poller and task at once.
func TestSDKMetricsConcurrentUse(t *testing.T) {
	m := telemetry.NewMetrics()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			h := m.Handler().WithTags(map[string]string{"workflow_type": "AlertWorkflow"})
			for range 500 {
				h.Counter("temporal_workflow_completed").Inc(1)
				h.Timer("temporal_workflow_endtoend_latency").Record(time.Millisecond)
				h.Gauge("temporal_sticky_cache_size").Update(3)
			}
		})
		wg.Go(func() {
			for range 50 {
				var e telemetry.Exposition
				m.Write(&e)
			}
		})
	}
	wg.Wait()
	families, _ := parse(t, m)
	if got := families["temporal_workflow_completed_total"].GetMetric()[0].GetCounter().GetValue(); got != 4000 {
		t.Errorf("completed = %v, want 4000", got)
	}
	if got := families["temporal_workflow_endtoend_latency_seconds"].GetMetric()[0].GetHistogram().GetSampleCount(); got != 4000 {
		t.Errorf("timings = %v, want 4000", got)
	}
}
