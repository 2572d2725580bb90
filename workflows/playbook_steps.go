package workflows

import (
	"fmt"
	"maps"
	"slices"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/rampart-soar/rampart/playbook"
	"github.com/rampart-soar/rampart/schemas"
)

// action runs an integration operation, after its approval when it needs one.
func (it *interpreter) action(ctx workflow.Context, s *playbook.Step, name string, env *playbook.Env) stepResult {
	rendered, err := it.rt.Render(s.With, env)
	if err != nil {
		return stepResult{status: StepFailed, err: fmt.Errorf("with: %w", err)}
	}
	inputs, _ := rendered.(map[string]any)
	if inputs == nil {
		inputs = map[string]any{}
	}
	var approvedBy string
	if s.Approval != nil {
		if approvedBy, err = it.approve(ctx, s, name, inputs); err != nil {
			return stepResult{status: StepFailed, err: err, input: inputs}
		}
	}
	var out ActionOutput
	batch := it.takePending()
	in := ActionInput{
		Ref: it.ref, Step: name, Operation: s.Uses, Inputs: inputs, DryRun: it.dryRun,
		IdempotencyKey: ActionKey(it.ref, name),
		ApprovedBy:     approvedBy,
		Record:         batch,
	}
	err = actionCall(ctx, actionOptions(s), ActivityPlaybookAction, in, &out)
	if err == nil {
		it.confirm(batch) // written by the activity
	}
	if err != nil {
		return stepResult{status: StepFailed, err: fmt.Errorf("%s: %s", s.Uses, it.errorText(ctx, err)), input: inputs}
	}
	if out.SideEffect == schemas.SideEffectContain || out.SideEffect == schemas.SideEffectNotify {
		it.actions = append(it.actions, PerformedAction{Step: name, Operation: s.Uses, SideEffect: out.SideEffect,
			Inputs: inputs, Simulated: out.Simulated})
	}
	if s.RevertAfter != "" && !out.Simulated {
		if err := it.scheduleRevert(ctx, s, name, inputs); err != nil {
			return stepResult{status: StepFailed, err: err, input: inputs, output: out.Output}
		}
	}
	return stepResult{output: out.Output, input: inputs}
}

// actionOptions are an action's timeout and bounded retries; a 4xx answer (but
// 408/429) and a configuration error are final.
func actionOptions(s *playbook.Step) workflow.ActivityOptions {
	if s == nil {
		s = &playbook.Step{}
	}
	timeout := defaultActionTimeout
	if d, err := playbook.ParseDuration(s.Timeout); err == nil && s.Timeout != "" {
		timeout = d
	}
	retry := &temporal.RetryPolicy{
		InitialInterval:        time.Second,
		BackoffCoefficient:     2,
		MaximumInterval:        time.Minute,
		MaximumAttempts:        defaultActionAttempts,
		NonRetryableErrorTypes: []string{ErrTypeHTTP4xx, ErrTypeConfig, ErrTypeGuardrail},
	}
	if r := s.Retry; r != nil {
		if r.MaxAttempts > 0 {
			retry.MaximumAttempts = int32(r.MaxAttempts)
		}
		if d, err := playbook.ParseDuration(r.InitialInterval); err == nil && r.InitialInterval != "" {
			retry.InitialInterval = d
		}
		if r.Backoff >= 1 {
			retry.BackoffCoefficient = r.Backoff
		}
		if d, err := playbook.ParseDuration(r.MaxInterval); err == nil && r.MaxInterval != "" {
			retry.MaximumInterval = d
		}
	}
	return workflow.ActivityOptions{
		StartToCloseTimeout: timeout,
		HeartbeatTimeout:    max(timeout/4, 15*time.Second),
		RetryPolicy:         retry,
	}
}

