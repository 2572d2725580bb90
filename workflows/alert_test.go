package workflows_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/rampart-soar/rampart/policy"
	"github.com/rampart-soar/rampart/schemas"
	"github.com/rampart-soar/rampart/triage"
	"github.com/rampart-soar/rampart/workflows"
)

// stubs are activity implementations that record what the workflow asked for.
type stubs struct {
	mu         sync.Mutex
	verdict    policy.Verdict
	enrichErr  error
	isolate    func(ctx context.Context, attempt int32) (workflows.ContainOutput, error)
	attempts   []time.Time
	contains   []workflows.ContainInput
	decides    []workflows.DecideInput
	finishes   []workflows.FinishInput
	duplicates []workflows.DuplicatesInput
	// selection answers alert.select_playbooks; nil means no playbook is enabled.
	selection *workflows.SelectOutput
	selects   []workflows.DecideInput
	// calls names the deciding activities in the order they ran.
	calls []string
	now   func() time.Time
	// storeDownUntil fails the store's activities (and the asset lookup) until then,
	// as an unreachable database does; detects counts detect's tries.
	storeDownUntil time.Time
	detects        int
	// claims: a verdict to contain claims an isolation, as the real decision does
	// when the store takes the claim: the one it was given ("{key}") or another.
	claims string
}

var errStoreDown = errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")

// storeDown says the store is unreachable now.
func (s *stubs) storeDown() bool { return s.now().Before(s.storeDownUntil) }

func (s *stubs) register(env *testsuite.TestWorkflowEnvironment) {
	reg := func(name string, fn any) { env.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name}) }
	reg(workflows.ActivityDetect, func(_ context.Context, in workflows.DetectInput) (workflows.DetectOutput, error) {
		s.mu.Lock()
		s.detects++
		s.mu.Unlock()
		if s.storeDown() {
			return workflows.DetectOutput{}, errStoreDown
		}
		d, attacks := triage.NewAttack().Detect(&in.Alert)
		return workflows.DetectOutput{Detection: d, Attacks: attacks}, nil
	})
	reg(workflows.ActivityLookupAsset, func(_ context.Context, in workflows.EnrichInput) (triage.Asset, error) {
		if s.enrichErr != nil {
			return triage.Asset{}, s.enrichErr
		}
		if s.storeDown() {
			return triage.Asset{}, errStoreDown
		}
		return triage.Asset{Found: true, DeviceID: in.Alert.Device.ID}, nil
	})
	reg(workflows.ActivityMatchIOCs, func(context.Context, workflows.EnrichInput) ([]triage.IOCMatch, error) {
		return []triage.IOCMatch{{Type: "sha256", Value: "abc", Confidence: 90}}, nil
	})
	reg(workflows.ActivityCountPriorAlerts, func(context.Context, workflows.EnrichInput) (int, error) { return 3, nil })
	reg(workflows.ActivityDecide, func(_ context.Context, in workflows.DecideInput) (policy.Verdict, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.decides = append(s.decides, in)
		s.calls = append(s.calls, workflows.ActivityDecide)
		return s.verdict, nil
	})
	reg(workflows.ActivitySelectPlaybooks, func(_ context.Context, in workflows.DecideInput) (workflows.SelectOutput, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.selects = append(s.selects, in)
		s.calls = append(s.calls, workflows.ActivitySelectPlaybooks)
		if s.selection == nil {
			return workflows.SelectOutput{}, nil
		}
		return *s.selection, nil
	})
	// Like the real one: the selection, and the rule's verdict when no playbook is enabled.
	reg(workflows.ActivityDecideResponse, func(_ context.Context, in workflows.DecideInput) (workflows.ResponseDecision, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.selects = append(s.selects, in)
		if s.storeDown() {
			return workflows.ResponseDecision{}, errStoreDown
		}
		s.calls = append(s.calls, workflows.ActivityDecideResponse)
		if s.selection != nil && s.selection.Configured {
			return workflows.ResponseDecision{Selection: *s.selection}, nil
		}
		s.decides = append(s.decides, in)
		v := s.verdict
		d := workflows.ResponseDecision{Verdict: &v}
		if s.claims != "" && v.Contain && in.Contain != nil {
			d.ClaimedAction = strings.ReplaceAll(s.claims, "{key}", in.Contain.IdempotencyKey)
		}
		return d, nil
	})
	reg(workflows.ActivityIsolateHost, func(ctx context.Context, in workflows.ContainInput) (workflows.ContainOutput, error) {
		s.mu.Lock()
		s.contains = append(s.contains, in)
		s.attempts = append(s.attempts, s.now())
		s.mu.Unlock()
		if s.isolate != nil {
			return s.isolate(ctx, activity.GetInfo(ctx).Attempt)
		}
		return workflows.ContainOutput{Integration: "crowdstrike", Operation: "isolate_host", Target: in.DeviceID, VendorActionID: "v-1", Status: "contained"}, nil
	})
	reg(workflows.ActivityRecordDuplicates, func(_ context.Context, in workflows.DuplicatesInput) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.duplicates = append(s.duplicates, in)
		return nil
	})
	reg(workflows.ActivityFinish, func(_ context.Context, in workflows.FinishInput) error {
		if s.storeDown() {
			return errStoreDown
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.finishes = append(s.finishes, in)
		return nil
	})
}

