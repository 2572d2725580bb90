package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rampart-soar/rampart/server"
	"github.com/rampart-soar/rampart/server/ingest"
	"github.com/rampart-soar/rampart/store"
	"github.com/rampart-soar/rampart/store/storetest"
	"github.com/rampart-soar/rampart/workflows"
)

// control records what the API asked of workflows; reject makes the run refuse.
// states answers queries by workflow id: a value, or an error to return.
type control struct {
	decisions []workflows.Approval
	kept      []string
	keepers   []workflows.Actor
	reject    error
	states    map[string]any
	queries   []string
	// accepted are the runs Temporal holds that the store does not know.
	accepted  map[string]server.AcceptedRun
	acceptErr error
}

func (c *control) AcceptedAlert(_ context.Context, alertID string) (server.AcceptedRun, error) {
	if c.acceptErr != nil {
		return server.AcceptedRun{}, c.acceptErr
	}
	run, ok := c.accepted[alertID]
	if !ok {
		return run, server.ErrRunNotFound
	}
	return run, nil
}

func (c *control) Query(_ context.Context, workflowID, runID, name string, out any) error {
	c.queries = append(c.queries, workflowID+"/"+runID+" "+name)
	switch v := c.states[workflowID].(type) {
	case nil:
		return fmt.Errorf("%w: %s", server.ErrRunNotFound, workflowID)
	case error:
		return v
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		return json.Unmarshal(b, out)
	}
}

func (c *control) DecideApproval(_ context.Context, workflowID, runID string, a workflows.Approval) error {
	if c.reject != nil {
		return c.reject
	}
	c.decisions = append(c.decisions, a)
	return nil
}

func (c *control) KeepAction(_ context.Context, id string, k workflows.Actor) error {
	c.kept, c.keepers = append(c.kept, id), append(c.keepers, k)
	return nil
}

