package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/rampart-soar/rampart/integrations"
	"github.com/rampart-soar/rampart/integrations/crowdstrike"
)

// BenchmarkPipeline measures alert → containment on the embedded server for 500
// unique alerts, through Rampart (signed webhook, ingress, AlertWorkflow, store)
// and through the same pipeline shape written as a plain Temporal workflow (the
// same seven activities: detect beside three enrichments, one decide, one isolate
// over HTTP to the same simulator, one finish, then the dedup window — with no
// store, no signals and no ingress), in the same process and run. Latency
// ends when the simulator receives the contain request. Senders are closed-loop:
// one alert at a time each, with 1 sender (latency) and 8 (saturated, throughput).
// Run with: make bench (RAMPART_BENCH_E2E=1, -benchtime 1x).
func BenchmarkPipeline(b *testing.B) {
	if os.Getenv("RAMPART_BENCH_E2E") != "1" {
		b.Skip("set RAMPART_BENCH_E2E=1 (make bench) to run the end-to-end benchmark")
	}
	const alerts = 500
	cfg := devConfig(b, rawDedupWindow)
	cfg.TaskQueue = "rampart-bench"
	d := startDev(b, cfg)
	template, err := os.ReadFile(ransomware)
	if err != nil {
		b.Fatal(err)
	}
	edr, err := crowdstrike.New(crowdstrike.Config{BaseURL: d.Config.CrowdStrike.BaseURL, ClientID: d.Config.CrowdStrike.ClientID, ClientSecret: d.Config.CrowdStrike.ClientSecret})
	if err != nil {
		b.Fatal(err)
	}
	raw := worker.New(d.Client, "raw-bench", worker.Options{})
	(&rawShape{edr: edr, poll: 50 * time.Millisecond}).register(raw)
	if err := raw.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		drain(b, d.Client, "raw-bench")
		raw.Stop()
	}()

	round := 0
	hosts := func(n int) []string { // every alert gets a host of its own
		round++
		ids := make([]string, n)
		for i := range ids {
			ids[i] = fmt.Sprintf("%02x%030x", round, i)
			d.Simulator.AddHost(crowdstrike.SimHost{ID: ids[i], Hostname: "bench-" + ids[i][:12]})
		}
		return ids
	}
	viaRampart := func(id string) error {
		body := bytes.ReplaceAll(template, []byte(ransomHost), []byte(id))
		status, _ := post(b, d.URL, d.Sources(), "crowdstrike", body, time.Now())
		if status != http.StatusAccepted {
			return fmt.Errorf("webhook: HTTP %d", status)
		}
		return nil
	}
	// The raw shape starts the way a plain client does; RAMPART_BENCH_RAW_EAGER=1
	// gives it the eager start Rampart's webhook uses, to compare like with like.
	rawEager := os.Getenv("RAMPART_BENCH_RAW_EAGER") == "1"
	viaRawShape := func(id string) error {
		_, err := d.Client.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{ID: "raw/" + id, TaskQueue: "raw-bench", EnableEagerStart: rawEager}, rawWorkflow, id)
		return err
	}
	measure(b, d.Simulator, hosts(20), 4, viaRawShape) // warm both paths up
	measure(b, d.Simulator, hosts(20), 4, viaRampart)

	senders := []int{1, 8}
	if v, err := strconv.Atoi(os.Getenv("RAMPART_BENCH_CONCURRENCY")); err == nil && v > 0 {
		senders = []int{v}
	}
	for _, concurrency := range senders {
		b.Run(fmt.Sprintf("senders=%d", concurrency), func(b *testing.B) {
			for range b.N {
				if only := os.Getenv("RAMPART_BENCH_ONLY"); only != "" { // profiling one side alone
					send := map[string]func(string) error{"raw": viaRawShape, "rampart": viaRampart}[only]
					r := summarize(measure(b, d.Simulator, hosts(alerts), concurrency, send))
					b.Logf("%s only: %.1f alerts/s, p50 %v, p99 %v, CPU %v/alert", only, r.throughput, r.p50, r.p99, r.cpuPerAlert)
					continue
				}
				// Raw, rampart, rampart, raw, half the alerts each time, so drift
				// over the run (a growing database, a noisy neighbour) weighs on
				// both alike.
				half := alerts / 2
				raw1 := measure(b, d.Simulator, hosts(half), concurrency, viaRawShape)
				rampart1 := measure(b, d.Simulator, hosts(half), concurrency, viaRampart)
				rampart2 := measure(b, d.Simulator, hosts(half), concurrency, viaRampart)
				raw2 := measure(b, d.Simulator, hosts(half), concurrency, viaRawShape)
				report(b, concurrency, alerts, summarize(raw1, raw2), summarize(rampart1, rampart2))
			}
		})
	}
}