var received = time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)

func input() workflows.AlertInput {
	return workflows.AlertInput{
		Alert: schemas.Alert{
			ClassUID: 2004, Source: "crowdstrike", Time: received.Add(-time.Minute),
			Finding: schemas.Finding{UID: "f-1", Title: "MassFileEncryption"}, SeverityID: 5,
			Attacks: []schemas.Attack{{Technique: schemas.Ref{UID: "T1486"}}},
			Device:  schemas.Device{ID: "dev-1", Hostname: "fin-ws-0142"},
			Raw:     []byte(`{"big":"payload"}`),
		},
		DeliveryID:  "delivery-0",
		ReceivedAt:  received,
		DedupWindow: 10 * time.Minute,
	}
}

func setup(t *testing.T, s *stubs) *testsuite.TestWorkflowEnvironment {
	t.Helper()
	env := (&testsuite.WorkflowTestSuite{}).NewTestWorkflowEnvironment()
	env.SetStartTime(received)
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: "alert/fp-test"})
	s.now = env.Now
	workflows.Register(env)
	s.register(env)
	// The start's own delivery arrives with it, as SignalWithStart delivers it.
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(workflows.DuplicateSignal, workflows.Delivery{DeliveryID: "delivery-0", ReceivedAt: received})
	}, 0)
	return env
}

// queryAt asks the run's query name into out once the workflow clock is after
// past the start.
func queryAt(t *testing.T, env *testsuite.TestWorkflowEnvironment, after time.Duration, name string, out any) {
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(name)
		if err == nil {
			err = v.Get(out)
		}
		if err != nil {
			t.Errorf("query %s after %s: %v", name, after, err)
		}
	}, after)
}

func result(t *testing.T, env *testsuite.TestWorkflowEnvironment) workflows.AlertResult {
	t.Helper()
	if !env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	var r workflows.AlertResult
	if err := env.GetWorkflowResult(&r); err != nil {
		t.Fatalf("workflow failed: %v", err)
	}
	return r
}

