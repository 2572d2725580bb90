package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/rampart-soar/rampart/server/ingest"
	"github.com/rampart-soar/rampart/workflows"
)

// TemporalStarter starts AlertWorkflows, or signals a delivery into the open run of
// its fingerprint.
//
// A new fingerprint is started with eager start: when a worker for the task queue
// runs on the same client (rampart dev), the server hands the run's first workflow
// task back in the start's answer and the worker runs it at once, skipping the trip
// through the task queue — several milliseconds of every alert's latency. A
// fingerprint whose run is open is refused that start and gets SignalWithStart, which
// signals the open run or, if it closed in between, starts a new one.
//
// SignalWithStart calls the workflow service directly rather than
// client.SignalWithStartWorkflow because only the raw response says whether the call
// started the run (Started), which is how a webhook answer tells a new alert from a
// duplicate. DataConverter must be the client's, so both paths encode alike.
type TemporalStarter struct {
	Client        client.Client
	Namespace     string
	TaskQueue     string
	DataConverter converter.DataConverter
	Identity      string
}

// StartAlert implements ingest.Starter. It returns once Temporal has persisted the
// start or the signal.
func (t *TemporalStarter) StartAlert(ctx context.Context, req ingest.StartRequest) (ingest.StartResult, error) {
	run, err := t.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                                       req.WorkflowID,
		TaskQueue:                                t.TaskQueue,
		WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowIDConflictPolicy:                 enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		// Set with the start, not upserted by the workflow: no extra visibility write.
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.SearchSource.ValueSet(req.Input.Alert.Source),
			workflows.SearchSeverity.ValueSet(int64(req.Input.Alert.SeverityID)),
		),
		EnableEagerStart: true,
	}, workflows.AlertWorkflowName, req.Input)
	var open *serviceerror.WorkflowExecutionAlreadyStarted
	switch {
	case err == nil:
		return ingest.StartResult{RunID: run.GetRunID(), Started: true}, nil
	case !errors.As(err, &open):
		return ingest.StartResult{}, fmt.Errorf("start %s: %w", req.WorkflowID, err)
	}
	return t.signalWithStart(ctx, req)
}

// signalWithStart delivers a duplicate into the open run of its fingerprint.
func (t *TemporalStarter) signalWithStart(ctx context.Context, req ingest.StartRequest) (ingest.StartResult, error) {
	dc := t.DataConverter
	if dc == nil {
		dc = converter.GetDefaultDataConverter()
	}
	input, err := dc.ToPayloads(req.Input)
	if err != nil {
		return ingest.StartResult{}, fmt.Errorf("encode workflow input: %w", err)
	}
	signal, err := dc.ToPayloads(req.Delivery)
	if err != nil {
		return ingest.StartResult{}, fmt.Errorf("encode signal: %w", err)
	}
	search, err := searchAttributes(
		typedValue{workflows.SearchSource.GetName(), "Keyword", req.Input.Alert.Source},
		typedValue{workflows.SearchSeverity.GetName(), "Int", int64(req.Input.Alert.SeverityID)},
	)
	if err != nil {
		return ingest.StartResult{}, err
	}
	resp, err := t.Client.WorkflowService().SignalWithStartWorkflowExecution(ctx, &workflowservice.SignalWithStartWorkflowExecutionRequest{
		Namespace:        t.Namespace,
		WorkflowId:       req.WorkflowID,
		WorkflowType:     &commonpb.WorkflowType{Name: workflows.AlertWorkflowName},
		TaskQueue:        &taskqueuepb.TaskQueue{Name: t.TaskQueue, Kind: enumspb.TASK_QUEUE_KIND_NORMAL},
		Input:            input,
		SignalName:       workflows.DuplicateSignal,
		SignalInput:      signal,
		Identity:         t.Identity,
		SearchAttributes: search,
		// The delivery id makes a retried RPC idempotent on the server.
		RequestId:             req.Delivery.DeliveryID,
		WorkflowIdReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	})
	if err != nil {
		return ingest.StartResult{}, fmt.Errorf("signal-with-start %s: %w", req.WorkflowID, err)
	}
	return ingest.StartResult{RunID: resp.GetRunId(), Started: resp.GetStarted()}, nil
}

type typedValue struct {
	name, typ string
	value     any
}

// searchAttributes encodes values the way the SDK does for typed search attributes
// (JSON payloads tagged with their type); the raw request has no typed helper.
func searchAttributes(values ...typedValue) (*commonpb.SearchAttributes, error) {
	fields := make(map[string]*commonpb.Payload, len(values))
	for _, v := range values {
		p, err := converter.GetDefaultDataConverter().ToPayload(v.value)
		if err != nil {
			return nil, fmt.Errorf("encode search attribute %s: %w", v.name, err)
		}
		p.Metadata["type"] = []byte(v.typ)
		fields[v.name] = p
	}
	return &commonpb.SearchAttributes{IndexedFields: fields}, nil
}

// NewIdentity names this process to Temporal.
func NewIdentity(role string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "rampart-" + role + "-" + hex.EncodeToString(b)
}

// TemporalControl delivers the API's requests to running workflows.
type TemporalControl struct {
	Client client.Client
	// Failures decodes the failures a history holds (payload encryption covers
	// their messages too).
	Failures converter.FailureConverter
	// TaskQueue is the one Rampart's workers poll.
	TaskQueue string
}

