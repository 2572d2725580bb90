package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/rampart-soar/rampart/policy"
	"github.com/rampart-soar/rampart/schemas"
	"github.com/rampart-soar/rampart/triage"
)

// Activity options per kind (store calls: store.go). Enrichment lookups give up
// fast: a missing lookup makes the picture incomplete, which policy refuses to act
// on. Vendor calls retry with backoff; HTTP 4xx (but 408/429) is final and 429
// waits for the vendor's reset hint (the activity sets NextRetryDelay).
var (
	enrichOptions = workflow.LocalActivityOptions{
		StartToCloseTimeout:    10 * time.Second,
		ScheduleToCloseTimeout: time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    200 * time.Millisecond,
			BackoffCoefficient: 2,
			MaximumInterval:    5 * time.Second,
			MaximumAttempts:    3,
		},
	}
	containOptions = workflow.ActivityOptions{
		StartToCloseTimeout:    2 * time.Minute,
		HeartbeatTimeout:       15 * time.Second,
		ScheduleToCloseTimeout: 30 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        time.Minute,
			NonRetryableErrorTypes: []string{ErrTypeHTTP4xx, ErrTypeConfig},
		},
	}
)

// Error types activities return; NonRetryableErrorTypes names the final ones.
const (
	ErrTypeHTTP4xx = "HTTP4xx"
	ErrTypeHTTP429 = "HTTP429"
	ErrTypeHTTP5xx = "HTTP5xx"
	ErrTypeConfig  = "ConfigError"
	// ErrTypeGuardrail: a guardrail refused the action (final).
	ErrTypeGuardrail = "GuardrailError"
	ErrTypeDecision  = "DecisionError"
	// ErrTypeStore: the activity could not use the store (retryable); a run
	// waits for the store and then runs the activity again.
	ErrTypeStore = "StoreUnavailable"
)

// AlertWorkflow takes one alert through detect → enrich → decide → contain, then
// stays open for the dedup window absorbing deliveries of the same fingerprint.
func AlertWorkflow(ctx workflow.Context, in AlertInput) (AlertResult, error) {
	w := &alertWorkflow{in: in}
	ctx = withStoreWait(ctx, &w.state.Waiting)
	if err := w.setup(ctx); err != nil {
		return AlertResult{}, err
	}
	return w.run(ctx)
}

type alertWorkflow struct {
	in    AlertInput
	ref   AlertRef
	alert schemas.Alert // the alert without its raw payload, passed to activities
	state AlertState

	detectInput DetectInput
	offered     ContainInput // the isolation the last decision was offered to claim
	detection   triage.Detection
	enrichment  triage.Enrichment

	recordedDuplicates int
	runs               []workflow.ChildWorkflowFuture // playbook runs in flight
	respondStarted     time.Time
}

func (w *alertWorkflow) setup(ctx workflow.Context) error {
	if w.in.Alert.Source == "" {
		return temporal.NewNonRetryableApplicationError("alert input has no source", "InvalidInput", nil)
	}
	workflowID, runID := runIdentity(ctx)
	w.ref = AlertRef{AlertID: runID, WorkflowID: workflowID, RunID: runID}
	if w.in.DedupWindow <= 0 {
		w.in.DedupWindow = DefaultDedupWindow
	}
	w.alert = w.in.Alert
	w.alert.Raw = nil // recorded once by detect; kept out of every later activity input
	w.state = AlertState{
		Stage:      StageReceived,
		Outcome:    OutcomeProcessing,
		LastSeen:   w.in.ReceivedAt,
		DedupUntil: workflow.Now(ctx).Add(w.in.DedupWindow),
	}
	if err := workflow.SetQueryHandler(ctx, StateQuery, func() (AlertState, error) {
		return w.state, nil
	}); err != nil {
		return err
	}
	deliveries := workflow.GetSignalChannel(ctx, DuplicateSignal)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			var d Delivery
			if !deliveries.Receive(ctx, &d) {
				return
			}
			if w.onDelivery(d) {
				for _, run := range w.runs {
					run.SignalChildWorkflow(ctx, EventSignal, nil)
				}
			}
		}
	})
	return nil
}

// onDelivery counts a delivery; the one that started the run is not a duplicate.
// It reports whether the delivery counted.
func (w *alertWorkflow) onDelivery(d Delivery) bool {
	if d.DeliveryID != "" && d.DeliveryID == w.in.DeliveryID {
		return false
	}
	w.state.Duplicates++
	if d.ReceivedAt.After(w.state.LastSeen) {
		w.state.LastSeen = d.ReceivedAt
	}
	return true
}