func TestContainPath(t *testing.T) {
	s := &stubs{verdict: policy.Verdict{Contain: true, RuleMatched: true, Reason: "contain_when matched"}}
	env := setup(t, s)
	var state workflows.AlertState
	queryAt(t, env, time.Minute, workflows.StateQuery, &state)
	env.ExecuteWorkflow(workflows.AlertWorkflowName, input())
	r := result(t, env)
	if r.Outcome != workflows.OutcomeContained || r.Action == nil || r.Action.VendorActionID != "v-1" || r.Duplicates != 0 {
		t.Fatalf("result = %+v", r)
	}
	if len(s.contains) != 1 {
		t.Fatalf("isolate called %d times", len(s.contains))
	}
	c := s.contains[0]
	if c.DeviceID != "dev-1" || c.Ref.WorkflowID != "alert/fp-test" || c.Ref.RunID == "" || c.Ref.AlertID != c.Ref.RunID ||
		c.IdempotencyKey != "alert/fp-test/"+c.Ref.RunID+"/contain" {
		t.Fatalf("contain input = %+v", c)
	}
	d := s.decides[0]
	if !d.Enrichment.Complete || d.Enrichment.IOCHits != 1 || d.Enrichment.PriorAlerts != 3 || d.Detection.StageName != "Impact" {
		t.Fatalf("decide input = %+v", d)
	}
	if d.Alert.Raw != nil {
		t.Fatal("the raw payload travelled past the detect stage")
	}
	if len(s.finishes) != 2 || s.finishes[0].Outcome != workflows.OutcomeContained || s.finishes[0].Closed || !s.finishes[1].Closed {
		t.Fatalf("finishes = %+v", s.finishes)
	}
	if len(s.selects) != 1 || len(s.finishes[0].Playbooks) != 0 {
		t.Fatalf("with no playbook enabled: selects %d, playbooks %+v", len(s.selects), s.finishes[0].Playbooks)
	}
	// The run stays open for the dedup window.
	if closed := s.finishes[1].At; closed.Sub(received) < 10*time.Minute {
		t.Fatalf("closed at %v, before the dedup window ended", closed)
	}
	if state.Stage != workflows.StageDone || state.Outcome != workflows.OutcomeContained || state.Decision == nil || !state.Decision.Contain {
		t.Fatalf("queried state = %+v", state)
	}
}

// TestDecidingByVersion: a run decides the way the version it started on did,
// whichever version the code is at now.
func TestDecidingByVersion(t *testing.T) {
	for _, tc := range []struct {
		name    string
		version workflow.Version
		calls   []string
	}{
		{"before playbooks", workflow.DefaultVersion, []string{workflows.ActivityDecide}},
		{"select then decide", 1, []string{workflows.ActivitySelectPlaybooks, workflows.ActivityDecide}},
		{"decide once", 2, []string{workflows.ActivityDecideResponse}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &stubs{verdict: policy.Verdict{Contain: true, RuleMatched: true}}
			env := setup(t, s)
			env.OnGetVersion("playbooks", workflow.DefaultVersion, 2).Return(tc.version)
			env.ExecuteWorkflow(workflows.AlertWorkflowName, input())
			if r := result(t, env); r.Outcome != workflows.OutcomeContained || len(s.contains) != 1 {
				t.Fatalf("result = %+v after %d isolations", r, len(s.contains))
			}
			if !slices.Equal(s.calls, tc.calls) {
				t.Fatalf("decided by %v, want %v", s.calls, tc.calls)
			}
		})
	}
}

func TestNoContainPath(t *testing.T) {
	s := &stubs{verdict: policy.Verdict{Contain: false, Reason: "contain_when did not match"}}
	env := setup(t, s)
	env.ExecuteWorkflow(workflows.AlertWorkflowName, input())
	r := result(t, env)
	if r.Outcome != workflows.OutcomeNoAction || r.Action != nil || len(s.contains) != 0 {
		t.Fatalf("result = %+v, isolate calls %d", r, len(s.contains))
	}
	if s.finishes[0].SkipContain != "contain_when did not match" || s.finishes[0].Outcome != workflows.OutcomeNoAction {
		t.Fatalf("finish = %+v", s.finishes[0])
	}
}

func TestDuplicatesAreCountedNotRestarted(t *testing.T) {
	s := &stubs{verdict: policy.Verdict{Contain: true}}
	env := setup(t, s)
	for i, at := range []time.Duration{30 * time.Second, 31 * time.Second, 2 * time.Minute, 9 * time.Minute} {
		env.RegisterDelayedCallback(func() {
			env.SignalWorkflow(workflows.DuplicateSignal, workflows.Delivery{DeliveryID: "dup-" + string(rune('a'+i)), ReceivedAt: received.Add(at)})
		}, at)
	}
	var mid workflows.AlertState
	queryAt(t, env, 5*time.Minute, workflows.StateQuery, &mid)
	env.ExecuteWorkflow(workflows.AlertWorkflowName, input())
	r := result(t, env)
	if r.Duplicates != 4 || len(s.contains) != 1 {
		t.Fatalf("duplicates = %d, isolate calls = %d; want 4 and 1", r.Duplicates, len(s.contains))
	}
	if mid.Duplicates != 3 || !mid.LastSeen.Equal(received.Add(2*time.Minute)) {
		t.Fatalf("state at 5m = %+v", mid)
	}
	last := s.finishes[len(s.finishes)-1]
	if !last.Closed || last.Duplicates != 4 || !last.LastSeen.Equal(received.Add(9*time.Minute)) {
		t.Fatalf("close = %+v", last)
	}
	if len(s.duplicates) == 0 || s.duplicates[len(s.duplicates)-1].Count > 4 {
		t.Fatalf("duplicate writes = %+v", s.duplicates)
	}
}

