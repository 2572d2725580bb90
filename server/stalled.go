package server

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"

	"github.com/labstack/echo/v4"

	"github.com/rampart-soar/rampart/store"
	"github.com/rampart-soar/rampart/workflows"
)

// StallReader finds the runs Temporal reports cannot make progress.
type StallReader interface {
	// StalledRuns lists them, at most limit (none: 0), and counts them all.
	StalledRuns(ctx context.Context, limit int) (runs []StalledRun, total int, err error)
	// ExplainStall adds what Temporal recorded of a stalled run's trouble.
	ExplainStall(ctx context.Context, run *StalledRun) error
}

// StalledRun is an open run none of whose code runs any more: its workflow task
// keeps failing or timing out. A worker deployed with a bug that fails the
// workflow code, or with a change that no longer replays runs in flight, stalls
// every run it takes; the run carries on once a worker can run it again.
// Temporal reports it after some attempts in a row (two on the embedded server
// and in docker-compose.yml's; five by default on a cluster:
// system.numConsecutiveWorkflowTaskProblemsToTriggerSearchAttribute).
type StalledRun struct {
	WorkflowType string    `json:"workflow_type"`
	WorkflowID   string    `json:"workflow_id"`
	RunID        string    `json:"run_id"`
	AlertID      string    `json:"alert_id,omitempty"`
	StartedAt    time.Time `json:"started_at"`
	// Problem is Temporal's report in words; Cause its cause, as Temporal names it.
	Problem string `json:"problem"`
	Cause   string `json:"cause,omitempty"`
	// Attempts is how many times the workflow task has been tried since one last
	// completed; Since is when the first of them failed, and Error what it said.
	Attempts int        `json:"attempts,omitempty"`
	Since    *time.Time `json:"since,omitempty"`
	Error    string     `json:"error,omitempty"`
}

// StalledList is the first stalled runs, and how many there are. There is no
// next page: a bad deploy stalls every run it takes, and one fix frees them all.
type StalledList struct {
	Runs  []StalledRun `json:"runs"`
	Total int          `json:"total"`
}

// stalledQuery matches Rampart's open runs for which Temporal reports a problem.
const stalledQuery = workflows.OwnTypesQuery + " AND ExecutionStatus = 'Running' AND TemporalReportedProblems IS NOT NULL"

// maxStallError bounds a stalled run's error message, in characters.
const maxStallError = 500

// StalledRuns implements StallReader from Temporal's visibility store.
func (t *TemporalControl) StalledRuns(ctx context.Context, limit int) ([]StalledRun, int, error) {
	if limit <= 0 {
		n, err := t.countStalled(ctx)
		return []StalledRun{}, n, err
	}
	resp, err := t.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		Query: stalledQuery, PageSize: int32(limit),
	})
	if err != nil {
		return nil, 0, fmt.Errorf("list stalled runs: %w", err)
	}
	runs := make([]StalledRun, 0, len(resp.GetExecutions()))
	for _, e := range resp.GetExecutions() {
		run := StalledRun{
			WorkflowType: e.GetType().GetName(),
			WorkflowID:   e.GetExecution().GetWorkflowId(),
			RunID:        e.GetExecution().GetRunId(),
			StartedAt:    e.GetStartTime().AsTime(),
			AlertID:      workflows.AlertOfWorkflowID(e.GetExecution().GetWorkflowId()),
		}
		if run.WorkflowType == workflows.AlertWorkflowName {
			run.AlertID = run.RunID // a reset run's is its first run's: ExplainStall reads it
		}
		var problems []string
		_ = converter.GetDefaultDataConverter().FromPayload(
			e.GetSearchAttributes().GetIndexedFields()["TemporalReportedProblems"], &problems)
		run.Problem, run.Cause = reportedProblem(problems)
		runs = append(runs, run)
	}
	total := len(runs)
	if len(resp.GetNextPageToken()) > 0 {
		n, err := t.countStalled(ctx)
		if err != nil {
			return nil, 0, err
		}
		total = max(total, n)
	}
	return runs, total, nil
}

func (t *TemporalControl) countStalled(ctx context.Context) (int, error) {
	count, err := t.Client.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Query: stalledQuery})
	if err != nil {
		return 0, fmt.Errorf("count stalled runs: %w", err)
	}
	return int(count.GetCount()), nil
}

// reportedProblem reads Temporal's TemporalReportedProblems values
// ("category=WorkflowTaskFailed", "cause=WorkflowTaskFailedCause…").
func reportedProblem(values []string) (problem, cause string) {
	problem = "its workflow task cannot complete"
	for _, v := range values {
		switch {
		case v == "category=WorkflowTaskFailed":
			problem = "its workflow task keeps failing"
		case v == "category=WorkflowTaskTimedOut":
			problem = "its workflow task keeps timing out: a worker takes it and never answers"
		case strings.HasPrefix(v, "cause="):
			cause = strings.TrimPrefix(v, "cause=")
			for _, prefix := range []string{"WorkflowTaskFailedCause", "WorkflowTaskTimedOutCause"} {
				cause = strings.TrimPrefix(cause, prefix)
			}
		}
	}
	return problem, cause
}

