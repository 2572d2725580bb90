package pbtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/rampart-soar/rampart/integrations"
	"github.com/rampart-soar/rampart/playbook"
	"github.com/rampart-soar/rampart/schemas"
	"github.com/rampart-soar/rampart/server/ingest"
	"github.com/rampart-soar/rampart/workflows"
)

// ErrTypeMock is the error type of a mocked failure; it is final, so a mocked
// error is seen once rather than retried.
const ErrTypeMock = "MockError"

// call is one operation the run called.
type call struct {
	Step, Operation string
	Inputs          map[string]any
	Simulated       bool
}

// recorder plays the action and record activities.
type recorder struct {
	c   *Case
	env *testsuite.TestWorkflowEnvironment

	mu        sync.Mutex
	calls     []call
	steps     []workflows.StepRecord
	answered  map[string]bool
	answerErr []string
}

// action answers an operation from the mocks, as the real activity would: a dry
// run records contain and notify operations and answers with their simulated
// output; everything else answers with its mock, or the simulated output.
func (r *recorder) action(_ context.Context, in workflows.ActionInput) (workflows.ActionOutput, error) {
	op, inputs, err := integrations.Resolve(in.Operation, in.Inputs, in.Revert)
	if err != nil {
		return workflows.ActionOutput{}, temporal.NewNonRetryableApplicationError(err.Error(), workflows.ErrTypeConfig, nil)
	}
	name := op.Name
	simulated := in.DryRun && op.SideEffect != schemas.SideEffectRead
	r.mu.Lock()
	r.steps = append(r.steps, in.Record...)
	r.calls = append(r.calls, call{Step: in.Step, Operation: name, Inputs: redacted(inputs), Simulated: simulated})
	r.mu.Unlock()
	out := workflows.ActionOutput{Output: op.SimulatedOutput, SideEffect: op.SideEffect, Simulated: simulated}
	if !simulated {
		if m, ok := r.mock(in.Step, name); ok {
			if m.Error != "" {
				return workflows.ActionOutput{}, temporal.NewNonRetryableApplicationError(m.Error, ErrTypeMock, nil)
			}
			if m.Output != nil {
				out.Output, _ = jsonish(m.Output).(map[string]any)
			}
		}
	}
	out.Output = playbook.Conform(out.Output, op.Output)
	return out, nil
}

// mock finds the mock for a step: by its name, its name without the foreach
// iteration, or its operation.
func (r *recorder) mock(step, operation string) (Mock, bool) {
	for _, key := range []string{step, baseStep(step), operation} {
		if m, ok := r.c.Mocks[key]; ok {
			return m, true
		}
	}
	return Mock{}, false
}

var iteration = regexp.MustCompile(`\[\d+\]`)

func baseStep(step string) string { return iteration.ReplaceAllString(step, "") }

// record keeps the steps and, when a step asks for an approval the case
// answers, injects the decision through the run's decide Update.
func (r *recorder) record(_ context.Context, in workflows.RecordInput) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.steps = append(r.steps, in.Steps...)
	p := in.Approval
	if p == nil || p.Status != workflows.ApprovalPending || r.answered[p.Step] {
		return nil
	}
	a, ok := r.c.Approvals[p.Step]
	if !ok {
		a, ok = r.c.Approvals[baseStep(p.Step)]
	}
	if !ok {
		return nil
	}
	r.answered[p.Step] = true
	decision := workflows.Approval{Step: p.Step, Approved: a.Decision == "approve", By: a.By, Reason: a.Reason, ArgsHash: p.ArgsHash}
	if decision.By == "" {
		decision.By = "playbook-test"
	}
	// Posted to the test environment's loop: it runs once this activity returns.
	r.env.RegisterDelayedCallback(func() {
		r.env.UpdateWorkflow(workflows.ApprovalUpdate, "approval/"+p.Step, &testsuite.TestUpdateCallback{
			OnAccept: func() {},
			OnReject: func(err error) {
				r.mu.Lock()
				r.answerErr = append(r.answerErr, fmt.Sprintf("approval of %s rejected: %v", p.Step, err))
				r.mu.Unlock()
			},
			OnComplete: func(any, error) {},
		}, decision)
	}, 0)
	return nil
}