// approve waits for a human decision on an action: a decide Update naming the
// step. On timeout the approval escalates once when the step says so; then it
// fails the step, or denies it with on_timeout: deny. Each change is mirrored to
// the store for the inbox.
func (it *interpreter) approve(ctx workflow.Context, s *playbook.Step, name string, inputs map[string]any) (approvedBy string, err error) {
	timeout := defaultApprovalTimeout
	if d, err := playbook.ParseDuration(s.Approval.Timeout); err == nil && s.Approval.Timeout != "" {
		timeout = d
	}
	now := workflow.Now(ctx)
	p := &PendingApproval{ID: ApprovalID(it.ref.WorkflowID, it.ref.RunID, name), Step: name, Operation: s.Uses,
		Inputs: inputs, ArgsHash: ArgsHash(s.Uses, inputs), Approvers: s.Approval.Approvers,
		Since: now, Deadline: now.Add(timeout), Status: ApprovalPending}
	it.approvals[name] = p
	defer delete(it.approvals, name)
	it.recordApproval(ctx, p)
	decided := func() bool { return it.decisions[name] != nil }
	ok, err := workflow.AwaitWithTimeout(ctx, timeout, decided)
	if err != nil {
		it.closeCancelled(ctx, p)
		return "", err
	}
	if !ok && s.Approval.OnTimeout == "escalate" {
		p.Approvers, p.Deadline = s.Approval.EscalateTo, workflow.Now(ctx).Add(timeout)
		it.recordApproval(ctx, p)
		if ok, err = workflow.AwaitWithTimeout(ctx, timeout, decided); err != nil {
			it.closeCancelled(ctx, p)
			return "", err
		}
	}
	p.DecidedAt = workflow.Now(ctx)
	if !ok {
		p.Status = ApprovalExpired
		if s.Approval.OnTimeout == "deny" {
			p.Status, p.DecidedBy, p.Reason = ApprovalDenied, "timeout", "no decision in time: denied by policy"
		}
		it.recordApproval(ctx, p)
		if p.Status == ApprovalDenied {
			return "", fmt.Errorf("denied: no decision within %s", timeout)
		}
		return "", fmt.Errorf("approval timed out after %s", timeout)
	}
	d := it.decisions[name]
	delete(it.decisions, name)
	p.Status, p.DecidedBy, p.Reason = ApprovalApproved, d.By, d.Reason
	if !d.Approved {
		p.Status = ApprovalDenied
	}
	it.recordApproval(ctx, p)
	if !d.Approved {
		return "", fmt.Errorf("denied by %s: %s", d.By, d.Reason)
	}
	return d.By, nil
}

// closeCancelled closes the approval of a step cancelled while it waited (its
// branch, its step's timeout or its run), so the inbox does not offer a decision
// nobody can make.
func (it *interpreter) closeCancelled(ctx workflow.Context, p *PendingApproval) {
	if !it.cancelled(ctx) {
		return
	}
	p.Status, p.DecidedAt, p.Reason = ApprovalCancelled, workflow.Now(ctx), "the step was cancelled before a decision (its branch, its step's timeout or its run)"
	dctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	it.recordApproval(dctx, p)
}

func (it *interpreter) recordApproval(ctx workflow.Context, p *PendingApproval) {
	snapshot := *p
	it.record(ctx, &RecordInput{Ref: it.ref, Approval: &snapshot})
}

// versionRevertOnce marks runs in which a step run again by a goto keeps its first
// revert. It is asked only on such a second run, so other runs record no marker.
const (
	versionRevertOnce = "revert-once-per-step"
	revertOnce        = 1
)

// scheduleRevert starts the durable revert of an action as its own workflow, so
// this run can finish: after the delay it calls the operation's inverse, unless
// a KeepSignal reaches it first.
//
// A step a goto runs again keeps the revert its first run scheduled: a contain
// action is keyed by run and step, so the vendor was asked once, and the
// revert's workflow id is the step's. (Before versionRevertOnce a second start
// was tried, and failed the step.)
func (it *interpreter) scheduleRevert(ctx workflow.Context, s *playbook.Step, name string, inputs map[string]any) error {
	after, err := playbook.ParseDuration(s.RevertAfter)
	if err != nil {
		return err
	}
	if it.reverts[name] && workflow.GetVersion(ctx, versionRevertOnce, workflow.DefaultVersion, revertOnce) >= revertOnce {
		return nil
	}
	if it.reverts == nil {
		it.reverts = map[string]bool{}
	}
	it.reverts[name] = true
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:        RevertWorkflowID(it.ref.WorkflowID, name),
		ParentClosePolicy: enumspb.PARENT_CLOSE_POLICY_ABANDON, // the revert outlives this run
	})
	child := workflow.ExecuteChildWorkflow(cctx, RevertWorkflowName, RevertInput{
		Ref: it.ref, Step: name, Operation: s.Uses, Inputs: inputs, After: after, DryRun: it.dryRun,
	})
	// Wait only until the child has started: its start is what makes it durable.
	return child.GetChildWorkflowExecution().Get(ctx, nil)
}

