package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/rampart-soar/rampart/integrations"
	"github.com/rampart-soar/rampart/store"
	"github.com/rampart-soar/rampart/workflows"
)

const (
	operationIsolateHost = "isolate_host"
	operationReleaseHost = "release_host"
)

// IsolateHost network-contains the alert's host through the EDR, at most once per
// decision, and records the alert's contain step.
func (a *Activities) IsolateHost(ctx context.Context, in workflows.ContainInput) (workflows.ContainOutput, error) {
	return a.hostAction(ctx, isolation(ctx, in))
}

// isolation is the isolate action an alert's contain step takes.
func isolation(ctx context.Context, in workflows.ContainInput) hostAction {
	summary := map[string]string{"operation": operationIsolateHost, "target": in.DeviceID, "hostname": in.Hostname}
	return hostAction{
		operation: operationIsolateHost, key: in.IdempotencyKey, deviceID: in.DeviceID, step: workflows.StageContain,
		alertID: in.Ref.AlertID, runID: in.Ref.RunID, workflowID: in.Ref.WorkflowID,
		claimed: in.Claimed,
		onClaim: func(tx *store.Store) error {
			return saveStep(ctx, tx, in.Ref, workflows.StageContain, store.StatusRunning, in.StartedAt, nil, summary, nil, "")
		},
		onDone: func(tx *store.Store, out workflows.ContainOutput) error {
			now := time.Now()
			return saveStep(ctx, tx, in.Ref, workflows.StageContain, store.StatusSucceeded, in.StartedAt, &now, nil, out, "")
		},
	}
}

// hostAction is one EDR action on one host, keyed for idempotency. onClaim and
// onDone write the caller's own records in the same transactions as the action row.
type hostAction struct {
	operation                  string // isolate_host or release_host
	key, deviceID, step        string
	alertID, runID, workflowID string
	// claimed: the caller claimed the action under key in its own transaction and
	// this run is the first to act on it (ContainInput.Claimed).
	claimed bool
	// secrets are those the inputs carried, shown by name in the action's record.
	secrets usedSecrets
	onClaim func(tx *store.Store) error
	onDone  func(tx *store.Store, out workflows.ContainOutput) error
}

// hostAction runs an isolate or release at most once per key.
//
// The action row under the key remembers the action across retries and replays. A
// first attempt asks the vendor straight away; a retry reads the host's state
// first, so an attempt that crashed after the vendor accepted its request does not
// send a second one, and a host already in (or moving to) the wanted state is not
// asked again. The vendor's change is asynchronous; the activity polls
// (heartbeating) until the vendor reports it done.
func (a *Activities) hostAction(ctx context.Context, h hostAction) (workflows.ContainOutput, error) {
	if a.EDR == nil {
		return workflows.ContainOutput{}, temporal.NewNonRetryableApplicationError("no EDR integration is configured", workflows.ErrTypeConfig, nil)
	}
	out := workflows.ContainOutput{Integration: a.EDR.Name(), Operation: h.operation, Target: h.deviceID}
	if h.deviceID == "" {
		return out, temporal.NewNonRetryableApplicationError("no device id to act on", workflows.ErrTypeConfig, nil)
	}
	var (
		action  store.Action
		created bool
	)
	if h.claimed && firstTry(ctx, h.runID) {
		// Claimed by the decision a moment ago, and no attempt before this one:
		// the vendor has not been asked.
		action, created = store.Action{Status: store.StatusPending}, true
	} else if err := a.Store.InTx(ctx, func(tx *store.Store) error {
		var err error
		action, created, err = h.claim(ctx, tx, out.Integration)
		return err
	}); err != nil {
		return out, storeFailure(err)
	}
	out.VendorActionID = action.VendorID
	if action.Status == store.StatusSucceeded {
		out.Status = action.VendorStatus
		return out, nil
	}
	out, err := a.changeHost(ctx, h, out, !created, action.VendorCalls > 0)
	if err != nil {
		failure := classify(err)
		// A final answer (a 4xx) ends the action; anything else stays pending
		// for the retry.
		u := store.ActionUpdate{Error: h.secrets.text(err.Error())}
		var appErr *temporal.ApplicationError
		if errors.As(failure, &appErr) && appErr.NonRetryable() {
			u.Status = store.StatusFailed
		}
		_ = a.Store.UpdateAction(ctx, h.key, u)
		return out, failure
	}
	err = a.Store.InTx(ctx, func(tx *store.Store) error {
		if err := tx.UpdateAction(ctx, h.key, store.ActionUpdate{Status: store.StatusSucceeded, VendorStatus: out.Status, ClearError: true}); err != nil {
			return err
		}
		if h.onDone == nil {
			return nil
		}
		return h.onDone(tx, out)
	})
	return out, storeFailure(err)
}

