package workflows

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/rampart-soar/rampart/playbook"
)

// Defaults of an action step without its own timeout or retry.
const (
	defaultActionTimeout   = 2 * time.Minute
	defaultApprovalTimeout = 24 * time.Hour
	defaultActionAttempts  = 5
)

// PlaybookWorkflow interprets one pinned playbook definition: its steps in order,
// with goto, conditions, parallel branches, bounded foreach, waits, approvals,
// child playbooks and timed reverts. Every step's outcome is recorded in the store.
func PlaybookWorkflow(ctx workflow.Context, in PlaybookInput) (PlaybookResult, error) {
	it := &interpreter{in: in}
	ctx = withStoreWait(ctx, &it.waiting)
	if err := it.setup(ctx); err != nil {
		return PlaybookResult{}, err
	}
	return it.run(ctx)
}

type interpreter struct {
	in     PlaybookInput
	pb     *playbook.Playbook
	ref    PlaybookRef
	rt     *playbook.Runtime
	dryRun bool
	budget int
	// waiting says why the run waits for the store, while it does.
	waiting string

	vars      map[string]any
	steps     map[string]any // id → {"output", "status", "error"} of steps outside foreach
	used      int            // steps executed, against budget
	seq       int
	events    int
	position  []string
	approvals map[string]*PendingApproval
	decisions map[string]*Approval
	reverts   map[string]bool // steps whose revert this run has scheduled
	status    string

	pending []StepRecord // finished steps the store has not confirmed yet
	actions []PerformedAction
}

// takePending copies the steps to write; confirm drops them once written. Steps
// that finish while a write is in flight (other branches) stay pending.
func (it *interpreter) takePending() []StepRecord { return append([]StepRecord(nil), it.pending...) }

func (it *interpreter) confirm(written []StepRecord) {
	done := make(map[int]bool, len(written))
	for _, r := range written {
		done[r.Seq] = true
	}
	kept := it.pending[:0]
	for _, r := range it.pending {
		if !done[r.Seq] {
			kept = append(kept, r)
		}
	}
	it.pending = kept
}

// outcome is how a step list ended: normally, by goto to a sibling, or by ending
// the run (succeed, fail, or an error nothing handled).
type outcome struct {
	gotoID string
	end    *runEnd
}

type runEnd struct {
	status, message string
}

// versionPlainErrors marks runs whose steps.<id>.error is an activity's or child's
// own message. Runs before it read the SDK's form of it, "<message> (type: <type>,
// retryable: <bool>)", and keep reading it: a condition may test that text.
const (
	versionPlainErrors = "plain-step-errors"
	plainErrors        = 1
)

// errorText is what a failed activity or child run says in steps.<id>.error.
// The version is asked only when a step fails, so runs without failures record
// no marker.
func (it *interpreter) errorText(ctx workflow.Context, err error) string {
	if workflow.GetVersion(ctx, versionPlainErrors, workflow.DefaultVersion, plainErrors) == workflow.DefaultVersion {
		return rootError(err).Error()
	}
	return rootMessage(err)
}

