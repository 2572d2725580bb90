package activities_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/rampart-soar/rampart/activities"
	"github.com/rampart-soar/rampart/integrations"
	"github.com/rampart-soar/rampart/playbook"
	"github.com/rampart-soar/rampart/store"
	"github.com/rampart-soar/rampart/workflows"
)

func (f *fixture) action(t *testing.T, in workflows.ActionInput) (workflows.ActionOutput, error) {
	t.Helper()
	if in.Ref.RunID == "" {
		in.Ref = workflows.PlaybookRef{WorkflowID: "playbook/x", RunID: "pb-run-1", AlertID: "run-1", Playbook: "p", Version: 1}
	}
	if in.IdempotencyKey == "" {
		in.IdempotencyKey = in.Ref.WorkflowID + "/" + in.Ref.RunID + "/" + in.Step
	}
	v, err := f.env.ExecuteActivity(workflows.ActivityPlaybookAction, in)
	var out workflows.ActionOutput
	if err == nil {
		err = v.Get(&out)
	}
	return out, err
}

func TestPlaybookActionContainsOnceAndReleases(t *testing.T) {
	f := newFixture(t)
	in := workflows.ActionInput{Step: "isolate", Operation: "edr.isolate_host", Inputs: map[string]any{"host_id": hostID}}
	out, err := f.action(t, in)
	if err != nil || out.Output["status"] != integrations.HostContained || out.Simulated {
		t.Fatalf("isolate = %+v, %v", out, err)
	}
	if _, err := f.action(t, in); err != nil || f.sim.ContainCalls(hostID) != 1 {
		t.Fatalf("a retried action called the vendor again: %d calls, %v", f.sim.ContainCalls(hostID), err)
	}
	rel, err := f.action(t, workflows.ActionInput{Step: "isolate.revert", Operation: "edr.isolate_host", Revert: true,
		Inputs: map[string]any{"host_id": hostID, "comment": "revert"}})
	if err != nil || rel.Output["status"] != integrations.HostNormal {
		t.Fatalf("revert = %+v, %v", rel, err)
	}
	if h, _ := f.sim.Host(hostID); h.Status != integrations.HostNormal || f.sim.ActionCalls("lift_containment", hostID) != 1 {
		t.Fatalf("host after revert = %+v", h)
	}
}

func TestDryRunNeverCallsAContainOrNotifyOperation(t *testing.T) {
	f := newFixture(t)
	for _, op := range []struct {
		name   string
		inputs map[string]any
	}{
		{"edr.isolate_host", map[string]any{"host_id": hostID}},
		{"chat.post_message", map[string]any{"channel": "#soc", "text": "hi"}},
		{"firewall.block_ip", map[string]any{"ip": "203.0.113.66"}},
	} {
		out, err := f.action(t, workflows.ActionInput{Step: "s-" + op.name, Operation: op.name, Inputs: op.inputs, DryRun: true})
		if err != nil || !out.Simulated || len(out.Output) == 0 {
			t.Fatalf("%s in a dry run = %+v, %v", op.name, out, err)
		}
	}
	if n := len(f.sim.Audit()); n != 0 {
		t.Fatalf("the EDR received %d calls during a dry run", n)
	}
	a, err := f.store.GetAction(context.Background(), "playbook/x/pb-run-1/s-edr.isolate_host")
	if err != nil || a.Status != activities.StatusSimulated || !strings.Contains(a.Error, "would call edr.isolate_host") {
		t.Fatalf("recorded = %+v, %v", a, err)
	}
	// Reads still run in a dry run.
	out, err := f.action(t, workflows.ActionInput{Step: "read", Operation: "edr.get_host", Inputs: map[string]any{"host_id": hostID}, DryRun: true})
	if err != nil || out.Simulated || out.Output["hostname"] != "fin-ws-0142" {
		t.Fatalf("read in a dry run = %+v, %v", out, err)
	}
}

func TestUnconfiguredOperationIsAFinalError(t *testing.T) {
	f := newFixture(t)
	var logs bytes.Buffer
	f.acts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	_, err := f.action(t, workflows.ActionInput{Step: "ti", Operation: "ti.lookup_hash", Inputs: map[string]any{"hash": "ab"}})
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || !appErr.NonRetryable() || !strings.Contains(err.Error(), "no configured implementation") {
		t.Fatalf("err = %v", err)
	}
	// Expected until the integration is set up: not an error per alert in the
	// worker's log, one warning per operation.
	if appErr.Category() != temporal.ApplicationErrorCategoryBenign {
		t.Fatalf("category = %v", appErr.Category())
	}
	_, _ = f.action(t, workflows.ActionInput{Step: "ti2", Operation: "ti.lookup_hash", Inputs: map[string]any{"hash": "cd"}})
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 || !strings.Contains(logs.String(), "operation=ti.lookup_hash") {
		t.Fatalf("%d warnings:\n%s", n, logs.String())
	}
	_, err = f.action(t, workflows.ActionInput{Step: "x", Operation: "nope.nothing"})
	if !errors.As(err, &appErr) || !appErr.NonRetryable() {
		t.Fatalf("unknown operation: %v", err)
	}
}