// claim claims the action in tx, through the named integration, and records the
// caller's claim (onClaim) unless the action has already succeeded.
func (h hostAction) claim(ctx context.Context, tx *store.Store, integration string) (action store.Action, created bool, err error) {
	action, created, err = tx.ClaimAction(ctx, &store.Action{
		IdempotencyKey: h.key, AlertID: h.alertID, RunID: h.runID, WorkflowID: h.workflowID, Step: h.step,
		Integration: integration, Operation: h.operation, Target: h.secrets.text(h.deviceID),
	})
	if err != nil || action.Status == store.StatusSucceeded || h.onClaim == nil {
		return action, created, err
	}
	return action, created, h.onClaim(tx)
}

// firstTry says ctx is the first attempt of an activity of the workflow run runID:
// Temporal has not run it before, in any worker. (A run reset from runID would
// carry the same input into a first attempt of its own.)
func firstTry(ctx context.Context, runID string) bool {
	if !activity.IsActivity(ctx) {
		return false
	}
	info := activity.GetInfo(ctx)
	return info.Attempt == 1 && info.WorkflowExecution.RunID == runID
}

// maxConflicts bounds how often a 409 sends changeHost back to re-read the host.
const maxConflicts = 3

// hostChange is what an operation wants of a host.
type hostChange struct {
	want, pending string
	ask           func(ctx context.Context, id string) (integrations.ActionReceipt, error)
}

func (a *Activities) change(operation string) hostChange {
	if operation == operationReleaseHost {
		return hostChange{integrations.HostNormal, integrations.HostLiftContainmentPending, a.EDR.LiftContainment}
	}
	return hostChange{integrations.HostContained, integrations.HostContainmentPending, a.EDR.ContainHost}
}

// changeHost asks for the change unless the host's state says it is done or under
// way. checkFirst reads the state before asking (a retry); askedBefore says an
// earlier attempt's request was accepted, so a host in the wanted state got there
// by this action, not before it.
func (a *Activities) changeHost(ctx context.Context, h hostAction, out workflows.ContainOutput, checkFirst, askedBefore bool) (workflows.ContainOutput, error) {
	c := a.change(h.operation)
	for conflicts := 0; ; conflicts++ {
		if checkFirst {
			host, err := a.EDR.GetHost(ctx, h.deviceID)
			if err != nil {
				return out, fmt.Errorf("read host state: %w", err)
			}
			switch host.Status {
			case c.want:
				out.Status = host.Status
				out.AlreadyContained = !askedBefore
				return out, nil
			case c.pending:
				out.AlreadyContained = !askedBefore
				return a.awaitHost(ctx, h.deviceID, c, out)
			}
		}
		receipt, err := c.ask(ctx, h.deviceID)
		var apiErr *integrations.APIError
		if errors.As(err, &apiErr) && apiErr.StatusCode == 409 && conflicts < maxConflicts {
			// The vendor says the host's state does not allow the action: read it
			// rather than trust either answer.
			checkFirst = true
			continue
		}
		if err != nil {
			return out, err
		}
		out.VendorActionID = receipt.ActionID
		if err := a.Store.UpdateAction(ctx, h.key, store.ActionUpdate{
			Status: store.StatusRunning, VendorID: receipt.ActionID, VendorStatus: c.pending, VendorCall: true,
		}); err != nil {
			return out, storeFailure(err)
		}
		return a.awaitHost(ctx, h.deviceID, c, out)
	}
}

// awaitHost polls the host until the vendor reports the wanted state. If the
// activity's deadline comes first it returns a retryable error, and the retry goes
// back to polling: the host's state, not a second request, decides.
func (a *Activities) awaitHost(ctx context.Context, deviceID string, c hostChange, out workflows.ContainOutput) (workflows.ContainOutput, error) {
	interval := a.PollInterval
	if interval <= 0 {
		interval = time.Second
	}
	for {
		host, err := a.EDR.GetHost(ctx, deviceID)
		if err != nil {
			return out, fmt.Errorf("poll host state: %w", err)
		}
		activity.RecordHeartbeat(ctx, host.Status)
		switch host.Status {
		case c.want:
			out.Status = host.Status
			return out, nil
		case c.pending:
		default:
			return out, fmt.Errorf("host %s went %s while waiting for %s", deviceID, host.Status, c.want)
		}
		select {
		case <-ctx.Done():
			return out, fmt.Errorf("host %s still %s, not %s yet: %w", deviceID, host.Status, c.want, ctx.Err())
		case <-time.After(interval):
		}
	}
}