func TestEnrichmentFailureIsRecordedNotFatal(t *testing.T) {
	s := &stubs{verdict: policy.Verdict{Contain: false, Guardrail: "enrichment_incomplete"}, enrichErr: errors.New("inventory down")}
	env := setup(t, s)
	env.ExecuteWorkflow(workflows.AlertWorkflowName, input())
	r := result(t, env)
	d := s.decides[0]
	if d.Enrichment.Complete || len(d.Enrichment.Errors) != 1 || d.Enrichment.IOCHits != 1 {
		t.Fatalf("enrichment = %+v", d.Enrichment)
	}
	if r.Outcome != workflows.OutcomeNoAction {
		t.Fatalf("outcome = %s", r.Outcome)
	}
}

// An alert that arrives while the store is down is recorded, fully enriched and
// contained once the store is back, hours later; the run waits on timers meanwhile,
// trying every few minutes, not with every retry of a local activity.
func TestAlertWaitsOutAStoreOutage(t *testing.T) {
	s := &stubs{verdict: policy.Verdict{Contain: true, RuleMatched: true}, storeDownUntil: received.Add(3 * time.Hour)}
	env := setup(t, s)
	var during workflows.AlertState
	queryAt(t, env, 2*time.Hour, workflows.StateQuery, &during)
	env.ExecuteWorkflow(workflows.AlertWorkflowName, input())
	r := result(t, env)
	if !strings.HasPrefix(during.Waiting, "alert.detect: waiting for the store since 2026-11-27T09:0") ||
		!strings.Contains(during.Waiting, "connection refused") || during.Stage != workflows.StageDetect {
		t.Fatalf("the state during the outage: stage %s, waiting %q", during.Stage, during.Waiting)
	}
	v, err := env.QueryWorkflow(workflows.StateQuery)
	var after workflows.AlertState
	if err != nil || v.Get(&after) != nil || after.Waiting != "" {
		t.Fatalf("the state after the outage: %+v, %v", after, err)
	}
	if r.Outcome != workflows.OutcomeContained || len(s.contains) != 1 {
		t.Fatalf("outcome %s after %d containment(s); want contained once", r.Outcome, len(s.contains))
	}
	if at := s.attempts[0]; at.Before(s.storeDownUntil) || at.After(s.storeDownUntil.Add(6*time.Minute)) {
		t.Fatalf("contained at %s; want within the longest wait after the store came back at %s", at, s.storeDownUntil)
	}
	if e := s.decides[0].Enrichment; !e.Complete || !e.Asset.Found {
		t.Fatalf("enrichment = %+v; want the asset lookup tried again once detect went through", e)
	}
	// Three hours at one try per 5-minute wait is 36 tries, plus the first minutes'.
	if s.detects < 30 || s.detects > 60 {
		t.Fatalf("detect tried %d times over the outage", s.detects)
	}
	if n := len(s.finishes); n != 2 || s.finishes[1].Outcome != workflows.OutcomeContained {
		t.Fatalf("finishes = %+v", s.finishes)
	}
}

