package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"gopkg.in/yaml.v3"

	"github.com/rampart-soar/rampart/playbook"
	"github.com/rampart-soar/rampart/schemas"
	"github.com/rampart-soar/rampart/workflows"
)

const interpreterSteps = 5

// interpreterPlaybook: five actions, each rendering its input from the alert and
// the previous step's output.
var interpreterPlaybook = func() string {
	src := "name: bench\ntrigger: {when: \"true\"}\nsteps:\n"
	prev := "alert.device.id"
	for i := range interpreterSteps {
		src += fmt.Sprintf("  - id: s%d\n    uses: edr.get_host\n    with: {host_id: \"${{ %s }}\"}\n", i, prev)
		prev = fmt.Sprintf("steps.s%d.output.id", i)
	}
	return src
}()

// BenchmarkInterpreter compares, on the embedded server in one run, a
// PlaybookWorkflow of five action steps with a hand-written workflow calling the
// same activity five times with the same inputs and options. The action activity
// answers at once and the record activity does nothing in both, so the
// difference is the interpreter's own: rendering, step bookkeeping, its two
// record local activities and the query and update handlers it installs. One run
// at a time; the two alternate in four halves (hand, playbook, playbook, hand).
// Run with: make bench (RAMPART_BENCH_E2E=1).
func BenchmarkInterpreter(b *testing.B) {
	if os.Getenv("RAMPART_BENCH_E2E") != "1" {
		b.Skip("set RAMPART_BENCH_E2E=1 (make bench) to run the end-to-end benchmark")
	}
	const runs = 200
	cfg := devConfig(b, time.Second)
	d := startDev(b, cfg)
	var def playbook.Playbook
	if err := yaml.Unmarshal([]byte(interpreterPlaybook), &def); err != nil {
		b.Fatal(err)
	}
	pinned := workflows.PinnedPlaybook{Definition: def, Version: 1, Hash: "bench"}
	const queue = "interpreter-bench"
	w := worker.New(d.Client, queue, worker.Options{})
	workflows.Register(w)
	w.RegisterWorkflow(handWrittenSteps)
	w.RegisterActivityWithOptions(func(_ context.Context, in workflows.ActionInput) (workflows.ActionOutput, error) {
		return workflows.ActionOutput{Output: map[string]any{"id": in.Inputs["host_id"], "status": "normal"}, SideEffect: schemas.SideEffectRead}, nil
	}, activity.RegisterOptions{Name: workflows.ActivityPlaybookAction})
	w.RegisterActivityWithOptions(func(context.Context, workflows.RecordInput) error { return nil },
		activity.RegisterOptions{Name: workflows.ActivityPlaybookRecord})
	if err := w.Start(); err != nil {
		b.Fatal(err)
	}
	defer w.Stop()

	alert := schemas.Alert{Source: "bench", Device: schemas.Device{ID: ransomHost}}
	n := 0
	run := func(kind string) time.Duration {
		n++
		opts := client.StartWorkflowOptions{ID: fmt.Sprintf("bench/%s/%d", kind, n), TaskQueue: queue}
		var err error
		var r client.WorkflowRun
		if kind == "playbook" {
			r, err = d.Client.ExecuteWorkflow(context.Background(), opts, workflows.PlaybookWorkflowName,
				workflows.PlaybookInput{Playbook: pinned, Alert: alert, AlertID: "bench"})
		} else {
			r, err = d.Client.ExecuteWorkflow(context.Background(), opts, handWrittenSteps, ransomHost)
		}
		if err == nil {
			err = r.Get(context.Background(), nil)
		}
		if err != nil {
			b.Fatal(err)
		}
		// The run's own duration, start to close, as the server recorded it: the
		// client's wait for the result now and then misses the close notification
		// and sits out a 20 s long poll, which is not the workflow's doing.
		desc, err := d.Client.DescribeWorkflowExecution(context.Background(), opts.ID, r.GetRunID())
		if err != nil {
			b.Fatal(err)
		}
		info := desc.GetWorkflowExecutionInfo()
		return info.GetCloseTime().AsTime().Sub(info.GetStartTime().AsTime())
	}
	batch := func(kind string, count int) []time.Duration {
		out := make([]time.Duration, count)
		for i := range out {
			out[i] = run(kind)
		}
		return out
	}
	batch("hand", 20) // warm up
	batch("playbook", 20)
	for range b.N {
		half := runs / 2
		hand := append(batch("hand", half), nil...)
		pb := batch("playbook", half)
		pb = append(pb, batch("playbook", half)...)
		hand = append(hand, batch("hand", half)...)
		slices.Sort(hand)
		slices.Sort(pb)
		hp50, pp50 := hand[len(hand)/2], pb[len(pb)/2]
		hmean, pmean := mean(hand), mean(pb)
		b.ReportMetric(float64(hp50.Microseconds())/1000, "hand_p50_ms")
		b.ReportMetric(float64(pp50.Microseconds())/1000, "playbook_p50_ms")
		b.ReportMetric(pp50.Seconds()/hp50.Seconds(), "p50_ratio")
		b.ReportMetric(pmean.Seconds()/hmean.Seconds(), "mean_ratio")
		b.ReportMetric(float64((pmean-hmean).Microseconds())/interpreterSteps/1000, "overhead_ms/step")
		p99 := func(ds []time.Duration) time.Duration { return ds[len(ds)*99/100] }
		b.Logf("%d runs each of %d steps\n  hand-written: p50 %v, p90 %v, p99 %v, mean %v\n  playbook:     p50 %v, p90 %v, p99 %v, mean %v\n  ratio p50 %.2f×, mean %.2f×; overhead %v per step",
			runs, interpreterSteps, hp50, hand[len(hand)*9/10], p99(hand), hmean, pp50, pb[len(pb)*9/10], p99(pb), pmean,
			pp50.Seconds()/hp50.Seconds(), pmean.Seconds()/hmean.Seconds(), (pmean-hmean)/interpreterSteps)
	}
}

func mean(ds []time.Duration) time.Duration {
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return sum / time.Duration(len(ds))
}

// handWrittenSteps calls the action activity as the interpreter does — the same
// options, the same inputs, each host id from the previous answer — with none of
// the interpreter's bookkeeping.
func handWrittenSteps(ctx workflow.Context, hostID string) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 2 * time.Minute})
	info := workflow.GetInfo(ctx).WorkflowExecution
	for i := range interpreterSteps {
		step := fmt.Sprintf("s%d", i)
		var out workflows.ActionOutput
		err := workflow.ExecuteActivity(ctx, workflows.ActivityPlaybookAction, workflows.ActionInput{
			Ref: workflows.PlaybookRef{WorkflowID: info.ID, RunID: info.RunID}, Step: step, Operation: "edr.get_host",
			Inputs: map[string]any{"host_id": hostID}, IdempotencyKey: info.ID + "/" + info.RunID + "/" + step,
		}).Get(ctx, &out)
		if err != nil {
			return err
		}
		hostID, _ = out.Output["id"].(string)
	}
	return nil
}