func (w *alertWorkflow) run(ctx workflow.Context) (AlertResult, error) {
	// A cancelled run records its end on a context the cancellation does not reach.
	uncancelled, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	record := ctx
	stage, skip, err := w.pipeline(ctx)
	cancelled := w.cancelled(ctx)
	if cancelled {
		record = uncancelled
		if err != nil { // the stage failed because it was cancelled
			err = errors.New(runCancelled)
		}
	}
	finish := FinishInput{Ref: w.ref, Outcome: w.state.Outcome, SkipContain: skip,
		Playbooks: w.state.Playbooks, RespondStarted: w.respondStarted}
	if err != nil {
		w.state.Outcome = OutcomeFailed
		w.state.Error = failureText(err)
		finish.Outcome, finish.Error, finish.FailedStage = OutcomeFailed, w.state.Error, stage
	}
	w.state.Stage = StageDone
	w.record(record, &finish)

	if !cancelled {
		w.absorbDuplicates(ctx)
		if cancelled = w.cancelled(ctx); cancelled { // during the dedup window
			record = uncancelled
		}
	}

	closing := FinishInput{Ref: w.ref, Outcome: w.state.Outcome, Error: w.state.Error, Closed: true}
	w.record(record, &closing)

	result := AlertResult{AlertID: w.ref.AlertID, Outcome: w.state.Outcome, Action: w.state.Action, Duplicates: w.state.Duplicates}
	switch {
	case cancelled:
		return result, temporal.NewCanceledError(runCancelled)
	case err != nil:
		return result, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("alert %s failed at %s", w.ref.AlertID, stage), "AlertFailed", err)
	}
	return result, nil
}

// versionAlertCancel marks runs that, when cancelled (from Temporal: there is
// no other way), let their playbook runs wind down and then record the alert's
// end. Before it a run cancelled in its stages or its dedup window recorded
// nothing, and its dedup wait spun until Temporal failed the task as a deadlock.
const (
	versionAlertCancel  = "alert-cancel-recorded"
	alertCancelRecorded = 1
	runCancelled        = "the run was cancelled"
)

// cancelled says the run was cancelled, in a run that handles that.
func (w *alertWorkflow) cancelled(ctx workflow.Context) bool {
	return ctx.Err() != nil && workflow.GetVersion(ctx, versionAlertCancel, workflow.DefaultVersion, alertCancelRecorded) >= alertCancelRecorded
}

// pipeline runs the four stages. Detect and enrich run side by side: enrichment
// reads only the alert's own fields, and decide needs both. It returns the stage it
// stopped in and, when containment was not attempted, why.
func (w *alertWorkflow) pipeline(ctx workflow.Context) (stage, skipContain string, err error) {
	w.state.Stage = StageDetect
	detected := w.startDetect(ctx)
	enrichStarted := workflow.Now(ctx)
	enriched := w.startEnrich(ctx)
	if err := w.finishDetect(ctx, detected); err != nil {
		return StageDetect, "", err
	}
	w.state.Stage = StageEnrich
	w.finishEnrich(ctx, enriched)
	w.state.Stage = StageDecide
	d, err := w.howToRespond(ctx, enrichStarted)
	if err != nil {
		return StageDecide, "", err
	}
	if d.Selection.Configured {
		return w.respond(ctx, d.Selection)
	}
	verdict := *d.Verdict
	w.state.Decision = d.Verdict
	if !verdict.Contain {
		w.state.Outcome = OutcomeNoAction
		return StageDecide, verdict.Reason, nil
	}
	w.state.Stage = StageContain
	if err := w.contain(ctx, d.ClaimedAction); err != nil {
		return StageContain, "", err
	}
	w.state.Outcome = OutcomeContained
	return StageContain, "", nil
}

func (w *alertWorkflow) startDetect(ctx workflow.Context) workflow.Future {
	w.detectInput = DetectInput{
		Ref:        w.ref,
		Alert:      w.in.Alert,
		ReceivedAt: w.in.ReceivedAt,
		StartedAt:  workflow.Now(ctx),
		DedupUntil: w.state.DedupUntil,
	}
	return workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, storeOptions), ActivityDetect, w.detectInput)
}

// finishDetect collects detect's record, waiting out a store outage: the alert is
// not dropped because the store was away when it came.
func (w *alertWorkflow) finishDetect(ctx workflow.Context, f workflow.Future) error {
	var out DetectOutput
	if err := awaitStoreLocal(ctx, f.Get(ctx, &out), ActivityDetect, w.detectInput, &out); err != nil {
		return fmt.Errorf("detect: %w", err)
	}
	w.detection = out.Detection
	w.alert.Attacks = out.Attacks
	return nil
}

