package reconcile

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/rampart-soar/rampart/store"
	"github.com/rampart-soar/rampart/store/storetest"
	"github.com/rampart-soar/rampart/workflows"
)

// fakeTemporal answers a visibility query with pages of closed runs and a
// history read with each run's close event.
type fakeTemporal struct {
	mu      sync.Mutex
	pages   [][]*workflowpb.WorkflowExecutionInfo
	closes  map[string]*historypb.HistoryEvent // by run id; none: the read fails
	starts  map[string]string                  // original run id by run id
	resets  map[string]string                  // the run a run was reset into, by run id
	queries []string
	listErr error
}

func (f *fakeTemporal) ListWorkflow(_ context.Context, req *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error) {
	f.mu.Lock()
	f.queries = append(f.queries, req.GetQuery())
	f.mu.Unlock()
	if f.listErr != nil {
		return nil, f.listErr
	}
	page := 0
	if len(req.GetNextPageToken()) > 0 {
		page = int(req.GetNextPageToken()[0])
	}
	resp := &workflowservice.ListWorkflowExecutionsResponse{Executions: f.pages[page]}
	if page+1 < len(f.pages) {
		resp.NextPageToken = []byte{byte(page + 1)}
	}
	return resp, nil
}

func (f *fakeTemporal) queriesSoFar() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.queries)
}

func (f *fakeTemporal) GetWorkflowHistory(_ context.Context, _, runID string, _ bool, filter enumspb.HistoryEventFilterType) client.HistoryEventIterator {
	if filter == enumspb.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT {
		return &events{event: f.closes[runID]}
	}
	original := runID
	if o, ok := f.starts[runID]; ok {
		original = o
	}
	return &events{event: &historypb.HistoryEvent{Attributes: &historypb.HistoryEvent_WorkflowExecutionStartedEventAttributes{
		WorkflowExecutionStartedEventAttributes: &historypb.WorkflowExecutionStartedEventAttributes{OriginalExecutionRunId: original}}}}
}

func (f *fakeTemporal) DescribeWorkflowExecution(_ context.Context, _, runID string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	return &workflowservice.DescribeWorkflowExecutionResponse{
		WorkflowExtendedInfo: &workflowpb.WorkflowExecutionExtendedInfo{ResetRunId: f.resets[runID]},
	}, nil
}

type events struct {
	event *historypb.HistoryEvent
	read  bool
}

func (e *events) HasNext() bool { return !e.read }
func (e *events) Next() (*historypb.HistoryEvent, error) {
	e.read = true
	if e.event == nil {
		return nil, errors.New("history unavailable")
	}
	return e.event, nil
}

var closedAt = time.Date(2026, 11, 28, 6, 0, 0, 0, time.UTC)

func closed(runID string, status enumspb.WorkflowExecutionStatus) *workflowpb.WorkflowExecutionInfo {
	return &workflowpb.WorkflowExecutionInfo{
		Execution: &commonpb.WorkflowExecution{WorkflowId: "alert/" + runID, RunId: runID},
		Status:    status, CloseTime: timestamppb.New(closedAt),
	}
}

func closedRevert(runID, playbookWorkflowID, step string, status enumspb.WorkflowExecutionStatus) *workflowpb.WorkflowExecutionInfo {
	e := closed(runID, status)
	e.Execution.WorkflowId = workflows.RevertWorkflowID(playbookWorkflowID, step)
	e.Type = &commonpb.WorkflowType{Name: workflows.RevertWorkflowName}
	return e
}

func openAlert(t *testing.T, st *store.Store, id string) {
	t.Helper()
	a := &store.Alert{ID: id, WorkflowID: "alert/" + id, Fingerprint: id, Source: "ocsf", Status: store.AlertProcessing,
		EventTime: closedAt, ReceivedAt: closedAt, LastSeenAt: closedAt, AlertJSON: "{}"}
	run := &store.Run{ID: id, WorkflowID: "alert/" + id, WorkflowType: "AlertWorkflow", AlertID: id, Status: store.StatusRunning, StartedAt: closedAt}
	if err := st.RecordAlert(context.Background(), a, nil, run); err != nil {
		t.Fatal(err)
	}
}

