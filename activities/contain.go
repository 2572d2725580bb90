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

const operationIsolateHost = "isolate_host"

// IsolateHost network-contains a host through the EDR, at most once per decision.
//
// The action row under in.IdempotencyKey remembers the decision's action across
// retries and replays. A first attempt asks the vendor straight away; a retry reads
// the host's state first, so an attempt that crashed after the vendor accepted its
// request does not send a second one, and a host already contained or pending is not
// asked again. Containment is asynchronous; the activity polls (heartbeating) until
// the vendor reports it done.
func (a *Activities) IsolateHost(ctx context.Context, in workflows.ContainInput) (workflows.ContainOutput, error) {
	if a.EDR == nil {
		return workflows.ContainOutput{}, temporal.NewNonRetryableApplicationError("no EDR integration is configured", workflows.ErrTypeConfig, nil)
	}
	out := workflows.ContainOutput{Integration: a.EDR.Name(), Operation: operationIsolateHost, Target: in.DeviceID}
	if in.DeviceID == "" {
		return out, temporal.NewNonRetryableApplicationError("no device id to contain", workflows.ErrTypeConfig, nil)
	}
	var (
		action  store.Action
		created bool
	)
	err := a.Store.InTx(ctx, func(tx *store.Store) error {
		var err error
		action, created, err = tx.ClaimAction(ctx, &store.Action{
			IdempotencyKey: in.IdempotencyKey,
			AlertID:        in.Ref.AlertID,
			RunID:          in.Ref.RunID,
			WorkflowID:     in.Ref.WorkflowID,
			Step:           workflows.StageContain,
			Integration:    out.Integration,
			Operation:      out.Operation,
			Target:         in.DeviceID,
		})
		if err != nil || action.Status == store.StatusSucceeded {
			return err
		}
		return saveStep(ctx, tx, in.Ref, workflows.StageContain, store.StatusRunning, in.StartedAt, nil,
			map[string]string{"integration": out.Integration, "operation": out.Operation, "target": in.DeviceID, "hostname": in.Hostname}, nil, "")
	})
	if err != nil {
		return out, err
	}
	out.VendorActionID = action.VendorID
	if action.Status == store.StatusSucceeded {
		out.Status = action.VendorStatus
		return out, nil
	}

	out, err = a.isolate(ctx, in, out, !created, action.VendorCalls > 0)
	if err != nil {
		_ = a.Store.UpdateAction(ctx, in.IdempotencyKey, store.ActionUpdate{Error: err.Error()})
		return out, classify(err)
	}
	now := time.Now()
	err = a.Store.InTx(ctx, func(tx *store.Store) error {
		if err := tx.UpdateAction(ctx, in.IdempotencyKey, store.ActionUpdate{
			Status: store.StatusSucceeded, VendorStatus: out.Status, ClearError: true,
		}); err != nil {
			return err
		}
		return saveStep(ctx, tx, in.Ref, workflows.StageContain, store.StatusSucceeded, in.StartedAt, &now, nil, out, "")
	})
	return out, err
}

// maxConflicts bounds how often a 409 sends isolate back to re-read the host.
const maxConflicts = 3

// isolate asks for containment unless the host's state says it is done or under
// way. checkFirst reads the state before asking (a retry); askedBefore says an
// earlier attempt's request was accepted, so a contained host is not "already"
// contained but contained by this decision.
func (a *Activities) isolate(ctx context.Context, in workflows.ContainInput, out workflows.ContainOutput, checkFirst, askedBefore bool) (workflows.ContainOutput, error) {
	for conflicts := 0; ; conflicts++ {
		if checkFirst {
			host, err := a.EDR.GetHost(ctx, in.DeviceID)
			if err != nil {
				return out, fmt.Errorf("read host state: %w", err)
			}
			switch host.Status {
			case integrations.HostContained:
				out.Status = host.Status
				out.AlreadyContained = !askedBefore
				return out, nil
			case integrations.HostContainmentPending:
				out.AlreadyContained = !askedBefore
				return a.awaitContained(ctx, in, out)
			}
		}
		receipt, err := a.EDR.ContainHost(ctx, in.DeviceID)
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
		if err := a.Store.UpdateAction(ctx, in.IdempotencyKey, store.ActionUpdate{
			Status: store.StatusRunning, VendorID: receipt.ActionID, VendorStatus: integrations.HostContainmentPending, VendorCall: true,
		}); err != nil {
			return out, err
		}
		return a.awaitContained(ctx, in, out)
	}
}

// awaitContained polls the host until the vendor reports it contained. If the
// activity's deadline comes first it returns a retryable error, and the retry goes
// back to polling: the host's state, not a second request, decides.
func (a *Activities) awaitContained(ctx context.Context, in workflows.ContainInput, out workflows.ContainOutput) (workflows.ContainOutput, error) {
	interval := a.PollInterval
	if interval <= 0 {
		interval = time.Second
	}
	for {
		host, err := a.EDR.GetHost(ctx, in.DeviceID)
		if err != nil {
			return out, fmt.Errorf("poll host state: %w", err)
		}
		activity.RecordHeartbeat(ctx, host.Status)
		switch host.Status {
		case integrations.HostContained:
			out.Status = host.Status
			return out, nil
		case integrations.HostContainmentPending:
		default:
			return out, fmt.Errorf("host %s went %s while containment was pending", in.DeviceID, host.Status)
		}
		select {
		case <-ctx.Done():
			return out, fmt.Errorf("containment of %s not confirmed yet: %w", in.DeviceID, ctx.Err())
		case <-time.After(interval):
		}
	}
}