// run executes one case and compares what happened with what it expects.
func run(c *Case, in workflows.PlaybookInput) ([]string, error) {
	for step, a := range c.Approvals {
		if a.Decision != "approve" && a.Decision != "deny" {
			return nil, fmt.Errorf("approvals.%s: decision is approve or deny", step)
		}
	}
	suite := &testsuite.WorkflowTestSuite{}
	suite.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	env := suite.NewTestWorkflowEnvironment()
	r := &recorder{c: c, env: env, answered: map[string]bool{}}
	workflows.Register(env)
	env.RegisterActivityWithOptions(r.action, activity.RegisterOptions{Name: workflows.ActivityPlaybookAction})
	env.RegisterActivityWithOptions(r.record, activity.RegisterOptions{Name: workflows.ActivityPlaybookRecord})
	env.ExecuteWorkflow(workflows.PlaybookWorkflowName, in)
	if !env.IsWorkflowCompleted() {
		return nil, fmt.Errorf("the run did not complete")
	}
	var res workflows.PlaybookResult
	if err := env.GetWorkflowResult(&res); err != nil {
		return nil, fmt.Errorf("the run errored: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	failures := append([]string(nil), r.answerErr...)
	return append(failures, c.Expect.compare(res, r.taken(), r.calls)...), nil
}

// taken are the steps the run took, in the order they finished (reverts, which
// outlive the run, left out).
func (r *recorder) taken() []workflows.StepRecord {
	seen := map[int]bool{}
	var out []workflows.StepRecord
	for _, s := range r.steps {
		if s.Kind == "revert" || seen[s.Seq] {
			continue
		}
		seen[s.Seq] = true
		out = append(out, s)
	}
	sortBySeq(out)
	return out
}

func sortBySeq(steps []workflows.StepRecord) {
	for i := 1; i < len(steps); i++ {
		for j := i; j > 0 && steps[j].Seq < steps[j-1].Seq; j-- {
			steps[j], steps[j-1] = steps[j-1], steps[j]
		}
	}
}

// compare lists every difference between what was expected and what happened.
func (e *Expect) compare(res workflows.PlaybookResult, steps []workflows.StepRecord, calls []call) []string {
	var out []string
	if e.Status != "" && res.Status != e.Status {
		out = append(out, fmt.Sprintf("status: want %s, got %s (%s)", e.Status, res.Status, res.Message))
	}
	if e.Message != "" && !strings.Contains(res.Message, e.Message) {
		out = append(out, fmt.Sprintf("message: want it to contain %q, got %q", e.Message, res.Message))
	}
	if e.Steps != nil {
		want, got := e.stepLines(steps)
		if e.AnyOrder {
			slices.Sort(want)
			slices.Sort(got)
		}
		if d := diffLines(want, got); d != "" {
			out = append(out, "steps (- want, + got):\n"+d)
		}
	}
	if e.Actions != nil {
		if e.AnyOrder {
			calls = matchOrder(e.Actions, calls)
		}
		if d := compareActions(e.Actions, calls); d != "" {
			out = append(out, "actions (- want, + got):\n"+d)
		}
	}
	for name, want := range e.Outputs {
		got, ok := res.Outputs[name]
		if !ok || !reflect.DeepEqual(jsonish(want), jsonish(got)) {
			out = append(out, fmt.Sprintf("outputs.%s: want %s, got %s", name, show(want), show(got)))
		}
	}
	return out
}

// stepLines renders the expected steps and the taken ones alike: "id", or
// "id: status" for a step whose expectation names a status.
func (e *Expect) stepLines(steps []workflows.StepRecord) (want, got []string) {
	withStatus := map[string]bool{}
	for _, s := range e.Steps {
		switch s := s.(type) {
		case string:
			want = append(want, s)
		case map[string]any:
			for id, status := range s {
				want = append(want, fmt.Sprintf("%s: %v", id, status))
				withStatus[id] = true
			}
		default:
			want = append(want, fmt.Sprint(s))
		}
	}
	for _, s := range steps {
		if withStatus[s.Name] {
			got = append(got, s.Name+": "+s.Status)
		} else {
			got = append(got, s.Name)
		}
	}
	return want, got
}

func compareActions(want []ExpectedAction, calls []call) string {
	var w, g []string
	for i, a := range want {
		w = append(w, callLine(a.Uses, a.With))
		if i >= len(calls) {
			continue
		}
		c := calls[i]
		line := callLine(c.Operation, subset(c.Inputs, a.With))
		if a.Uses != c.Operation || !matches(a.With, c.Inputs) {
			line = callLine(c.Operation, c.Inputs)
		}
		if a.Step != "" && a.Step != c.Step {
			line += " at step " + c.Step
			w[i] += " at step " + a.Step
		}
		if a.Simulated != nil && *a.Simulated != c.Simulated {
			line += fmt.Sprintf(" (simulated: %v)", c.Simulated)
			w[i] += fmt.Sprintf(" (simulated: %v)", *a.Simulated)
		}
		g = append(g, line)
	}
	for _, c := range calls[min(len(want), len(calls)):] {
		g = append(g, callLine(c.Operation, c.Inputs))
	}
	return diffLines(w, g)
}

// matchOrder reorders the calls to follow the expectations where a call matches
// one, the rest after them in their own order: comparing as sets.
func matchOrder(want []ExpectedAction, calls []call) []call {
	left := append([]call(nil), calls...)
	var out []call
	for _, a := range want {
		for i, c := range left {
			if c.Operation == a.Uses && matches(a.With, c.Inputs) && (a.Step == "" || a.Step == c.Step) {
				out = append(out, c)
				left = append(left[:i], left[i+1:]...)
				break
			}
		}
	}
	return append(out, left...)
}

func callLine(op string, inputs map[string]any) string {
	if len(inputs) == 0 {
		return op
	}
	return op + " " + show(inputs)
}

// matches reports whether every input the expectation names has that value.
func matches(want, got map[string]any) bool {
	for k, v := range want {
		if !reflect.DeepEqual(jsonish(v), jsonish(got[k])) {
			return false
		}
	}
	return true
}

func subset(m map[string]any, keys map[string]any) map[string]any {
	out := map[string]any{}
	for k := range keys {
		if v, ok := m[k]; ok {
			out[k] = v
		}
	}
	return out
}

// diffLines shows two lists line by line: equal lines indented, differing ones
// as - want / + got. Empty when they are equal.
func diffLines(want, got []string) string {
	if reflect.DeepEqual(want, got) || (len(want) == 0 && len(got) == 0) {
		return ""
	}
	var b strings.Builder
	for i := 0; i < max(len(want), len(got)); i++ {
		switch {
		case i < len(want) && i < len(got) && want[i] == got[i]:
			fmt.Fprintf(&b, "      %s\n", want[i])
		default:
			if i < len(want) {
				fmt.Fprintf(&b, "    - %s\n", want[i])
			}
			if i < len(got) {
				fmt.Fprintf(&b, "    + %s\n", got[i])
			}
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

// jsonish normalizes a value to what JSON decoding gives (numbers as float64),
// so a YAML 3 equals a workflow's 3.0.
func jsonish(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}

func show(v any) string {
	if v == nil {
		return "{}"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func redacted(in map[string]any) map[string]any {
	out, _ := workflows.RedactSecrets(in).(map[string]any)
	return out
}

// noStarter stands in for Temporal when a fixture is only normalized.
type noStarter struct{}

func (noStarter) StartAlert(context.Context, ingest.StartRequest) (ingest.StartResult, error) {
	return ingest.StartResult{}, fmt.Errorf("not started: a playbook test only normalizes")
}