// A sweep ends each run the store holds open among the closes it pages through,
// saying how each ended; runs already closed in the store, and runs it never
// recorded, are left alone.
func TestSweepEndsOpenRunsSayingHow(t *testing.T) {
	st := storetest.SQLite(t)
	ctx := context.Background()
	for _, id := range []string{"terminated", "failed", "timed-out", "unreadable", "long", "recorded", "child", "a-base", "b-base"} {
		openAlert(t, st, id)
	}
	if err := st.UpdateRun(ctx, "recorded", store.RunUpdate{Status: store.StatusFailed, Error: "its own words", ClosedAt: &closedAt}); err != nil {
		t.Fatal(err)
	}
	// A playbook run with two timed reverts: one pending, one that ran.
	if err := st.SaveRun(ctx, &store.Run{ID: "pb", WorkflowID: "playbook/terminated/block", WorkflowType: "PlaybookWorkflow",
		AlertID: "terminated", Status: store.StatusCompleted, StartedAt: closedAt, ClosedAt: &closedAt, Playbook: "block"}); err != nil {
		t.Fatal(err)
	}
	for name, status := range map[string]string{"block.revert": store.StatusPending, "tell.revert": store.StatusSucceeded, "wait.revert": store.StatusPending} {
		if err := st.SaveStep(ctx, &store.Step{RunID: "pb", Name: name, Seq: 1_000_000, Status: status, StartedAt: closedAt}); err != nil {
			t.Fatal(err)
		}
	}
	failures := temporal.GetDefaultFailureConverter()
	failure := failures.ErrorToFailure(temporal.NewNonRetryableApplicationError("alert failed at detect", "AlertFailed",
		temporal.NewApplicationError("the store stayed unavailable", "StoreUnavailable")))
	ft := &fakeTemporal{
		pages: [][]*workflowpb.WorkflowExecutionInfo{
			{closed("terminated", enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED), closed("failed", enumspb.WORKFLOW_EXECUTION_STATUS_FAILED),
				closed("never-recorded", enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED)},
			{closed("timed-out", enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT), closed("unreadable", enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED),
				closed("long", enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED), closed("recorded", enumspb.WORKFLOW_EXECUTION_STATUS_FAILED),
				closed("child", enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED),
				// Resets: a-base was reset into a run that goes on; b-base into
				// b-reset, which an operator then terminated.
				closed("a-base", enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED), closed("b-base", enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED),
				closed("b-reset", enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED),
				closedRevert("revert-1", "playbook/terminated/block", "block", enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED),
				closedRevert("revert-2", "playbook/terminated/block", "tell", enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED),
				closedRevert("revert-3", "not-a-revert-id", "", enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED),
				closedRevert("revert-4", "playbook/terminated/block", "wait", enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED)},
		},
		closes: map[string]*historypb.HistoryEvent{
			"terminated": {Attributes: &historypb.HistoryEvent_WorkflowExecutionTerminatedEventAttributes{
				WorkflowExecutionTerminatedEventAttributes: &historypb.WorkflowExecutionTerminatedEventAttributes{Reason: "stuck", Identity: "ana@ops"}}},
			"failed": {Attributes: &historypb.HistoryEvent_WorkflowExecutionFailedEventAttributes{
				WorkflowExecutionFailedEventAttributes: &historypb.WorkflowExecutionFailedEventAttributes{Failure: failure}}},
			"timed-out": {Attributes: &historypb.HistoryEvent_WorkflowExecutionTimedOutEventAttributes{
				WorkflowExecutionTimedOutEventAttributes: &historypb.WorkflowExecutionTimedOutEventAttributes{}}},
			"child": {Attributes: &historypb.HistoryEvent_WorkflowExecutionTerminatedEventAttributes{
				WorkflowExecutionTerminatedEventAttributes: &historypb.WorkflowExecutionTerminatedEventAttributes{Reason: "by parent close policy", Identity: "history-service"}}},
			"b-reset": {Attributes: &historypb.HistoryEvent_WorkflowExecutionTerminatedEventAttributes{
				WorkflowExecutionTerminatedEventAttributes: &historypb.WorkflowExecutionTerminatedEventAttributes{Reason: "gave up", Identity: "ana@ops"}}},
			"revert-1": {Attributes: &historypb.HistoryEvent_WorkflowExecutionTerminatedEventAttributes{
				WorkflowExecutionTerminatedEventAttributes: &historypb.WorkflowExecutionTerminatedEventAttributes{Reason: "keep the block", Identity: "ana@ops"}}},
			"long": {Attributes: &historypb.HistoryEvent_WorkflowExecutionTerminatedEventAttributes{
				WorkflowExecutionTerminatedEventAttributes: &historypb.WorkflowExecutionTerminatedEventAttributes{Reason: strings.Repeat("why ", 200)}}},
		},
	}
	ft.starts = map[string]string{"b-reset": "b-base"}
	ft.resets = map[string]string{"a-base": "a-reset", "b-base": "b-reset", "revert-4": "revert-4-reset"}
	r := &Reconciler{Temporal: ft, Store: st, Failures: failures, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	since := closedAt.Add(-time.Hour)
	ended, err := r.Sweep(ctx, since)
	if err != nil || ended != 8 {
		t.Fatalf("sweep ended %d runs (%v), want 8", ended, err)
	}
	if qs := ft.queriesSoFar(); len(qs) != 2 || !strings.Contains(qs[0], "CloseTime >= '2026-11-28T05:00:00Z'") ||
		!strings.Contains(qs[0], "WorkflowType IN ('AlertWorkflow', 'PlaybookWorkflow', 'RevertWorkflow')") {
		t.Fatalf("queries = %q", qs)
	}
	for id, want := range map[string]string{
		"terminated": "failed: terminated in Temporal by ana@ops: stuck",
		"failed":     "failed: failed without recording its end: alert failed at detect: the store stayed unavailable",
		"timed-out":  "failed: timed out in Temporal (the workflow's execution timeout)",
		"unreadable": "failed: cancelled in Temporal",
		"child":      "failed: terminated in Temporal along with the run that started it",
		"b-base":     "failed: terminated in Temporal by ana@ops: gave up",
	} {
		d, err := st.GetAlert(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if d.Alert.Status != store.AlertFailed || d.Alert.Summary != want || d.Run.ClosedAt == nil || !d.Run.ClosedAt.Equal(closedAt) {
			t.Errorf("%s: alert %s %q, run closed %v; want %q", id, d.Alert.Status, d.Alert.Summary, d.Run.ClosedAt, want)
		}
	}
	steps, err := st.RunSteps(ctx, "pb")
	if err != nil || len(steps) != 3 {
		t.Fatalf("reverts = %+v, %v", steps, err)
	}
	for _, s := range steps {
		want := map[string]string{"block.revert": store.StatusCancelled, "tell.revert": store.StatusSucceeded, "wait.revert": store.StatusPending}[s.Name]
		if s.Status != want {
			t.Errorf("%s: %s, want %s", s.Name, s.Status, want)
		}
		if s.Name == "block.revert" && s.Note != "the revert will not run: terminated in Temporal by ana@ops: keep the block" {
			t.Errorf("the ended revert says %q", s.Note)
		}
	}
	if d, _ := st.GetAlert(ctx, "long"); len([]rune(d.Run.Error)) != maxReason || !strings.HasSuffix(d.Run.Error, "…") {
		t.Errorf("a long reason is kept whole: %d characters", len([]rune(d.Run.Error)))
	}
	if d, _ := st.GetAlert(ctx, "a-base"); d.Alert.Status != store.AlertProcessing || d.Run.ClosedAt != nil {
		t.Errorf("a run reset into one that goes on was ended: %s %+v", d.Alert.Status, d.Run)
	}
	if d, _ := st.GetAlert(ctx, "recorded"); d.Run.Error != "its own words" || d.Alert.Status != store.AlertProcessing {
		t.Errorf("a run that recorded its end was ended again: %+v", d.Run)
	}

	// The next sweep over the same closes finds nothing left to end.
	if ended, err := r.Sweep(ctx, since); err != nil || ended != 0 {
		t.Fatalf("second sweep ended %d (%v)", ended, err)
	}
}

// Run keeps sweeping after a failed sweep, over the span the failed one missed,
// and stops when its context ends.
func TestRunSweepsAgainAfterAFailure(t *testing.T) {
	ft := &fakeTemporal{listErr: errors.New("frontend unavailable")}
	r := &Reconciler{Temporal: ft, Store: storetest.SQLite(t), Every: 10 * time.Millisecond, Lookback: time.Hour,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(ctx)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if len(ft.queriesSoFar()) >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no sweep after a failed one")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	qs := ft.queriesSoFar()
	if qs[0] != qs[len(qs)-1] {
		t.Fatalf("a failed sweep moved the window on: %q then %q", qs[0], qs[len(qs)-1])
	}
}
