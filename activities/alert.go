package activities

import (
	"cmp"
	"context"
	"errors"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/rampart-soar/rampart/policy"
	"github.com/rampart-soar/rampart/store"
	"github.com/rampart-soar/rampart/triage"
	"github.com/rampart-soar/rampart/workflows"
)

// Detect records the alert and its run, runs the detect stage, and records it.
func (a *Activities) Detect(ctx context.Context, in workflows.DetectInput) (workflows.DetectOutput, error) {
	det, attacks := a.Attack.Detect(&in.Alert)
	alert := in.Alert
	alert.Attacks = attacks
	raw := string(alert.Raw)
	alert.Raw = nil
	dedup := in.DedupUntil
	row := &store.Alert{
		ID:            in.Ref.AlertID,
		WorkflowID:    in.Ref.WorkflowID,
		Fingerprint:   alert.Fingerprint(),
		Source:        alert.Source,
		FindingUID:    alert.Finding.UID,
		Title:         alert.Finding.Title,
		RuleUID:       cmp.Or(alert.Rule.UID, alert.Rule.Name),
		SeverityID:    alert.SeverityID,
		Severity:      alert.Severity,
		Confidence:    alert.Confidence,
		Status:        store.AlertProcessing,
		EventTime:     alert.Time,
		ReceivedAt:    in.ReceivedAt,
		LastSeenAt:    in.ReceivedAt,
		AlertJSON:     jsonText(alert),
		RawJSON:       raw,
		DetectionJSON: jsonText(det),
	}
	run := &store.Run{
		ID:           in.Ref.RunID,
		WorkflowID:   in.Ref.WorkflowID,
		WorkflowType: workflows.AlertWorkflowName,
		AlertID:      in.Ref.AlertID,
		Status:       store.StatusRunning,
		Stage:        workflows.StageDetect,
		StartedAt:    in.StartedAt,
		DedupUntil:   &dedup,
	}
	now := time.Now()
	summary := map[string]any{"source": alert.Source, "rule": row.RuleUID, "techniques": det.Techniques}
	err := a.Store.InTx(ctx, func(tx *store.Store) error {
		if err := tx.RecordAlert(ctx, row, alert.Entities(), run); err != nil {
			return err
		}
		return saveStep(ctx, tx, in.Ref, workflows.StageDetect, store.StatusSucceeded, in.StartedAt, &now, summary, det, "")
	})
	if err != nil {
		return workflows.DetectOutput{}, err
	}
	return workflows.DetectOutput{Detection: det, Attacks: attacks}, nil
}

// LookupAsset finds the alert's device in the inventory. Not being there is an
// answer (found: false), not an error.
func (a *Activities) LookupAsset(ctx context.Context, in workflows.EnrichInput) (triage.Asset, error) {
	d := in.Alert.Device
	asset, err := a.Store.FindAsset(ctx, d.ID, d.Hostname, d.IP)
	if errors.Is(err, store.ErrNotFound) {
		return triage.Asset{Found: false}, nil
	}
	if err != nil {
		return triage.Asset{}, err
	}
	return triage.Asset{
		Found:       true,
		DeviceID:    asset.DeviceID,
		Hostname:    asset.Hostname,
		IP:          asset.IP,
		Criticality: asset.Criticality,
		Owner:       asset.Owner,
		Protected:   asset.Protected,
		Tags:        asset.Tags(),
	}, nil
}

// MatchIOCs looks the alert's indicators up on the local IOC list.
func (a *Activities) MatchIOCs(ctx context.Context, in workflows.EnrichInput) ([]triage.IOCMatch, error) {
	rows, err := a.Store.MatchIOCs(ctx, in.Alert.Entities())
	if err != nil {
		return nil, err
	}
	out := make([]triage.IOCMatch, 0, len(rows))
	for _, r := range rows {
		out = append(out, triage.IOCMatch{Type: r.Type, Value: r.Value, Source: r.Source, Confidence: r.Confidence})
	}
	return out, nil
}

// PriorAlertsWindow is how far back prior alerts count, in event time.
const PriorAlertsWindow = 24 * time.Hour

