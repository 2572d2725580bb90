package pbtest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"sort"
	"sync"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/rampart-soar/rampart/integrations"
	"github.com/rampart-soar/rampart/playbook"
	"github.com/rampart-soar/rampart/schemas"
	"github.com/rampart-soar/rampart/workflows"
)

// ErrTypeAnswer is the error type of an answered failure; it is final, so an
// answered error is seen once rather than retried.
const ErrTypeAnswer = "AnsweredError"

// Call is one operation a run called (a revert's inverse included).
type Call struct {
	Step, Operation string
	SideEffect      string
	// Inputs are the rendered inputs, secrets shown as [secret name].
	Inputs map[string]any
	// Simulated: a dry run recorded the call instead of making it.
	Simulated bool
}

// Answers stand for the world outside an offline run.
type Answers struct {
	// Action answers a call, simulated ones (a dry run's contain and notify
	// operations) included; ok false means "no answer": the operation's declared
	// simulated output.
	Action func(c Call) (output map[string]any, err error, ok bool)
	// Approval answers the approval a step asks for (Step and ArgsHash are filled
	// in); nil leaves it unanswered, to time out.
	Approval func(step string) *workflows.Approval
}

// Outcome is what an offline run did.
type Outcome struct {
	Result workflows.PlaybookResult
	// Steps are the steps taken, in the order they finished; reverts, which
	// outlive the run, are left out.
	Steps []workflows.StepRecord
	// Calls are every operation called, in order.
	Calls []Call
	// Problems are answers the run refused (an approval its validator rejected).
	Problems []string
}

// Execute runs a playbook on Temporal's test environment: the real interpreter,
// with timers skipped, offline. Actions and approvals are answered by a.
func Execute(in workflows.PlaybookInput, a Answers) (Outcome, error) {
	suite := &testsuite.WorkflowTestSuite{}
	suite.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	env := suite.NewTestWorkflowEnvironment()
	r := &recorder{answers: a, env: env, answered: map[string]bool{}}
	workflows.Register(env)
	env.RegisterActivityWithOptions(r.action, activity.RegisterOptions{Name: workflows.ActivityPlaybookAction})
	env.RegisterActivityWithOptions(r.record, activity.RegisterOptions{Name: workflows.ActivityPlaybookRecord})
	env.ExecuteWorkflow(workflows.PlaybookWorkflowName, in)
	if !env.IsWorkflowCompleted() {
		return Outcome{}, fmt.Errorf("the run did not complete")
	}
	var res workflows.PlaybookResult
	if err := env.GetWorkflowResult(&res); err != nil {
		return Outcome{}, fmt.Errorf("the run errored: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return Outcome{Result: res, Steps: r.taken(), Calls: r.calls, Problems: r.problems}, nil
}

// recorder plays the action and record activities.
type recorder struct {
	answers Answers
	env     *testsuite.TestWorkflowEnvironment

	mu       sync.Mutex
	calls    []Call
	steps    []workflows.StepRecord
	answered map[string]bool
	problems []string
}

// action answers an operation as the real activity would, from the Answers, else
// with the operation's simulated output. A dry run's contain and notify
// operations are marked simulated either way.
func (r *recorder) action(_ context.Context, in workflows.ActionInput) (workflows.ActionOutput, error) {
	op, inputs, err := integrations.Resolve(in.Operation, in.Inputs, in.Revert)
	if err != nil {
		return workflows.ActionOutput{}, temporal.NewNonRetryableApplicationError(err.Error(), workflows.ErrTypeConfig, nil)
	}
	c := Call{Step: in.Step, Operation: op.Name, SideEffect: op.SideEffect,
		Simulated: in.DryRun && op.SideEffect != schemas.SideEffectRead}
	c.Inputs, _ = workflows.RedactSecrets(inputs).(map[string]any)
	r.mu.Lock()
	r.steps = append(r.steps, in.Record...)
	r.calls = append(r.calls, c)
	r.mu.Unlock()
	out := workflows.ActionOutput{Output: op.SimulatedOutput, SideEffect: op.SideEffect, Simulated: c.Simulated}
	if r.answers.Action != nil {
		output, err, ok := r.answers.Action(c)
		if err != nil {
			return workflows.ActionOutput{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeAnswer, nil)
		}
		if ok {
			out.Output, _ = jsonish(output).(map[string]any)
		}
	}
	out.Output = playbook.Conform(out.Output, op.Output)
	return out, nil
}

var iteration = regexp.MustCompile(`\[\d+\]`)

// BaseStep is a step name without its foreach iterations: isolate[2] → isolate.
func BaseStep(step string) string { return iteration.ReplaceAllString(step, "") }

// record keeps the steps and, when a step asks for an approval the Answers
// give, injects the decision through the run's decide Update.
func (r *recorder) record(_ context.Context, in workflows.RecordInput) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.steps = append(r.steps, in.Steps...)
	p := in.Approval
	if p == nil || p.Status != workflows.ApprovalPending || r.answered[p.Step] || r.answers.Approval == nil {
		return nil
	}
	decision := r.answers.Approval(p.Step)
	if decision == nil {
		return nil
	}
	r.answered[p.Step] = true
	d := *decision
	d.Step, d.ArgsHash = p.Step, p.ArgsHash
	// Posted to the test environment's loop: it runs once this activity returns.
	r.env.RegisterDelayedCallback(func() {
		r.env.UpdateWorkflow(workflows.ApprovalUpdate, "approval/"+p.Step, &testsuite.TestUpdateCallback{
			OnAccept: func() {},
			OnReject: func(err error) {
				r.mu.Lock()
				r.problems = append(r.problems, fmt.Sprintf("approval of %s rejected: %v", p.Step, err))
				r.mu.Unlock()
			},
			OnComplete: func(any, error) {},
		}, d)
	}, 0)
	return nil
}

// taken are the steps the run took, in the order they finished.
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
	sort.SliceStable(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out
}