// wait pauses for a duration, or until a condition holds; the condition is
// re-evaluated whenever the run's state changes (a signal, another branch's step).
func (it *interpreter) wait(ctx workflow.Context, s *playbook.Step, local, items map[string]any) stepResult {
	w := s.Wait
	if w.Duration != "" {
		d, err := playbook.ParseDuration(w.Duration)
		if err != nil {
			return stepResult{status: StepFailed, err: err}
		}
		if err := workflow.Sleep(ctx, d); err != nil {
			return stepResult{status: StepFailed, err: err}
		}
		return stepResult{output: map[string]any{"waited": w.Duration}}
	}
	timeout, err := playbook.ParseDuration(w.Timeout)
	if err != nil {
		return stepResult{status: StepFailed, err: err}
	}
	var evalErr error
	cond := func() bool {
		it.rt.SetNow(workflow.Now(ctx))
		ok, err := it.rt.EvalBool(w.Until, it.env(local, items))
		evalErr = err
		return ok || err != nil
	}
	ok, err := workflow.AwaitWithTimeout(ctx, timeout, cond)
	switch {
	case err != nil:
		return stepResult{status: StepFailed, err: err}
	case evalErr != nil:
		return stepResult{status: StepFailed, err: evalErr}
	case !ok:
		return stepResult{status: StepFailed, err: fmt.Errorf("until did not hold within %s", w.Timeout)}
	}
	return stepResult{output: map[string]any{"until": true}}
}

// foreach runs its steps once per item, at most concurrency at a time, and
// collects each iteration's step outputs in item order.
func (it *interpreter) foreach(ctx workflow.Context, s *playbook.Step, name string, local, items map[string]any, suffix string) stepResult {
	f := s.Foreach
	src := f.Items
	var value any
	var err error
	if playbook.HasExpression(src) {
		value, err = it.rt.Render(src, it.env(local, items))
	} else {
		value, err = it.rt.Eval(src, it.env(local, items))
	}
	if err != nil {
		return stepResult{status: StepFailed, err: fmt.Errorf("items: %w", err)}
	}
	list, err := toList(value)
	if err != nil {
		return stepResult{status: StepFailed, err: err}
	}
	limit := max(f.Concurrency, 1)
	results := make([]any, len(list))
	ends := make([]*runEnd, len(list))
	running, done, started := 0, 0, 0
	for i, item := range list {
		if err = workflow.Await(ctx, func() bool { return running < limit }); err != nil {
			break
		}
		running++
		started++
		iterItems := map[string]any{}
		for _, k := range slices.Sorted(maps.Keys(items)) {
			iterItems[k] = items[k]
		}
		iterItems[f.ItemName()] = item
		iterSuffix := fmt.Sprintf("%s[%d]", suffix, i)
		workflow.Go(ctx, func(ctx workflow.Context) {
			iterLocal := map[string]any{}
			for _, k := range slices.Sorted(maps.Keys(local)) {
				iterLocal[k] = local[k]
			}
			ends[i] = it.runList(ctx, f.Steps, iterLocal, iterItems, iterSuffix)
			outputs := map[string]any{}
			for _, st := range f.Steps {
				if state, ok := iterLocal[st.ID].(map[string]any); ok {
					outputs[st.ID] = state["output"]
				}
			}
			results[i] = outputs
			running--
			done++
		})
	}
	if err == nil {
		err = workflow.Await(ctx, func() bool { return done == len(list) })
	}
	if err != nil {
		if !it.cancelled(ctx) {
			return stepResult{status: StepFailed, err: err}
		}
		// Cancelled: start no more items, and wait while those under way record
		// where they stopped.
		it.awaitWoundDown(ctx, func() bool { return done == started })
		return stepResult{status: StepFailed, output: results, err: err}
	}
	for i, e := range ends {
		if e != nil && e.status == RunFailed {
			return stepResult{status: StepFailed, output: results, err: fmt.Errorf("item %d: %s", i, e.message)}
		}
	}
	return stepResult{output: results}
}