func TestApprovalsAPI(t *testing.T) {
	st := storetest.SQLite(t)
	ctx := context.Background()
	at := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	deadline := at.Add(15 * time.Minute)
	for i, status := range []string{store.ApprovalPending, store.ApprovalDenied} {
		if err := st.SaveApproval(ctx, &store.Approval{
			ID: fmt.Sprint("ap-", i), AlertID: "alert-1", WorkflowID: "playbook/alert-1/malware", RunID: "run-1", Playbook: "malware",
			Step: "isolate", Operation: "edr.isolate_host", InputsJSON: `{"host_id":"h1"}`, ArgsHash: "hash-1",
			ApproversJSON: `["role:tier2"]`, Status: status, RequestedAt: at.Add(time.Duration(i) * time.Minute), Deadline: &deadline,
		}); err != nil {
			t.Fatal(err)
		}
	}
	ctl := &control{}
	h := newServerWith(t, st, starter{}, ctl)
	jsonHeader := map[string]string{"Content-Type": "application/json"}

	// The alert's line in a list says what waits for a decision.
	recordAlert(t, st, store.AlertProcessing)
	waiting := "waiting for approval: edr.isolate_host (malware · isolate)"
	if code, out := do(t, h, http.MethodGet, "/api/v1/alerts", nil, nil); code != 200 || out["alerts"].([]any)[0].(map[string]any)["summary"] != waiting {
		t.Fatalf("alert list: %d %v", code, out)
	}
	code, out := do(t, h, http.MethodGet, "/api/v1/alerts/alert-1", nil, nil)
	if code != 200 || out["summary"] != waiting {
		t.Fatalf("alert: %d %v", code, out)
	}
	// The alert's detail lists its approvals, oldest first, the decided one too.
	if list, _ := out["approvals"].([]any); len(list) != 2 || list[0].(map[string]any)["id"] != "ap-0" ||
		list[0].(map[string]any)["status"] != store.ApprovalPending || list[1].(map[string]any)["status"] != store.ApprovalDenied ||
		list[0].(map[string]any)["inputs"].(map[string]any)["host_id"] != "h1" {
		t.Fatalf("alert's approvals: %v", out["approvals"])
	}

	code, out = do(t, h, http.MethodGet, "/api/v1/approvals?status=pending", nil, nil)
	if list, _ := out["approvals"].([]any); code != 200 || len(list) != 1 || list[0].(map[string]any)["id"] != "ap-0" || out["total"] != float64(1) {
		t.Fatalf("pending inbox: %d %v", code, out)
	}
	// The total counts beyond the page.
	if code, out := do(t, h, http.MethodGet, "/api/v1/approvals?limit=1", nil, nil); code != 200 || len(out["approvals"].([]any)) != 1 || out["total"] != float64(2) {
		t.Fatalf("a page of one: %d %v", code, out)
	}
	// Each approval says what is at stake: the action's inputs name the host by the
	// vendor's id, the alert by name.
	wantAlert := map[string]any{"title": "Credential dumping from LSASS", "severity": "Critical", "severity_id": float64(5),
		"status": store.AlertProcessing, "hostname": "dc-01", "user": "svc-backup"}
	if got := out["approvals"].([]any)[0].(map[string]any)["alert"]; !reflect.DeepEqual(got, wantAlert) {
		t.Fatalf("inbox alert: %v, want %v", got, wantAlert)
	}
	code, out = do(t, h, http.MethodGet, "/api/v1/approvals/ap-0", nil, nil)
	if code != 200 || out["operation"] != "edr.isolate_host" || out["inputs"].(map[string]any)["host_id"] != "h1" ||
		!reflect.DeepEqual(out["alert"], wantAlert) {
		t.Fatalf("get: %d %v", code, out)
	}
	for _, c := range []struct {
		path, body string
		header     map[string]string
		status     int
		code       string
	}{
		{"/api/v1/approvals/nope:decide", `{"decision":"approve","by":"ana"}`, jsonHeader, 404, "not_found"},
		{"/api/v1/approvals/ap-0:approve", `{}`, jsonHeader, 404, "not_found"},
		{"/api/v1/approvals/ap-0:decide", `{"decision":"maybe","by":"ana"}`, jsonHeader, 400, "invalid_body"},
		{"/api/v1/approvals/ap-0:decide", `{"decision":"approve"}`, jsonHeader, 400, "invalid_body"},
		{"/api/v1/approvals/ap-0:decide", `{"decision":"approve","by":"ana","extra":1}`, jsonHeader, 400, "invalid_body"},
		{"/api/v1/approvals/ap-0:decide", `not json`, jsonHeader, 400, "invalid_body"},
		{"/api/v1/approvals/ap-0:decide", `{"decision":"approve","by":"ana"}`, nil, 415, "unsupported_media_type"},
		{"/api/v1/approvals/ap-1:decide", `{"decision":"approve","by":"ana"}`, jsonHeader, 409, "already_decided"},
	} {
		if code, out := do(t, h, http.MethodPost, c.path, []byte(c.body), c.header); code != c.status || errCode(out) != c.code {
			t.Errorf("POST %s %s: %d %v, want %d %s", c.path, c.body, code, out, c.status, c.code)
		}
	}
	if len(ctl.decisions) != 0 {
		t.Fatalf("a rejected request reached the workflow: %+v", ctl.decisions)
	}
	code, out = do(t, h, http.MethodPost, "/api/v1/approvals/ap-0:decide", []byte(`{"decision":"deny","by":"ana","reason":"false positive"}`), jsonHeader)
	if code != 200 || out["status"] != "denied" || out["decided_by"] != "ana" {
		t.Fatalf("decide: %d %v", code, out)
	}
	want := workflows.Approval{Step: "isolate", Approved: false, By: "ana", Reason: "false positive", ArgsHash: "hash-1"}
	if len(ctl.decisions) != 1 || ctl.decisions[0] != want {
		t.Fatalf("the workflow got %+v, want %+v", ctl.decisions, want)
	}
	ctl.reject = fmt.Errorf("%w: step \"isolate\" is not waiting for an approval", server.ErrRejected)
	code, out = do(t, h, http.MethodPost, "/api/v1/approvals/ap-0:decide", []byte(`{"decision":"approve","by":"bo"}`), jsonHeader)
	if code != http.StatusConflict || errCode(out) != "rejected" {
		t.Fatalf("rejected by the run: %d %v", code, out)
	}
	ctl.reject = errors.New("temporal unreachable")
	if code, out = do(t, h, http.MethodPost, "/api/v1/approvals/ap-0:decide", []byte(`{"decision":"approve","by":"bo"}`), jsonHeader); code != 500 || errCode(out) != "internal" {
		t.Fatalf("temporal down: %d %v", code, out)
	}
	if code, out = do(t, h, http.MethodGet, "/api/v1/approvals?status=weird", nil, nil); code != 400 {
		t.Fatalf("bad filter: %d %v", code, out)
	}

	// The run records the decision (here, by hand); the alert then waits for nobody.
	decided, _ := st.GetApproval(ctx, "ap-0")
	decided.Status, decided.DecidedBy = store.ApprovalDenied, "ana"
	if err := st.SaveApproval(ctx, &decided); err != nil {
		t.Fatal(err)
	}
	code, out = do(t, h, http.MethodGet, "/api/v1/alerts/alert-1", nil, nil)
	if list, _ := out["approvals"].([]any); code != 200 || out["summary"] != nil || len(list) != 2 ||
		list[0].(map[string]any)["decided_by"] != "ana" {
		t.Fatalf("alert once decided: %d %v", code, out)
	}
}