// A containment whose activity cannot use the store past its retries waits for the
// store, then contains.
func TestContainWaitsOutAStoreOutage(t *testing.T) {
	s := &stubs{verdict: policy.Verdict{Contain: true, RuleMatched: true}, claims: "{key}"}
	s.isolate = func(_ context.Context, attempt int32) (workflows.ContainOutput, error) {
		if s.now().Before(received.Add(2 * time.Hour)) {
			return workflows.ContainOutput{}, temporal.NewApplicationError("store: "+errStoreDown.Error(), workflows.ErrTypeStore)
		}
		return workflows.ContainOutput{Status: "contained", VendorActionID: "v-1"}, nil
	}
	env := setup(t, s)
	env.ExecuteWorkflow(workflows.AlertWorkflowName, input())
	r := result(t, env)
	if r.Outcome != workflows.OutcomeContained || r.Action == nil || r.Action.VendorActionID != "v-1" {
		t.Fatalf("result = %+v", r)
	}
	if last := s.attempts[len(s.attempts)-1]; last.After(received.Add(2*time.Hour + 6*time.Minute)) {
		t.Fatalf("contained at %s; want soon after the store came back", last)
	}
	// The decision claimed the isolation, so the first run may act without a claim
	// of its own; the run after the wait is not a first and must claim.
	decided := s.decides[0].Contain
	if decided == nil || decided.IdempotencyKey != s.contains[0].IdempotencyKey || decided.DeviceID != "dev-1" {
		t.Fatalf("decide was asked to claim %+v; isolate got %+v", decided, s.contains[0])
	}
	if first, last := s.contains[0], s.contains[len(s.contains)-1]; !first.Claimed || !first.StartedAt.Equal(decided.StartedAt) || last.Claimed {
		t.Fatalf("first isolate %+v, last %+v: want only the first run claimed", first, last)
	}
}

// A claim under another run's key — what a run reset from another replays — is not
// this run's: its isolation claims as usual.
func TestContainTrustsOnlyItsOwnRunsClaim(t *testing.T) {
	s := &stubs{verdict: policy.Verdict{Contain: true, RuleMatched: true}, claims: "alert/fp-test/an-earlier-run/contain"}
	env := setup(t, s)
	env.ExecuteWorkflow(workflows.AlertWorkflowName, input())
	if r := result(t, env); r.Outcome != workflows.OutcomeContained {
		t.Fatalf("result = %+v", r)
	}
	if len(s.contains) != 1 || s.contains[0].Claimed {
		t.Fatalf("isolate inputs = %+v; want one, not claimed", s.contains)
	}
}

// An outage past the limit fails the alert at detect rather than waiting forever.
func TestAlertGivesUpOnAStoreThatStaysDown(t *testing.T) {
	s := &stubs{verdict: policy.Verdict{Contain: true, RuleMatched: true}, storeDownUntil: received.Add(100 * time.Hour)}
	env := setup(t, s)
	env.ExecuteWorkflow(workflows.AlertWorkflowName, input())
	if !env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	err := env.GetWorkflowError()
	if err == nil || !strings.Contains(err.Error(), "failed at detect") {
		t.Fatalf("error = %v; want the alert failed at detect", err)
	}
	if len(s.contains) != 0 {
		t.Fatal("contained without a record")
	}
	// The failure is recorded when the store is back, saying when the run gave up.
	if len(s.finishes) == 0 || s.finishes[0].FailedStage != workflows.StageDetect {
		t.Fatalf("finishes = %+v; want the failure at detect recorded", s.finishes)
	}
	if gaveUp := s.finishes[0].At.Sub(received); gaveUp < 71*time.Hour || gaveUp > 73*time.Hour {
		t.Fatalf("gave up after %s; want about 72h", gaveUp)
	}
}

