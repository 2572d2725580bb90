package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/rampart-soar/rampart/integrations"
	"github.com/rampart-soar/rampart/playbook"
	"github.com/rampart-soar/rampart/store"
	"github.com/rampart-soar/rampart/workflows"
)

// MaxInlineOutput is the largest step output kept in the steps table; a larger one
// is stored once as a blob and referenced.
const MaxInlineOutput = 128 << 10

// Secrets resolves a secret by name at the moment an action needs it: its value,
// "" when it is not configured, or the error of reading where it is kept (which
// never carries a secret).
type Secrets func(name string) (string, error)

// SecretEnvPrefix + the upper-cased name is where a worker's operator sets
// secrets.<name>: the variable itself, or with _FILE after it, a file holding it.
const SecretEnvPrefix = "RAMPART_SECRET_"

// operation runs one integration operation with rendered inputs, secrets
// resolved; what it records in the store shows the used secrets by name.
type operation func(ctx context.Context, in workflows.ActionInput, inputs map[string]any, used usedSecrets) (map[string]any, error)

// operations are the integration operations this worker can run. An operation in
// the catalogue but not here has no implementation configured.
func (a *Activities) operations() map[string]operation {
	ops := map[string]operation{}
	if a.EDR != nil {
		ops["edr.get_host"] = func(ctx context.Context, _ workflows.ActionInput, inputs map[string]any, _ usedSecrets) (map[string]any, error) {
			h, err := a.EDR.GetHost(ctx, str(inputs["host_id"]))
			if err != nil {
				return nil, classify(err)
			}
			return toMap(h)
		}
		host := func(op string) operation {
			return func(ctx context.Context, in workflows.ActionInput, inputs map[string]any, used usedSecrets) (map[string]any, error) {
				out, err := a.hostAction(ctx, hostAction{
					operation: op, key: in.IdempotencyKey, deviceID: str(inputs["host_id"]), step: in.Step,
					alertID: in.Ref.AlertID, runID: in.Ref.RunID, workflowID: in.Ref.WorkflowID, secrets: used,
				})
				if err != nil {
					return nil, err
				}
				return map[string]any{"status": out.Status, "vendor_action_id": out.VendorActionID, "already_contained": out.AlreadyContained}, nil
			}
		}
		ops["edr.isolate_host"] = host(operationIsolateHost)
		ops["edr.release_host"] = host(operationReleaseHost)
	}
	return ops
}

// PlaybookAction runs one action of a playbook: it first writes the steps the run
// finished since its last action, then runs the operation — or, in a dry run, an
// operation with a side effect is recorded with the inputs it would have had and
// answers with its declared simulated output. Read-only operations run either way.
func (a *Activities) PlaybookAction(ctx context.Context, in workflows.ActionInput) (workflows.ActionOutput, error) {
	if err := a.recordSteps(ctx, in.Ref, in.Record); err != nil {
		return workflows.ActionOutput{}, storeFailure(err)
	}
	op, inputs, err := integrations.Resolve(in.Operation, in.Inputs, in.Revert)
	if err != nil {
		return workflows.ActionOutput{}, configError("%v", err)
	}
	name := op.Name
	resolved, used, unresolved := a.resolveSecrets(inputs)
	guarded := resolved // the guardrail judges the host the vendor would be asked about, however it was written
	if unresolved != nil {
		guarded = inputs // nothing will be asked, but a dry run still says what the guardrail would refuse
	}
	if err := a.guard(ctx, in, op, guarded); err != nil {
		return workflows.ActionOutput{}, used.scrubError(err)
	}
	if in.DryRun && op.SideEffect != integrations.SideEffectRead {
		return a.simulate(ctx, in, op, inputs)
	}
	run, ok := a.operations()[name]
	if !ok {
		return workflows.ActionOutput{}, a.unimplemented(name)
	}
	if unresolved != nil {
		return workflows.ActionOutput{}, unresolved
	}
	out, err := run(ctx, in, resolved, used)
	if err != nil {
		return workflows.ActionOutput{}, used.scrubError(err)
	}
	out, _ = used.scrub(out).(map[string]any)
	return workflows.ActionOutput{Output: playbook.Conform(out, op.Output), SideEffect: op.SideEffect}, nil
}

// guard applies the guardrails no playbook can lift: a protected asset of the
// inventory is never contained without a human's approval. Reverts (releasing a
// host) are not containment and pass.
func (a *Activities) guard(ctx context.Context, in workflows.ActionInput, op integrations.Operation, inputs map[string]any) error {
	if op.SideEffect != integrations.SideEffectContain || in.Revert || in.ApprovedBy != "" {
		return nil
	}
	host := str(inputs["host_id"])
	if host == "" {
		return nil
	}
	asset, err := a.Store.FindAsset(ctx, host, "", "")
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return storeFailure(err)
	}
	if asset.Protected {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"guardrail: %s (%s) is a protected asset: %s needs an approval step", asset.Hostname, host, op.Name),
			workflows.ErrTypeGuardrail, nil)
	}
	return nil
}