// CountPriorAlerts counts other alerts about the same entities in the 24 hours of
// event time before this one. Event time, not arrival time, so a replay of last
// week's alerts sees what it saw live.
func (a *Activities) CountPriorAlerts(ctx context.Context, in workflows.EnrichInput) (int, error) {
	t := in.Alert.Time
	return a.Store.CountPriorAlerts(ctx, in.Alert.Entities(), t.Add(-PriorAlertsWindow), t, in.Ref.AlertID)
}

// Decide records the enrichment, evaluates the containment rule and records the
// decision with the values that drove it.
func (a *Activities) Decide(ctx context.Context, in workflows.DecideInput) (policy.Verdict, error) {
	verdict, _, err := a.decide(ctx, in, false)
	return verdict, err
}

// decide is Decide. With claim, a verdict to contain also claims the isolation
// (in.Contain) in the decision's transaction, and says whether this call created
// the claim.
func (a *Activities) decide(ctx context.Context, in workflows.DecideInput, claim bool) (_ policy.Verdict, claimed bool, _ error) {
	recordEnrich := func(tx *store.Store) error {
		return a.recordEnrich(ctx, tx, in.Ref, in.Enrichment, in.EnrichStarted, in.EnrichFinished)
	}
	verdict, err := a.Decider.Evaluate(policy.Env{Alert: in.Alert, Detect: in.Detection, Enrich: in.Enrichment})
	now := time.Now()
	if err != nil {
		// The rule itself cannot run on this alert: retrying will not help.
		_ = a.Store.InTx(ctx, func(tx *store.Store) error {
			if err := recordEnrich(tx); err != nil {
				return err
			}
			return saveStep(ctx, tx, in.Ref, workflows.StageDecide, store.StatusFailed, in.DecideStarted, &now, nil, nil, err.Error())
		})
		return policy.Verdict{}, false, temporal.NewNonRetryableApplicationError(err.Error(), workflows.ErrTypeDecision, err)
	}
	claim = claim && verdict.Contain && in.Contain != nil && in.Contain.DeviceID != "" && a.EDR != nil
	err = a.Store.InTx(ctx, func(tx *store.Store) error {
		if err := recordEnrich(tx); err != nil {
			return err
		}
		if claim {
			var err error
			if _, claimed, err = isolation(ctx, *in.Contain).claim(ctx, tx, a.EDR.Name()); err != nil {
				return err
			}
		}
		if err := tx.UpdateAlert(ctx, in.Ref.AlertID, store.AlertUpdate{
			EnrichmentJSON: jsonText(in.Enrichment),
			DecisionJSON:   jsonText(verdict),
		}); err != nil {
			return err
		}
		return saveStep(ctx, tx, in.Ref, workflows.StageDecide, store.StatusSucceeded, in.DecideStarted, &now,
			map[string]any{"expression": verdict.Expression}, verdict, "")
	})
	if err != nil {
		return policy.Verdict{}, false, err
	}
	return verdict, claimed, nil
}

// RecordDuplicates records the duplicate count.
func (a *Activities) RecordDuplicates(ctx context.Context, in workflows.DuplicatesInput) error {
	return a.Store.SetDuplicates(ctx, in.AlertID, in.Count, in.LastSeen)
}