// enrichment is the three lookups in flight.
type enrichment struct{ asset, iocs, prior workflow.Future }

// startEnrich starts the lookups in parallel.
func (w *alertWorkflow) startEnrich(ctx workflow.Context) enrichment {
	lctx := workflow.WithLocalActivityOptions(ctx, enrichOptions)
	in := w.enrichInput()
	return enrichment{
		asset: workflow.ExecuteLocalActivity(lctx, ActivityLookupAsset, in),
		iocs:  workflow.ExecuteLocalActivity(lctx, ActivityMatchIOCs, in),
		prior: workflow.ExecuteLocalActivity(lctx, ActivityCountPriorAlerts, in),
	}
}

func (w *alertWorkflow) enrichInput() EnrichInput { return EnrichInput{Ref: w.ref, Alert: w.alert} }

// finishEnrich collects the lookups. A failed lookup leaves the enrichment
// incomplete rather than failing the alert: the decision is still recorded, and
// policy refuses to act on a partial picture. A lookup that failed gets one more
// try first, now that detect's record has gone through: it most likely met the
// outage detect waited out.
func (w *alertWorkflow) finishEnrich(ctx workflow.Context, f enrichment) {
	e := triage.Enrichment{Complete: true}
	lookups := []struct {
		name, activity string
		result         workflow.Future
		out            any
	}{
		{"asset", ActivityLookupAsset, f.asset, &e.Asset},
		{"iocs", ActivityMatchIOCs, f.iocs, &e.IOCs},
		{"prior_alerts", ActivityCountPriorAlerts, f.prior, &e.PriorAlerts},
	}
	var failed []int
	for i, l := range lookups {
		if l.result.Get(ctx, l.out) != nil {
			failed = append(failed, i)
		}
	}
	if len(failed) > 0 && workflow.GetVersion(ctx, versionStoreOutage, workflow.DefaultVersion, storeOutageWait) >= storeOutageWait {
		lctx := workflow.WithLocalActivityOptions(ctx, enrichOptions)
		for _, i := range failed {
			lookups[i].result = workflow.ExecuteLocalActivity(lctx, lookups[i].activity, w.enrichInput())
		}
	}
	for _, l := range lookups {
		if err := l.result.Get(ctx, l.out); err != nil {
			e.Complete = false
			e.Errors = append(e.Errors, l.name+": "+rootMessage(err))
		}
	}
	e.IOCHits = len(e.IOCs)
	w.enrichment = e
}

// howToRespond decides the way the run's version does: the playbooks that respond
// or, with none enabled, the contain rule's verdict.
func (w *alertWorkflow) howToRespond(ctx workflow.Context, enrichStarted time.Time) (ResponseDecision, error) {
	decide := func(activity string, out any) error {
		return storeCall(ctx, activity, w.decideInput(ctx, enrichStarted), out)
	}
	switch version := workflow.GetVersion(ctx, versionPlaybooks, workflow.DefaultVersion, versionDecideOnce); {
	case version >= versionDecideOnce:
		var d ResponseDecision
		err := decide(ActivityDecideResponse, &d)
		if err == nil && !d.Selection.Configured && d.Verdict == nil {
			err = errors.New("no playbook is enabled and the contain rule gave no verdict")
		}
		if err != nil {
			return ResponseDecision{}, fmt.Errorf("decide: %w", err)
		}
		return d, nil
	case version >= versionSelectThenDecide:
		var sel SelectOutput
		if err := decide(ActivitySelectPlaybooks, &sel); err != nil {
			return ResponseDecision{}, fmt.Errorf("select playbooks: %w", err)
		}
		if sel.Configured {
			return ResponseDecision{Selection: sel}, nil
		}
	}
	var v policy.Verdict
	if err := decide(ActivityDecide, &v); err != nil {
		return ResponseDecision{}, fmt.Errorf("decide: %w", err)
	}
	return ResponseDecision{Verdict: &v}, nil
}

// versionPlaybooks marks how a run decides. Histories recorded before it decide
// by decide.contain_when alone; at versionSelectThenDecide a local activity
// selects playbooks and, with none enabled, a second one applies the rule; from
// versionDecideOnce one local activity does both.
const (
	versionPlaybooks        = "playbooks"
	versionSelectThenDecide = 1
	versionDecideOnce       = 2
)

