package workflows_test

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"
	"gopkg.in/yaml.v3"

	"github.com/rampart-soar/rampart/playbook"
	"github.com/rampart-soar/rampart/schemas"
	"github.com/rampart-soar/rampart/workflows"
)

// actions stubs the action activity: per operation a function, recording calls.
type actions struct {
	mu        sync.Mutex
	calls     []workflows.ActionInput
	fn        map[string]func(in workflows.ActionInput) (map[string]any, error)
	records   []workflows.StepRecord
	results   []workflows.PlaybookResult
	approvals []workflows.PendingApproval
	running   atomic.Int32
	maxAtOnce atomic.Int32
	delay     time.Duration
	// sideEffect classes an operation (default: none declared); with simulate, a
	// contain or notify operation is recorded as simulated, as a dry run does.
	sideEffect func(op string) string
	simulate   bool
	// recordErr, when set, answers the record activity first (a store outage).
	recordErr func() error
}

func (a *actions) register(env *testsuite.TestWorkflowEnvironment) {
	env.RegisterActivityWithOptions(func(ctx context.Context, in workflows.ActionInput) (workflows.ActionOutput, error) {
		n := a.running.Add(1)
		defer a.running.Add(-1)
		for {
			m := a.maxAtOnce.Load()
			if n <= m || a.maxAtOnce.CompareAndSwap(m, n) {
				break
			}
		}
		if a.delay > 0 {
			time.Sleep(a.delay)
		}
		a.mu.Lock()
		a.calls = append(a.calls, in)
		a.records = append(a.records, in.Record...)
		fn := a.fn[in.Operation]
		a.mu.Unlock()
		var class string
		if a.sideEffect != nil {
			class = a.sideEffect(in.Operation)
		}
		simulated := in.DryRun && a.simulate && class != schemas.SideEffectRead
		if fn == nil || simulated {
			return workflows.ActionOutput{Output: map[string]any{"ok": true}, SideEffect: class, Simulated: simulated}, nil
		}
		out, err := fn(in)
		return workflows.ActionOutput{Output: out, SideEffect: class}, err
	}, activity.RegisterOptions{Name: workflows.ActivityPlaybookAction})
	env.RegisterActivityWithOptions(func(ctx context.Context, in workflows.RecordInput) error {
		if a.recordErr != nil {
			if err := a.recordErr(); err != nil {
				return err
			}
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		a.records = append(a.records, in.Steps...)
		if in.Approval != nil {
			a.approvals = append(a.approvals, *in.Approval)
		}
		if in.Result != nil {
			a.results = append(a.results, *in.Result)
		}
		return nil
	}, activity.RegisterOptions{Name: workflows.ActivityPlaybookRecord})
}

func (a *actions) ops() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, c := range a.calls {
		out = append(out, c.Step+"="+c.Operation)
	}
	return out
}

func parsePlaybook(t *testing.T, src string) workflows.PinnedPlaybook {
	t.Helper()
	var pb playbook.Playbook
	if err := yaml.Unmarshal([]byte(src), &pb); err != nil {
		t.Fatal(err)
	}
	return workflows.PinnedPlaybook{Definition: pb, Version: 1, Hash: "h1"}
}

func runPlaybook(t *testing.T, a *actions, in workflows.PlaybookInput, setup ...func(env *testsuite.TestWorkflowEnvironment)) (*testsuite.TestWorkflowEnvironment, workflows.PlaybookResult) {
	t.Helper()
	env := (&testsuite.WorkflowTestSuite{}).NewTestWorkflowEnvironment()
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: "playbook/test"})
	workflows.Register(env)
	a.register(env)
	for _, s := range setup {
		s(env)
	}
	if in.Alert.Source == "" {
		in.Alert = schemas.Alert{Source: "crowdstrike", SeverityID: 5, Device: schemas.Device{ID: "dev-1", Hostname: "fin-ws-0142"},
			Finding: schemas.Finding{Title: "MassFileEncryption", Desc: "c2 at 203.0.113.66 and 198.51.100.200, from 10.0.0.5"}}
	}
	env.ExecuteWorkflow(workflows.PlaybookWorkflowName, in)
	if !env.IsWorkflowCompleted() {
		t.Fatal("playbook run did not complete")
	}
	var res workflows.PlaybookResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatalf("playbook run errored: %v", err)
	}
	return env, res
}