// Finish records the alert's outcome when its stages are done, and the run's close
// when the dedup window ends.
func (a *Activities) Finish(ctx context.Context, in workflows.FinishInput) error {
	at := in.At
	u := store.RunUpdate{Stage: workflows.StageDone, Error: in.Error}
	if in.Closed {
		u.ClosedAt = &at
	} else {
		u.CompletedAt = &at
		u.Status = store.StatusCompleted
		if in.Outcome == workflows.OutcomeFailed {
			u.Status = store.StatusFailed
		}
	}
	err := a.Store.InTx(ctx, func(tx *store.Store) error {
		if in.SkipContain != "" {
			if err := saveStep(ctx, tx, in.Ref, workflows.StageContain, store.StatusSkipped, at, &at, nil,
				map[string]string{"reason": in.SkipContain}, ""); err != nil {
				return err
			}
		}
		if len(in.Playbooks) > 0 {
			if err := recordResponse(ctx, tx, in); err != nil {
				return err
			}
		} else if in.FailedStage != "" {
			if err := markStepFailed(ctx, tx, in); err != nil {
				return err
			}
			if in.FailedStage == workflows.StageContain { // the isolation's retries are spent
				if err := tx.EndAction(ctx, workflows.IdempotencyKey(in.Ref, workflows.StageContain)); err != nil {
					return err
				}
			}
		}
		if !in.Closed { // the close repeats the outcome recorded when the stages ended
			if err := tx.UpdateAlert(ctx, in.Ref.AlertID, store.AlertUpdate{Status: alertStatus(in.Outcome), Summary: outcomeSummary(in), OutcomeAt: &at}); err != nil {
				return err
			}
		}
		if in.Duplicates > 0 {
			if err := tx.SetDuplicates(ctx, in.Ref.AlertID, in.Duplicates, in.LastSeen); err != nil {
				return err
			}
		}
		return tx.UpdateRun(ctx, in.Ref.RunID, u)
	})
	if err == nil && !in.Closed {
		reportOutcome(ctx, alertStatus(in.Outcome), in.ReceivedAt, in.At)
	}
	return err
}

// outcomeSummary says in one line why the alert ended as it did: the playbook runs
// with their messages, else why containment was skipped, else the failure.
func outcomeSummary(in workflows.FinishInput) string {
	var parts []string
	for _, p := range in.Playbooks {
		part := p.Playbook + " " + p.Status
		if p.Message != "" {
			part += ": " + p.Message
		}
		parts = append(parts, part)
	}
	switch {
	case len(parts) > 0:
	case in.SkipContain != "":
		parts = append(parts, in.SkipContain)
	case in.Outcome == workflows.OutcomeContained:
		parts = append(parts, "contained: contain_when matched")
	}
	// A failed response stage's error restates the failed runs' messages, which
	// the parts above already give.
	restated := len(in.Playbooks) > 0 && in.FailedStage == workflows.StageContain
	if in.Error != "" && in.Outcome == workflows.OutcomeFailed && !restated {
		parts = append(parts, "failed: "+in.Error)
	}
	summary := strings.Join(parts, "; ")
	// Messages are the playbook author's: a line for a list, the rest is in the steps.
	return workflows.Clip(summary, maxSummary)
}

// maxSummary bounds an alert's summary, in characters.
const maxSummary = 300

// recordResponse records the playbook runs as the contain step.
func recordResponse(ctx context.Context, tx *store.Store, in workflows.FinishInput) error {
	at := in.At
	status := store.StatusSucceeded
	if in.FailedStage == workflows.StageContain {
		status = store.StatusFailed
	}
	return saveStep(ctx, tx, in.Ref, workflows.StageContain, status, in.RespondStarted, &at,
		nil, map[string]any{"playbooks": in.Playbooks}, in.Error)
}

// markStepFailed records the failed stage's step, keeping a start time recorded
// earlier by the stage itself.
func markStepFailed(ctx context.Context, tx *store.Store, in workflows.FinishInput) error {
	at := in.At
	started, err := tx.StepStartedAt(ctx, in.Ref.RunID, in.FailedStage)
	if err != nil {
		started = at
	}
	return tx.SaveStep(ctx, &store.Step{
		RunID:      in.Ref.RunID,
		Name:       in.FailedStage,
		Seq:        stepSeq[in.FailedStage],
		Status:     store.StatusFailed,
		StartedAt:  started,
		FinishedAt: &at,
		Error:      in.Error,
	})
}

func alertStatus(outcome string) string {
	switch outcome {
	case workflows.OutcomeContained:
		return store.AlertContained
	case workflows.OutcomeResponded:
		return store.AlertResponded
	case workflows.OutcomeNoAction:
		return store.AlertNoAction
	case workflows.OutcomeFailed:
		return store.AlertFailed
	default:
		return store.AlertProcessing
	}
}