func (it *interpreter) setup(ctx workflow.Context) error {
	it.pb = &it.in.Playbook.Definition
	workflowID, runID := runIdentity(ctx)
	it.ref = PlaybookRef{
		WorkflowID: workflowID, RunID: runID,
		AlertID: it.in.AlertID, Playbook: it.pb.Name, Version: it.in.Playbook.Version,
	}
	it.rt = playbook.NewRuntime()
	it.dryRun = it.in.DryRun || it.pb.Mode == "dry_run"
	it.budget = it.in.StepBudget
	if it.budget <= 0 {
		it.budget = playbook.MaxSteps
	}
	// Every step outside a foreach is visible from the start, pending, with its
	// operation's zero output: a condition on a step that has not run (or never
	// will) reads "pending", not an error.
	it.steps = map[string]any{}
	var pending func([]playbook.Step)
	pending = func(list []playbook.Step) {
		for i := range list {
			s := &list[i]
			it.steps[s.ID] = map[string]any{"output": it.in.Playbook.ZeroOutputs[s.ID], "status": StepPending, "error": ""}
			if s.Parallel != nil {
				for _, b := range s.Parallel.Branches {
					pending(b.Steps)
				}
			}
		}
	}
	pending(it.pb.Steps)
	pending(it.pb.OnFailure)
	it.approvals = map[string]*PendingApproval{}
	it.decisions = map[string]*Approval{}

	if err := workflow.SetQueryHandler(ctx, PlaybookStateQuery, func() (PlaybookState, error) {
		st := PlaybookState{Playbook: it.pb.Name, Version: it.in.Playbook.Version, Position: append([]string(nil), it.position...),
			Steps: it.used, Vars: it.vars, Status: it.status, Waiting: it.waiting}
		for _, name := range slices.Sorted(maps.Keys(it.approvals)) {
			st.Approvals = append(st.Approvals, *it.approvals[name])
		}
		return st, nil
	}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, ApprovalUpdate,
		func(ctx workflow.Context, a Approval) (string, error) {
			it.decisions[a.Step] = &a
			if a.Approved {
				return "approved", nil
			}
			return "denied", nil
		},
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, a Approval) error {
			p, waiting := it.approvals[a.Step]
			if !waiting || it.decisions[a.Step] != nil {
				return fmt.Errorf("step %q is not waiting for an approval", a.Step)
			}
			if a.ArgsHash != "" && a.ArgsHash != p.ArgsHash {
				return errors.New("the action's arguments changed since this approval was requested")
			}
			if strings.TrimSpace(a.By) == "" {
				return errors.New("an approval must say who decided")
			}
			return nil
		}},
	); err != nil {
		return err
	}
	events := workflow.GetSignalChannel(ctx, EventSignal)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for events.Receive(ctx, nil) {
			it.events++
		}
	})

	// Vars start from their declared values, rendered in name order (a var's initial
	// value may read the alert but not other vars: lint enforces it).
	it.vars = map[string]any{}
	it.rt.SetNow(workflow.Now(ctx))
	for _, name := range slices.Sorted(maps.Keys(it.pb.Vars)) {
		v, err := it.rt.Render(it.pb.Vars[name], it.env(nil, nil))
		if err != nil {
			return temporal.NewNonRetryableApplicationError(fmt.Sprintf("vars.%s: %v", name, err), "PlaybookError", nil)
		}
		it.vars[name] = v
	}
	return nil
}

// env is what an expression sees: the run's state, with the iteration-local steps
// and items of the foreach steps it sits in.
func (it *interpreter) env(local map[string]any, items map[string]any) *playbook.Env {
	steps := it.steps
	if len(local) > 0 {
		steps = make(map[string]any, len(it.steps)+len(local))
		for _, k := range slices.Sorted(maps.Keys(it.steps)) {
			steps[k] = it.steps[k]
		}
		for _, k := range slices.Sorted(maps.Keys(local)) {
			steps[k] = local[k]
		}
	}
	secrets := make(map[string]any, len(it.pb.Secrets))
	for _, name := range it.pb.Secrets {
		secrets[name] = SecretPlaceholder(name)
	}
	return &playbook.Env{
		Alert: it.in.Alert, Detect: it.in.Detection, Enrich: it.in.Enrichment,
		Run: playbook.RunInfo{ID: it.ref.RunID, WorkflowID: it.ref.WorkflowID, Playbook: it.pb.Name,
			Version: it.in.Playbook.Version, Hash: it.in.Playbook.Hash, DryRun: it.dryRun, Events: it.events},
		Vars: it.vars, Inputs: it.inputs(), Secrets: secrets, Steps: steps, Items: items,
	}
}

// inputs are the caller's values over the declared defaults.
func (it *interpreter) inputs() map[string]any {
	out := map[string]any{}
	for _, name := range slices.Sorted(maps.Keys(it.pb.Inputs)) {
		if v, ok := it.in.Inputs[name]; ok {
			out[name] = v
		} else {
			out[name] = it.pb.Inputs[name].Default
		}
	}
	return out
}