// PlaybookRunID is the workflow ID of the run of a playbook responding to an alert.
func PlaybookRunID(alertID, name string) string { return playbookPrefix + alertID + "/" + name }

const playbookPrefix = "playbook/"

// AlertOfWorkflowID is the alert a playbook run (PlaybookRunID, an on-demand
// run's among them) or a timed revert of one responds to, read off its workflow
// ID; "" for any other ID (an AlertWorkflow's alert is its run, not its ID).
func AlertOfWorkflowID(id string) string {
	if playbookRun, _, ok := ParseRevertWorkflowID(id); ok {
		id = playbookRun
	}
	rest, ok := strings.CutPrefix(id, playbookPrefix)
	alertID, _, named := strings.Cut(rest, "/")
	if !ok || !named {
		return ""
	}
	return alertID
}

// respond runs the selected playbooks side by side, each as a child workflow, and
// waits for them all. Deliveries of the same alert meanwhile reach the runs as
// events (a wait-until step re-evaluates).
func (w *alertWorkflow) respond(ctx workflow.Context, sel SelectOutput) (stage, skipContain string, err error) {
	if len(sel.Playbooks) == 0 {
		w.state.Outcome = OutcomeNoAction
		return StageDecide, "no playbook trigger matched", nil
	}
	w.state.Stage = StageContain
	w.respondStarted = workflow.Now(ctx)
	// A cancelled run waits for its playbook runs to wind down and record where
	// they stopped, rather than closing and so terminating them.
	windDown := workflow.GetVersion(ctx, versionAlertCancel, workflow.DefaultVersion, alertCancelRecorded) >= alertCancelRecorded
	runs := make([]workflow.ChildWorkflowFuture, len(sel.Playbooks))
	for i, p := range sel.Playbooks {
		id := PlaybookRunID(w.ref.AlertID, p.Definition.Name)
		cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{WorkflowID: id, WaitForCancellation: windDown})
		runs[i] = workflow.ExecuteChildWorkflow(cctx, PlaybookWorkflowName, PlaybookInput{
			Playbook: p, Callees: sel.Callees, Alert: w.alert, Detection: w.detection,
			Enrichment: w.enrichment, AlertID: w.ref.AlertID,
		})
		w.state.Playbooks = append(w.state.Playbooks, PlaybookRunState{
			Playbook: p.Definition.Name, Version: p.Version, WorkflowID: id, Status: RunRunning,
		})
	}
	w.runs = runs
	var failed []string
	for i, f := range runs {
		st := &w.state.Playbooks[i]
		var res PlaybookResult
		if err := f.Get(ctx, &res); err != nil {
			res = PlaybookResult{Status: RunFailed, Message: rootMessage(err)}
		}
		st.Status, st.Message, st.Actions = res.Status, res.Message, res.Actions
		if res.Status != RunSucceeded {
			failed = append(failed, fmt.Sprintf("%s: %s", st.Playbook, res.Message))
		}
	}
	w.runs = nil
	w.state.Outcome = responseOutcome(w.state.Playbooks)
	if len(failed) > 0 {
		return StageContain, "", fmt.Errorf("playbooks failed: %s", strings.Join(failed, "; "))
	}
	return StageContain, "", nil
}

// responseOutcome is contained when a run contained something, responded when
// runs only notified, and no_action when they acted on nothing (closed as noise,
// dry runs).
func responseOutcome(runs []PlaybookRunState) string {
	outcome := OutcomeNoAction
	for _, p := range runs {
		for _, a := range p.Actions {
			switch {
			case a.Simulated:
			case a.SideEffect == schemas.SideEffectContain:
				return OutcomeContained
			case a.SideEffect == schemas.SideEffectNotify:
				outcome = OutcomeResponded
			}
		}
	}
	return outcome
}

// decideInput is what both ways of deciding are given: the alert, its detection
// and enrichment, and when enrichment ran.
func (w *alertWorkflow) decideInput(ctx workflow.Context, enrichStarted time.Time) DecideInput {
	now := workflow.Now(ctx)
	w.offered = w.containInput(now)
	offered := w.offered // a local activity gets its input as Go values, not encoded: no pointer into w
	return DecideInput{
		Ref:            w.ref,
		Alert:          w.alert,
		Detection:      w.detection,
		Enrichment:     w.enrichment,
		EnrichStarted:  enrichStarted,
		EnrichFinished: now,
		DecideStarted:  now,
		Contain:        &offered,
	}
}

