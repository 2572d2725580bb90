package telemetry_test

import (
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/rampart-soar/rampart/server/telemetry"
)

// task is what the SDK reports around one activity task: a handler tagged
// with the task's type, its latencies and its outcome.
func task(h client.MetricsHandler) {
	th := h.WithTags(map[string]string{"activity_type": "edr.isolate_host", "workflow_type": "AlertWorkflow"})
	th.Timer("temporal_activity_schedule_to_start_latency").Record(2 * time.Millisecond)
	th.Timer("temporal_activity_execution_latency").Record(40 * time.Millisecond)
	th.Timer("temporal_activity_succeed_endtoend_latency").Record(42 * time.Millisecond)
	th.Gauge("temporal_worker_task_slots_used").Update(3)
	th.Counter("temporal_request").Inc(1)
}

func worker(h client.MetricsHandler) client.MetricsHandler {
	return h.WithTags(map[string]string{"namespace": "default", "task_queue": "rampart", "worker_type": "ActivityWorker"})
}

// BenchmarkBaselineNopTask is the same reports to the SDK's default handler,
// which keeps nothing.
func BenchmarkBaselineNopTask(b *testing.B) {
	h := worker(client.MetricsNopHandler)
	b.ReportAllocs()
	for b.Loop() {
		task(h)
	}
}

func BenchmarkSDKMetricsTask(b *testing.B) {
	h := worker(telemetry.NewMetrics().Handler())
	b.ReportAllocs()
	for b.Loop() {
		task(h)
	}
}

// BenchmarkSDKMetricsWrite is one scrape of a worker's metrics after a busy
// day: 20 activity and workflow types' series.
func BenchmarkSDKMetricsWrite(b *testing.B) {
	m := telemetry.NewMetrics()
	for i := range 20 {
		h := worker(m.Handler()).WithTags(map[string]string{"activity_type": string(rune('a' + i))})
		task(h)
	}
	b.ReportAllocs()
	for b.Loop() {
		var e telemetry.Exposition
		m.Write(&e)
	}
}