// drain waits (a while at most) for a task queue's runs to close, so stopping
// its worker cancels no activity in flight: the server would log each canceled
// call as an error with its stack, after the figures.
func drain(b *testing.B, c client.Client, taskQueue string) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := c.CountWorkflow(context.Background(), &workflowservice.CountWorkflowExecutionsRequest{
			Query: fmt.Sprintf("TaskQueue = %q AND ExecutionStatus = 'Running'", taskQueue),
		})
		if err != nil {
			b.Logf("counting the open runs of %s: %v", taskQueue, err)
			return
		}
		if resp.GetCount() == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func report(b *testing.B, concurrency, alerts int, rawRes, rampartRes benchResult) {
	b.ReportMetric(rampartRes.throughput, "rampart_alerts/s")
	b.ReportMetric(rampartRes.p50.Seconds()*1000, "rampart_p50_ms")
	b.ReportMetric(rampartRes.p99.Seconds()*1000, "rampart_p99_ms")
	b.ReportMetric(rawRes.throughput, "raw_alerts/s")
	b.ReportMetric(rawRes.p50.Seconds()*1000, "raw_p50_ms")
	b.ReportMetric(rawRes.p99.Seconds()*1000, "raw_p99_ms")
	b.ReportMetric(rampartRes.p50.Seconds()/rawRes.p50.Seconds(), "p50_ratio")
	b.ReportMetric(rampartRes.p99.Seconds()/rawRes.p99.Seconds(), "p99_ratio")
	b.ReportMetric(rampartRes.cpuPerAlert.Seconds()*1000, "rampart_cpu_ms/alert")
	b.ReportMetric(rawRes.cpuPerAlert.Seconds()*1000, "raw_cpu_ms/alert")
	b.Logf("%d alerts each, %d concurrent senders\n  raw shape: %.1f alerts/s, p50 %v, p99 %v, CPU %v/alert\n  rampart:   %.1f alerts/s, p50 %v, p99 %v, CPU %v/alert\n  ratio p50 %.2f×, p99 %.2f×, CPU %.2f×",
		alerts, concurrency, rawRes.throughput, rawRes.p50, rawRes.p99, rawRes.cpuPerAlert,
		rampartRes.throughput, rampartRes.p50, rampartRes.p99, rampartRes.cpuPerAlert,
		rampartRes.p50.Seconds()/rawRes.p50.Seconds(), rampartRes.p99.Seconds()/rawRes.p99.Seconds(),
		rampartRes.cpuPerAlert.Seconds()/rawRes.cpuPerAlert.Seconds())
}

// sample is one measured batch of alerts.
type sample struct {
	latencies    []time.Duration
	elapsed, cpu time.Duration
}

type benchResult struct {
	throughput float64
	p50, p99   time.Duration
	// cpuPerAlert is the whole process's CPU time (server, worker, store,
	// simulator, load generator) divided by the alerts.
	cpuPerAlert time.Duration
}

func summarize(samples ...sample) benchResult {
	var all []time.Duration
	var elapsed, cpu time.Duration
	for _, s := range samples {
		all = append(all, s.latencies...)
		elapsed += s.elapsed
		cpu += s.cpu
	}
	slices.Sort(all)
	return benchResult{
		throughput:  float64(len(all)) / elapsed.Seconds(),
		p50:         all[len(all)/2],
		p99:         all[len(all)*99/100],
		cpuPerAlert: cpu / time.Duration(len(all)),
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// measure sends one alert per host from concurrency closed-loop senders: each waits
// until the simulator has received its host's contain request before sending the
// next, so latency is the pipeline's own, not a queue's.
func measure(b *testing.B, sim *crowdstrike.Simulator, ids []string, concurrency int, send func(id string) error) sample {
	b.Helper()
	contained := newContainWatch(sim, ids)
	defer contained.stop()
	work := make(chan string)
	lat := make(chan time.Duration, len(ids))
	var wg sync.WaitGroup
	start, cpuStart := time.Now(), cpuTime()
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range work {
				at := time.Now()
				if err := send(id); err != nil {
					b.Error(err)
					continue
				}
				select {
				case done := <-contained.wait(id):
					lat <- done.Sub(at)
				case <-time.After(2 * time.Minute):
					b.Errorf("host %s not contained after 2 minutes", id)
				}
			}
		}()
	}
	for _, id := range ids {
		work <- id
	}
	close(work)
	wg.Wait()
	elapsed, cpu := time.Since(start), cpuTime()-cpuStart
	close(lat)
	var all []time.Duration
	for l := range lat {
		all = append(all, l)
	}
	if len(all) != len(ids) {
		b.Fatalf("%d of %d alerts contained", len(all), len(ids))
	}
	return sample{latencies: all, elapsed: elapsed, cpu: cpu}
}