func TestKeepCancelsPendingReverts(t *testing.T) {
	st := storetest.SQLite(t)
	ctx := context.Background()
	at := recordAlert(t, st, store.AlertContained)
	if err := st.SaveRun(ctx, &store.Run{ID: "pb-run", WorkflowID: "playbook/alert-1/bf", WorkflowType: workflows.PlaybookWorkflowName,
		AlertID: "alert-1", Status: store.StatusCompleted, StartedAt: at, Playbook: "bf", PlaybookVersion: 1}); err != nil {
		t.Fatal(err)
	}
	for name, status := range map[string]string{"block.revert": store.StatusPending, "other.revert": store.StatusSucceeded, "block": store.StatusSucceeded} {
		if err := st.SaveStep(ctx, &store.Step{RunID: "pb-run", Name: name, Seq: 1, Status: status, StartedAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	ctl := &control{}
	h := newServerWith(t, st, starter{}, ctl)
	jsonHeader := map[string]string{"Content-Type": "application/json"}
	// Keeping a containment is a decision: the open API asks who makes it.
	for _, c := range []struct {
		body   string
		header map[string]string
		status int
	}{
		{"", nil, 400},
		{`{"reason":"still investigating"}`, jsonHeader, 400},
		{`{"by":"ana","extra":1}`, jsonHeader, 400},
		{`{"by":"ana"}`, nil, 415},
		{`{"by":"` + strings.Repeat("a", 129) + `"}`, jsonHeader, 400},
	} {
		if code, out := do(t, h, http.MethodPost, "/api/v1/alerts/alert-1:keep", []byte(c.body), c.header); code != c.status {
			t.Errorf("keep with %q: %d %v, want %d", c.body, code, out, c.status)
		}
	}
	if len(ctl.kept) != 0 {
		t.Fatalf("a refused keep reached a revert: %v", ctl.kept)
	}
	code, out := do(t, h, http.MethodPost, "/api/v1/alerts/alert-1:keep", []byte(`{"by":"ana","reason":"still investigating"}`), jsonHeader)
	if kept, _ := out["kept"].([]any); code != 200 || len(kept) != 1 || kept[0] != "bf/block" || out["by"] != "ana" {
		t.Fatalf("keep: %d %v", code, out)
	}
	if len(ctl.kept) != 1 || ctl.kept[0] != workflows.RevertWorkflowID("playbook/alert-1/bf", "block") ||
		ctl.keepers[0] != (workflows.Actor{By: "ana", Reason: "still investigating"}) {
		t.Fatalf("signalled %v with %+v", ctl.kept, ctl.keepers)
	}
	if code, _ := do(t, h, http.MethodPost, "/api/v1/alerts/nope:keep", []byte(`{"by":"ana"}`), jsonHeader); code != 404 {
		t.Fatalf("unknown alert: %d", code)
	}
	if code, _ := do(t, h, http.MethodPost, "/api/v1/alerts/alert-1:explode", nil, nil); code != 404 {
		t.Fatalf("unknown action: %d", code)
	}
}

// replayer answers with one changed alert and records the request.
type replayer struct{ got []server.ReplayRequest }

func (r *replayer) Replay(_ context.Context, req server.ReplayRequest, progress func(server.ReplayAlert)) (server.ReplayReport, error) {
	r.got = append(r.got, req)
	a := server.ReplayAlert{Index: 1, Total: 1, AlertID: "a1", Verdict: server.ReplayChanged}
	if progress != nil {
		progress(a)
	}
	return server.ReplayReport{Playbook: req.Playbook, Version: req.Version, Alerts: []server.ReplayAlert{a},
		Summary: server.ReplaySummary{Alerts: 1, Changed: 1}}, nil
}

func TestReplayEndpoint(t *testing.T) {
	st := storetest.SQLite(t)
	if _, err := st.ApplyPlaybook(context.Background(), "p", "h", "name: p", `{"name":"p"}`, 100, "", true); err != nil {
		t.Fatal(err)
	}
	rp := &replayer{}
	sources, _ := ingest.ParseSources([]byte("sources: {ocsf: {secret: x}}"), func(string) (string, bool) { return "", false })
	pipe, _ := ingest.NewPipeline(ingest.Options{Sources: sources, Starter: starter{}})
	h := server.New(server.Options{Pipeline: pipe, Alerts: st, Playbooks: st, Approvals: st, Replayer: rp}).Handler()
	js := map[string]string{"Content-Type": "application/json"}
	for _, c := range []struct {
		path, body string
		status     int
	}{
		{"/api/v1/playbooks/p/versions/1:replay", `{"since":"2h","alerts":["a"]}`, 400},
		{"/api/v1/playbooks/p/versions/1:replay", `{"since":"soon"}`, 400},
		{"/api/v1/playbooks/p/versions/1:replay", `{"limit":5000}`, 400},
		{"/api/v1/playbooks/p/versions/1:replay", `{"limit":-4}`, 400},
		{"/api/v1/playbooks/p/versions/1:replay", `{"alerts":["a",""]}`, 400},
		{"/api/v1/playbooks/p/versions/0:replay", `{}`, 400},
		{"/api/v1/playbooks/p/versions/7:replay", `{}`, 404},
		{"/api/v1/playbooks/nope/versions/1:replay", `{}`, 404},
		{"/api/v1/playbooks/p/versions/1:rewind", `{}`, 404},
	} {
		if code, out := do(t, h, http.MethodPost, c.path, []byte(c.body), js); code != c.status || errCode(out) == "" {
			t.Errorf("%s %s: %d %v, want %d", c.path, c.body, code, out, c.status)
		}
	}
	if len(rp.got) != 0 {
		t.Fatalf("a refused request reached the replayer: %+v", rp.got)
	}
	code, out := do(t, h, http.MethodPost, "/api/v1/playbooks/p/versions/1:replay", []byte(`{"since":"7d"}`), js)
	if code != 200 || out["summary"].(map[string]any)["changed"] != float64(1) || rp.got[0].Since != 7*24*time.Hour {
		t.Fatalf("report: %d %v; request %+v", code, out, rp.got)
	}
	req := httptest.NewRequest(http.MethodPost, "/api/v1/playbooks/p/versions/1:replay", strings.NewReader(`{"alerts":["a1"]}`))
	req.Host = "127.0.0.1:8080"
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/x-ndjson")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	lines := strings.Split(strings.TrimSpace(rec.Body.String()), "\n")
	if rec.Code != 200 || len(lines) != 2 || !strings.Contains(lines[0], `"alert":{`) || !strings.Contains(lines[1], `"summary":{`) ||
		rp.got[1].AlertIDs[0] != "a1" {
		t.Fatalf("stream: %d %q", rec.Code, rec.Body.String())
	}
}

type starterOfRuns struct{ got []server.RunRequest }

func (s *starterOfRuns) StartPlaybook(_ context.Context, req server.RunRequest) (server.RunStarted, error) {
	s.got = append(s.got, req)
	return server.RunStarted{WorkflowID: "playbook/alert-1/p/manual-1", RunID: "r", Playbook: req.Playbook, Version: 1, DryRun: req.DryRun}, nil
}

func TestRunPlaybookOnAnAlert(t *testing.T) {
	st := storetest.SQLite(t)
	ctx := context.Background()
	recordAlert(t, st, store.AlertNoAction)
	if _, err := st.ApplyPlaybook(ctx, "p", "h", "name: p", `{"name":"p"}`, 100, "", true); err != nil {
		t.Fatal(err)
	}
	runs := &starterOfRuns{}
	sources, _ := ingest.ParseSources([]byte("sources: {ocsf: {secret: x}}"), func(string) (string, bool) { return "", false })
	pipe, _ := ingest.NewPipeline(ingest.Options{Sources: sources, Starter: starter{}})
	h := server.New(server.Options{Pipeline: pipe, Alerts: st, Playbooks: st, Runs: runs}).Handler()
	js := map[string]string{"Content-Type": "application/json"}
	for _, c := range []struct {
		path, body string
		status     int
		says       string // in the error's message
	}{
		{"/api/v1/alerts/alert-1:run", `{}`, 400, "name the playbook"},
		{"/api/v1/alerts/alert-1:run", `{"playbook":"p","version":-1,"by":"ana"}`, 400, "version is a number"},
		{"/api/v1/alerts/alert-1:run", `{"playbook":"p"}`, 400, "by is required"}, // the open API asks who runs it
		{"/api/v1/alerts/alert-1:run", `{"playbook":"nope","by":"ana"}`, 404, "no such playbook version"},
		{"/api/v1/alerts/alert-1:run", `{"playbook":"p","version":9,"by":"ana"}`, 404, "no such playbook version"},
		{"/api/v1/alerts/nope:run", `{"playbook":"p","by":"ana"}`, 404, "no such alert"},
		{"/api/v1/alerts/alert-1:walk", `{"playbook":"p","by":"ana"}`, 404, ""},
	} {
		code, out := do(t, h, http.MethodPost, c.path, []byte(c.body), js)
		e, _ := out["error"].(map[string]any)
		msg, _ := e["message"].(string)
		if code != c.status || errCode(out) == "" || !strings.Contains(msg, c.says) {
			t.Errorf("%s %s: %d %v, want %d saying %q", c.path, c.body, code, out, c.status, c.says)
		}
	}
	code, out := do(t, h, http.MethodPost, "/api/v1/alerts/alert-1:run", []byte(`{"playbook":"p","dry_run":true,"by":"ana","reason":"try v2"}`), js)
	if code != http.StatusAccepted || out["workflow_id"] == "" || len(runs.got) != 1 || !runs.got[0].DryRun || runs.got[0].AlertID != "alert-1" ||
		runs.got[0].By != "ana" || runs.got[0].Reason != "try v2" {
		t.Fatalf("run: %d %v, requests %+v", code, out, runs.got)
	}
}

func TestAlertStateAsksTheRuns(t *testing.T) {
	st := storetest.SQLite(t)
	ctx := context.Background()
	at := recordAlert(t, st, store.AlertProcessing)
	for _, name := range []string{"malware", "notify"} {
		if err := st.SaveRun(ctx, &store.Run{ID: "run-" + name, WorkflowID: "playbook/alert-1/" + name, WorkflowType: workflows.PlaybookWorkflowName,
			AlertID: "alert-1", Status: store.StatusRunning, StartedAt: at, Playbook: name, PlaybookVersion: 2}); err != nil {
			t.Fatal(err)
		}
	}
	ctl := &control{states: map[string]any{
		"alert/fp": workflows.AlertState{Stage: workflows.StageContain, Outcome: workflows.OutcomeProcessing, Duplicates: 3},
		"playbook/alert-1/malware": workflows.PlaybookState{Playbook: "malware", Version: 2, Position: []string{"isolate"},
			Vars: map[string]any{"verdict": "malicious"}, Status: "waiting"},
		"playbook/alert-1/notify": errors.New("no worker answered"),
	}}
	h := newServerWith(t, st, starter{}, ctl)

	code, out := do(t, h, http.MethodGet, "/api/v1/alerts/alert-1/state", nil, nil)
	if code != 200 {
		t.Fatalf("state: %d %v", code, out)
	}
	state := out["state"].(map[string]any)
	if state["stage"] != "contain" || state["duplicates"] != float64(3) || out["run_id"] != "alert-1" {
		t.Fatalf("alert state = %v", out)
	}
	runs := map[string]map[string]any{}
	for _, p := range out["playbooks"].([]any) {
		runs[p.(map[string]any)["playbook"].(string)] = p.(map[string]any)
	}
	malware, _ := runs["malware"]["state"].(map[string]any)
	if malware == nil || malware["position"].([]any)[0] != "isolate" || malware["vars"].(map[string]any)["verdict"] != "malicious" {
		t.Fatalf("malware run = %v", runs["malware"])
	}
	if runs["notify"]["state"] != nil || !strings.Contains(runs["notify"]["error"].(string), "no worker answered") {
		t.Fatalf("a run that did not answer = %v", runs["notify"])
	}
	want := []string{"alert/fp/alert-1 state", "playbook/alert-1/malware/run-malware playbook.state", "playbook/alert-1/notify/run-notify playbook.state"}
	if strings.Join(ctl.queries, ",") != strings.Join(want, ",") {
		t.Fatalf("queries %v, want %v", ctl.queries, want)
	}

	if code, out := do(t, h, http.MethodGet, "/api/v1/alerts/nope/state", nil, nil); code != 404 || errCode(out) != "not_found" {
		t.Fatalf("unknown alert: %d %v", code, out)
	}
	delete(ctl.states, "alert/fp")
	if code, out := do(t, h, http.MethodGet, "/api/v1/alerts/alert-1/state", nil, nil); code != 404 || errCode(out) != "run_not_found" {
		t.Fatalf("run gone from Temporal: %d %v", code, out)
	}
	ctl.states["alert/fp"] = fmt.Errorf("%w: alert/fp", server.ErrNoAnswer)
	if code, out := do(t, h, http.MethodGet, "/api/v1/alerts/alert-1/state", nil, nil); code != 503 || errCode(out) != "no_answer" {
		t.Fatalf("no worker: %d %v", code, out)
	}
}

// TestAcceptedAlertNotRecordedYet: an alert Temporal accepted that no worker has
// recorded is answered as received, not as missing.
func TestAcceptedAlertNotRecordedYet(t *testing.T) {
	st := storetest.SQLite(t)
	at := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	const id = "0b2c9d4e-1f3a-4b5c-8d6e-7f8091a2b3c4"
	ctl := &control{
		accepted: map[string]server.AcceptedRun{id: {WorkflowID: "alert/fp-1", Source: "crowdstrike", SeverityID: 5, StartedAt: at}},
		states:   map[string]any{"alert/fp-1": workflows.AlertState{Stage: workflows.StageReceived, Outcome: workflows.OutcomeProcessing}},
	}
	h := newServerWith(t, st, starter{}, ctl)
	code, out := do(t, h, http.MethodGet, "/api/v1/alerts/"+id, nil, nil)
	if code != 200 || out["status"] != server.AlertReceived || out["workflow_id"] != "alert/fp-1" || out["severity"] != "Critical" ||
		out["source"] != "crowdstrike" || len(out["steps"].([]any)) != 0 {
		t.Fatalf("accepted alert: %d %v", code, out)
	}
	code, out = do(t, h, http.MethodGet, "/api/v1/alerts/"+id+"/state", nil, nil)
	if code != 200 || out["state"].(map[string]any)["stage"] != workflows.StageReceived || out["workflow_id"] != "alert/fp-1" {
		t.Fatalf("accepted alert's state: %d %v", code, out)
	}
	if code, out := do(t, h, http.MethodGet, "/api/v1/alerts/0b2c9d4e-0000-4b5c-8d6e-7f8091a2b3c4", nil, nil); code != 404 || errCode(out) != "not_found" {
		t.Fatalf("unknown alert: %d %v", code, out)
	}
	ctl.acceptErr = errors.New("temporal unreachable")
	if code, out := do(t, h, http.MethodGet, "/api/v1/alerts/"+id, nil, nil); code != 503 || errCode(out) != "temporal_unavailable" {
		t.Fatalf("temporal down: %d %v", code, out)
	}
}

// TestAlertStateWhileTheStoreIsDown: with the database down an alert's page cannot
// be read, but its open run can still be found and asked through Temporal: what it
// waits for, and its playbook runs.
func TestAlertStateWhileTheStoreIsDown(t *testing.T) {
	st := storetest.SQLite(t)
	const id = "0b2c9d4e-1f3a-4b5c-8d6e-7f8091a2b3c4"
	waiting := "alert.finish: waiting for the store since 2026-11-28T09:00:00Z (connection refused); next try at 2026-11-28T09:05:00Z"
	ctl := &control{
		accepted: map[string]server.AcceptedRun{id: {WorkflowID: "alert/fp-1", Source: "crowdstrike", SeverityID: 5}},
		states: map[string]any{
			"alert/fp-1": workflows.AlertState{Stage: workflows.StageDone, Outcome: workflows.OutcomeContained, Waiting: waiting,
				Playbooks: []workflows.PlaybookRunState{{Playbook: "malware", Version: 2, WorkflowID: "playbook/" + id + "/malware"}}},
			"playbook/" + id + "/malware": workflows.PlaybookState{Playbook: "malware", Version: 2, Status: "succeeded"},
		},
	}
	h := newServerWith(t, st, starter{}, ctl, server.Check{Name: "database", Check: st.Ping})
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if code, out := do(t, h, http.MethodGet, "/api/v1/alerts/"+id, nil, nil); code != 503 || errCode(out) != "unavailable" {
		t.Fatalf("the alert with the database down: %d %v", code, out)
	}
	code, out := do(t, h, http.MethodGet, "/api/v1/alerts/"+id+"/state", nil, nil)
	if code != 200 || out["state"].(map[string]any)["waiting"] != waiting || out["workflow_id"] != "alert/fp-1" {
		t.Fatalf("the alert's state with the database down: %d %v", code, out)
	}
	runs, _ := out["playbooks"].([]any)
	if len(runs) != 1 || runs[0].(map[string]any)["state"].(map[string]any)["status"] != "succeeded" {
		t.Fatalf("its playbook runs: %v", runs)
	}
	if want := "playbook/" + id + "/malware/ playbook.state"; ctl.queries[len(ctl.queries)-1] != want {
		t.Fatalf("queries %v; want the latest run of %s asked", ctl.queries, want)
	}
	// A run Temporal does not hold open: the store's failure stands.
	delete(ctl.accepted, id)
	if code, out := do(t, h, http.MethodGet, "/api/v1/alerts/"+id+"/state", nil, nil); code != 503 || errCode(out) != "unavailable" {
		t.Fatalf("a closed run's state with the database down: %d %v", code, out)
	}
}

// recordAlert records alert-1 (workflow alert/fp) with status, as of the time it
// returns.
func recordAlert(t *testing.T, st *store.Store, status string) time.Time {
	t.Helper()
	at := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	if err := st.RecordAlert(context.Background(), &store.Alert{ID: "alert-1", WorkflowID: "alert/fp", Source: "ocsf", Status: status,
		Title: "Credential dumping from LSASS", Severity: "Critical", SeverityID: 5,
		AlertJSON: `{"device":{"id":"h1","hostname":"dc-01"},"user":{"name":"svc-backup"}}`,
		EventTime: at, ReceivedAt: at, LastSeenAt: at}, nil, nil); err != nil {
		t.Fatal(err)
	}
	return at
}