// containInput is the isolation of the alert's host, started at.
func (w *alertWorkflow) containInput(started time.Time) ContainInput {
	return ContainInput{
		Ref:            w.ref,
		DeviceID:       policy.ContainTarget(w.alert, w.enrichment),
		Hostname:       w.alert.Device.Hostname,
		IdempotencyKey: IdempotencyKey(w.ref, StageContain),
		StartedAt:      started,
	}
}

// contain isolates the alert's host. When the decision claimed this run's action
// (claimed is its key), the contain step started with that decision, and the
// activity's first run may call the vendor without claiming it again; a run after a
// wait for the store is not a first and claims as usual, finding the row, so it
// reads the host's state before asking. (A run reset from this one keeps its
// key and may carry its claim into a first attempt of its own; the activity,
// seeing another run than the key's, claims as usual too.)
func (w *alertWorkflow) contain(ctx workflow.Context, claimed string) error {
	again := w.containInput(workflow.Now(ctx))
	first := again
	if claimed != "" && claimed == w.offered.IdempotencyKey {
		first, again.StartedAt = w.offered, w.offered.StartedAt
		first.Claimed = true
	}
	var out ContainOutput
	err := actionCallAgain(ctx, containOptions, ActivityIsolateHost, first, again, &out)
	if err != nil {
		return fmt.Errorf("contain: %w", err)
	}
	w.state.Action = &out
	return nil
}

// absorbDuplicates keeps the run open until the dedup window ends, recording the
// duplicate count whenever it changes. It stops early when Temporal suggests
// continue-as-new (a flood of duplicates): later deliveries then start a new alert,
// which is better than an unbounded history.
func (w *alertWorkflow) absorbDuplicates(ctx workflow.Context) {
	for {
		w.flushDuplicates(ctx)
		remaining := w.state.DedupUntil.Sub(workflow.Now(ctx))
		if remaining <= 0 || workflow.GetInfo(ctx).GetContinueAsNewSuggested() || ctx.Err() != nil {
			break
		}
		_, _ = workflow.AwaitWithTimeout(ctx, remaining, func() bool {
			return w.state.Duplicates != w.recordedDuplicates
		})
	}
	// Deliveries already in the channel but not yet seen by the receiving coroutine.
	deliveries := workflow.GetSignalChannel(ctx, DuplicateSignal)
	for {
		var d Delivery
		if !deliveries.ReceiveAsync(&d) {
			break
		}
		w.onDelivery(d)
	}
}

func (w *alertWorkflow) flushDuplicates(ctx workflow.Context) {
	if w.state.Duplicates == w.recordedDuplicates {
		return
	}
	count := w.state.Duplicates
	err := workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, storeOptions), ActivityRecordDuplicates, DuplicatesInput{
		AlertID: w.ref.AlertID, Count: count, LastSeen: w.state.LastSeen,
	}).Get(ctx, nil)
	if err != nil {
		workflow.GetLogger(ctx).Error("recording duplicates failed", "alert_id", w.ref.AlertID, "error", err)
	}
	w.recordedDuplicates = count
}

// record writes the alert's outcome, waiting out a store outage. A failure past
// that is logged, not fatal: the outcome is in the workflow's own history and
// result either way.
func (w *alertWorkflow) record(ctx workflow.Context, in *FinishInput) {
	in.At = workflow.Now(ctx)
	in.ReceivedAt = w.in.ReceivedAt
	in.Duplicates = w.state.Duplicates
	in.LastSeen = w.state.LastSeen
	err := storeCall(ctx, ActivityFinish, *in, nil)
	if err != nil {
		workflow.GetLogger(ctx).Error("recording the outcome failed", "alert_id", w.ref.AlertID, "error", err)
		return
	}
	w.recordedDuplicates = in.Duplicates
}

// rootMessage is the innermost error's message: the activity's own words, without
// Temporal's wrapping or the "(type: …, retryable: …)" an application error's
// Error adds.
func rootMessage(err error) string {
	err = rootError(err)
	if app, ok := err.(*temporal.ApplicationError); ok && app.Message() != "" {
		return app.Message()
	}
	return err.Error()
}

// failureText is a stage's error as a person reads it: the stage's own words
// ("contain: "), then the activity's message without Temporal's wrapping (event
// ids, worker identity, error types) or its cause restated.
func failureText(err error) string {
	var act *temporal.ActivityError
	if !errors.As(err, &act) {
		return err.Error()
	}
	return strings.TrimSuffix(err.Error(), act.Error()) + rootMessage(act)
}

// rootError is the innermost error of a chain.
func rootError(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}
