// Package shadow replays a playbook version in dry-run against recorded alerts,
// with their recorded detection and enrichment, and compares its decisions and
// actions with those of the version that ran. Reads are answered from the
// recording of the run where it made the same call (so are calls that failed
// then); approvals with the decision the analyst gave. Nothing reaches a vendor and nothing is written: the replay
// runs the real interpreter on Temporal's test environment.
//
// It may import store (to read), activities (to pin definitions), server (for the
// report types), pbtest (the offline engine), runs (recorded inputs) and the pure
// packages.
package shadow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/rampart-soar/rampart/activities"
	"github.com/rampart-soar/rampart/cmd/rampart/internal/pbtest"
	"github.com/rampart-soar/rampart/cmd/rampart/internal/runs"
	"github.com/rampart-soar/rampart/playbook"
	"github.com/rampart-soar/rampart/server"
	"github.com/rampart-soar/rampart/store"
	"github.com/rampart-soar/rampart/workflows"
)

// Store is what a replay reads.
type Store interface {
	activities.PlaybookVersions
	ListAlerts(ctx context.Context, f store.AlertFilter) ([]store.Alert, string, error)
	GetAlert(ctx context.Context, id string) (*store.AlertDetail, error)
	GetApproval(ctx context.Context, id string) (store.Approval, error)
}

// Replayer implements server.Replayer over a store.
type Replayer struct {
	Store Store
	// Now is the clock for --since; time.Now when nil.
	Now func() time.Time
}

// Replay replays req.Version of req.Playbook on the selected alerts, newest first.
func (r *Replayer) Replay(ctx context.Context, req server.ReplayRequest, progress func(server.ReplayAlert)) (server.ReplayReport, error) {
	pinned, callees, err := activities.PinVersion(ctx, r.Store, req.Playbook, req.Version)
	if err != nil {
		return server.ReplayReport{}, err
	}
	ids, err := r.alerts(ctx, req)
	if err != nil {
		return server.ReplayReport{}, err
	}
	report := server.ReplayReport{Playbook: req.Playbook, Version: req.Version, Alerts: []server.ReplayAlert{}}
	rivals := map[string]playbook.Playbook{}
	for i, id := range ids {
		if err := ctx.Err(); err != nil {
			return report, err
		}
		d, err := r.Store.GetAlert(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			a := server.ReplayAlert{AlertID: id, Verdict: server.ReplayNotFound, Notes: []string{"no such alert"}}
			report.Alerts = append(report.Alerts, r.done(&report, a, i, len(ids), progress))
			continue
		}
		if err != nil {
			return report, err
		}
		a, err := r.one(ctx, d, pinned, callees, rivals)
		if err != nil {
			return report, fmt.Errorf("alert %s: %w", id, err)
		}
		report.Alerts = append(report.Alerts, r.done(&report, a, i, len(ids), progress))
	}
	return report, nil
}

func (r *Replayer) done(report *server.ReplayReport, a server.ReplayAlert, i, total int, progress func(server.ReplayAlert)) server.ReplayAlert {
	a.Index, a.Total = i+1, total
	report.Summary.Alerts++
	switch a.Verdict {
	case server.ReplaySame:
		report.Summary.Same++
	case server.ReplayNewFailure:
		report.Summary.NewFailures++
	case server.ReplayInFlight:
		report.Summary.InFlight++
	case server.ReplayNotFound:
		report.Summary.NotFound++
	default:
		report.Summary.Changed++
	}
	if progress != nil {
		progress(a)
	}
	return a
}