func TestSequenceSwitchSetAndOutputs(t *testing.T) {
	a := &actions{fn: map[string]func(workflows.ActionInput) (map[string]any, error){
		"ti.lookup_hash": func(in workflows.ActionInput) (map[string]any, error) { return map[string]any{"malicious": 7.0}, nil },
	}}
	pb := parsePlaybook(t, `
name: seq
trigger: {when: "true"}
vars: {verdict: unknown, hits: 0}
steps:
  - id: ti
    uses: ti.lookup_hash
    with: {hash: abc}
  - id: route
    switch:
      - when: steps.ti.output.malicious >= 3
        goto: bad
      - default: fine
  - id: fine
    set: {verdict: fine}
  - id: bad
    set: {verdict: "bad (${{ steps.ti.output.malicious }} engines)", hits: "${{ steps.ti.output.malicious }}"}
  - id: isolate
    if: vars.hits > 5
    uses: edr.isolate_host
    with: {host_id: "${{ alert.device.id }}", comment: "rampart ${{ run.playbook }} v${{ run.version }}"}
  - id: skipped
    if: vars.hits > 100
    uses: chat.post_message
    with: {channel: "#soc", text: nope}
outputs:
  verdict: ${{ vars.verdict }}
  hits: ${{ vars.hits }}
`)
	_, res := runPlaybook(t, a, workflows.PlaybookInput{Playbook: pb, AlertID: "alert-1"})
	if res.Status != workflows.RunSucceeded || res.Outputs["verdict"] != "bad (7 engines)" || res.Outputs["hits"] != 7.0 {
		t.Fatalf("result = %+v", res)
	}
	if got := strings.Join(a.ops(), ","); got != "ti=ti.lookup_hash,isolate=edr.isolate_host" {
		t.Fatalf("actions = %s", got)
	}
	isolate := a.calls[1]
	if isolate.Inputs["host_id"] != "dev-1" || isolate.Inputs["comment"] != "rampart seq v1" ||
		isolate.IdempotencyKey != "playbook/test/"+isolate.Ref.RunID+"/isolate" || isolate.Ref.AlertID != "alert-1" {
		t.Fatalf("isolate input = %+v", isolate)
	}
	statuses := map[string]string{}
	for _, r := range a.records {
		statuses[r.Name] = r.Status
	}
	want := map[string]string{"ti": "succeeded", "route": "succeeded", "bad": "succeeded", "isolate": "succeeded", "skipped": "skipped"}
	for k, v := range want {
		if statuses[k] != v {
			t.Fatalf("step statuses = %v, want %v", statuses, want)
		}
	}
	if _, ran := statuses["fine"]; ran {
		t.Fatal("the switch jumped over fine, yet it ran")
	}
}

// A run that meets a store outage waits for the store and records every step
// and its result once the store is back, instead of running on unrecorded.
func TestRunWaitsOutAStoreOutage(t *testing.T) {
	a := &actions{}
	pb := parsePlaybook(t, `
name: outage
trigger: {when: "true"}
steps:
  - id: lookup
    uses: ti.lookup_hash
    with: {hash: abc}
  - id: note
    set: {seen: true}
`)
	start := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	var (
		recordedAt []time.Time
		during     workflows.PlaybookState
	)
	_, res := runPlaybook(t, a, workflows.PlaybookInput{Playbook: pb}, func(env *testsuite.TestWorkflowEnvironment) {
		env.SetStartTime(start)
		a.recordErr = func() error {
			if env.Now().Before(start.Add(3 * time.Hour)) {
				return errStoreDown
			}
			recordedAt = append(recordedAt, env.Now())
			return nil
		}
		queryAt(t, env, time.Hour, workflows.PlaybookStateQuery, &during)
	})
	if res.Status != workflows.RunSucceeded {
		t.Fatalf("result = %+v", res)
	}
	if !strings.HasPrefix(during.Waiting, workflows.ActivityPlaybookRecord+": waiting for the store since ") {
		t.Fatalf("the run's state during the outage says it waits for %q", during.Waiting)
	}
	if len(a.results) != 1 || a.results[0].Status != workflows.RunSucceeded {
		t.Fatalf("recorded results = %+v", a.results)
	}
	statuses := map[string]string{}
	for _, r := range a.records {
		statuses[r.Name] = r.Status
	}
	if statuses["lookup"] != "succeeded" || statuses["note"] != "succeeded" {
		t.Fatalf("recorded steps = %v", statuses)
	}
	if len(recordedAt) == 0 || recordedAt[0].After(start.Add(3*time.Hour+6*time.Minute)) {
		t.Fatalf("recorded at %v; want soon after the store came back at 12:00", recordedAt)
	}
}

// An action whose activity cannot use the store past its retries waits for the
// store and runs again, rather than failing the step.
func TestActionWaitsOutAStoreOutage(t *testing.T) {
	start := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	var now func() time.Time
	a := &actions{fn: map[string]func(workflows.ActionInput) (map[string]any, error){
		"edr.isolate_host": func(workflows.ActionInput) (map[string]any, error) {
			if now().Before(start.Add(time.Hour)) {
				return nil, temporal.NewApplicationError("store: "+errStoreDown.Error(), workflows.ErrTypeStore)
			}
			return map[string]any{"status": "contained"}, nil
		},
	}}
	pb := parsePlaybook(t, `
name: outage
trigger: {when: "true"}
steps:
  - id: isolate
    uses: edr.isolate_host
    with: {host_id: "${{ alert.device.id }}"}
`)
	_, res := runPlaybook(t, a, workflows.PlaybookInput{Playbook: pb}, func(env *testsuite.TestWorkflowEnvironment) {
		env.SetStartTime(start)
		now = env.Now
	})
	if res.Status != workflows.RunSucceeded {
		t.Fatalf("result = %+v", res)
	}
	// Five attempts per try, a try after each wait of up to 5 minutes: a bounded number.
	if n := len(a.calls); n < 10 || n > 100 {
		t.Fatalf("the action ran %d times over an hour's outage", n)
	}
	for _, c := range a.calls {
		if c.IdempotencyKey != a.calls[0].IdempotencyKey {
			t.Fatalf("a try ran under another key: %s, %s", c.IdempotencyKey, a.calls[0].IdempotencyKey)
		}
	}
}