func (it *interpreter) run(ctx workflow.Context) (PlaybookResult, error) {
	started := workflow.Now(ctx)
	it.record(ctx, &RecordInput{Ref: it.ref, Started: &started, DryRun: it.dryRun, RequestedBy: it.in.RequestedBy})
	end := it.runList(ctx, it.pb.Steps, nil, nil, "")
	result := PlaybookResult{Status: RunSucceeded}
	if end != nil {
		result.Status, result.Message = end.status, end.message
	}
	if it.cancelled(ctx) {
		// The run itself was cancelled (the step that called it timed out, or an
		// operator): it has stopped where it was; record that, on a context the
		// cancellation does not reach.
		result = PlaybookResult{Status: RunFailed, Message: "the run was cancelled"}
		dctx, cancel := workflow.NewDisconnectedContext(ctx)
		defer cancel()
		ctx = dctx
	} else if result.Status == RunFailed && len(it.pb.OnFailure) > 0 {
		it.runList(ctx, it.pb.OnFailure, nil, nil, "")
	}
	if result.Status == RunSucceeded && len(it.pb.Outputs) > 0 {
		result.Outputs = map[string]any{}
		env := it.env(nil, nil)
		for _, name := range slices.Sorted(maps.Keys(it.pb.Outputs)) {
			v, err := it.rt.Render(it.pb.Outputs[name], env)
			if err != nil {
				result.Status, result.Message = RunFailed, fmt.Sprintf("outputs.%s: %v", name, err)
				break
			}
			result.Outputs[name] = v
		}
	}
	result.Steps, result.Actions = it.used, it.actions
	it.status = result.Status
	it.record(ctx, &RecordInput{Ref: it.ref, Result: &result})
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return result, err
	}
	return result, nil
}

// runList runs sibling steps in order, following gotos among them. It returns nil
// when the list ran out, or how the run ended.
func (it *interpreter) runList(ctx workflow.Context, list []playbook.Step, local, items map[string]any, suffix string) *runEnd {
	for i := 0; i < len(list); {
		if it.cancelled(ctx) {
			return &runEnd{RunFailed, StepCancelled}
		}
		s := &list[i]
		it.used++
		if it.used > it.budget {
			return &runEnd{RunFailed, fmt.Sprintf("step budget of %d exceeded at %s: is a goto looping?", it.budget, s.ID)}
		}
		out := it.runStep(ctx, s, local, items, suffix)
		if out.end != nil {
			return out.end
		}
		if out.gotoID == "" {
			i++
			continue
		}
		i = indexOf(list, out.gotoID)
		if i < 0 {
			return &runEnd{RunFailed, fmt.Sprintf("goto %q from %s: no such step here", out.gotoID, s.ID)}
		}
	}
	return nil
}

func indexOf(list []playbook.Step, id string) int {
	for i := range list {
		if list[i].ID == id {
			return i
		}
	}
	return -1
}

// stepResult is what one step did.
type stepResult struct {
	status string
	output any
	err    error
	input  map[string]any
	flow   outcome
}

func (it *interpreter) runStep(ctx workflow.Context, s *playbook.Step, local, items map[string]any, suffix string) outcome {
	name := s.ID + suffix
	it.position = append(it.position, name)
	defer func() { it.position = it.position[:len(it.position)-1] }()
	started := workflow.Now(ctx)
	it.rt.SetNow(started)

	var res stepResult
	if s.If != "" {
		ok, err := it.rt.EvalBool(s.If, it.env(local, items))
		switch {
		case err != nil:
			res = stepResult{status: StepFailed, err: fmt.Errorf("if: %w", err)}
		case !ok:
			res = stepResult{status: StepSkipped}
		}
	}
	if res.status == "" {
		run := func(ctx workflow.Context) stepResult { return it.execute(ctx, s, name, local, items, suffix) }
		if limit, ok := it.stepTimeout(ctx, s); ok {
			res = it.within(ctx, limit, s.Timeout, run)
		} else {
			res = run(ctx)
		}
	}
	if res.status == "" {
		res.status = StepSucceeded
	}
	if res.status == StepFailed && it.cancelled(ctx) {
		res.status, res.err = StepCancelled, errors.New(StepCancelled)
	}
	if res.output == nil && res.status != StepSucceeded && s.Kind() == playbook.KindAction {
		res.output = it.in.Playbook.ZeroOutputs[s.ID]
	}
	state := map[string]any{"output": res.output, "status": res.status, "error": ""}
	if res.err != nil {
		state["error"] = res.err.Error()
	}
	if local != nil {
		local[s.ID] = state
	} else {
		it.steps[s.ID] = state
	}
	it.seq++
	rec := StepRecord{Name: name, Seq: it.seq, Kind: s.Kind(), Status: res.status, StartedAt: started,
		FinishedAt: workflow.Now(ctx), Input: res.input, Output: res.output}
	if res.err != nil {
		rec.Error = res.err.Error()
	}
	flow := res.flow
	if res.status == StepFailed && res.flow.end == nil { // a fail step ends the run with its own message
		flow, rec.Note = afterFailure(s, name, res.err)
	}
	it.pending = append(it.pending, rec)
	return flow
}