func TestContainFailureClasses(t *testing.T) {
	t.Run("HTTP 4xx is final: one attempt, the alert fails", func(t *testing.T) {
		s := &stubs{verdict: policy.Verdict{Contain: true}, isolate: func(context.Context, int32) (workflows.ContainOutput, error) {
			return workflows.ContainOutput{}, temporal.NewNonRetryableApplicationError("crowdstrike contain: HTTP 403", workflows.ErrTypeHTTP4xx, nil)
		}}
		env := setup(t, s)
		env.ExecuteWorkflow(workflows.AlertWorkflowName, input())
		if !env.IsWorkflowCompleted() {
			t.Fatal("not completed")
		}
		err := env.GetWorkflowError()
		var appErr *temporal.ApplicationError
		if !errors.As(err, &appErr) || appErr.Type() != "AlertFailed" {
			t.Fatalf("workflow error = %v", err)
		}
		if len(s.attempts) != 1 {
			t.Fatalf("attempts = %d, want 1", len(s.attempts))
		}
		f := s.finishes[0]
		// The error reads as the vendor's answer, without Temporal's wrapping.
		if f.Outcome != workflows.OutcomeFailed || f.FailedStage != workflows.StageContain || f.Error != "contain: crowdstrike contain: HTTP 403" {
			t.Fatalf("finish = %+v", f)
		}
		if len(s.finishes) != 2 || !s.finishes[1].Closed {
			t.Fatal("a failed alert still holds its dedup window")
		}
	})
	t.Run("HTTP 429 waits for the vendor's reset hint", func(t *testing.T) {
		s := &stubs{verdict: policy.Verdict{Contain: true}}
		s.isolate = func(_ context.Context, attempt int32) (workflows.ContainOutput, error) {
			if attempt == 1 {
				return workflows.ContainOutput{}, temporal.NewApplicationErrorWithOptions("throttled", workflows.ErrTypeHTTP429,
					temporal.ApplicationErrorOptions{NextRetryDelay: 45 * time.Second})
			}
			return workflows.ContainOutput{Status: "contained"}, nil
		}
		env := setup(t, s)
		env.ExecuteWorkflow(workflows.AlertWorkflowName, input())
		r := result(t, env)
		if r.Outcome != workflows.OutcomeContained || len(s.attempts) != 2 {
			t.Fatalf("outcome %s after %d attempts", r.Outcome, len(s.attempts))
		}
		if gap := s.attempts[1].Sub(s.attempts[0]); gap < 45*time.Second {
			t.Fatalf("retried after %v, before the 45s reset hint", gap)
		}
	})
	t.Run("HTTP 5xx retries with backoff until it succeeds", func(t *testing.T) {
		s := &stubs{verdict: policy.Verdict{Contain: true}}
		s.isolate = func(_ context.Context, attempt int32) (workflows.ContainOutput, error) {
			if attempt <= 3 {
				return workflows.ContainOutput{}, temporal.NewApplicationError("HTTP 503", workflows.ErrTypeHTTP5xx)
			}
			return workflows.ContainOutput{Status: "contained"}, nil
		}
		env := setup(t, s)
		env.ExecuteWorkflow(workflows.AlertWorkflowName, input())
		r := result(t, env)
		if r.Outcome != workflows.OutcomeContained || len(s.attempts) != 4 {
			t.Fatalf("outcome %s after %d attempts", r.Outcome, len(s.attempts))
		}
		for i := 2; i < len(s.attempts); i++ {
			if s.attempts[i].Sub(s.attempts[i-1]) <= s.attempts[i-1].Sub(s.attempts[i-2]) {
				t.Fatalf("no backoff between attempts: %v", s.attempts)
			}
		}
	})
}

// sideEffects classes the operations the playbook-path tests use, as the catalogue
// does.
var sideEffects = map[string]string{
	"edr.isolate_host":  schemas.SideEffectContain,
	"chat.post_message": schemas.SideEffectNotify,
}

func withSideEffects(a *actions) *actions {
	a.sideEffect = func(op string) string { return cmp.Or(sideEffects[op], schemas.SideEffectRead) }
	return a
}

func TestPlaybookPathContainsThroughChildRuns(t *testing.T) {
	isolate := parsePlaybook(t, `
name: isolate
trigger: {when: "true"}
steps:
  - id: isolate
    uses: edr.isolate_host
    with: {host_id: "${{ alert.device.id }}"}
`)
	notify := parsePlaybook(t, `
name: notify
trigger: {when: "true"}
steps:
  - id: tell
    uses: chat.post_message
    with: {channel: "#soc", text: "${{ alert.finding.title }}"}
`)
	s := &stubs{selection: &workflows.SelectOutput{Configured: true, Playbooks: []workflows.PinnedPlaybook{isolate, notify}}}
	a := withSideEffects(&actions{})
	env := setup(t, s)
	a.register(env)
	env.ExecuteWorkflow(workflows.AlertWorkflowName, input())
	r := result(t, env)
	if r.Outcome != workflows.OutcomeContained || len(s.decides) != 0 || len(s.contains) != 0 {
		t.Fatalf("outcome %s; contain_when consulted %d times, built-in contain %d times", r.Outcome, len(s.decides), len(s.contains))
	}
	calls := a.ops()
	slices.Sort(calls)
	if !slices.Equal(calls, []string{"isolate=edr.isolate_host", "tell=chat.post_message"}) {
		t.Fatalf("actions = %v", calls)
	}
	for _, c := range a.calls {
		if !strings.HasPrefix(c.Ref.WorkflowID, "playbook/"+c.Ref.AlertID+"/") || c.Ref.AlertID == "" {
			t.Fatalf("child run ref = %+v", c.Ref)
		}
	}
	f := s.finishes[0]
	if len(f.Playbooks) != 2 || f.Playbooks[0].Status != workflows.RunSucceeded || f.Playbooks[0].Actions[0].SideEffect != schemas.SideEffectContain ||
		f.Playbooks[1].Actions[0].Operation != "chat.post_message" || f.RespondStarted.IsZero() {
		t.Fatalf("finish = %+v", f)
	}
}

