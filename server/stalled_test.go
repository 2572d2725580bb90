package server_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/rampart-soar/rampart/schemas"
	"github.com/rampart-soar/rampart/server"
	"github.com/rampart-soar/rampart/store"
	"github.com/rampart-soar/rampart/store/storetest"
)

// stalls answers as Temporal would: the first runs, up to the limit asked, and
// how many there are; failing makes every call fail.
type stalls struct {
	runs      []server.StalledRun
	failing   error
	explained []string
	// resetFrom is the run each reset run was reset from, which only its history names.
	resetFrom map[string]string
}

func (s *stalls) StalledRuns(_ context.Context, limit int) ([]server.StalledRun, int, error) {
	if s.failing != nil {
		return nil, 0, s.failing
	}
	return append([]server.StalledRun{}, s.runs[:min(limit, len(s.runs))]...), len(s.runs), nil
}

func (s *stalls) ExplainStall(_ context.Context, r *server.StalledRun) error {
	s.explained = append(s.explained, r.RunID)
	r.Attempts, r.Error = 4, "panic: "+r.RunID
	if original, ok := s.resetFrom[r.RunID]; ok {
		r.AlertID = original
	}
	return nil
}

func TestStalledRunsAPI(t *testing.T) {
	st := storetest.SQLite(t)
	ctx := context.Background()
	t0 := time.Date(2026, 11, 28, 8, 0, 0, 0, time.UTC)
	for i, status := range []string{store.AlertProcessing, store.AlertProcessing, store.AlertContained, store.AlertProcessing} {
		id := fmt.Sprintf("alert-%d", i)
		a := &store.Alert{ID: id, WorkflowID: "alert/fp" + id, Fingerprint: "fp" + id, Source: "crowdstrike", Title: "t" + id,
			SeverityID: 4, Severity: schemas.SeverityName(4), Status: status,
			EventTime: t0, ReceivedAt: t0.Add(time.Duration(i) * time.Minute), LastSeenAt: t0, AlertJSON: `{}`}
		run := &store.Run{ID: id, WorkflowID: a.WorkflowID, WorkflowType: "AlertWorkflow", AlertID: id, Status: store.StatusRunning, StartedAt: t0}
		if err := st.RecordAlert(ctx, a, nil, run); err != nil {
			t.Fatal(err)
		}
	}
	found := &stalls{runs: []server.StalledRun{
		{WorkflowType: "PlaybookWorkflow", WorkflowID: "playbook/alert-1/isolate", RunID: "r1", AlertID: "alert-1", Problem: "its workflow task keeps failing"},
		// A run of a closed alert (its revert, say) marks no closed alert.
		{WorkflowType: "RevertWorkflow", WorkflowID: "revert/playbook/alert-2/isolate/isolate", RunID: "r2", AlertID: "alert-2"},
		{WorkflowType: "AlertWorkflow", WorkflowID: "alert/fpnot-recorded", RunID: "not-recorded", AlertID: "not-recorded"},
		// An alert run reset from alert-3's: until its history is read it names itself.
		{WorkflowType: "AlertWorkflow", WorkflowID: "alert/fpalert-3", RunID: "reset-3", AlertID: "reset-3"},
	}, resetFrom: map[string]string{"reset-3": "alert-3"}}
	control := &control{accepted: map[string]server.AcceptedRun{"not-recorded": {WorkflowID: "alert/fpnot-recorded", StartedAt: t0}}}
	h := newServerFrom(t, starter{}, server.Options{Alerts: st, Approvals: st, Control: control, Stalls: found})

	code, out := do(t, h, http.MethodGet, "/api/v1/alerts", nil, nil)
	marked := map[string]bool{}
	for _, a := range out["alerts"].([]any) {
		a := a.(map[string]any)
		marked[a["id"].(string)] = a["stalled"] == true
	}
	if code != 200 || !marked["alert-1"] || marked["alert-0"] || marked["alert-2"] || !marked["alert-3"] || len(found.explained) != 0 {
		t.Fatalf("list: %d %v (explained %v)", code, out, found.explained)
	}

	code, out = do(t, h, http.MethodGet, "/api/v1/alerts/alert-1", nil, nil)
	runs, _ := out["stalled_runs"].([]any)
	if code != 200 || out["stalled"] != true || len(runs) != 1 || runs[0].(map[string]any)["error"] != "panic: r1" ||
		runs[0].(map[string]any)["attempts"] != float64(4) {
		t.Fatalf("detail of a stalled alert: %d %v", code, out)
	}
	if code, out = do(t, h, http.MethodGet, "/api/v1/alerts/alert-0", nil, nil); code != 200 || out["stalled"] != nil || out["stalled_runs"] != nil {
		t.Fatalf("detail of an alert with no stalled run: %d %v", code, out)
	}
	// A contained alert's stalled revert will not run until a worker can run it: its page says so.
	code, out = do(t, h, http.MethodGet, "/api/v1/alerts/alert-2", nil, nil)
	if runs, _ = out["stalled_runs"].([]any); code != 200 || out["stalled"] != true || len(runs) != 1 || runs[0].(map[string]any)["workflow_type"] != "RevertWorkflow" {
		t.Fatalf("detail of a contained alert with a stalled revert: %d %v", code, out)
	}
	// A run reset from an alert's carries it on: the alert's page finds it by the history.
	code, out = do(t, h, http.MethodGet, "/api/v1/alerts/alert-3", nil, nil)
	if runs, _ = out["stalled_runs"].([]any); code != 200 || out["stalled"] != true || len(runs) != 1 ||
		runs[0].(map[string]any)["run_id"] != "reset-3" || runs[0].(map[string]any)["alert_id"] != "alert-3" {
		t.Fatalf("detail of an alert whose reset run stalls: %d %v", code, out)
	}
	// An alert no worker could record (its own run stalls at once) says why.
	code, out = do(t, h, http.MethodGet, "/api/v1/alerts/not-recorded", nil, nil)
	if runs, _ = out["stalled_runs"].([]any); code != 200 || out["status"] != server.AlertReceived || out["stalled"] != true || len(runs) != 1 {
		t.Fatalf("detail of an unrecorded stalled alert: %d %v", code, out)
	}

	for _, tc := range []struct {
		query string
		want  string
	}{{"", "[r1 r2 not-recorded reset-3]"}, {"?limit=2", "[r1 r2]"}, {"?limit=0", "[]"}} {
		found.explained = nil
		code, out = do(t, h, http.MethodGet, "/api/v1/stalled"+tc.query, nil, nil)
		var ids []string
		for _, r := range out["runs"].([]any) {
			r := r.(map[string]any)
			if r["error"] != "panic: "+r["run_id"].(string) {
				t.Fatalf("an unexplained run: %v", r)
			}
			ids = append(ids, r["run_id"].(string))
		}
		if code != 200 || fmt.Sprint(ids) != tc.want || out["total"] != float64(4) || fmt.Sprint(found.explained) != tc.want {
			t.Fatalf("stalled%s: %d %v, explained %v", tc.query, code, out, found.explained)
		}
	}

	for _, q := range []string{"limit=-1", "limit=201", "limit=x"} {
		if code, out = do(t, h, http.MethodGet, "/api/v1/stalled?"+q, nil, nil); code != 400 || errCode(out) != "invalid_query" {
			t.Errorf("?%s: %d %v", q, code, out)
		}
	}

	// Temporal away: the alerts still read from the store, unmarked; the list says why it cannot answer.
	found.failing = errors.New("connection refused")
	if code, out = do(t, h, http.MethodGet, "/api/v1/alerts/alert-1", nil, nil); code != 200 || out["stalled"] != nil {
		t.Fatalf("detail with Temporal away: %d %v", code, out)
	}
	if code, out = do(t, h, http.MethodGet, "/api/v1/stalled", nil, nil); code != 503 || errCode(out) != "temporal_unavailable" {
		t.Fatalf("stalled with Temporal away: %d %v", code, out)
	}
	// A server that does not look for stalls says so.
	h = newServerFrom(t, starter{}, server.Options{Alerts: st, Approvals: st, Control: control})
	if code, out = do(t, h, http.MethodGet, "/api/v1/stalled", nil, nil); code != 404 || errCode(out) != "not_found" {
		t.Fatalf("stalled without a reader: %d %v", code, out)
	}
}
