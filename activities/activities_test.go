package activities_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/rampart-soar/rampart/activities"
	"github.com/rampart-soar/rampart/integrations"
	"github.com/rampart-soar/rampart/integrations/crowdstrike"
	"github.com/rampart-soar/rampart/policy"
	"github.com/rampart-soar/rampart/schemas"
	"github.com/rampart-soar/rampart/store"
	"github.com/rampart-soar/rampart/store/storetest"
	"github.com/rampart-soar/rampart/triage"
	"github.com/rampart-soar/rampart/workflows"
)

const hostID = "6a1f0c2e9b7d4e35a8c0f1d2e3b4a5c6"

type fixture struct {
	acts  *activities.Activities
	store *store.Store
	sim   *crowdstrike.Simulator
	env   *testsuite.TestActivityEnvironment
	ref   workflows.AlertRef
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureFor(t, workflows.AlertRef{AlertID: "run-1", WorkflowID: "alert/fp", RunID: "run-1"})
}

// testEnvRun is the workflow run the SDK's test environments run activities for.
var testEnvRun = workflows.AlertRef{AlertID: "default-test-run-id", WorkflowID: "default-test-workflow-id", RunID: "default-test-run-id"}

// newFixtureFor is a fixture whose alert is ref's, recorded by detect.
func newFixtureFor(t *testing.T, ref workflows.AlertRef) *fixture {
	t.Helper()
	st := storetest.SQLite(t)
	sim := crowdstrike.NewSimulator(crowdstrike.SimOptions{ClientID: "id", ClientSecret: "secret-0123456789", ContainDelay: 30 * time.Millisecond})
	sim.AddHost(crowdstrike.SimHost{ID: hostID, Hostname: "fin-ws-0142"})
	if err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	edr, err := crowdstrike.New(crowdstrike.Config{BaseURL: sim.URL(), ClientID: "id", ClientSecret: integrations.NewSecret("secret-0123456789")})
	if err != nil {
		t.Fatal(err)
	}
	rule, err := policy.CompileContainRule(policy.DefaultContainWhen)
	if err != nil {
		t.Fatal(err)
	}
	acts := &activities.Activities{Store: st, EDR: edr, Decider: rule, Attack: triage.NewAttack(), PollInterval: 10 * time.Millisecond}
	env := (&testsuite.WorkflowTestSuite{}).NewTestActivityEnvironment()
	acts.Register(env)
	f := &fixture{acts: acts, store: st, sim: sim, env: env, ref: ref}
	f.detect(t)
	return f
}

func testAlert() schemas.Alert {
	return schemas.Alert{
		ClassUID: 2004, Source: "crowdstrike", Time: time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC),
		Finding: schemas.Finding{UID: "f-1", Title: "MassFileEncryption"}, SeverityID: 5, Severity: "Critical",
		Attacks: []schemas.Attack{{Technique: schemas.Ref{UID: "T1486"}}},
		Device:  schemas.Device{ID: hostID, Hostname: "fin-ws-0142"},
		File:    schemas.File{SHA256: "4be1f82c6c5e0d3a9b7f2e1d0c8a6b4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b"},
		Raw:     json.RawMessage(`{"event":{}}`),
	}
}