// alerts lists the alerts to replay: the ones named, or those received within
// req.Since, newest first, at most the limit.
func (r *Replayer) alerts(ctx context.Context, req server.ReplayRequest) ([]string, error) {
	limit := req.Limit
	if limit <= 0 || limit > server.MaxReplayAlerts {
		limit = server.MaxReplayAlerts
	}
	if len(req.AlertIDs) > 0 {
		return req.AlertIDs[:min(len(req.AlertIDs), limit)], nil
	}
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	f := store.AlertFilter{Since: now().Add(-req.Since), Limit: 200}
	var ids []string
	for len(ids) < limit {
		page, next, err := r.Store.ListAlerts(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, a := range page {
			if len(ids) < limit {
				ids = append(ids, a.ID)
			}
		}
		if next == "" {
			break
		}
		f.Cursor = next
	}
	return ids, nil
}

// one replays the version on one alert and compares it with what ran.
// rivals caches the definitions of the other playbooks the alerts' selections
// considered, by name@version.
func (r *Replayer) one(ctx context.Context, d *store.AlertDetail, pinned workflows.PinnedPlaybook, callees map[string]workflows.PinnedPlaybook, rivals map[string]playbook.Playbook) (server.ReplayAlert, error) {
	out := server.ReplayAlert{AlertID: d.Alert.ID, Title: d.Alert.Title, ReceivedAt: d.Alert.ReceivedAt}
	rec, err := runs.FromStore(&d.Alert)
	if err != nil {
		return out, err
	}
	alert, detect, enrich := rec.Alert, rec.Detection, rec.Enrichment
	ran := ranRun(d, pinned.Definition.Name)
	out.Ran = ran.side()

	rt := playbook.NewRuntime()
	rt.SetNow(d.Alert.ReceivedAt)
	matched, err := rt.EvalBool(pinned.Definition.Trigger.When, &playbook.Env{Alert: alert, Detect: detect, Enrich: enrich})
	if err != nil {
		out.Notes = append(out.Notes, "trigger: "+err.Error())
	}
	if matched {
		by, err := r.stoppedBy(ctx, d.Alert.DecisionJSON, &pinned.Definition, rivals)
		if err != nil {
			return out, err
		}
		if by != "" {
			matched = false
			out.Notes = append(out.Notes, "the trigger matches, but "+by+" (stop_on_match) comes first and matched, as it did when the alert arrived")
		}
	}
	if matched {
		outcome, notes, err := r.execute(ctx, ran, workflows.PlaybookInput{
			Playbook: pinned, Callees: callees, Alert: alert, Detection: detect, Enrichment: enrich,
			DryRun: true, AlertID: d.Alert.ID,
		})
		if err != nil {
			return out, err
		}
		out.Notes = append(out.Notes, notes...)
		out.Replayed = replayedSide(pinned.Version, outcome)
	}
	out.Replayed.Version = pinned.Version
	out.Replayed.Triggered = matched
	if d.Alert.Status == store.AlertProcessing || ran.run != nil && ran.run.Status == store.StatusRunning {
		// A run that has not finished has decided nothing final yet.
		out.Verdict = server.ReplayInFlight
		out.Notes = append(out.Notes, "still being handled: shown, not compared")
		return out, nil
	}
	out.Verdict, out.Differences = compare(out.Ran, out.Replayed)
	return out, nil
}

// stoppedBy names the playbook that would end the alert's selection before the
// replayed version is reached: one the recorded selection found matching, with
// stop_on_match, ordered before the replayed version's priority and name as
// selection orders them. Only the replayed version's place changes; the others
// keep the versions and results recorded.
func (r *Replayer) stoppedBy(ctx context.Context, decisionJSON string, replayed *playbook.Playbook, rivals map[string]playbook.Playbook) (string, error) {
	var decision struct {
		Playbooks []workflows.TriggerResult `json:"playbooks"`
	}
	if decisionJSON == "" || json.Unmarshal([]byte(decisionJSON), &decision) != nil {
		return "", nil // decided by the contain rule: no selection ran
	}
	for _, t := range decision.Playbooks {
		if t.Playbook == replayed.Name || !t.Matched || t.Stopped {
			continue // a playbook stopped itself was stopped by one this loop meets
		}
		key := fmt.Sprintf("%s@%d", t.Playbook, t.Version)
		def, ok := rivals[key]
		if !ok {
			v, err := r.Store.GetPlaybookVersion(ctx, t.Playbook, t.Version)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return "", err
			}
			if err := json.Unmarshal([]byte(v.DefinitionJSON), &def); err != nil {
				return "", fmt.Errorf("playbook %s v%d: %w", t.Playbook, t.Version, err)
			}
			rivals[key] = def
		}
		first := def.Priority < replayed.Priority || def.Priority == replayed.Priority && def.Name < replayed.Name
		if first && def.StopOnMatch {
			return t.Playbook, nil
		}
	}
	return "", nil
}

// recording is the run of the playbook the alert started, if any.
type recording struct {
	run   *store.Run
	steps []store.Step
	// result is the run's recorded result.
	result workflows.PlaybookResult
}

func ranRun(d *store.AlertDetail, name string) recording {
	for _, p := range d.Playbooks {
		if p.Run.Playbook != name {
			continue
		}
		rec := recording{run: &p.Run, steps: p.Steps}
		if p.Run.ResultJSON != "" {
			_ = json.Unmarshal([]byte(p.Run.ResultJSON), &rec.result)
		}
		return rec
	}
	return recording{}
}

func (rec recording) side() server.ReplaySide {
	if rec.run == nil {
		return server.ReplaySide{}
	}
	s := server.ReplaySide{Version: rec.run.PlaybookVersion, Triggered: true, Status: rec.result.Status, Message: rec.result.Message}
	if s.Status == "" {
		s.Status = rec.run.Status // still running, or its result was not recorded
	}
	runID := rec.run.ID
	for _, st := range rec.steps {
		if strings.HasSuffix(st.Name, workflows.RevertStepSuffix) {
			continue
		}
		s.Steps = append(s.Steps, st.Name+": "+st.Status)
	}
	for _, a := range rec.result.Actions {
		s.Actions = append(s.Actions, actionLine(a.Step, a.Operation, a.Inputs, runID))
	}
	return s
}

// The test environment runs every workflow under these ids.
const (
	testRunID      = "default-test-run-id"
	testWorkflowID = "default-test-workflow-id"
)