func TestSecretsAreResolvedInsideTheActivityOnly(t *testing.T) {
	f := newFixture(t)
	var seen string
	f.acts.Secrets = func(name string) (string, error) {
		switch name {
		case "token":
			return "s3cr3t-value", nil
		case "unreadable":
			return "", errors.New("RAMPART_SECRET_UNREADABLE_FILE: permission denied")
		}
		return "", nil
	}
	// A secret in an input reaches the operation...
	f.acts.EDR = &recordingEDR{EDR: f.acts.EDR, onGet: func(id string) { seen = id }}
	ph := workflows.SecretPlaceholder("token")
	_, err := f.action(t, workflows.ActionInput{Step: "get", Operation: "edr.get_host", Inputs: map[string]any{"host_id": hostID + ph}})
	if seen != hostID+"s3cr3t-value" {
		t.Fatalf("the operation saw %q", seen)
	}
	// ...and the vendor's answer, which names the device it does not know, comes
	// back with the secret's name in place of its value, as a final error...
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || !appErr.NonRetryable() || strings.Contains(err.Error(), "s3cr3t") ||
		!strings.Contains(err.Error(), "crowdstrike: device "+hostID+"[secret token]: not found at vendor") {
		t.Fatalf("err = %v", err)
	}
	// ...a missing one is a configuration error...
	_, err = f.action(t, workflows.ActionInput{Step: "get2", Operation: "edr.get_host", Inputs: map[string]any{"host_id": workflows.SecretPlaceholder("absent")}})
	if !errors.As(err, &appErr) || !appErr.NonRetryable() || !strings.Contains(err.Error(), "set RAMPART_SECRET_ABSENT, or RAMPART_SECRET_ABSENT_FILE") {
		t.Fatalf("err = %v", err)
	}
	// ...as is one that cannot be read...
	_, err = f.action(t, workflows.ActionInput{Step: "get3", Operation: "edr.get_host", Inputs: map[string]any{"host_id": workflows.SecretPlaceholder("unreadable")}})
	if !errors.As(err, &appErr) || !appErr.NonRetryable() || !strings.Contains(err.Error(), `secret "unreadable": RAMPART_SECRET_UNREADABLE_FILE: permission denied`) {
		t.Fatalf("err = %v", err)
	}
	// ...and the store keeps only a redacted mention.
	now := time.Now()
	_, err = f.action(t, workflows.ActionInput{Step: "after", Operation: "edr.get_host", Inputs: map[string]any{"host_id": hostID},
		Record: []workflows.StepRecord{{Name: "get", Seq: 1, Kind: "action", Status: "failed", StartedAt: now, FinishedAt: now,
			Input: map[string]any{"host_id": hostID + ph}}}})
	if err != nil {
		t.Fatal(err)
	}
	steps := stepsOf(t, f, "pb-run-1")
	if !strings.Contains(steps["get"], "[secret token]") || strings.Contains(steps["get"], "s3cr3t") || strings.Contains(steps["get"], "\\u0000") {
		t.Fatalf("stored input = %s", steps["get"])
	}
}

func TestLargeOutputsAreStoredByReference(t *testing.T) {
	f := newFixture(t)
	big := strings.Repeat("x", activities.MaxInlineOutput+10)
	now := time.Now()
	v, err := f.env.ExecuteActivity(workflows.ActivityPlaybookRecord, workflows.RecordInput{
		Ref: workflows.PlaybookRef{WorkflowID: "playbook/x", RunID: "pb-run-2", AlertID: "run-1", Playbook: "p", Version: 1}, Started: &now,
		Steps:  []workflows.StepRecord{{Name: "big", Seq: 1, Status: "succeeded", StartedAt: now, FinishedAt: now, Output: map[string]any{"blob": big}}},
		Result: &workflows.PlaybookResult{Status: workflows.RunSucceeded, Steps: 1},
	})
	if err != nil || v == nil {
		t.Fatal(err)
	}
	steps := stepsOf(t, f, "pb-run-2")
	var ref struct {
		Ref  string `json:"$ref"`
		Size int    `json:"size"`
	}
	if err := json.Unmarshal([]byte(steps["big"]), &ref); err != nil || !strings.HasPrefix(ref.Ref, "blob:") {
		t.Fatalf("stored output = %.200s", steps["big"])
	}
	content, err := f.store.GetBlob(context.Background(), ref.Ref)
	if err != nil || len(content) != ref.Size || !strings.Contains(string(content), big) {
		t.Fatalf("blob: %d bytes, %v", len(content), err)
	}
}