func (f *fixture) detect(t *testing.T) workflows.DetectOutput {
	t.Helper()
	at := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	v, err := f.env.ExecuteActivity(workflows.ActivityDetect, workflows.DetectInput{
		Ref: f.ref, Alert: testAlert(), ReceivedAt: at, StartedAt: at, DedupUntil: at.Add(10 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	var out workflows.DetectOutput
	if err := v.Get(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

func (f *fixture) isolate(t *testing.T) (workflows.ContainOutput, error) {
	t.Helper()
	v, err := f.env.ExecuteActivity(workflows.ActivityIsolateHost, workflows.ContainInput{
		Ref: f.ref, DeviceID: hostID, Hostname: "fin-ws-0142",
		IdempotencyKey: workflows.IdempotencyKey(f.ref, workflows.StageContain), StartedAt: time.Now(),
	})
	var out workflows.ContainOutput
	if err == nil {
		err = v.Get(&out)
	}
	return out, err
}

func TestDetectRecordsTheAlert(t *testing.T) {
	f := newFixture(t)
	out := f.detect(t) // a retry of the same activity changes nothing
	if out.Detection.StageName != "Impact" || out.Attacks[0].Tactic.Name != "Impact" {
		t.Fatalf("detect = %+v", out)
	}
	d, err := f.store.GetAlert(context.Background(), "run-1")
	if err != nil {
		t.Fatal(err)
	}
	want := testAlert()
	if d.Alert.RawJSON != `{"event":{}}` || d.Alert.Fingerprint != want.Fingerprint() || d.Alert.Status != store.AlertProcessing {
		t.Fatalf("alert row = %+v", d.Alert)
	}
	var stored schemas.Alert
	if err := json.Unmarshal([]byte(d.Alert.AlertJSON), &stored); err != nil || stored.Raw != nil || stored.Attacks[0].Tactic.UID != "TA0040" {
		t.Fatalf("stored alert = %+v, %v (raw must be kept apart)", stored, err)
	}
	if len(d.Steps) != 1 || d.Steps[0].Name != "detect" || d.Steps[0].Status != store.StatusSucceeded {
		t.Fatalf("steps = %+v", d.Steps)
	}
}

func TestEnrichmentLookups(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if err := f.store.UpsertAssets(ctx, []store.Asset{{Hostname: "fin-ws-0142", DeviceID: hostID, Criticality: "medium", TagsJSON: `["finance"]`}}); err != nil {
		t.Fatal(err)
	}
	if err := f.store.UpsertIOCs(ctx, []store.IOC{{Type: "sha256", Value: testAlert().File.SHA256, Source: "intel", Confidence: 95}}); err != nil {
		t.Fatal(err)
	}
	in := workflows.EnrichInput{Ref: workflows.AlertRef{AlertID: "run-2", RunID: "run-2"}, Alert: testAlert()}
	var asset triage.Asset
	get(t, f.env, workflows.ActivityLookupAsset, in, &asset)
	if !asset.Found || asset.Criticality != "medium" || asset.Tags[0] != "finance" {
		t.Fatalf("asset = %+v", asset)
	}
	var iocs []triage.IOCMatch
	get(t, f.env, workflows.ActivityMatchIOCs, in, &iocs)
	if len(iocs) != 1 || iocs[0].Confidence != 95 {
		t.Fatalf("iocs = %+v", iocs)
	}
	var prior int
	get(t, f.env, workflows.ActivityCountPriorAlerts, in, &prior)
	if prior != 1 { // run-1, recorded by the fixture
		t.Fatalf("prior alerts = %d, want 1", prior)
	}
	unknown := in
	unknown.Alert.Device = schemas.Device{Hostname: "nowhere"}
	get(t, f.env, workflows.ActivityLookupAsset, unknown, &asset)
	if asset.Found {
		t.Fatalf("unknown host found: %+v", asset)
	}
}

func get(t *testing.T, env *testsuite.TestActivityEnvironment, name string, in, out any) {
	t.Helper()
	v, err := env.ExecuteActivity(name, in)
	if err != nil {
		t.Fatal(err)
	}
	if out == nil {
		return
	}
	if err := v.Get(out); err != nil {
		t.Fatal(err)
	}
}

// containableInput is decide's input for the test alert on an inventoried host
// with one IOC hit: what the default contain rule contains.
func (f *fixture) containableInput() workflows.DecideInput {
	now := time.Now()
	return workflows.DecideInput{
		Ref: f.ref, Alert: testAlert(),
		Enrichment:    triage.Enrichment{Complete: true, IOCHits: 1, Asset: triage.Asset{Found: true}},
		EnrichStarted: now, EnrichFinished: now, DecideStarted: now,
	}
}

func TestDecideRecordsEnrichmentAndDecision(t *testing.T) {
	f := newFixture(t)
	var v policy.Verdict
	get(t, f.env, workflows.ActivityDecide, f.containableInput(), &v)
	if !v.Contain || v.Inputs["enrich.ioc_hits"] != float64(1) {
		t.Fatalf("verdict = %+v", v)
	}
	d, _ := f.store.GetAlert(context.Background(), "run-1")
	if d.Alert.DecisionJSON == "" || d.Alert.EnrichmentJSON == "" || len(d.Steps) != 3 || d.Steps[2].Name != "decide" {
		t.Fatalf("recorded = %+v steps %+v", d.Alert, d.Steps)
	}
	// A runtime error in the rule is final, not retried forever.
	bad, _ := policy.CompileContainRule(`alert.attacks[5].technique.uid == "T1"`)
	f.acts.Decider = bad
	_, err := f.env.ExecuteActivity(workflows.ActivityDecide, workflows.DecideInput{Ref: f.ref, Alert: testAlert()})
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || !appErr.NonRetryable() || appErr.Type() != workflows.ErrTypeDecision {
		t.Fatalf("err = %v", err)
	}
}

func TestIsolateHostActsOncePerDecision(t *testing.T) {
	f := newFixture(t)
	out, err := f.isolate(t)
	if err != nil {
		t.Fatal(err)
	}
	if out.Status != integrations.HostContained || out.VendorActionID == "" || out.AlreadyContained {
		t.Fatalf("out = %+v", out)
	}
	// A retry (or a replayed activity) after success returns the recorded result.
	again, err := f.isolate(t)
	if err != nil || again.VendorActionID != out.VendorActionID {
		t.Fatalf("retry = %+v, %v", again, err)
	}
	if n := f.sim.ContainCalls(hostID); n != 1 {
		t.Fatalf("vendor contain calls = %d, want 1", n)
	}
	a, _ := f.store.GetAction(context.Background(), workflows.IdempotencyKey(f.ref, workflows.StageContain))
	if a.Status != store.StatusSucceeded || a.Attempts != 2 || a.VendorCalls != 1 || a.VendorStatus != integrations.HostContained {
		t.Fatalf("action = %+v", a)
	}
	d, _ := f.store.GetAlert(context.Background(), "run-1")
	last := d.Steps[len(d.Steps)-1]
	if last.Name != "contain" || last.Status != store.StatusSucceeded || last.FinishedAt == nil {
		t.Fatalf("contain step = %+v", last)
	}
}

// claimedIsolation is decide's input with the isolation to claim, and that
// isolation.
func (f *fixture) claimedIsolation() (workflows.DecideInput, *workflows.ContainInput) {
	in := f.containableInput()
	in.Contain = &workflows.ContainInput{Ref: f.ref, DeviceID: hostID, Hostname: "fin-ws-0142",
		IdempotencyKey: workflows.IdempotencyKey(f.ref, workflows.StageContain), StartedAt: in.DecideStarted}
	return in, in.Contain
}

func TestDecisionClaimsTheIsolation(t *testing.T) {
	f := newFixtureFor(t, testEnvRun)
	ctx := context.Background()
	in, contain := f.claimedIsolation()
	var d workflows.ResponseDecision
	get(t, f.env, workflows.ActivityDecideResponse, in, &d)
	if d.Verdict == nil || !d.Verdict.Contain || d.ClaimedAction != contain.IdempotencyKey {
		t.Fatalf("decision = %+v", d)
	}
	a, err := f.store.GetAction(ctx, contain.IdempotencyKey)
	if err != nil || a.Status != store.StatusPending || a.Attempts != 1 || a.VendorCalls != 0 ||
		a.Integration != "crowdstrike" || a.Operation != "isolate_host" || a.Target != hostID {
		t.Fatalf("claimed action = %+v, %v", a, err)
	}
	detail, _ := f.store.GetAlert(ctx, f.ref.AlertID)
	if last := detail.Steps[len(detail.Steps)-1]; last.Name != "contain" || last.Status != store.StatusRunning {
		t.Fatalf("contain step = %+v", last)
	}
	// The isolation's first attempt asks the vendor straight away.
	contain.Claimed = true
	var out workflows.ContainOutput
	get(t, f.env, workflows.ActivityIsolateHost, *contain, &out)
	if out.Status != integrations.HostContained {
		t.Fatalf("isolate = %+v", out)
	}
	if calls := hostCalls(f.sim); len(calls) == 0 || calls[0].Action != "contain" {
		t.Fatalf("the vendor's calls for the host = %+v, want the contain request first", calls)
	}
	a, _ = f.store.GetAction(ctx, contain.IdempotencyKey)
	if a.Status != store.StatusSucceeded || a.Attempts != 1 || a.VendorCalls != 1 || f.sim.ContainCalls(hostID) != 1 {
		t.Fatalf("action = %+v, contain calls %d", a, f.sim.ContainCalls(hostID))
	}
	// Asked again (the local activity retried after its transaction committed),
	// the claim is not new, so no isolation takes it as its own; and the
	// finished action keeps its record.
	var again workflows.ResponseDecision
	get(t, f.env, workflows.ActivityDecideResponse, in, &again)
	if !again.Verdict.Contain || again.ClaimedAction != "" {
		t.Fatalf("decision asked again = %+v", again)
	}
	detail, _ = f.store.GetAlert(ctx, f.ref.AlertID)
	if last := detail.Steps[len(detail.Steps)-1]; last.Name != "contain" || last.Status != store.StatusSucceeded {
		t.Fatalf("contain step after the decision was asked again = %+v", last)
	}
}

func TestDecisionClaimsNothingItDoesNotContain(t *testing.T) {
	f := newFixtureFor(t, testEnvRun)
	in, contain := f.claimedIsolation()
	in.Enrichment.IOCHits = 0
	var d workflows.ResponseDecision
	get(t, f.env, workflows.ActivityDecideResponse, in, &d)
	if d.Verdict == nil || d.Verdict.Contain || d.ClaimedAction != "" {
		t.Fatalf("decision = %+v", d)
	}
	if a, err := f.store.GetAction(context.Background(), contain.IdempotencyKey); err == nil {
		t.Fatalf("an action was claimed: %+v", a)
	}
}

// A claimed isolation run for another workflow run than its own — a run reset from
// it copies its input — is not that claim's first try: it claims and reads the host
// before asking.
func TestClaimedIsolationOfAnotherRunClaims(t *testing.T) {
	f := newFixture(t) // its alert's run is not the test environment's
	in, contain := f.claimedIsolation()
	var d workflows.ResponseDecision
	get(t, f.env, workflows.ActivityDecideResponse, in, &d)
	contain.Claimed = d.ClaimedAction == contain.IdempotencyKey
	if !contain.Claimed {
		t.Fatalf("decision = %+v", d)
	}
	var out workflows.ContainOutput
	get(t, f.env, workflows.ActivityIsolateHost, *contain, &out)
	if out.Status != integrations.HostContained {
		t.Fatalf("isolate = %+v", out)
	}
	if calls := hostCalls(f.sim); len(calls) == 0 || calls[0].Method != http.MethodGet {
		t.Fatalf("the vendor's calls for the host = %+v, want the host read first", calls)
	}
	if a, _ := f.store.GetAction(context.Background(), contain.IdempotencyKey); a.Attempts != 2 || f.sim.ContainCalls(hostID) != 1 {
		t.Fatalf("action = %+v, contain calls %d", a, f.sim.ContainCalls(hostID))
	}
}

// hostCalls is the simulator's audit of the calls about the test host.
func hostCalls(sim *crowdstrike.Simulator) []crowdstrike.AuditEntry {
	var calls []crowdstrike.AuditEntry
	for _, e := range sim.Audit() {
		if slices.Contains(e.IDs, hostID) {
			calls = append(calls, e)
		}
	}
	return calls
}

// isolateWithRetries runs the isolation as the alert workflow does, with retries.
func isolateWithRetries(ctx workflow.Context, in workflows.ContainInput) (workflows.ContainOutput, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Millisecond, MaximumAttempts: 3},
	})
	var out workflows.ContainOutput
	err := workflow.ExecuteActivity(ctx, workflows.ActivityIsolateHost, in).Get(ctx, &out)
	return out, err
}

// A claimed isolation's retry is not a first attempt: it claims as usual and reads
// the host before asking, so the vendor is asked once.
func TestClaimedIsolationRetryReadsTheHostFirst(t *testing.T) {
	f := newFixtureFor(t, testEnvRun)
	in, contain := f.claimedIsolation()
	var d workflows.ResponseDecision
	get(t, f.env, workflows.ActivityDecideResponse, in, &d)
	contain.Claimed = d.ClaimedAction == contain.IdempotencyKey
	// The first attempt's request is accepted; its first poll fails.
	f.sim.InjectFault(crowdstrike.Fault{Status: 502, Path: "/devices/entities/devices/v2"})
	env := (&testsuite.WorkflowTestSuite{}).NewTestWorkflowEnvironment()
	f.acts.Register(env)
	env.RegisterWorkflow(isolateWithRetries)
	env.ExecuteWorkflow(isolateWithRetries, *contain)
	var out workflows.ContainOutput
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if err := env.GetWorkflowResult(&out); err != nil || out.Status != integrations.HostContained {
		t.Fatalf("out = %+v, %v", out, err)
	}
	for _, c := range hostCalls(f.sim) {
		if c.Action == "contain" && c.Status != 202 {
			t.Fatalf("the retry asked the vendor again: %+v", c)
		}
	}
	a, _ := f.store.GetAction(context.Background(), contain.IdempotencyKey)
	if f.sim.ContainCalls(hostID) != 1 || a.Attempts != 2 || a.VendorCalls != 1 || a.Status != store.StatusSucceeded {
		t.Fatalf("contain calls %d, action %+v", f.sim.ContainCalls(hostID), a)
	}
}

func TestIsolateHostAfterACrashBetweenRequestAndRecord(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	// The earlier attempt claimed the action and the vendor accepted its request,
	// but the worker died before recording it.
	if _, _, err := f.store.ClaimAction(ctx, &store.Action{IdempotencyKey: workflows.IdempotencyKey(f.ref, workflows.StageContain),
		AlertID: "run-1", RunID: "run-1", Integration: "crowdstrike", Operation: "isolate_host", Target: hostID}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.acts.EDR.ContainHost(ctx, hostID); err != nil {
		t.Fatal(err)
	}
	out, err := f.isolate(t)
	if err != nil || out.Status != integrations.HostContained {
		t.Fatalf("out = %+v, %v", out, err)
	}
	if n := f.sim.ContainCalls(hostID); n != 1 {
		t.Fatalf("vendor contain calls = %d, want 1: the retry must not ask again", n)
	}
}

func TestIsolateHostErrorClasses(t *testing.T) {
	cases := []struct {
		name         string
		fault        crowdstrike.Fault
		device       string
		errType      string
		nonRetryable bool
		minDelay     time.Duration
	}{
		{"throttled: retry after the vendor's hint", crowdstrike.Fault{Status: 429, RetryAfter: 4 * time.Second}, hostID, workflows.ErrTypeHTTP429, false, 2 * time.Second},
		{"server error: retry with backoff", crowdstrike.Fault{Status: 502}, hostID, workflows.ErrTypeHTTP5xx, false, 0},
		{"forbidden: final", crowdstrike.Fault{Status: 403}, hostID, workflows.ErrTypeHTTP4xx, true, 0},
		{"unknown device: final", crowdstrike.Fault{}, "ffffffffffffffffffffffffffffffff", workflows.ErrTypeHTTP4xx, true, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			if c.fault.Status != 0 {
				f.sim.InjectFault(c.fault)
			}
			_, err := f.env.ExecuteActivity(workflows.ActivityIsolateHost, workflows.ContainInput{
				Ref: f.ref, DeviceID: c.device, IdempotencyKey: "k-" + c.name, StartedAt: time.Now()})
			var appErr *temporal.ApplicationError
			if !errors.As(err, &appErr) {
				t.Fatalf("err = %v", err)
			}
			if appErr.Type() != c.errType || appErr.NonRetryable() != c.nonRetryable {
				t.Fatalf("type %s nonretryable %v, want %s %v (%v)", appErr.Type(), appErr.NonRetryable(), c.errType, c.nonRetryable, err)
			}
			if c.minDelay > 0 && appErr.NextRetryDelay() < c.minDelay {
				t.Fatalf("next retry delay = %v, want at least %v", appErr.NextRetryDelay(), c.minDelay)
			}
			// A final answer ends the action; a retryable one leaves it pending.
			want := store.StatusPending
			if c.nonRetryable {
				want = store.StatusFailed
			}
			if a, err := f.store.GetAction(context.Background(), "k-"+c.name); err != nil || a.Error == "" || a.Status != want {
				t.Fatalf("action after failure = %+v, %v; want status %s", a, err, want)
			}
		})
	}
}

func TestIsolateHostAlreadyContained(t *testing.T) {
	f := newFixture(t)
	f.sim.AddHost(crowdstrike.SimHost{ID: hostID, Hostname: "fin-ws-0142", Status: integrations.HostContained})
	out, err := f.isolate(t)
	if err != nil || !out.AlreadyContained || out.Status != integrations.HostContained || f.sim.ContainCalls(hostID) != 0 {
		t.Fatalf("out = %+v, %v, calls %d", out, err, f.sim.ContainCalls(hostID))
	}
}

func TestFinishRecordsOutcomeAndClose(t *testing.T) {
	f := newFixture(t)
	at := time.Now()
	get(t, f.env, workflows.ActivityFinish, workflows.FinishInput{Ref: f.ref, Outcome: workflows.OutcomeNoAction,
		SkipContain: "contain_when did not match", At: at, Duplicates: 2, LastSeen: at}, nil)
	d, _ := f.store.GetAlert(context.Background(), "run-1")
	if d.Alert.Status != store.AlertNoAction || d.Alert.Summary != "contain_when did not match" || d.Alert.DuplicateCount != 2 ||
		d.Run.Status != store.StatusCompleted || d.Run.CompletedAt == nil || d.Run.ClosedAt != nil {
		t.Fatalf("after finish: %+v run %+v", d.Alert, d.Run)
	}
	if last := d.Steps[len(d.Steps)-1]; last.Name != "contain" || last.Status != store.StatusSkipped {
		t.Fatalf("contain step = %+v", last)
	}
	get(t, f.env, workflows.ActivityFinish, workflows.FinishInput{Ref: f.ref, Outcome: workflows.OutcomeNoAction, Closed: true, At: at.Add(time.Minute), Duplicates: 5, LastSeen: at}, nil)
	d, _ = f.store.GetAlert(context.Background(), "run-1")
	if d.Run.ClosedAt == nil || d.Alert.DuplicateCount != 5 {
		t.Fatalf("after close: %+v run %+v", d.Alert, d.Run)
	}
	// A failed stage is recorded as such, and the isolation it gave up on ends.
	if _, _, err := f.store.ClaimAction(context.Background(), &store.Action{IdempotencyKey: workflows.IdempotencyKey(f.ref, workflows.StageContain),
		AlertID: "run-1", RunID: "run-1", Integration: "crowdstrike", Operation: "isolate_host"}); err != nil {
		t.Fatal(err)
	}
	get(t, f.env, workflows.ActivityFinish, workflows.FinishInput{Ref: f.ref, Outcome: workflows.OutcomeFailed, FailedStage: workflows.StageContain, Error: "contain: HTTP 403", At: at}, nil)
	d, _ = f.store.GetAlert(context.Background(), "run-1")
	if d.Alert.Status != store.AlertFailed || d.Run.Status != store.StatusFailed || d.Steps[len(d.Steps)-1].Status != store.StatusFailed || d.Steps[len(d.Steps)-1].Error != "contain: HTTP 403" {
		t.Fatalf("after failure: %+v run %+v steps %+v", d.Alert, d.Run, d.Steps)
	}
	if d.Alert.Summary != "failed: contain: HTTP 403" {
		t.Fatalf("summary after failure = %q", d.Alert.Summary)
	}
	if len(d.Actions) != 1 || d.Actions[0].Status != store.StatusFailed {
		t.Fatalf("actions after failure = %+v", d.Actions)
	}
}