// versionStepTimeout marks runs in which a parallel, foreach, wait or call step's
// own timeout bounds it (an action's bounds each attempt, as before). Asked only
// for such a step with a timeout.
const (
	versionStepTimeout = "composite-step-timeout"
	stepTimeout        = 1
)

// stepTimeout is how long a parallel, foreach, wait or call step may take, when
// it says.
func (it *interpreter) stepTimeout(ctx workflow.Context, s *playbook.Step) (time.Duration, bool) {
	if s.Timeout == "" || !s.Bounded() {
		return 0, false
	}
	limit, err := playbook.ParseDuration(s.Timeout)
	if err != nil || workflow.GetVersion(ctx, versionStepTimeout, workflow.DefaultVersion, stepTimeout) < stepTimeout {
		return 0, false
	}
	return limit, true
}

// within runs a step for at most limit. When the time is up it cancels the step
// and waits while what runs inside winds down (versionWindDown): branches and
// iterations record where they stopped, a called run is cancelled.
func (it *interpreter) within(ctx workflow.Context, limit time.Duration, text string, run func(workflow.Context) stepResult) stepResult {
	sctx, cancel := workflow.WithCancel(ctx)
	defer cancel()
	var res stepResult
	done := false
	workflow.Go(sctx, func(ctx workflow.Context) {
		res = run(ctx)
		done = true
	})
	finished, err := workflow.AwaitWithTimeout(ctx, limit, func() bool { return done })
	if finished {
		return res
	}
	cancel()
	if it.cancelled(sctx) {
		it.awaitWoundDown(ctx, func() bool { return done })
	}
	if err != nil { // cancelled from outside before its time was up
		return stepResult{status: StepFailed, output: res.output, input: res.input, err: err}
	}
	return stepResult{status: StepFailed, output: res.output, input: res.input, err: fmt.Errorf("timed out after %s", text)}
}

// awaitWoundDown waits until cond holds, on a context the cancellation does not
// reach: cancelled work gets to record where it stopped before its step ends.
func (it *interpreter) awaitWoundDown(ctx workflow.Context, cond func() bool) {
	dctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	_ = workflow.Await(dctx, cond)
}

// versionWindDown marks runs in which cancelled work winds down: a parallel step
// that cancels its unfinished branches (join any) waits for them to stop; a
// cancelled branch, or a cancelled run, stops at its next step, records the step
// it was in as cancelled and closes that step's approval. Asked only once
// something is cancelled, so other runs record no marker.
const (
	versionWindDown = "cancelled-branches-wind-down"
	windDown        = 1
)

// cancelled says ctx was cancelled and this run winds cancelled work down.
func (it *interpreter) cancelled(ctx workflow.Context) bool {
	return ctx.Err() != nil && workflow.GetVersion(ctx, versionWindDown, workflow.DefaultVersion, windDown) >= windDown
}