// ExplainStall implements StallReader: the attempts from the run's description,
// the first failure since the last completed workflow task from its history
// (a worker reports only an attempt's first failure; later ones time out), and,
// for an alert's run, the alert it carries on (a reset run's first run).
func (t *TemporalControl) ExplainStall(ctx context.Context, run *StalledRun) error {
	d, err := t.Client.DescribeWorkflowExecution(ctx, run.WorkflowID, run.RunID)
	if err != nil {
		return fmt.Errorf("describe stalled run %s: %w", run.RunID, err)
	}
	run.Attempts = int(d.GetPendingWorkflowTask().GetAttempt())
	it := t.Client.GetWorkflowHistory(ctx, run.WorkflowID, run.RunID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		event, err := it.Next()
		if err != nil {
			return fmt.Errorf("read stalled run %s: %w", run.RunID, err)
		}
		at := event.GetEventTime().AsTime()
		switch event.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
			if original := event.GetWorkflowExecutionStartedEventAttributes().GetOriginalExecutionRunId(); original != "" &&
				run.WorkflowType == workflows.AlertWorkflowName {
				run.AlertID = original
			}
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
			run.Since, run.Error = nil, ""
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_FAILED:
			run.Since, run.Error = &at, "the workflow task failed"
			if f := event.GetWorkflowTaskFailedEventAttributes().GetFailure(); f != nil && t.Failures != nil {
				run.Error = workflows.Clip(workflows.FailureMessages(t.Failures.FailureToError(f)), maxStallError)
			}
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
			run.Since, run.Error = &at, "the worker that took the workflow task did not finish it in time"
		}
	}
	return nil
}

// stallsLook is the most stalled runs one look reads to mark alerts with them.
const stallsLook = 1000

// alertStalls are the stalled runs of one look, by the alert they name and, for
// alert runs, by workflow. An alert run reset from another names the alert it
// carries on (its first run) only in its history, which ExplainStall reads;
// until then it is known by its workflow, of which one run at most is open.
type alertStalls struct {
	byAlert, alertRuns map[string][]StalledRun
}

// stalledAlerts reads the stalled runs in one look. The look is best effort: a
// Temporal that cannot answer marks none, logged at debug only, as the UI lists
// alerts every few seconds (GET /api/v1/stalled says why).
func (s *Server) stalledAlerts(ctx context.Context) alertStalls {
	found := alertStalls{byAlert: map[string][]StalledRun{}, alertRuns: map[string][]StalledRun{}}
	if s.opts.Stalls == nil {
		return found
	}
	runs, _, err := s.opts.Stalls.StalledRuns(ctx, stallsLook)
	if err != nil {
		s.log.Debug("cannot look for stalled runs", "error", err)
		return found
	}
	for _, r := range runs {
		if r.AlertID != "" {
			found.byAlert[r.AlertID] = append(found.byAlert[r.AlertID], r)
		}
		if r.WorkflowType == workflows.AlertWorkflowName {
			found.alertRuns[r.WorkflowID] = append(found.alertRuns[r.WorkflowID], r)
		}
	}
	return found
}

// of is the alert's stalled runs: those that name it, and an alert run of its
// workflow that names another alert, which may be a run reset from its own.
func (f alertStalls) of(a *AlertSummary) []StalledRun {
	runs := append([]StalledRun{}, f.byAlert[a.ID]...)
	for _, r := range f.alertRuns[a.WorkflowID] {
		if r.AlertID != a.ID {
			runs = append(runs, r)
		}
	}
	return runs
}

// markStalled sets Stalled on the alerts still in progress that have a stalled
// run. A stalled alert run of an alert's workflow counts without a look at its
// history: only a run reset from the alert's would be open beside it.
func (s *Server) markStalled(ctx context.Context, alerts []AlertSummary) {
	open := false
	for _, a := range alerts {
		open = open || a.Status == store.AlertProcessing
	}
	if !open {
		return
	}
	stalled := s.stalledAlerts(ctx)
	for i := range alerts {
		alerts[i].Stalled = alerts[i].Status == store.AlertProcessing && len(stalled.of(&alerts[i])) > 0
	}
}

// explainStalls gives an alert its stalled runs, explained: its own and its
// playbook runs' while it is in progress, a timed revert's after it ended, and
// a run reset from its own, which its history names.
func (s *Server) explainStalls(ctx context.Context, a *AlertDetail) {
	candidates := s.stalledAlerts(ctx).of(&a.AlertSummary)
	s.explain(ctx, candidates)
	runs := candidates[:0]
	for _, r := range candidates {
		if r.AlertID == a.ID {
			runs = append(runs, r)
		}
	}
	a.StalledRuns, a.Stalled = runs, len(runs) > 0
}

// explain adds to each run what Temporal recorded of its trouble; a run it
// cannot explain is still listed, as Temporal reported it.
func (s *Server) explain(ctx context.Context, runs []StalledRun) {
	for i := range runs {
		if err := s.opts.Stalls.ExplainStall(ctx, &runs[i]); err != nil {
			s.log.Warn("cannot explain a stalled run", "run_id", runs[i].RunID, "error", err)
		}
	}
}

func (s *Server) listStalled(c echo.Context) error {
	if s.opts.Stalls == nil {
		return apiError(http.StatusNotFound, "not_found", "this server does not look for stalled runs")
	}
	limit, err := intParam(c, "limit", 50, 0, 200) // 0: count them only
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	runs, total, err := s.opts.Stalls.StalledRuns(ctx, limit)
	if err != nil {
		return apiError(http.StatusServiceUnavailable, "temporal_unavailable", "cannot list stalled runs: "+err.Error())
	}
	s.explain(ctx, runs)
	return c.JSON(http.StatusOK, StalledList{Runs: runs, Total: total})
}