// simulate records what a dry run would have done.
func (a *Activities) simulate(ctx context.Context, in workflows.ActionInput, op integrations.Operation, inputs map[string]any) (workflows.ActionOutput, error) {
	_, _, err := a.Store.ClaimAction(ctx, &store.Action{
		IdempotencyKey: in.IdempotencyKey, AlertID: in.Ref.AlertID, RunID: in.Ref.RunID, WorkflowID: in.Ref.WorkflowID,
		Step: in.Step, Integration: integrationOf(op.Name), Operation: op.Name, Target: target(inputs),
		Status: StatusSimulated, Error: "dry run: would call " + op.Name + " with " + jsonText(redact(inputs)),
	})
	if err != nil {
		return workflows.ActionOutput{}, storeFailure(err)
	}
	return workflows.ActionOutput{Output: playbook.Conform(op.SimulatedOutput, op.Output), Simulated: true, SideEffect: op.SideEffect}, nil
}

// StatusSimulated marks an action a dry run recorded instead of running.
const StatusSimulated = "simulated"

// PlaybookRecord writes steps, and the run's start or result, to the store.
func (a *Activities) PlaybookRecord(ctx context.Context, in workflows.RecordInput) error {
	if in.Started != nil {
		run := &store.Run{
			ID: in.Ref.RunID, WorkflowID: in.Ref.WorkflowID, WorkflowType: workflows.PlaybookWorkflowName,
			AlertID: in.Ref.AlertID, Status: store.StatusRunning, StartedAt: *in.Started,
			Playbook: in.Ref.Playbook, PlaybookVersion: in.Ref.Version, DryRun: in.DryRun,
		}
		if by := in.RequestedBy; by != nil {
			run.RequestedBy, run.RequestReason = by.By, by.Reason
		}
		if err := a.Store.SaveRun(ctx, run); err != nil {
			return err
		}
	}
	if err := a.recordSteps(ctx, in.Ref, in.Steps); err != nil {
		return err
	}
	if p := in.Approval; p != nil {
		if err := a.Store.SaveApproval(ctx, approvalRow(in.Ref, p)); err != nil {
			return err
		}
	}
	if r := in.Result; r != nil {
		result, err := toMap(r)
		if err != nil {
			return err
		}
		now := time.Now()
		status, runErr := store.StatusCompleted, ""
		if r.Status == workflows.RunFailed {
			status, runErr = store.StatusFailed, r.Message
		}
		return a.Store.UpdateRun(ctx, in.Ref.RunID, store.RunUpdate{Status: status, Error: runErr, CompletedAt: &now, ClosedAt: &now,
			ResultJSON: jsonText(redact(result))})
	}
	return nil
}

func approvalRow(ref workflows.PlaybookRef, p *workflows.PendingApproval) *store.Approval {
	row := &store.Approval{
		ID: p.ID, AlertID: ref.AlertID, WorkflowID: ref.WorkflowID, RunID: ref.RunID, Playbook: ref.Playbook,
		Step: p.Step, Operation: p.Operation, InputsJSON: jsonText(redact(p.Inputs)), ArgsHash: p.ArgsHash,
		ApproversJSON: jsonText(p.Approvers), Status: p.Status, RequestedAt: p.Since,
		DecidedBy: p.DecidedBy, Reason: p.Reason,
	}
	if !p.Deadline.IsZero() {
		row.Deadline = &p.Deadline
	}
	if !p.DecidedAt.IsZero() {
		row.DecidedAt = &p.DecidedAt
	}
	return row
}