// execute runs the version offline. A call the recorded run made at the same
// step with the same inputs is answered as it was answered then — a read's
// output, a notification that failed — so the comparison is between decisions,
// not between dry-run and live outcomes; any other call gets the operation's
// simulated output. Approvals get the recorded decision.
func (r *Replayer) execute(ctx context.Context, ran recording, in workflows.PlaybookInput) (pbtest.Outcome, []string, error) {
	var notes []string
	recorded := map[string]store.Step{}
	runID := ""
	if ran.run != nil {
		runID = ran.run.ID
		for _, st := range ran.steps {
			recorded[st.Name] = st
		}
	}
	outcome, err := pbtest.Execute(in, pbtest.Answers{
		Action: func(c pbtest.Call) (map[string]any, error, bool) {
			st, ok := recorded[c.Step]
			if ok && sameInputs(st.InputJSON, runID, c.Inputs) {
				if st.Status == store.StatusFailed {
					return nil, errors.New(st.Error), true
				}
				var output map[string]any
				if json.Unmarshal([]byte(st.OutputJSON), &output) == nil && output != nil {
					return output, nil, true
				}
			}
			if !c.Simulated { // a new contain or notify call is simply what the version would do
				notes = append(notes, fmt.Sprintf("no recording of %s at step %s: answered with its simulated output", c.Operation, c.Step))
			}
			return nil, nil, false
		},
		Approval: func(step string) *workflows.Approval {
			if ran.run != nil {
				a, err := r.Store.GetApproval(ctx, workflows.ApprovalID(ran.run.WorkflowID, ran.run.ID, step))
				if err == nil && a.Status != store.ApprovalPending {
					return &workflows.Approval{Approved: a.Status == store.ApprovalApproved, By: a.DecidedBy, Reason: a.Reason}
				}
			}
			notes = append(notes, "approval of "+step+" assumed granted (no recorded decision)")
			return &workflows.Approval{Approved: true, By: "shadow-replay"}
		},
	})
	return outcome, notes, err
}

func replayedSide(version int, o pbtest.Outcome) server.ReplaySide {
	s := server.ReplaySide{Version: version, Triggered: true, Status: o.Result.Status, Message: normalize(o.Result.Message, testRunID)}
	for _, st := range o.Steps {
		s.Steps = append(s.Steps, st.Name+": "+st.Status)
	}
	for _, a := range o.Result.Actions {
		s.Actions = append(s.Actions, actionLine(a.Step, a.Operation, workflows.RedactSecrets(a.Inputs).(map[string]any), testRunID))
	}
	return s
}

// actionLine renders an action with its inputs, the run's own id replaced by
// <run> so two runs of the same decision read alike.
func actionLine(step, operation string, inputs map[string]any, runID string) string {
	b, _ := json.Marshal(inputs)
	return fmt.Sprintf("%s %s %s", step, operation, normalize(string(b), runID))
}

func normalize(s, runID string) string {
	if runID != "" {
		s = strings.ReplaceAll(s, runID, "<run>")
	}
	return strings.ReplaceAll(s, testWorkflowID, "<workflow>")
}

// sameInputs reports whether a recorded step's inputs equal a call's, run ids
// aside.
func sameInputs(recorded, runID string, inputs map[string]any) bool {
	b, err := json.Marshal(inputs)
	if err != nil {
		return false
	}
	var a, c any
	if json.Unmarshal([]byte(normalize(recorded, runID)), &a) != nil || json.Unmarshal([]byte(normalize(string(b), testRunID)), &c) != nil {
		return false
	}
	ja, _ := json.Marshal(a)
	jc, _ := json.Marshal(c)
	return string(ja) == string(jc)
}

// compare classifies the replay against what ran. Steps and actions are compared
// as sets: branches that run side by side finish in either order.
func compare(ran, replayed server.ReplaySide) (string, []string) {
	var diffs []string
	if ran.Triggered != replayed.Triggered {
		diffs = append(diffs, fmt.Sprintf("trigger: ran %v, replayed %v", ran.Triggered, replayed.Triggered))
	}
	if ran.Status != replayed.Status {
		diffs = append(diffs, fmt.Sprintf("status: %s → %s", orNone(ran.Status), orNone(replayed.Status)))
	}
	diffs = append(diffs, setDiff("step", ran.Steps, replayed.Steps)...)
	diffs = append(diffs, setDiff("action", ran.Actions, replayed.Actions)...)
	switch {
	case len(diffs) == 0:
		return server.ReplaySame, nil
	case replayed.Status == workflows.RunFailed && ran.Status != workflows.RunFailed:
		return server.ReplayNewFailure, diffs
	}
	return server.ReplayChanged, diffs
}

func orNone(s string) string {
	if s == "" {
		return "not run"
	}
	return s
}

// setDiff lists what only one side has: first "- " ran only, then "+ " replayed
// only.
func setDiff(what string, ran, replayed []string) []string {
	a, b := slices.Clone(ran), slices.Clone(replayed)
	sort.Strings(a)
	sort.Strings(b)
	var removed, added []string
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j >= len(b) || (i < len(a) && a[i] < b[j]):
			removed = append(removed, fmt.Sprintf("- %s %s", what, a[i]))
			i++
		case i >= len(a) || b[j] < a[i]:
			added = append(added, fmt.Sprintf("+ %s %s", what, b[j]))
			j++
		default:
			i++
			j++
		}
	}
	return append(removed, added...)
}