// afterFailure is where the run goes after step s failed, and the note that says
// so: a failed action follows its on_error; any other failed step fails the run.
func afterFailure(s *playbook.Step, name string, err error) (outcome, string) {
	switch {
	case s.Kind() == playbook.KindAction && s.OnError == playbook.OnErrorContinue:
		return outcome{}, "the playbook went on (on_error: continue)"
	case s.Kind() == playbook.KindAction && s.GotoTarget() != "":
		return outcome{gotoID: s.GotoTarget()}, "the playbook went to " + s.GotoTarget() + " (on_error)"
	}
	return outcome{end: &runEnd{RunFailed, fmt.Sprintf("step %s failed: %v", name, err)}}, ""
}

// execute runs a step of any kind.
func (it *interpreter) execute(ctx workflow.Context, s *playbook.Step, name string, local, items map[string]any, suffix string) stepResult {
	env := it.env(local, items)
	switch s.Kind() {
	case playbook.KindAction:
		return it.action(ctx, s, name, env)
	case playbook.KindSwitch:
		for _, c := range s.Switch {
			if c.Default != "" {
				return stepResult{output: map[string]any{"goto": c.Default}, flow: outcome{gotoID: c.Default}}
			}
			ok, err := it.rt.EvalBool(c.When, env)
			if err != nil {
				return stepResult{status: StepFailed, err: err}
			}
			if ok {
				return stepResult{output: map[string]any{"goto": c.Goto}, flow: outcome{gotoID: c.Goto}}
			}
		}
		return stepResult{output: map[string]any{"goto": nil}}
	case playbook.KindSet:
		set := map[string]any{}
		for _, k := range slices.Sorted(maps.Keys(s.Set)) {
			v, err := it.rt.Render(s.Set[k], env)
			if err != nil {
				return stepResult{status: StepFailed, err: fmt.Errorf("set %s: %w", k, err)}
			}
			it.vars[k], set[k] = v, v
		}
		return stepResult{output: set}
	case playbook.KindSucceed, playbook.KindFail:
		msg, status, stepStatus := "", RunSucceeded, StepSucceeded
		if s.Succeed != nil {
			msg = *s.Succeed
		} else {
			msg, status, stepStatus = *s.Fail, RunFailed, StepFailed
		}
		text, err := it.rt.Render(msg, env)
		if err != nil {
			return stepResult{status: StepFailed, err: err}
		}
		end := &runEnd{status, playbook.Text(text)}
		res := stepResult{status: stepStatus, output: map[string]any{"message": end.message}, flow: outcome{end: end}}
		if status == RunFailed {
			res.err = errors.New(end.message)
		}
		return res
	case playbook.KindWait:
		return it.wait(ctx, s, local, items)
	case playbook.KindForeach:
		return it.foreach(ctx, s, name, local, items, suffix)
	case playbook.KindParallel:
		return it.parallel(ctx, s, local, items, suffix)
	case playbook.KindCall:
		return it.call(ctx, s, name, env)
	}
	return stepResult{status: StepFailed, err: fmt.Errorf("step %s has no kind", s.ID)}
}

// toList turns an items value into a list.
func toList(v any) ([]any, error) {
	if v == nil {
		return nil, nil
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
		return nil, fmt.Errorf("items is %T, not a list", v)
	}
	out := make([]any, rv.Len())
	for i := range out {
		out[i] = rv.Index(i).Interface()
	}
	return out, nil
}