func TestGotoLoopsStopAtTheBudget(t *testing.T) {
	a := &actions{}
	pb := parsePlaybook(t, `
name: loop
trigger: {when: "true"}
vars: {n: 0}
steps:
  - id: count
    set: {n: "${{ vars.n + 1 }}"}
  - id: again
    switch:
      - when: "true"
        goto: count
`)
	_, res := runPlaybook(t, a, workflows.PlaybookInput{Playbook: pb, StepBudget: 50})
	if res.Status != workflows.RunFailed || !strings.Contains(res.Message, "step budget of 50 exceeded") || res.Steps != 51 {
		t.Fatalf("result = %+v", res)
	}
}

func TestActionErrorsFollowOnError(t *testing.T) {
	fail := func(workflows.ActionInput) (map[string]any, error) {
		return nil, temporal.NewNonRetryableApplicationError("HTTP 403", workflows.ErrTypeHTTP4xx, nil)
	}
	a := &actions{fn: map[string]func(workflows.ActionInput) (map[string]any, error){"edr.get_host": fail}}
	pb := parsePlaybook(t, `
name: errors
trigger: {when: "true"}
steps:
  - id: tolerated
    uses: edr.get_host
    with: {host_id: x}
    on_error: continue
  - id: rerouted
    uses: edr.get_host
    with: {host_id: x}
    on_error: goto:cleanup
  - id: never
    uses: chat.post_message
    with: {channel: "#a", text: never}
  - id: cleanup
    uses: chat.post_message
    with: {channel: "#a", text: "${{ steps.tolerated.status }}: ${{ steps.tolerated.error }}"}
  - id: fatal
    uses: edr.get_host
    with: {host_id: x}
  - id: after
    uses: chat.post_message
    with: {channel: "#a", text: unreachable}
on_failure:
  - id: page
    uses: chat.post_message
    with: {channel: "#oncall", text: "failed"}
`)
	_, res := runPlaybook(t, a, workflows.PlaybookInput{Playbook: pb})
	if res.Status != workflows.RunFailed || res.Message != "step fatal failed: edr.get_host: HTTP 403" {
		t.Fatalf("result = %+v", res)
	}
	got := strings.Join(a.ops(), ",")
	if got != "tolerated=edr.get_host,rerouted=edr.get_host,cleanup=chat.post_message,fatal=edr.get_host,page=chat.post_message" {
		t.Fatalf("actions = %s", got)
	}
	// The activity's own words, without the SDK's "(type: …, retryable: …)".
	if text := a.calls[2].Inputs["text"].(string); text != "failed: edr.get_host: HTTP 403" {
		t.Fatalf("cleanup saw %q", text)
	}
	// Each failed step's record says where the playbook went after it.
	notes := map[string]string{}
	for _, r := range a.records {
		if r.Status == workflows.StepFailed {
			notes[r.Name] = r.Note
		}
	}
	if want := map[string]string{
		"tolerated": "the playbook went on (on_error: continue)",
		"rerouted":  "the playbook went to cleanup (on_error)",
		"fatal":     "",
	}; !maps.Equal(notes, want) {
		t.Fatalf("failed steps' notes = %q, want %q", notes, want)
	}

	// A run from before the change keeps reading the SDK's form.
	before := &actions{fn: a.fn}
	runPlaybook(t, before, workflows.PlaybookInput{Playbook: pb}, func(env *testsuite.TestWorkflowEnvironment) {
		env.OnGetVersion("plain-step-errors", workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	})
	if text := before.calls[2].Inputs["text"].(string); text != "failed: edr.get_host: HTTP 403 (type: HTTP4xx, retryable: false)" {
		t.Fatalf("cleanup before the change saw %q", text)
	}
}

func TestParallelJoinAllAndAny(t *testing.T) {
	slowFail := func(in workflows.ActionInput) (map[string]any, error) {
		return nil, temporal.NewNonRetryableApplicationError("down", workflows.ErrTypeHTTP4xx, nil)
	}
	src := `
name: par
trigger: {when: "true"}
steps:
  - id: both
    parallel:
      join: JOIN
      branches:
        - name: good
          steps:
            - id: ok
              uses: chat.post_message
              with: {channel: "#a", text: ok}
        - name: bad
          steps:
            - id: broken
              uses: edr.get_host
              with: {host_id: x}
  - id: after
    uses: ticket.create
    with: {summary: "${{ steps.both.output.good.status }}/${{ steps.both.output.bad.status }}"}
`
	t.Run("all: a failed branch fails the step", func(t *testing.T) {
		a := &actions{fn: map[string]func(workflows.ActionInput) (map[string]any, error){"edr.get_host": slowFail}}
		_, res := runPlaybook(t, a, workflows.PlaybookInput{Playbook: parsePlaybook(t, strings.Replace(src, "JOIN", "all", 1))})
		if res.Status != workflows.RunFailed || !strings.Contains(res.Message, "branches failed") {
			t.Fatalf("result = %+v", res)
		}
	})
	t.Run("all with on_failure continue", func(t *testing.T) {
		a := &actions{fn: map[string]func(workflows.ActionInput) (map[string]any, error){"edr.get_host": slowFail}}
		_, res := runPlaybook(t, a, workflows.PlaybookInput{Playbook: parsePlaybook(t, strings.Replace(src, "join: JOIN", "join: all\n      on_failure: continue", 1))})
		if res.Status != workflows.RunSucceeded || a.calls[len(a.calls)-1].Inputs["summary"] != "succeeded/failed" {
			t.Fatalf("result = %+v, last call %+v", res, a.calls[len(a.calls)-1])
		}
	})
	t.Run("any: the first success is enough", func(t *testing.T) {
		a := &actions{fn: map[string]func(workflows.ActionInput) (map[string]any, error){"edr.get_host": slowFail}}
		_, res := runPlaybook(t, a, workflows.PlaybookInput{Playbook: parsePlaybook(t, strings.Replace(src, "JOIN", "any", 1))})
		if res.Status != workflows.RunSucceeded {
			t.Fatalf("result = %+v", res)
		}
	})
	t.Run("any: all failing fails", func(t *testing.T) {
		a := &actions{fn: map[string]func(workflows.ActionInput) (map[string]any, error){"edr.get_host": slowFail, "chat.post_message": slowFail}}
		_, res := runPlaybook(t, a, workflows.PlaybookInput{Playbook: parsePlaybook(t, strings.Replace(src, "JOIN", "any", 1))})
		if res.Status != workflows.RunFailed || !strings.Contains(res.Message, "no branch succeeded") {
			t.Fatalf("result = %+v", res)
		}
	})
}

// A join-any parallel step cancels the branches still running when one succeeds:
// a cancelled branch records the step it was in as cancelled, closes the
// approval that step waited on (the inbox would otherwise offer it for ever) and
// runs nothing after it.
func TestJoinAnyWindsDownTheCancelledBranch(t *testing.T) {
	pb := parsePlaybook(t, `
name: race
trigger: {when: "true"}
steps:
  - id: race
    parallel:
      join: any
      branches:
        - name: quick
          steps:
            - id: note
              uses: chat.post_message
              with: {channel: "#a", text: quick}
        - name: asks
          steps:
            - id: isolate
              uses: edr.isolate_host
              with: {host_id: x}
              approval: {approvers: ["role:tier2"], timeout: 1h}
            - id: after
              uses: chat.post_message
              with: {channel: "#a", text: after}
              on_error: continue
`)
	statuses := func(a *actions) (approvals []string, steps map[string]string) {
		steps = map[string]string{}
		for _, ap := range a.approvals {
			approvals = append(approvals, ap.Status)
		}
		for _, r := range a.records {
			steps[r.Name] = r.Status
		}
		return approvals, steps
	}
	a := &actions{}
	_, res := runPlaybook(t, a, workflows.PlaybookInput{Playbook: pb})
	approvals, steps := statuses(a)
	if res.Status != workflows.RunSucceeded || strings.Join(a.ops(), ",") != "note=chat.post_message" {
		t.Fatalf("result = %+v, actions %v", res, a.ops())
	}
	// The approval ends cancelled. Its pending record comes first unless the
	// other branch won while that record was being written, cancelling it.
	last := len(a.approvals) - 1
	if last < 0 || strings.TrimPrefix(strings.Join(approvals, ","), "pending,") != "cancelled" ||
		a.approvals[last].Reason == "" || a.approvals[last].DecidedAt.IsZero() {
		t.Fatalf("approvals = %+v", a.approvals)
	}
	if want := map[string]string{"note": "succeeded", "isolate": "cancelled", "race": "succeeded"}; !maps.Equal(steps, want) {
		t.Fatalf("recorded steps = %v, want %v", steps, want)
	}
	for _, r := range a.records {
		if r.Name == "race" && r.Output.(map[string]any)["asks"].(map[string]any)["status"] != workflows.StepCancelled {
			t.Fatalf("the parallel step's output = %v", r.Output)
		}
	}

	// A run from before the change left the branch behind: its step unrecorded,
	// its approval never closed.
	before := &actions{}
	runPlaybook(t, before, workflows.PlaybookInput{Playbook: pb}, func(env *testsuite.TestWorkflowEnvironment) {
		env.OnGetVersion("cancelled-branches-wind-down", workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	})
	if approvals, steps := statuses(before); slices.Contains(approvals, "cancelled") || steps["isolate"] != "" {
		t.Fatalf("before the change: approvals %v, steps %v", approvals, steps)
	}
}

func TestForeachRespectsConcurrencyAndKeepsOrder(t *testing.T) {
	a := &actions{delay: 30 * time.Millisecond, fn: map[string]func(workflows.ActionInput) (map[string]any, error){
		"ti.lookup_ip": func(in workflows.ActionInput) (map[string]any, error) {
			return map[string]any{"ip": in.Inputs["ip"]}, nil
		},
	}}
	pb := parsePlaybook(t, `
name: each
trigger: {when: "true"}
vars: {seen: ""}
steps:
  - id: ips
    foreach:
      items: ${{ extract_ips(alert.finding.desc) }}
      as: ip
      concurrency: 2
      steps:
        - id: lookup
          uses: ti.lookup_ip
          with: {ip: "${{ ip }}"}
        - id: tag
          uses: chat.post_message
          with: {channel: "#a", text: "${{ ip }} is ${{ steps.lookup.output.ip }}"}
  - id: summary
    set: {seen: "${{ join(map(steps.ips.output, {#.lookup.ip}), ',') }}"}
outputs: {seen: "${{ vars.seen }}"}
`)
	_, res := runPlaybook(t, a, workflows.PlaybookInput{Playbook: pb})
	if res.Status != workflows.RunSucceeded || res.Outputs["seen"] != "203.0.113.66,198.51.100.200,10.0.0.5" {
		t.Fatalf("result = %+v", res)
	}
	if m := a.maxAtOnce.Load(); m > 2 || m < 2 {
		t.Fatalf("ran %d actions at once, want the bound of 2", m)
	}
	for _, c := range a.calls {
		if c.Operation == "chat.post_message" {
			if text := c.Inputs["text"].(string); !strings.HasPrefix(text, strings.Split(text, " ")[0]+" is "+strings.Split(text, " ")[0]) {
				t.Fatalf("an iteration saw another's output: %q", text)
			}
		}
	}
	names := map[string]bool{}
	for _, r := range a.records {
		names[r.Name] = true
	}
	if !names["lookup[0]"] || !names["tag[2]"] || !names["ips"] {
		t.Fatalf("recorded steps = %v", names)
	}
}

func TestWaitUntilAndTimeout(t *testing.T) {
	pb := parsePlaybook(t, `
name: waits
trigger: {when: "true"}
steps:
  - id: settle
    wait: {duration: 10m}
  - id: more
    wait: {until: "run.events >= 2", timeout: 1h}
  - id: done
    succeed: "saw ${{ run.events }} events"
`)
	t.Run("until holds after signals", func(t *testing.T) {
		a := &actions{}
		_, res := runPlaybook(t, a, workflows.PlaybookInput{Playbook: pb}, func(env *testsuite.TestWorkflowEnvironment) {
			for _, at := range []time.Duration{20 * time.Minute, 30 * time.Minute} {
				env.RegisterDelayedCallback(func() { env.SignalWorkflow(workflows.EventSignal, nil) }, at)
			}
		})
		if res.Status != workflows.RunSucceeded || res.Message != "saw 2 events" {
			t.Fatalf("result = %+v", res)
		}
	})
	t.Run("timeout fails the step", func(t *testing.T) {
		a := &actions{}
		_, res := runPlaybook(t, a, workflows.PlaybookInput{Playbook: pb})
		if res.Status != workflows.RunFailed || !strings.Contains(res.Message, "until did not hold within 1h") {
			t.Fatalf("result = %+v", res)
		}
	})
}

func TestCallRunsAChildPlaybook(t *testing.T) {
	a := &actions{fn: map[string]func(workflows.ActionInput) (map[string]any, error){
		"edr.isolate_host": func(in workflows.ActionInput) (map[string]any, error) {
			return map[string]any{"status": "contained", "vendor_action_id": "v-" + in.Inputs["host_id"].(string)}, nil
		},
	}}
	child := parsePlaybook(t, `
name: child
trigger: {when: "false"}
inputs: {host: {type: string, required: true}}
steps:
  - id: isolate
    uses: edr.isolate_host
    with: {host_id: "${{ inputs.host }}"}
outputs:
  action: ${{ steps.isolate.output.vendor_action_id }}
`)
	parent := parsePlaybook(t, `
name: parent
trigger: {when: "true"}
steps:
  - id: delegate
    call: {playbook: child, with: {host: "${{ alert.device.id }}"}}
outputs:
  action: ${{ steps.delegate.output.action }}
`)
	_, res := runPlaybook(t, a, workflows.PlaybookInput{Playbook: parent, Callees: map[string]workflows.PinnedPlaybook{"child": child}})
	if res.Status != workflows.RunSucceeded || res.Outputs["action"] != "v-dev-1" || res.Steps != 2 {
		t.Fatalf("result = %+v", res)
	}
}

// A parallel, foreach, wait or call step's own timeout bounds it: when the time
// is up the step is cancelled and fails, and what ran inside winds down — a
// branch records the step it was in as cancelled, a called run stops and closes
// the approval it waited for — before the run goes on to fail.
func TestCompositeStepTimeout(t *testing.T) {
	child := parsePlaybook(t, `
name: child
trigger: {when: "false"}
steps:
  - id: isolate
    uses: edr.isolate_host
    with: {host_id: x}
    approval: {approvers: ["role:tier2"], timeout: 2h}
`)
	parent := parsePlaybook(t, `
name: bounded
trigger: {when: "true"}
steps:
  - id: respond
    timeout: 10m
    parallel:
      branches:
        - name: slow
          steps:
            - id: hold
              wait: {until: "run.events > 5", timeout: 1h}
            - id: never
              uses: chat.post_message
              with: {channel: "#a", text: never}
        - name: ask
          steps:
            - id: delegate
              call: {playbook: child}
  - id: after
    uses: chat.post_message
    with: {channel: "#a", text: after}
`)
	a := &actions{}
	start := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	env, res := runPlaybook(t, a, workflows.PlaybookInput{Playbook: parent, Callees: map[string]workflows.PinnedPlaybook{"child": child}},
		func(env *testsuite.TestWorkflowEnvironment) { env.SetStartTime(start) })
	if res.Status != workflows.RunFailed || res.Message != "step respond failed: timed out after 10m" || len(a.calls) != 0 {
		t.Fatalf("result = %+v, actions %v", res, a.ops())
	}
	steps := map[string]string{}
	for _, r := range a.records {
		steps[r.Name] = r.Status + " " + r.Error
	}
	if want := map[string]string{"hold": "cancelled cancelled", "delegate": "cancelled cancelled", "isolate": "cancelled cancelled",
		"respond": "failed timed out after 10m"}; !maps.Equal(steps, want) {
		t.Fatalf("recorded steps = %v, want %v", steps, want)
	}
	var approvals []string
	for _, ap := range a.approvals {
		approvals = append(approvals, ap.Status)
	}
	if strings.Join(approvals, ",") != "pending,cancelled" {
		t.Fatalf("the called run's approval: %+v", a.approvals)
	}
	if len(a.results) != 2 || a.results[0].Message != "the run was cancelled" || a.results[1].Status != workflows.RunFailed {
		t.Fatalf("results = %+v", a.results)
	}
	if elapsed := env.Now().Sub(start); elapsed < 10*time.Minute || elapsed > 11*time.Minute {
		t.Fatalf("the run took %v of workflow time", elapsed)
	}

	// A foreach's timeout stops it between items too.
	each := &actions{}
	eachPlaybook := parsePlaybook(t, `
name: each
trigger: {when: "true"}
steps:
  - id: ips
    timeout: 30m
    foreach:
      items: ${{ extract_ips(alert.finding.desc) }}
      steps:
        - id: pause
          wait: {duration: 20m}
        - id: note
          uses: chat.post_message
          with: {channel: "#a", text: "${{ item }}"}
`)
	_, res = runPlaybook(t, each, workflows.PlaybookInput{Playbook: eachPlaybook})
	if res.Status != workflows.RunFailed || res.Message != "step ips failed: timed out after 30m" || strings.Join(each.ops(), ",") != "note[0]=chat.post_message" {
		t.Fatalf("foreach: result = %+v, actions %v", res, each.ops())
	}
	// A run from before the change ignored the timeout (lint accepted it).
	before := &actions{}
	_, res = runPlaybook(t, before, workflows.PlaybookInput{Playbook: eachPlaybook}, func(env *testsuite.TestWorkflowEnvironment) {
		env.OnGetVersion("composite-step-timeout", workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	})
	if res.Status != workflows.RunSucceeded || len(before.calls) != 3 {
		t.Fatalf("before the change: result = %+v, actions %v", res, before.ops())
	}
}

func TestApprovalUpdate(t *testing.T) {
	src := `
name: approve
trigger: {when: "true"}
steps:
  - id: isolate
    uses: edr.isolate_host
    with: {host_id: "${{ alert.device.id }}"}
    approval: {approvers: ["role:tier2"], timeout: 15m}
`
	decide := func(approved bool, by string) func(env *testsuite.TestWorkflowEnvironment) {
		return func(env *testsuite.TestWorkflowEnvironment) {
			env.RegisterDelayedCallback(func() {
				// A decision for a step that is not waiting is rejected by the validator.
				env.UpdateWorkflow(workflows.ApprovalUpdate, "u0", &testsuite.TestUpdateCallback{
					OnReject: func(error) {}, OnAccept: func() { t.Error("update for the wrong step accepted") }, OnComplete: func(any, error) {},
				}, workflows.Approval{Step: "other", Approved: true, By: "ann"})
				env.UpdateWorkflow(workflows.ApprovalUpdate, "u1", &testsuite.TestUpdateCallback{
					OnReject: func(err error) { t.Errorf("rejected: %v", err) }, OnAccept: func() {}, OnComplete: func(any, error) {},
				}, workflows.Approval{Step: "isolate", Approved: approved, By: by, Reason: "checked the host"})
			}, 5*time.Minute)
		}
	}
	t.Run("approved", func(t *testing.T) {
		a := &actions{}
		_, res := runPlaybook(t, a, workflows.PlaybookInput{Playbook: parsePlaybook(t, src)}, decide(true, "ann"))
		if res.Status != workflows.RunSucceeded || len(a.calls) != 1 || a.calls[0].ApprovedBy != "ann" {
			t.Fatalf("result = %+v, calls %+v", res, a.calls)
		}
		// The store saw the request and the decision, bound to the arguments.
		var seen []workflows.PendingApproval
		for _, p := range a.approvals {
			seen = append(seen, p)
		}
		if len(seen) != 2 || seen[0].Status != workflows.ApprovalPending || seen[1].Status != workflows.ApprovalApproved ||
			seen[1].DecidedBy != "ann" || seen[0].ID == "" || seen[0].ArgsHash != workflows.ArgsHash("edr.isolate_host", map[string]any{"host_id": "dev-1"}) {
			t.Fatalf("approval records = %+v", seen)
		}
	})
	t.Run("a decision on other arguments is rejected", func(t *testing.T) {
		a := &actions{}
		_, res := runPlaybook(t, a, workflows.PlaybookInput{Playbook: parsePlaybook(t, src)}, func(env *testsuite.TestWorkflowEnvironment) {
			env.RegisterDelayedCallback(func() {
				env.UpdateWorkflow(workflows.ApprovalUpdate, "u0", &testsuite.TestUpdateCallback{
					OnReject: func(error) {}, OnAccept: func() { t.Error("a decision on other arguments was accepted") }, OnComplete: func(any, error) {},
				}, workflows.Approval{Step: "isolate", Approved: true, By: "ann", ArgsHash: "stale"})
			}, time.Minute)
		})
		if res.Status != workflows.RunFailed || len(a.calls) != 0 {
			t.Fatalf("result = %+v", res)
		}
	})
	t.Run("escalated, then denied by policy on timeout", func(t *testing.T) {
		a := &actions{}
		esc := strings.Replace(src, "timeout: 15m}", "timeout: 15m, on_timeout: escalate, escalate_to: [\"role:lead\"]}", 1)
		_, res := runPlaybook(t, a, workflows.PlaybookInput{Playbook: parsePlaybook(t, esc)})
		if res.Status != workflows.RunFailed || len(a.approvals) != 3 || a.approvals[1].Approvers[0] != "role:lead" ||
			a.approvals[2].Status != workflows.ApprovalExpired {
			t.Fatalf("result = %+v, approvals %+v", res, a.approvals)
		}
		deny := strings.Replace(src, "timeout: 15m}", "timeout: 15m, on_timeout: deny}", 1)
		a = &actions{}
		_, res = runPlaybook(t, a, workflows.PlaybookInput{Playbook: parsePlaybook(t, deny)})
		if res.Status != workflows.RunFailed || !strings.Contains(res.Message, "denied: no decision within 15m") || a.approvals[1].Status != workflows.ApprovalDenied {
			t.Fatalf("result = %+v, approvals %+v", res, a.approvals)
		}
	})
	t.Run("denied", func(t *testing.T) {
		a := &actions{}
		_, res := runPlaybook(t, a, workflows.PlaybookInput{Playbook: parsePlaybook(t, src)}, decide(false, "bob"))
		if res.Status != workflows.RunFailed || !strings.Contains(res.Message, "denied by bob") || len(a.calls) != 0 {
			t.Fatalf("result = %+v, calls %d", res, len(a.calls))
		}
	})
	t.Run("timed out", func(t *testing.T) {
		a := &actions{}
		_, res := runPlaybook(t, a, workflows.PlaybookInput{Playbook: parsePlaybook(t, src)})
		if res.Status != workflows.RunFailed || !strings.Contains(res.Message, "approval timed out after 15m") || len(a.calls) != 0 {
			t.Fatalf("result = %+v, calls %d", res, len(a.calls))
		}
	})
}

func TestSecretsStayPlaceholders(t *testing.T) {
	a := &actions{}
	pb := parsePlaybook(t, `
name: secret
trigger: {when: "true"}
secrets: [api_token]
steps:
  - id: call
    uses: ticket.create
    with: {summary: "token ${{ secrets.api_token }}"}
`)
	runPlaybook(t, a, workflows.PlaybookInput{Playbook: pb})
	if got := a.calls[0].Inputs["summary"]; got != "token "+workflows.SecretPlaceholder("api_token") {
		t.Fatalf("the workflow rendered %q", got)
	}
}

func TestRevertIsScheduledAsItsOwnWorkflow(t *testing.T) {
	a := &actions{}
	pb := parsePlaybook(t, `
name: revert
trigger: {when: "true"}
steps:
  - id: block
    uses: firewall.block_ip
    with: {ip: 203.0.113.66, duration: 1h}
    revert_after: 1h
`)
	var started []string
	_, res := runPlaybook(t, a, workflows.PlaybookInput{Playbook: pb}, func(env *testsuite.TestWorkflowEnvironment) {
		env.OnWorkflow(workflows.RevertWorkflowName, mock.Anything, mock.Anything).Return(func(ctx workflow.Context, in workflows.RevertInput) (string, error) {
			started = append(started, in.Step+":"+in.Operation+":"+in.After.String())
			return workflows.RevertDone, nil
		})
	})
	if res.Status != workflows.RunSucceeded || len(started) != 1 || started[0] != "block:firewall.block_ip:1h0m0s" {
		t.Fatalf("result = %+v, reverts %v", res, started)
	}
}

// TestRevertWorkflow: the revert records itself pending, then either calls the
// inverse operation when its timer fires or, kept by an analyst first, stands
// down recording who kept the action and why.
func TestRevertWorkflow(t *testing.T) {
	in := workflows.RevertInput{Ref: workflows.PlaybookRef{WorkflowID: "playbook/a1/bf", RunID: "r1"}, Step: "block",
		Operation: "firewall.block_ip", Inputs: map[string]any{"ip": "203.0.113.66"}, After: time.Hour}
	// keep, when set, is sent as the KeepSignal's payload half an hour in.
	run := func(t *testing.T, keep func() any) (*actions, string) {
		t.Helper()
		a := &actions{}
		env := (&testsuite.WorkflowTestSuite{}).NewTestWorkflowEnvironment()
		workflows.Register(env)
		a.register(env)
		if keep != nil {
			env.RegisterDelayedCallback(func() { env.SignalWorkflow(workflows.KeepSignal, keep()) }, 30*time.Minute)
		}
		env.ExecuteWorkflow(workflows.RevertWorkflowName, in)
		var outcome string
		if err := env.GetWorkflowResult(&outcome); err != nil {
			t.Fatalf("revert errored: %v", err)
		}
		if len(a.records) != 2 || a.records[0].Status != workflows.StepPending || a.records[0].Name != "block.revert" ||
			a.records[0].Output.(map[string]any)["operation"] != "firewall.block_ip" {
			t.Fatalf("records = %+v", a.records)
		}
		return a, outcome
	}
	t.Run("the timer fires", func(t *testing.T) {
		a, outcome := run(t, nil)
		if outcome != workflows.RevertDone || len(a.calls) != 1 || !a.calls[0].Revert || a.calls[0].Step != "block.revert" ||
			a.calls[0].IdempotencyKey != "playbook/a1/bf/r1/block.revert" || a.records[1].Status != workflows.StepSucceeded {
			t.Fatalf("outcome %q, calls %+v, records %+v", outcome, a.calls, a.records)
		}
	})
	t.Run("kept first", func(t *testing.T) {
		a, outcome := run(t, func() any { return workflows.Actor{By: "ana", Reason: "forensics first"} })
		want := workflows.KeptRevert{Reason: "kept by ana", KeptBy: "ana", Note: "forensics first"}
		if outcome != workflows.RevertKept || len(a.calls) != 0 || a.records[1].Status != workflows.StepSkipped ||
			a.records[1].Output != want {
			t.Fatalf("outcome %q, calls %+v, records %+v", outcome, a.calls, a.records)
		}
	})
	t.Run("kept by a signal without a payload, as sent before it carried an Actor", func(t *testing.T) {
		a, outcome := run(t, func() any { return nil })
		if outcome != workflows.RevertKept || len(a.calls) != 0 || a.records[1].Output != (workflows.KeptRevert{Reason: "kept by an analyst"}) {
			t.Fatalf("outcome %q, calls %+v, records %+v", outcome, a.calls, a.records)
		}
	})
}

// TestRevisitedStepKeepsItsRevert: a reversible step that a goto runs again does
// not start a second revert under the same workflow id (which Temporal refuses
// while the first waits); the first one stands.
func TestRevisitedStepKeepsItsRevert(t *testing.T) {
	a := &actions{}
	pb := parsePlaybook(t, `
name: reblock
trigger: {when: "true"}
vars: {rounds: 0}
steps:
  - id: block
    uses: firewall.block_ip
    with: {ip: 203.0.113.66, duration: 1h}
    revert_after: 1h
  - id: count
    set: {rounds: "${{ vars.rounds + 1 }}"}
  - id: again
    switch:
      - when: vars.rounds < 3
        goto: block
      - default: done
  - id: done
    succeed: "blocked"
`)
	var started []string
	_, res := runPlaybook(t, a, workflows.PlaybookInput{Playbook: pb}, func(env *testsuite.TestWorkflowEnvironment) {
		env.OnWorkflow(workflows.RevertWorkflowName, mock.Anything, mock.Anything).Return(func(ctx workflow.Context, in workflows.RevertInput) (string, error) {
			started = append(started, workflow.GetInfo(ctx).WorkflowExecution.ID)
			// The revert waits out its delay, as a real one does, while the run goes on.
			if err := workflow.Sleep(ctx, in.After); err != nil {
				return "", err
			}
			return workflows.RevertDone, nil
		})
	})
	if res.Status != workflows.RunSucceeded || len(a.calls) != 3 || len(started) != 1 || started[0] != "revert/playbook/test/block" {
		t.Fatalf("result = %+v, %d calls, reverts started %v", res, len(a.calls), started)
	}
}

func TestParseRevertWorkflowID(t *testing.T) {
	for _, pb := range []string{"playbook/0194-abc/block-ip", "playbook/0194-abc/outer/call/step_2"} {
		for _, step := range []string{"block", "isolate[2][0]"} {
			gotPB, gotStep, ok := workflows.ParseRevertWorkflowID(workflows.RevertWorkflowID(pb, step))
			if !ok || gotPB != pb || gotStep != step {
				t.Errorf("parse(%q, %q) = %q, %q, %v", pb, step, gotPB, gotStep, ok)
			}
		}
	}
	for _, id := range []string{"", "alert/abc", "revert/", "revert/step", "revert/playbook/x/", "revert//step"} {
		if _, _, ok := workflows.ParseRevertWorkflowID(id); ok {
			t.Errorf("parse(%q) took it for a revert's id", id)
		}
	}
}

func TestAlertOfWorkflowID(t *testing.T) {
	const alertID = "0194c3e2-5b7a-7d4e-9f00-8a1b2c3d4e5f"
	run := workflows.PlaybookRunID(alertID, "block-ip")
	for _, id := range []string{
		run, run + "/manual-1732780000000000000", run + "/outer/call/step_2",
		workflows.RevertWorkflowID(run, "block"), workflows.RevertWorkflowID(run+"/outer/call/step_2", "isolate[2][0]"),
	} {
		if got := workflows.AlertOfWorkflowID(id); got != alertID {
			t.Errorf("AlertOfWorkflowID(%q) = %q, want %q", id, got, alertID)
		}
	}
	for _, id := range []string{"", "alert/b11f0e2a2daa1741", "playbook/", "playbook/" + alertID, "revert/alert/x/step", "playbooks/x/y"} {
		if got := workflows.AlertOfWorkflowID(id); got != "" {
			t.Errorf("AlertOfWorkflowID(%q) = %q, want none", id, got)
		}
	}
}