// containWatch reports, per host, when the simulator accepted its contain request.
type containWatch struct {
	mu    sync.Mutex
	chans map[string]chan time.Time
	quit  chan struct{}
}

func newContainWatch(sim *crowdstrike.Simulator, ids []string) *containWatch {
	w := &containWatch{chans: make(map[string]chan time.Time, len(ids)), quit: make(chan struct{})}
	for _, id := range ids {
		w.chans[id] = make(chan time.Time, 1)
	}
	_, seen := sim.AuditSince(1 << 62)
	go func() {
		for {
			select {
			case <-w.quit:
				return
			case <-time.After(2 * time.Millisecond):
			}
			var fresh []crowdstrike.AuditEntry
			fresh, seen = sim.AuditSince(seen)
			for _, e := range fresh {
				if e.Action == "contain" && e.Status == http.StatusAccepted && len(e.IDs) == 1 {
					if ch, ok := w.chans[e.IDs[0]]; ok {
						select {
						case ch <- e.Time:
						default:
						}
					}
				}
			}
		}
	}()
	return w
}

func (w *containWatch) wait(id string) <-chan time.Time { return w.chans[id] }
func (w *containWatch) stop()                           { close(w.quit) }

// rawShape is the hand-written comparison: the same activities by count and kind,
// the isolate one calling the simulator through the same client and poll.
type rawShape struct {
	edr  integrations.EDR
	poll time.Duration
}

const (
	rawPrefix      = "raw."
	rawDedupWindow = 2 * time.Second // the benchmark's AlertWorkflow window
)

func (s *rawShape) register(w worker.Worker) {
	w.RegisterWorkflow(rawWorkflow)
	noop := func(context.Context, string) (string, error) { return "", nil }
	for _, name := range []string{"detect", "asset", "iocs", "prior", "decide", "finish"} {
		w.RegisterActivityWithOptions(noop, activity.RegisterOptions{Name: rawPrefix + name})
	}
	w.RegisterActivityWithOptions(s.isolate, activity.RegisterOptions{Name: rawPrefix + "isolate"})
}

func (s *rawShape) isolate(ctx context.Context, id string) (string, error) {
	if _, err := s.edr.ContainHost(ctx, id); err != nil {
		return "", err
	}
	for {
		h, err := s.edr.GetHost(ctx, id)
		if err != nil {
			return "", err
		}
		if h.Status == integrations.HostContained {
			return h.Status, nil
		}
		activity.RecordHeartbeat(ctx, h.Status)
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(s.poll):
		}
	}
}

func rawWorkflow(ctx workflow.Context, id string) error {
	local := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{StartToCloseTimeout: 10 * time.Second})
	// Detect beside the three enrichments, as AlertWorkflow runs them.
	var futures []workflow.Future
	for _, name := range []string{"detect", "asset", "iocs", "prior"} {
		futures = append(futures, workflow.ExecuteLocalActivity(local, rawPrefix+name, id))
	}
	for _, f := range futures {
		if err := f.Get(ctx, nil); err != nil {
			return err
		}
	}
	if err := workflow.ExecuteLocalActivity(local, rawPrefix+"decide", id).Get(ctx, nil); err != nil {
		return err
	}
	remote := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 2 * time.Minute, HeartbeatTimeout: 15 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second},
	})
	if err := workflow.ExecuteActivity(remote, rawPrefix+"isolate", id).Get(ctx, nil); err != nil {
		return err
	}
	if err := workflow.ExecuteLocalActivity(local, rawPrefix+"finish", id).Get(ctx, nil); err != nil {
		return err
	}
	// Same shape as AlertWorkflow: the run stays open for the dedup window.
	return workflow.Sleep(ctx, rawDedupWindow)
}
