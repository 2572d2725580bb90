// Package reconcile keeps the store honest about runs that ended in Temporal
// without recording their end: an operator terminated or cancelled the workflow
// (from the Temporal UI or CLI), it timed out, or it failed while the store was
// away. No activity of such a run is left to write its end, so without this the
// store would show the alert processing, its steps running, its approvals
// pending and its timed revert due, for ever. A worker sweeps Temporal's
// visibility store for such closes and ends the runs (and reverts) in the store.
//
// It may import store, workflows (for names) and the Temporal client.
package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/rampart-soar/rampart/store"
	"github.com/rampart-soar/rampart/workflows"
)

// Temporal is what a sweep asks Temporal; client.Client is one.
type Temporal interface {
	ListWorkflow(ctx context.Context, req *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error)
	GetWorkflowHistory(ctx context.Context, workflowID, runID string, isLongPoll bool, filter enumspb.HistoryEventFilterType) client.HistoryEventIterator
	DescribeWorkflowExecution(ctx context.Context, workflowID, runID string) (*workflowservice.DescribeWorkflowExecutionResponse, error)
}

// Store is where a sweep records the ends; *store.Store is one.
type Store interface {
	RunsAmong(ctx context.Context, ids []string) ([]store.Run, error)
	EndAbandonedRun(ctx context.Context, end store.RunEnd) (bool, error)
	EndAbandonedRevert(ctx context.Context, playbookWorkflowID, step string, at time.Time, reason string) (bool, error)
}

// Defaults.
const (
	DefaultEvery = time.Minute
	// overlap is how far back of the last sweep's start the next one looks
	// again: a close reaches the visibility store a moment after it happens.
	overlap = 5 * time.Minute
	// maxReason bounds the reason recorded (an operator's termination reason is
	// free text), in characters.
	maxReason = 300
	// parentClosed is the reason Temporal gives when it terminates a child run
	// because its parent closed (the parent close policy).
	parentClosed = "by parent close policy"
)

// Reconciler sweeps for abandoned runs.
type Reconciler struct {
	Temporal Temporal
	Store    Store
	// Failures decodes a failed workflow's message (payload encryption covers
	// failure messages too).
	Failures converter.FailureConverter
	// Every is the time between sweeps; Lookback how far back the first sweep
	// looks (the namespace's retention: visibility forgets closes older than it).
	Every, Lookback time.Duration
	Log             *slog.Logger
}

