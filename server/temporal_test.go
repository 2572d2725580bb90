package server_test

import (
	"context"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/rampart-soar/rampart/server"
	"github.com/rampart-soar/rampart/workflows"
)

// temporalAnswers is a Temporal client that answers the calls AcceptedAlert and
// StalledRuns make with what it holds; any other call panics (client.Client is nil).
type temporalAnswers struct {
	client.Client
	task    *workflowpb.PendingWorkflowTaskInfo
	pollers []*taskqueuepb.PollerInfo
	// listed answers a visibility query (the one accepted alert when nil), more
	// says a next page follows, and count is what a count answers.
	listed  []*workflowpb.WorkflowExecutionInfo
	more    bool
	count   int64
	queries []string
}

func (a *temporalAnswers) ListWorkflow(_ context.Context, req *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error) {
	a.queries = append(a.queries, req.GetQuery())
	if a.listed != nil {
		resp := &workflowservice.ListWorkflowExecutionsResponse{Executions: a.listed}
		if a.more {
			resp.NextPageToken = []byte("next")
		}
		return resp, nil
	}
	return &workflowservice.ListWorkflowExecutionsResponse{Executions: []*workflowpb.WorkflowExecutionInfo{{
		Execution: &commonpb.WorkflowExecution{WorkflowId: "alert/fp", RunId: acceptedRunID},
		StartTime: timestamppb.Now(), TaskQueue: "rampart",
	}}}, nil
}

func (a *temporalAnswers) CountWorkflow(_ context.Context, req *workflowservice.CountWorkflowExecutionsRequest) (*workflowservice.CountWorkflowExecutionsResponse, error) {
	a.queries = append(a.queries, req.GetQuery())
	return &workflowservice.CountWorkflowExecutionsResponse{Count: a.count}, nil
}

func (a *temporalAnswers) DescribeWorkflowExecution(context.Context, string, string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	return &workflowservice.DescribeWorkflowExecutionResponse{PendingWorkflowTask: a.task}, nil
}

func (a *temporalAnswers) DescribeTaskQueue(context.Context, string, enumspb.TaskQueueType) (*workflowservice.DescribeTaskQueueResponse, error) {
	return &workflowservice.DescribeTaskQueueResponse{Pollers: a.pollers}, nil
}

const acceptedRunID = "0194c3e2-5b7a-7d4e-9f00-8a1b2c3d4e5f"

// TestAcceptedAlertSaysWhatItWaitsFor: an alert no worker has recorded says
// whether a worker polls its task queue, counting workers, not their pollers.
func TestAcceptedAlertSaysWhatItWaitsFor(t *testing.T) {
	queued := &workflowpb.PendingWorkflowTaskInfo{State: enumspb.PENDING_WORKFLOW_TASK_STATE_SCHEDULED, Attempt: 1}
	now := time.Now()
	poller := func(identity string, ago time.Duration) *taskqueuepb.PollerInfo {
		return &taskqueuepb.PollerInfo{Identity: identity, LastAccessTime: timestamppb.New(now.Add(-ago))}
	}
	for _, tc := range []struct {
		name    string
		task    *workflowpb.PendingWorkflowTaskInfo
		pollers []*taskqueuepb.PollerInfo
		want    string
	}{
		{"no worker ever", queued, nil, "waiting for a worker: none has polled task queue rampart lately (is `rampart worker` running?)"},
		{"the workers stopped", queued, []*taskqueuepb.PollerInfo{poller("w1", 5*time.Minute), poller("w1", 4*time.Minute)},
			"waiting for a worker: none has polled task queue rampart since " + now.Add(-4*time.Minute).UTC().Format(time.RFC3339) + " (is `rampart worker` running?)"},
		{"a backlog", queued, []*taskqueuepb.PollerInfo{poller("w1", time.Second), poller("w1", 50*time.Second), poller("w2", time.Minute), poller("w3", 10*time.Minute)},
			"waiting in task queue rampart, which 2 worker(s) poll: a backlog"},
		{"a worker has begun it", nil, nil, ""},
		{"it stalls", &workflowpb.PendingWorkflowTaskInfo{State: enumspb.PENDING_WORKFLOW_TASK_STATE_SCHEDULED, Attempt: 3}, nil, ""},
	} {
		control := &server.TemporalControl{Client: &temporalAnswers{task: tc.task, pollers: tc.pollers}}
		run, err := control.AcceptedAlert(context.Background(), acceptedRunID)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if run.WorkflowID != "alert/fp" || run.Waiting != tc.want {
			t.Errorf("%s: waiting %q, want %q", tc.name, run.Waiting, tc.want)
		}
	}
}

