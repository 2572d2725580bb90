package server_test

import (
	"context"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/rampart-soar/rampart/server"
)

// temporalAnswers is a Temporal client that answers the calls AcceptedAlert makes
// with what it holds; any other call panics (client.Client is nil).
type temporalAnswers struct {
	client.Client
	task    *workflowpb.PendingWorkflowTaskInfo
	pollers []*taskqueuepb.PollerInfo
}

func (a *temporalAnswers) ListWorkflow(context.Context, *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error) {
	return &workflowservice.ListWorkflowExecutionsResponse{Executions: []*workflowpb.WorkflowExecutionInfo{{
		Execution: &commonpb.WorkflowExecution{WorkflowId: "alert/fp", RunId: acceptedRunID},
		StartTime: timestamppb.Now(), TaskQueue: "rampart",
	}}}, nil
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