// TestGivenUpActionsEnd: an action whose step failed for good (its retries spent),
// or was cancelled with its branch, ends failed when the vendor never accepted it and unconfirmed when the vendor
// accepted it but never said it was done; one whose step succeeded is not touched
// by the rule.
func TestGivenUpActionsEnd(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	ref := workflows.PlaybookRef{WorkflowID: "playbook/x", RunID: "pb-run-3", AlertID: "run-1", Playbook: "p", Version: 1}
	for _, step := range []string{"isolate", "block.revert", "lookup", "slow", "raced"} {
		if _, _, err := f.store.ClaimAction(ctx, &store.Action{IdempotencyKey: workflows.ActionKey(ref, step), Integration: "crowdstrike", Operation: "isolate_host"}); err != nil {
			t.Fatal(err)
		}
	}
	accepted := store.ActionUpdate{Status: store.StatusRunning, VendorID: "act-1", VendorStatus: integrations.HostContainmentPending, VendorCall: true}
	if err := f.store.UpdateAction(ctx, workflows.ActionKey(ref, "slow"), accepted); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	_, err := f.env.ExecuteActivity(workflows.ActivityPlaybookRecord, workflows.RecordInput{Ref: ref, Steps: []workflows.StepRecord{
		{Name: "isolate", Seq: 1, Kind: playbook.KindAction, Status: workflows.StepFailed, StartedAt: now, FinishedAt: now, Error: "HTTP 503"},
		{Name: "block.revert", Seq: 2, Kind: workflows.StepKindRevert, Status: workflows.StepFailed, StartedAt: now, FinishedAt: now},
		{Name: "lookup", Seq: 3, Kind: playbook.KindAction, Status: workflows.StepSucceeded, StartedAt: now, FinishedAt: now},
		{Name: "slow", Seq: 4, Kind: playbook.KindAction, Status: workflows.StepFailed, StartedAt: now, FinishedAt: now, Error: "not confirmed yet"},
		{Name: "raced", Seq: 5, Kind: playbook.KindAction, Status: workflows.StepCancelled, StartedAt: now, FinishedAt: now, Error: "cancelled"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for step, want := range map[string]string{"isolate": store.StatusFailed, "block.revert": store.StatusFailed, "lookup": store.StatusPending, "slow": store.StatusUnconfirmed, "raced": store.StatusFailed} {
		if a, err := f.store.GetAction(ctx, workflows.ActionKey(ref, step)); err != nil || a.Status != want {
			t.Errorf("%s: %+v, %v; want %s", step, a, err, want)
		}
	}
}

// stepsOf reads a run's steps: name → output (or input when there is no output).
func stepsOf(t *testing.T, f *fixture, runID string) map[string]string {
	t.Helper()
	rows, err := f.store.RunSteps(context.Background(), runID)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, r := range rows {
		out[r.Name] = r.OutputJSON
		if r.OutputJSON == "" {
			out[r.Name] = r.InputJSON
		}
	}
	return out
}

// TestSecretsEchoedByTheVendorAreScrubbed: whatever an operation answers with a
// secret's value in it reaches history and the store with its name instead.
func TestSecretsEchoedByTheVendorAreScrubbed(t *testing.T) {
	f := newFixture(t)
	f.acts.Secrets = func(name string) (string, error) { return hostID, nil } // the simulator's device id, which it echoes
	out, err := f.action(t, workflows.ActionInput{Step: "get", Operation: "edr.get_host",
		Inputs: map[string]any{"host_id": workflows.SecretPlaceholder("device")}})
	if err != nil {
		t.Fatal(err)
	}
	text, _ := json.Marshal(out.Output)
	if strings.Contains(string(text), hostID) || !strings.Contains(string(text), `"[secret device]"`) || !strings.Contains(string(text), "fin-ws-0142") {
		t.Fatalf("output = %s", text)
	}
	// An action's record in the store names the secret too: its target, and the
	// error of a vendor that knows no such device.
	const unknown = "ffffffffffffffffffffffffffffffff"
	f.acts.Secrets = func(name string) (string, error) { return unknown, nil }
	_, err = f.action(t, workflows.ActionInput{Step: "isolate", Operation: "edr.isolate_host",
		Inputs: map[string]any{"host_id": workflows.SecretPlaceholder("device")}})
	if err == nil || strings.Contains(err.Error(), unknown) {
		t.Fatalf("err = %v", err)
	}
	a, err := f.store.GetAction(context.Background(), "playbook/x/pb-run-1/isolate")
	if err != nil || a.Target != "[secret device]" || a.Error == "" || strings.Contains(a.Error, unknown) || a.Status != store.StatusFailed {
		t.Fatalf("action = %+v, %v", a, err)
	}

}

type recordingEDR struct {
	integrations.EDR
	onGet func(id string)
}

func (r *recordingEDR) GetHost(ctx context.Context, id string) (integrations.Host, error) {
	r.onGet(id)
	return r.EDR.GetHost(ctx, id)
}

func TestProtectedAssetsAreNeverContainedWithoutApproval(t *testing.T) {
	f := newFixture(t)
	if err := f.store.UpsertAssets(context.Background(), []store.Asset{{Hostname: "fin-ws-0142", DeviceID: hostID, Protected: true}}); err != nil {
		t.Fatal(err)
	}
	for _, dryRun := range []bool{false, true} {
		_, err := f.action(t, workflows.ActionInput{Step: fmt.Sprint("isolate-", dryRun), Operation: "edr.isolate_host",
			Inputs: map[string]any{"host_id": hostID}, DryRun: dryRun})
		var appErr *temporal.ApplicationError
		if !errors.As(err, &appErr) || appErr.Type() != workflows.ErrTypeGuardrail || !appErr.NonRetryable() ||
			!strings.Contains(err.Error(), "protected asset") {
			t.Fatalf("dry run %v: err = %v", dryRun, err)
		}
	}
	// A host named through a secret is judged as the host it is, and the refusal
	// names the secret, not its value.
	f.acts.Secrets = func(name string) (string, error) { return hostID, nil }
	_, err := f.action(t, workflows.ActionInput{Step: "isolate-secret", Operation: "edr.isolate_host",
		Inputs: map[string]any{"host_id": workflows.SecretPlaceholder("device")}})
	if !strings.Contains(err.Error(), "guardrail: fin-ws-0142 ([secret device]) is a protected asset") || strings.Contains(err.Error(), hostID) {
		t.Fatalf("secret host: err = %v", err)
	}
	if n := f.sim.ContainCalls(hostID); n != 0 {
		t.Fatalf("the guardrail let %d calls through", n)
	}
	out, err := f.action(t, workflows.ActionInput{Step: "isolate-approved", Operation: "edr.isolate_host",
		Inputs: map[string]any{"host_id": hostID}, ApprovedBy: "ana"})
	if err != nil || out.Output["status"] != integrations.HostContained {
		t.Fatalf("approved: %+v, %v", out, err)
	}
	// Releasing is not containment: a revert passes without approval.
	if _, err := f.action(t, workflows.ActionInput{Step: "isolate-approved.revert", Operation: "edr.isolate_host", Revert: true,
		Inputs: map[string]any{"host_id": hostID}}); err != nil {
		t.Fatalf("revert: %v", err)
	}
}

// An action that cannot use the store fails with ErrTypeStore, retryable, before
// asking the vendor anything: the run waits for the store and runs it again.
func TestActionsMarkStoreFailures(t *testing.T) {
	f := newFixture(t)
	if err := f.store.Close(); err != nil {
		t.Fatal(err)
	}
	_, isolateErr := f.isolate(t)
	_, actionErr := f.action(t, workflows.ActionInput{Step: "isolate", Operation: "edr.isolate_host", Inputs: map[string]any{"host_id": hostID}})
	_, dryErr := f.action(t, workflows.ActionInput{Step: "dry", Operation: "chat.post_message", DryRun: true,
		Inputs: map[string]any{"channel": "#soc", "text": "hi"}})
	for name, err := range map[string]error{"isolate_host": isolateErr, "playbook action": actionErr, "dry run": dryErr} {
		var appErr *temporal.ApplicationError
		if !errors.As(err, &appErr) || appErr.Type() != workflows.ErrTypeStore || appErr.NonRetryable() {
			t.Errorf("%s with the store closed: %v; want a retryable %s", name, err, workflows.ErrTypeStore)
		}
	}
	if n := len(f.sim.Audit()); n != 0 {
		t.Fatalf("the EDR received %d calls without a claim on record", n)
	}
}