func (a *Activities) recordSteps(ctx context.Context, ref workflows.PlaybookRef, steps []workflows.StepRecord) error {
	if len(steps) == 0 {
		return nil
	}
	return a.Store.InTx(ctx, func(tx *store.Store) error {
		for _, r := range steps {
			var finished *time.Time
			if !r.FinishedAt.IsZero() {
				finished = &r.FinishedAt
			}
			output, err := a.outputText(ctx, tx, r.Output)
			if err != nil {
				return err
			}
			if err := tx.SaveStep(ctx, &store.Step{
				RunID: ref.RunID, Name: r.Name, Seq: r.Seq, Status: r.Status, StartedAt: r.StartedAt, FinishedAt: finished,
				InputJSON: jsonText(redact(r.Input)), OutputJSON: output, Error: r.Error, Note: r.Note,
			}); err != nil {
				return err
			}
			// An action step that failed for good (retries spent), or was cancelled
			// with its branch, ends its action row too, rather than leaving it
			// pending or running.
			if (r.Status == workflows.StepFailed || r.Status == workflows.StepCancelled) &&
				(r.Kind == playbook.KindAction || r.Kind == workflows.StepKindRevert) {
				if err := tx.EndAction(ctx, workflows.ActionKey(ref, r.Name)); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// outputText is a step output for the steps table, or a reference to it when it is
// too large to keep inline.
func (a *Activities) outputText(ctx context.Context, tx *store.Store, output any) (string, error) {
	if output == nil {
		return "", nil
	}
	text := jsonText(redact(output))
	if len(text) <= MaxInlineOutput {
		return text, nil
	}
	ref, err := tx.SaveBlob(ctx, []byte(text))
	if err != nil {
		return "", err
	}
	return jsonText(map[string]any{"$ref": ref, "size": len(text)}), nil
}

// resolveSecrets swaps secret placeholders for their values, in a copy, and says
// which values it put in.
func (a *Activities) resolveSecrets(v map[string]any) (map[string]any, usedSecrets, error) {
	var failed error
	var used []usedSecret
	out := workflows.ReplaceSecrets(v, func(name string) string {
		if failed != nil {
			return ""
		}
		var value string
		var err error
		if a.Secrets != nil {
			value, err = a.Secrets(name)
		}
		env := SecretEnvPrefix + strings.ToUpper(name)
		switch {
		case err != nil:
			failed = configError("secret %q: %v", name, err)
		case value == "":
			failed = configError("secret %q is not configured (set %s, or %s_FILE to a file holding it, on the worker)", name, env, env)
		default:
			used = append(used, usedSecret{name, value})
		}
		return value
	})
	return out.(map[string]any), hideSecrets(used), failed
}

// usedSecrets hides the secret values an action's inputs carried. A vendor may
// echo an input back, in its answer or its error ("device <id> not found"), and
// both go to workflow history and the store: there each value shows as
// [secret name]. The zero value hides nothing.
type usedSecrets struct{ r *strings.Replacer }

type usedSecret struct{ name, value string }

func hideSecrets(secrets []usedSecret) usedSecrets {
	if len(secrets) == 0 {
		return usedSecrets{}
	}
	// One secret inside another is replaced as the longer one.
	slices.SortFunc(secrets, func(a, b usedSecret) int { return len(b.value) - len(a.value) })
	pairs := make([]string, 0, 2*len(secrets))
	for _, s := range secrets {
		pairs = append(pairs, s.value, workflows.SecretShown(s.name))
	}
	return usedSecrets{strings.NewReplacer(pairs...)}
}

// text returns s with the secrets' values replaced.
func (u usedSecrets) text(s string) string {
	if u.r == nil {
		return s
	}
	return u.r.Replace(s)
}

// scrub returns v, a decoded JSON value, with the secrets' values replaced.
func (u usedSecrets) scrub(v any) any {
	if u.r == nil {
		return v
	}
	return workflows.MapStrings(v, u.text)
}

// scrubError returns err, or when its text holds a secret, an error of the same
// type and retry behaviour whose message does not (and no cause that does).
func (u usedSecrets) scrubError(err error) error {
	if msg := err.Error(); u.text(msg) == msg {
		return err
	}
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) {
		return errors.New(u.text(err.Error()))
	}
	return temporal.NewApplicationErrorWithOptions(u.text(appErr.Message()), appErr.Type(), temporal.ApplicationErrorOptions{
		NonRetryable: appErr.NonRetryable(), NextRetryDelay: appErr.NextRetryDelay(), Category: appErr.Category()})
}

// redact shows secret placeholders as [secret name] in what the store keeps.
func redact(v any) any { return workflows.RedactSecrets(v) }

// unimplemented fails a step whose operation no integration on this worker
// provides. Until an integration is set up that is expected (the examples' chat
// and ticket steps, on_error: continue), so the error is benign — Temporal's
// worker logs it at debug, not as an error per alert — and this worker warns once
// per operation instead.
func (a *Activities) unimplemented(name string) error {
	if _, warned := a.unimplementedWarned.LoadOrStore(name, true); !warned && a.Logger != nil {
		a.Logger.Warn("playbook steps call an operation no integration on this worker provides: they fail, and their on_error decides",
			"operation", name)
	}
	return temporal.NewApplicationErrorWithOptions(
		fmt.Sprintf("integration operation %s has no configured implementation on this worker", name), workflows.ErrTypeConfig,
		temporal.ApplicationErrorOptions{NonRetryable: true, Category: temporal.ApplicationErrorCategoryBenign})
}

func configError(format string, args ...any) error {
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(format, args...), workflows.ErrTypeConfig, nil)
}

func integrationOf(op string) string {
	i, _, _ := strings.Cut(op, ".")
	return i
}

// target is the value an action acts on, for the actions table.
func target(inputs map[string]any) string {
	for _, k := range []string{"host_id", "user", "ip", "domain", "channel", "summary"} {
		if v, ok := inputs[k]; ok {
			return str(v)
		}
	}
	return ""
}

func str(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

func toMap(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	return out, json.Unmarshal(b, &out)
}