// parallel runs its branches side by side. join all waits for every branch; join
// any finishes with the first branch to succeed and cancels the rest. With
// on_failure fail (the default) a failed branch fails the step.
func (it *interpreter) parallel(ctx workflow.Context, s *playbook.Step, local, items map[string]any, suffix string) stepResult {
	p := s.Parallel
	bctx, cancel := workflow.WithCancel(ctx)
	defer cancel()
	type branchEnd struct {
		done bool
		end  *runEnd
	}
	ends := make([]branchEnd, len(p.Branches))
	finished, succeeded := 0, -1
	for i, b := range p.Branches {
		workflow.Go(bctx, func(ctx workflow.Context) {
			end := it.runList(ctx, b.Steps, local, items, suffix)
			ends[i] = branchEnd{done: true, end: end}
			finished++
			if (end == nil || end.status == RunSucceeded) && succeeded < 0 {
				succeeded = i
			}
		})
	}
	anyJoin := p.Join == "any"
	err := workflow.Await(ctx, func() bool {
		return finished == len(p.Branches) || (anyJoin && succeeded >= 0)
	})
	if err != nil && !it.cancelled(ctx) {
		return stepResult{status: StepFailed, err: err}
	}
	cancel()
	cancelled := make([]bool, len(ends))
	for i, e := range ends {
		cancelled[i] = !e.done
	}
	if slices.Contains(cancelled, true) && it.cancelled(bctx) {
		// A cancelled branch stops at its next step: wait while it records where
		// it stopped and closes an approval it waited on.
		it.awaitWoundDown(ctx, func() bool { return finished == len(p.Branches) })
	}
	output := map[string]any{}
	var failed []string
	for i, b := range p.Branches {
		e := ends[i]
		st := map[string]any{"status": StepSucceeded}
		switch {
		case cancelled[i]:
			st["status"] = StepCancelled
		case e.end != nil && e.end.status == RunFailed:
			st["status"], st["error"] = StepFailed, e.end.message
			failed = append(failed, b.Name+": "+e.end.message)
		}
		output[b.Name] = st
	}
	if err != nil { // the step itself was cancelled
		return stepResult{status: StepFailed, output: output, err: err}
	}
	if anyJoin && succeeded < 0 {
		return stepResult{status: StepFailed, output: output, err: fmt.Errorf("no branch succeeded: %v", failed)}
	}
	if !anyJoin && len(failed) > 0 && p.OnFailure != "continue" {
		return stepResult{status: StepFailed, output: output, err: fmt.Errorf("branches failed: %v", failed)}
	}
	return stepResult{output: output}
}

// versionCallWindDown marks runs whose call steps, when cancelled, wait for the
// called run to wind down.
const (
	versionCallWindDown = "call-waits-for-cancellation"
	callWindDown        = 1
)

// call runs another pinned playbook as a child workflow and returns its outputs.
func (it *interpreter) call(ctx workflow.Context, s *playbook.Step, name string, env *playbook.Env) stepResult {
	callee, ok := it.in.Callees[s.Call.Playbook]
	if !ok {
		return stepResult{status: StepFailed, err: fmt.Errorf("playbook %q was not pinned for this run", s.Call.Playbook)}
	}
	with, err := it.rt.Render(s.Call.With, env)
	if err != nil {
		return stepResult{status: StepFailed, err: fmt.Errorf("with: %w", err)}
	}
	inputs, _ := with.(map[string]any)
	opts := workflow.ChildWorkflowOptions{WorkflowID: it.ref.WorkflowID + "/call/" + name}
	// A cancelled call (its branch or its step's time ran out) waits while the
	// called run winds down and records where it stopped.
	opts.WaitForCancellation = workflow.GetVersion(ctx, versionCallWindDown, workflow.DefaultVersion, callWindDown) >= callWindDown
	cctx := workflow.WithChildOptions(ctx, opts)
	var res PlaybookResult
	err = workflow.ExecuteChildWorkflow(cctx, PlaybookWorkflowName, PlaybookInput{
		Playbook: callee, Callees: it.in.Callees, Alert: it.in.Alert, Detection: it.in.Detection,
		Enrichment: it.in.Enrichment, Inputs: inputs, DryRun: it.dryRun,
		StepBudget: it.budget - it.used, AlertID: it.in.AlertID,
	}).Get(ctx, &res)
	if err != nil {
		return stepResult{status: StepFailed, err: fmt.Errorf("call %s: %s", s.Call.Playbook, it.errorText(ctx, err)), input: inputs}
	}
	it.used += res.Steps
	it.actions = append(it.actions, res.Actions...)
	if res.Status != RunSucceeded {
		return stepResult{status: StepFailed, err: fmt.Errorf("call %s failed: %s", s.Call.Playbook, res.Message), input: inputs, output: res.Outputs}
	}
	return stepResult{output: res.Outputs, input: inputs}
}

// record writes finished steps (and the run's start or result) to the store,
// waiting out a store outage. Failing past that is logged, not fatal: the outcome
// is in this run's history.
func (it *interpreter) record(ctx workflow.Context, in *RecordInput) {
	in.Steps = it.takePending()
	err := storeCall(ctx, ActivityPlaybookRecord, *in, nil)
	if err != nil {
		workflow.GetLogger(ctx).Error("recording playbook steps failed", "playbook", it.pb.Name, "error", err)
		return
	}
	it.confirm(in.Steps)
}