func TestPlaybookPathOutcomes(t *testing.T) {
	notify := parsePlaybook(t, `
name: notify
trigger: {when: "true"}
steps:
  - id: tell
    uses: chat.post_message
    with: {channel: "#soc", text: hi}
`)
	failing := parsePlaybook(t, `
name: failing
trigger: {when: "true"}
steps:
  - id: stop
    fail: "no can do"
`)
	closer := parsePlaybook(t, `
name: closer
trigger: {when: "true"}
steps:
  - id: close
    succeed: "auto-closed"
`)
	dryRun := parsePlaybook(t, `
name: dry
mode: dry_run
trigger: {when: "true"}
steps:
  - id: isolate
    uses: edr.isolate_host
    with: {host_id: x}
`)
	for _, tc := range []struct {
		name      string
		playbooks []workflows.PinnedPlaybook
		outcome   string
		failed    bool
		skip      string
	}{
		{"no trigger matched: no action", nil, workflows.OutcomeNoAction, false, "no playbook trigger matched"},
		{"only a notification: responded", []workflows.PinnedPlaybook{notify}, workflows.OutcomeResponded, false, ""},
		{"a dry run contains nothing", []workflows.PinnedPlaybook{dryRun}, workflows.OutcomeNoAction, false, ""},
		{"a playbook that closes as noise takes no action", []workflows.PinnedPlaybook{closer}, workflows.OutcomeNoAction, false, ""},
		{"a failed playbook fails the alert", []workflows.PinnedPlaybook{notify, failing}, workflows.OutcomeFailed, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &stubs{selection: &workflows.SelectOutput{Configured: true, Playbooks: tc.playbooks}}
			a := withSideEffects(&actions{})
			a.simulate = true
			env := setup(t, s)
			a.register(env)
			env.ExecuteWorkflow(workflows.AlertWorkflowName, input())
			if !env.IsWorkflowCompleted() {
				t.Fatal("not completed")
			}
			f := s.finishes[0]
			if f.Outcome != tc.outcome || f.SkipContain != tc.skip || (f.FailedStage != "") != tc.failed {
				t.Fatalf("finish = %+v", f)
			}
			if tc.failed && !strings.Contains(f.Error, "failing: no can do") {
				t.Fatalf("error = %q", f.Error)
			}
			if len(s.decides) != 0 {
				t.Fatal("contain_when consulted although playbooks are configured")
			}
		})
	}
}

// waiterPlaybook waits (up to 30 minutes) for events more deliveries of the
// alert, then isolates its host.
func waiterPlaybook(t *testing.T, events int) workflows.PinnedPlaybook {
	t.Helper()
	return parsePlaybook(t, fmt.Sprintf(`
name: waiter
trigger: {when: "true"}
steps:
  - id: more
    wait: {until: "run.events >= %d", timeout: 30m}
  - id: isolate
    uses: edr.isolate_host
    with: {host_id: "${{ alert.device.id }}"}
`, events))
}

func TestDuplicatesReachWaitingPlaybooks(t *testing.T) {
	waiter := waiterPlaybook(t, 2)
	s := &stubs{selection: &workflows.SelectOutput{Configured: true, Playbooks: []workflows.PinnedPlaybook{waiter}}}
	a := withSideEffects(&actions{})
	env := setup(t, s)
	a.register(env)
	for i, at := range []time.Duration{time.Minute, 2 * time.Minute} {
		env.RegisterDelayedCallback(func() {
			env.SignalWorkflow(workflows.DuplicateSignal, workflows.Delivery{DeliveryID: fmt.Sprint("dup-", i), ReceivedAt: received.Add(at)})
		}, at)
	}
	env.ExecuteWorkflow(workflows.AlertWorkflowName, input())
	r := result(t, env)
	if r.Outcome != workflows.OutcomeContained || r.Duplicates != 2 {
		t.Fatalf("result = %+v", r)
	}
	if rec := a.records; len(rec) == 0 || rec[0].Name != "more" || rec[0].FinishedAt.Sub(rec[0].StartedAt) >= 30*time.Minute {
		t.Fatalf("the wait step did not end on the second duplicate: %+v", rec)
	}
}