// TestStalledRunsFromVisibility: a run's alert comes from its run id (an alert's
// run) or its workflow id (a playbook run, a revert), Temporal's report reads in
// words, and past the first page the total is counted.
func TestStalledRunsFromVisibility(t *testing.T) {
	problems := func(values ...string) *commonpb.SearchAttributes {
		p, err := converter.GetDefaultDataConverter().ToPayload(values)
		if err != nil {
			t.Fatal(err)
		}
		return &commonpb.SearchAttributes{IndexedFields: map[string]*commonpb.Payload{"TemporalReportedProblems": p}}
	}
	execution := func(typ, workflowID, runID string, sa *commonpb.SearchAttributes) *workflowpb.WorkflowExecutionInfo {
		return &workflowpb.WorkflowExecutionInfo{Type: &commonpb.WorkflowType{Name: typ},
			Execution: &commonpb.WorkflowExecution{WorkflowId: workflowID, RunId: runID}, StartTime: timestamppb.Now(), SearchAttributes: sa}
	}
	answers := &temporalAnswers{more: true, count: 7, listed: []*workflowpb.WorkflowExecutionInfo{
		execution(workflows.AlertWorkflowName, "alert/fp", acceptedRunID,
			problems("category=WorkflowTaskFailed", "cause=WorkflowTaskFailedCauseNonDeterministicError")),
		execution(workflows.PlaybookWorkflowName, workflows.PlaybookRunID("alert-1", "isolate"), "r2",
			problems("category=WorkflowTaskTimedOut", "cause=WorkflowTaskTimedOutCauseStartToClose")),
		execution(workflows.RevertWorkflowName, workflows.RevertWorkflowID(workflows.PlaybookRunID("alert-2", "block"), "block"), "r3", nil),
	}}
	runs, total, err := (&server.TemporalControl{Client: answers}).StalledRuns(context.Background(), 3)
	if err != nil {
		t.Fatal(err)
	}
	type seen struct{ alert, problem, cause string }
	var got []seen
	for _, r := range runs {
		got = append(got, seen{r.AlertID, r.Problem, r.Cause})
	}
	want := []seen{
		{acceptedRunID, "its workflow task keeps failing", "NonDeterministicError"},
		{"alert-1", "its workflow task keeps timing out: a worker takes it and never answers", "StartToClose"},
		{"alert-2", "its workflow task cannot complete", ""},
	}
	if !reflect.DeepEqual(got, want) || total != 7 {
		t.Fatalf("stalled runs %+v (total %d), want %+v (total 7)", got, total, want)
	}
	for _, q := range answers.queries {
		if !strings.Contains(q, "ExecutionStatus = 'Running' AND TemporalReportedProblems IS NOT NULL") {
			t.Errorf("asked visibility %q", q)
		}
	}
	// Fewer than a page: the total is what was listed, with no count.
	answers.more, answers.queries = false, nil
	if _, total, err = (&server.TemporalControl{Client: answers}).StalledRuns(context.Background(), 3); err != nil || total != 3 || len(answers.queries) != 1 {
		t.Fatalf("one page: total %d, %v, queries %q", total, err, answers.queries)
	}
	// A limit of 0 counts them only.
	answers.queries = nil
	if runs, total, err = (&server.TemporalControl{Client: answers}).StalledRuns(context.Background(), 0); err != nil ||
		len(runs) != 0 || total != 7 || len(answers.queries) != 1 {
		t.Fatalf("count only: %d runs, total %d, %v, queries %q", len(runs), total, err, answers.queries)
	}
}

// TestWorkersAPI: GET /api/v1/workers says who polls the task queue, one row a
// worker however many pollers it runs, and how many polled lately.
func TestWorkersAPI(t *testing.T) {
	now := time.Now()
	at := func(ago time.Duration) *timestamppb.Timestamp { return timestamppb.New(now.Add(-ago)) }
	answers := &temporalAnswers{pollers: []*taskqueuepb.PollerInfo{
		{Identity: "worker-a", LastAccessTime: at(50 * time.Second)},
		{Identity: "worker-a", LastAccessTime: at(time.Second)},
		{Identity: "worker-b", LastAccessTime: at(4 * time.Minute)},
	}}
	h := newServerFrom(t, starter{}, server.Options{Workers: &server.TemporalControl{Client: answers, TaskQueue: "rampart"}})
	code, out := do(t, h, http.MethodGet, "/api/v1/workers", nil, nil)
	workers, _ := out["workers"].([]any)
	if code != 200 || out["task_queue"] != "rampart" || out["polling"] != float64(1) || len(workers) != 2 {
		t.Fatalf("workers: %d %v", code, out)
	}
	first, second := workers[0].(map[string]any), workers[1].(map[string]any)
	if first["identity"] != "worker-a" || first["polling"] != true || second["identity"] != "worker-b" || second["polling"] != false ||
		first["last_poll"] != now.Add(-time.Second).UTC().Format(time.RFC3339Nano) {
		t.Fatalf("workers, most recent first: %v", workers)
	}
	h = newServerFrom(t, starter{}, server.Options{})
	if code, out = do(t, h, http.MethodGet, "/api/v1/workers", nil, nil); code != 404 || errCode(out) != "not_found" {
		t.Fatalf("workers without a reader: %d %v", code, out)
	}
}