// Run sweeps until ctx ends: first over Lookback, then, every Every, over what
// closed since the previous sweep began.
func (r *Reconciler) Run(ctx context.Context) {
	every := r.Every
	if every <= 0 {
		every = DefaultEvery
	}
	since := time.Now().Add(-r.Lookback)
	for {
		began := time.Now()
		ended, err := r.Sweep(ctx, since)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			// The next sweep covers this one's span again.
			r.Log.Warn("reconcile: sweep for runs that ended in Temporal failed; trying again", "error", err, "in", every)
		default:
			since = began.Add(-overlap)
			if ended > 0 {
				r.Log.Info("reconcile: recorded the end of runs that ended in Temporal without recording it", "runs", ended)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

// abandonedQuery finds the closes of Rampart's workflows that may have ended
// without recording it: a completed run always records its end.
const abandonedQuery = workflows.OwnTypesQuery + " AND ExecutionStatus IN ('Terminated', 'Canceled', 'TimedOut', 'Failed')"

// Sweep ends, in the store, every run still open there whose workflow closed
// abandoned at or after since, and every timed revert still pending there
// whose workflow did. It returns how many it ended.
func (r *Reconciler) Sweep(ctx context.Context, since time.Time) (int, error) {
	query := abandonedQuery + " AND CloseTime >= '" + since.UTC().Format(time.RFC3339Nano) + "'"
	var (
		ended int
		token []byte
	)
	for {
		resp, err := r.Temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: query, PageSize: 200, NextPageToken: token,
		})
		if err != nil {
			return ended, fmt.Errorf("reconcile: list closed runs: %w", err)
		}
		var closed []*closedRun
		for _, e := range resp.GetExecutions() {
			c := &closedRun{
				workflowID: e.GetExecution().GetWorkflowId(), runID: e.GetExecution().GetRunId(),
				status: e.GetStatus(), at: e.GetCloseTime().AsTime(),
			}
			if e.GetType().GetName() == workflows.RevertWorkflowName {
				n, err := r.endRevert(ctx, c)
				if err != nil {
					return ended, err
				}
				ended += n
				continue
			}
			closed = append(closed, c)
		}
		n, err := r.endRuns(ctx, closed)
		ended += n
		if err != nil {
			return ended, err
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			return ended, nil
		}
	}
}

// endRuns ends the store's open runs among closed. A run's records go under
// the run id its execution started with (workflows' runIdentity), which a
// reset run keeps: one the store does not know by its own id is looked up by
// that. A run reset into another is not over: the reset run carries it on.
func (r *Reconciler) endRuns(ctx context.Context, closed []*closedRun) (int, error) {
	known, err := r.runs(ctx, closed, func(c *closedRun) string { return c.runID })
	if err != nil {
		return 0, err
	}
	var unknown []*closedRun
	for _, c := range closed {
		if _, ok := known[c.runID]; !ok {
			unknown = append(unknown, c)
		}
	}
	original := map[*closedRun]string{}
	for _, c := range unknown {
		id, err := r.originalRunID(ctx, c)
		if err != nil {
			return 0, err
		}
		if id != c.runID {
			original[c] = id
		}
	}
	byOriginal, err := r.runs(ctx, unknown, func(c *closedRun) string { return original[c] })
	if err != nil {
		return 0, err
	}
	ended := 0
	for _, c := range closed {
		run, ok := known[c.runID]
		if !ok {
			run, ok = byOriginal[original[c]]
		}
		if !ok || run.ClosedAt != nil {
			continue
		}
		if reset, err := r.wasReset(ctx, c); err != nil || reset {
			if err != nil {
				return ended, err
			}
			continue
		}
		reason := r.why(ctx, c)
		done, err := r.Store.EndAbandonedRun(ctx, store.RunEnd{RunID: run.ID, At: c.at, Reason: reason})
		if err != nil {
			return ended, fmt.Errorf("reconcile: %w", err)
		}
		if done {
			ended++
			r.Log.Warn("reconcile: a run ended in Temporal without recording it; recorded its end",
				"workflow_id", c.workflowID, "run_id", c.runID, "alert_id", run.AlertID, "reason", reason)
		}
	}
	return ended, nil
}

// runs looks up in the store the runs of closed by the id key gives (none for "").
func (r *Reconciler) runs(ctx context.Context, closed []*closedRun, key func(*closedRun) string) (map[string]store.Run, error) {
	var ids []string
	for _, c := range closed {
		if id := key(c); id != "" {
			ids = append(ids, id)
		}
	}
	runs, err := r.Store.RunsAmong(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("reconcile: %w", err)
	}
	byID := make(map[string]store.Run, len(runs))
	for _, run := range runs {
		byID[run.ID] = run
	}
	return byID, nil
}

// originalRunID is the run id c's execution started with, from its first
// event ("" when the history has none).
func (r *Reconciler) originalRunID(ctx context.Context, c *closedRun) (string, error) {
	it := r.Temporal.GetWorkflowHistory(ctx, c.workflowID, c.runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	if !it.HasNext() {
		return "", nil
	}
	first, err := it.Next()
	if err != nil {
		return "", fmt.Errorf("reconcile: how run %s started: %w", c.runID, err)
	}
	return first.GetWorkflowExecutionStartedEventAttributes().GetOriginalExecutionRunId(), nil
}

// wasReset says Temporal terminated c because it was reset into a new run.
func (r *Reconciler) wasReset(ctx context.Context, c *closedRun) (bool, error) {
	if c.status != enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED {
		return false, nil
	}
	d, err := r.Temporal.DescribeWorkflowExecution(ctx, c.workflowID, c.runID)
	if err != nil {
		return false, fmt.Errorf("reconcile: describe run %s: %w", c.runID, err)
	}
	return d.GetWorkflowExtendedInfo().GetResetRunId() != "", nil
}

// endRevert records that the timed revert c will not run, if the store
// still shows it pending (a revert that ran, or was kept, recorded that).
func (r *Reconciler) endRevert(ctx context.Context, c *closedRun) (int, error) {
	playbookRun, step, ok := workflows.ParseRevertWorkflowID(c.workflowID)
	if !ok {
		return 0, nil
	}
	if reset, err := r.wasReset(ctx, c); err != nil || reset {
		return 0, err // a reset revert still waits, as its reset run
	}
	reason := "the revert will not run: " + r.why(ctx, c)
	ok, err := r.Store.EndAbandonedRevert(ctx, playbookRun, step+workflows.RevertStepSuffix, c.at, reason)
	if err != nil || !ok {
		return 0, err
	}
	r.Log.Warn("reconcile: a timed revert ended in Temporal without running; recorded that it will not run",
		"workflow_id", c.workflowID, "run_id", c.runID, "reason", reason)
	return 1, nil
}

type closedRun struct {
	workflowID, runID string
	status            enumspb.WorkflowExecutionStatus
	at                time.Time
}

// why says how the run ended, from its close event where that says more than
// its status: who terminated it and why, or the failure's message.
func (r *Reconciler) why(ctx context.Context, c *closedRun) string {
	reason := map[enumspb.WorkflowExecutionStatus]string{
		enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED: "terminated in Temporal",
		enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED:   "cancelled in Temporal",
		enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT:  "timed out in Temporal (the workflow's execution timeout)",
		enumspb.WORKFLOW_EXECUTION_STATUS_FAILED:     "failed without recording its end",
	}[c.status]
	if reason == "" {
		reason = "ended in Temporal as " + c.status.String()
	}
	event, err := closeEvent(ctx, r.Temporal, c)
	if err != nil {
		r.Log.Warn("reconcile: cannot read how a run ended; recording its status alone", "run_id", c.runID, "error", err)
		return reason
	}
	if t := event.GetWorkflowExecutionTerminatedEventAttributes(); t != nil {
		if t.GetReason() == parentClosed {
			return "terminated in Temporal along with the run that started it"
		}
		if t.GetIdentity() != "" {
			reason += " by " + t.GetIdentity()
		}
		if t.GetReason() != "" {
			reason += ": " + t.GetReason()
		}
	}
	if f := event.GetWorkflowExecutionFailedEventAttributes(); f != nil && r.Failures != nil {
		reason += ": " + workflows.FailureMessages(r.Failures.FailureToError(f.GetFailure()))
	}
	return workflows.Clip(reason, maxReason)
}

func closeEvent(ctx context.Context, t Temporal, c *closedRun) (*historypb.HistoryEvent, error) {
	it := t.GetWorkflowHistory(ctx, c.workflowID, c.runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT)
	if !it.HasNext() {
		return nil, errors.New("the history has no close event")
	}
	return it.Next()
}