// TestCancelledRunRecordsItsEnd: an alert run cancelled from Temporal records its
// end, on a context the cancellation does not reach, and closes as cancelled: in
// its dedup window it keeps its outcome; during its stages it lets its playbook
// runs wind down first and fails. Runs from before the change close without the
// spin in the dedup wait that made Temporal fail their task as a deadlock.
func TestCancelledRunRecordsItsEnd(t *testing.T) {
	t.Run("in the dedup window", func(t *testing.T) {
		s := &stubs{verdict: policy.Verdict{Contain: true}}
		env := setup(t, s)
		env.RegisterDelayedCallback(env.CancelWorkflow, 2*time.Minute)
		env.ExecuteWorkflow(workflows.AlertWorkflowName, input())
		var canceled *temporal.CanceledError
		if err := env.GetWorkflowError(); !errors.As(err, &canceled) {
			t.Fatalf("ended with %v, want a cancellation", err)
		}
		if len(s.finishes) != 2 || s.finishes[0].Outcome != workflows.OutcomeContained || !s.finishes[1].Closed ||
			s.finishes[1].Outcome != workflows.OutcomeContained || !s.finishes[1].At.Equal(received.Add(2*time.Minute)) {
			t.Fatalf("finishes = %+v", s.finishes)
		}
	})

	t.Run("while a playbook waits", func(t *testing.T) {
		waiter := waiterPlaybook(t, 5)
		s := &stubs{selection: &workflows.SelectOutput{Configured: true, Playbooks: []workflows.PinnedPlaybook{waiter}}}
		a := withSideEffects(&actions{})
		env := setup(t, s)
		a.register(env)
		env.RegisterDelayedCallback(env.CancelWorkflow, time.Minute)
		env.ExecuteWorkflow(workflows.AlertWorkflowName, input())
		var canceled *temporal.CanceledError
		if err := env.GetWorkflowError(); !errors.As(err, &canceled) {
			t.Fatalf("ended with %v, want a cancellation", err)
		}
		if len(a.calls) != 0 {
			t.Fatalf("a cancelled run acted: %v", a.ops())
		}
		// The playbook run recorded where it stopped, and the alert run had its answer.
		if len(a.results) != 1 || a.results[0].Message != "the run was cancelled" {
			t.Fatalf("playbook results = %+v", a.results)
		}
		if len(s.finishes) != 2 {
			t.Fatalf("finishes = %+v", s.finishes)
		}
		f := s.finishes[0]
		if f.Outcome != workflows.OutcomeFailed || f.Error != "the run was cancelled" || f.FailedStage != workflows.StageContain ||
			len(f.Playbooks) != 1 || f.Playbooks[0].Message != "the run was cancelled" {
			t.Fatalf("finish = %+v", f)
		}
		if c := s.finishes[1]; !c.Closed || c.Error != "the run was cancelled" || !c.At.Equal(received.Add(time.Minute)) {
			t.Fatalf("the close waited out the dedup window or lost the error: %+v", c)
		}
	})

	t.Run("a run from before the change", func(t *testing.T) {
		s := &stubs{verdict: policy.Verdict{Contain: true}}
		env := setup(t, s)
		env.OnGetVersion("alert-cancel-recorded", workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
		env.RegisterDelayedCallback(env.CancelWorkflow, 2*time.Minute)
		env.ExecuteWorkflow(workflows.AlertWorkflowName, input())
		// It closes as it did before the change (not as cancelled), without the
		// spin; whether its close record, on the cancelled context, lands is
		// the test environment's timing.
		if !env.IsWorkflowCompleted() || env.GetWorkflowError() != nil {
			t.Fatalf("completed %v with %v", env.IsWorkflowCompleted(), env.GetWorkflowError())
		}
	})
}
