package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"
)

// RevertWorkflowName is the registered type of a timed revert.
const RevertWorkflowName = "RevertWorkflow"

// RevertWorkflowID names the revert of one playbook step.
func RevertWorkflowID(playbookWorkflowID, step string) string {
	return revertPrefix + playbookWorkflowID + "/" + step
}

const revertPrefix = "revert/"

// ParseRevertWorkflowID is RevertWorkflowID's inverse. Step names hold no "/"
// (a step id and its foreach indexes), so the last one ends the playbook run's id.
func ParseRevertWorkflowID(id string) (playbookWorkflowID, step string, ok bool) {
	rest, ok := strings.CutPrefix(id, revertPrefix)
	i := strings.LastIndexByte(rest, '/')
	if !ok || i <= 0 || i == len(rest)-1 {
		return "", "", false
	}
	return rest[:i], rest[i+1:], true
}

// RevertInput schedules the inverse of an action.
type RevertInput struct {
	Ref       PlaybookRef    `json:"ref"`
	Step      string         `json:"step"`
	Operation string         `json:"operation"`
	Inputs    map[string]any `json:"inputs"`
	After     time.Duration  `json:"after"`
	DryRun    bool           `json:"dry_run,omitempty"`
}

// RevertStepSuffix names a revert's step: the action's step name plus this.
const RevertStepSuffix = ".revert"

// StepKindRevert is the kind a revert's step is recorded with.
const StepKindRevert = "revert"

// Revert outcomes.
const (
	RevertDone = "reverted"
	RevertKept = "kept"
)

// RevertWorkflow waits out an action's revert_after on a durable timer, then runs
// the operation's inverse, unless a KeepSignal (an analyst keeping the action)
// arrives first. It is its own workflow so the playbook run need not stay open.
func RevertWorkflow(ctx workflow.Context, in RevertInput) (string, error) {
	kept := false
	var keeper Actor // empty from a signal sent without one, as before it carried one
	keep := workflow.GetSignalChannel(ctx, KeepSignal)
	workflow.Go(ctx, func(ctx workflow.Context) {
		keep.Receive(ctx, &keeper)
		kept = true
	})
	started := workflow.Now(ctx)
	name := in.Step + RevertStepSuffix
	// Recorded as pending first, so the alert shows the revert and an analyst can keep.
	recordRevert(ctx, in.Ref, StepRecord{Name: name, Seq: 1_000_000, Kind: StepKindRevert, Status: StepPending, StartedAt: started,
		Input: in.Inputs, Output: map[string]any{"revert_at": started.Add(in.After), "operation": in.Operation}})
	if _, err := workflow.AwaitWithTimeout(ctx, in.After, func() bool { return kept }); err != nil {
		return "", err
	}
	rec := StepRecord{Name: name, Seq: 1_000_000, Kind: StepKindRevert, StartedAt: started, FinishedAt: workflow.Now(ctx)}
	if kept {
		rec.Status, rec.Output = StepSkipped, keptOutput(keeper)
		recordRevert(ctx, in.Ref, rec)
		return RevertKept, nil
	}
	var out ActionOutput
	err := actionCall(ctx, actionOptions(nil), ActivityPlaybookAction, ActionInput{
		Ref: in.Ref, Step: name, Operation: in.Operation, Inputs: in.Inputs, DryRun: in.DryRun, Revert: true,
		IdempotencyKey: ActionKey(in.Ref, name),
	}, &out)
	rec.FinishedAt, rec.Input, rec.Output = workflow.Now(ctx), in.Inputs, out.Output
	if err != nil {
		rec.Status, rec.Error = StepFailed, rootMessage(err)
		recordRevert(ctx, in.Ref, rec)
		return "", fmt.Errorf("revert of %s: %w", in.Step, err)
	}
	rec.Status = StepSucceeded
	recordRevert(ctx, in.Ref, rec)
	return RevertDone, nil
}

func recordRevert(ctx workflow.Context, ref PlaybookRef, rec StepRecord) {
	err := storeCall(ctx, ActivityPlaybookRecord, RecordInput{Ref: ref, Steps: []StepRecord{rec}}, nil)
	if err != nil {
		workflow.GetLogger(ctx).Error("recording the revert failed", "step", rec.Name, "error", err)
	}
}

// KeptRevert is the recorded output of a revert an analyst kept: who, and why.
// Its fields are in the order the map it replaced was written in.
type KeptRevert struct {
	KeptBy string `json:"kept_by,omitempty"`
	Note   string `json:"note,omitempty"` // the analyst's reason
	Reason string `json:"reason"`         // "kept by <who>", for a reader
}

// keptOutput is the skipped revert's recorded output.
func keptOutput(k Actor) KeptRevert {
	out := KeptRevert{Reason: "kept by an analyst", KeptBy: k.By, Note: k.Reason}
	if k.By != "" {
		out.Reason = "kept by " + k.By
	}
	return out
}