// DecideApproval sends the decide Update and waits until the run has applied it.
// A refusal by the run's validator, or a run that has ended, is ErrRejected.
func (t *TemporalControl) DecideApproval(ctx context.Context, workflowID, runID string, a workflows.Approval) error {
	h, err := t.Client.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID:   workflowID,
		RunID:        t.currentRun(ctx, workflowID, runID),
		UpdateName:   workflows.ApprovalUpdate,
		Args:         []any{a},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = h.Get(ctx, nil)
	}
	return rejection(err)
}

// currentRun is the run that carries runID on: the one a reset made of it (a
// reset run keeps the first run's records and ids, so the store names the
// first), or runID itself.
func (t *TemporalControl) currentRun(ctx context.Context, workflowID, runID string) string {
	if runID == "" {
		return ""
	}
	d, err := t.Client.DescribeWorkflowExecution(ctx, workflowID, runID)
	if err != nil {
		return runID // the call that follows meets the same trouble and says so
	}
	if reset := d.GetWorkflowExtendedInfo().GetResetRunId(); reset != "" {
		return reset
	}
	return runID
}

// KeepAction signals a timed revert to stand down, saying who keeps the action.
func (t *TemporalControl) KeepAction(ctx context.Context, revertWorkflowID string, k workflows.Actor) error {
	return rejection(t.Client.SignalWorkflow(ctx, revertWorkflowID, "", workflows.KeepSignal, k))
}

// Query asks a run for its state; a worker answers it, replaying the run's
// history when the run has closed.
func (t *TemporalControl) Query(ctx context.Context, workflowID, runID, name string, out any) error {
	v, err := t.Client.QueryWorkflow(ctx, workflowID, t.currentRun(ctx, workflowID, runID), name)
	var (
		notFound *serviceerror.NotFound
		timedOut *serviceerror.DeadlineExceeded
	)
	switch {
	case errors.As(err, &notFound):
		return fmt.Errorf("%w: %s", ErrRunNotFound, workflowID)
	case errors.As(err, &timedOut), err != nil && ctx.Err() != nil:
		// The server gives up on a query no worker took; the client's deadline
		// may come first, with a transport error that need not wrap it.
		return fmt.Errorf("%w: %s: %v", ErrNoAnswer, workflowID, err)
	}
	if err != nil {
		return err
	}
	return v.Get(out)
}

// AcceptedAlert looks the run up in Temporal's visibility store, which records a
// start whether or not any worker is running.
func (t *TemporalControl) AcceptedAlert(ctx context.Context, alertID string) (AcceptedRun, error) {
	if !isRunID(alertID) {
		return AcceptedRun{}, fmt.Errorf("%w: %q is not a run id", ErrRunNotFound, alertID)
	}
	resp, err := t.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		PageSize: 1,
		Query: fmt.Sprintf("RunId = '%s' AND WorkflowType = '%s' AND ExecutionStatus = 'Running'",
			alertID, workflows.AlertWorkflowName),
	})
	if err != nil {
		return AcceptedRun{}, err
	}
	if len(resp.GetExecutions()) == 0 {
		return AcceptedRun{}, fmt.Errorf("%w: %s", ErrRunNotFound, alertID)
	}
	e := resp.GetExecutions()[0]
	run := AcceptedRun{WorkflowID: e.GetExecution().GetWorkflowId(), StartedAt: e.GetStartTime().AsTime()}
	fields := e.GetSearchAttributes().GetIndexedFields()
	dc := converter.GetDefaultDataConverter()
	// Both were set by the webhook's start; a missing one leaves its zero value.
	_ = dc.FromPayload(fields[workflows.SearchSource.GetName()], &run.Source)
	_ = dc.FromPayload(fields[workflows.SearchSeverity.GetName()], &run.SeverityID)
	if t.queued(ctx, run.WorkflowID, alertID) {
		run.Waiting = t.whoPolls(ctx, e.GetTaskQueue())
	}
	return run, nil
}

// queued says the run's next workflow task waits in its task queue for a
// worker to take it for the first time (not the case for a run a worker has
// begun that waits for the database, say, nor for one that stalls).
func (t *TemporalControl) queued(ctx context.Context, workflowID, runID string) bool {
	d, err := t.Client.DescribeWorkflowExecution(ctx, workflowID, runID)
	task := d.GetPendingWorkflowTask()
	return err == nil && task.GetState() == enumspb.PENDING_WORKFLOW_TASK_STATE_SCHEDULED && task.GetAttempt() <= 1
}

// isRunID reports whether id has the shape of a Temporal run id (a UUID), which
// also keeps it from changing the meaning of a visibility query.
func isRunID(id string) bool {
	if len(id) != 36 {
		return false
	}
	for i, r := range id {
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if r != '-' {
				return false
			}
		case '0' <= r && r <= '9', 'a' <= r && r <= 'f', 'A' <= r && r <= 'F':
		default:
			return false
		}
	}
	return true
}

// rejection sorts an error from a workflow request: the run said no or is gone
// (ErrRejected, with the run's words), or the request itself failed.
func rejection(err error) error {
	if err == nil {
		return nil
	}
	var (
		appErr   *temporal.ApplicationError
		notFound *serviceerror.NotFound
	)
	switch {
	case errors.As(err, &appErr):
		return fmt.Errorf("%w: %s", ErrRejected, appErr.Message())
	case errors.As(err, &notFound):
		return fmt.Errorf("%w: the run is no longer waiting", ErrRejected)
	}
	return err
}
