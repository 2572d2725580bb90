package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rampart-soar/rampart/schemas"
	"github.com/rampart-soar/rampart/server"
	"github.com/rampart-soar/rampart/server/ingest"
	"github.com/rampart-soar/rampart/store"
	"github.com/rampart-soar/rampart/store/storetest"
)

const secret = "server-test-secret-0123456789"

type starter struct{ err error }

func (s starter) StartAlert(_ context.Context, req ingest.StartRequest) (ingest.StartResult, error) {
	return ingest.StartResult{RunID: "run-" + req.WorkflowID[len("alert/"):][:8], Started: true}, s.err
}

func newServer(t *testing.T, st *store.Store, start ingest.Starter, ready ...server.Check) http.Handler {
	return newServerWith(t, st, start, nil, ready...)
}

func newServerWith(t *testing.T, st *store.Store, start ingest.Starter, control server.WorkflowControl, ready ...server.Check) http.Handler {
	t.Helper()
	return newServerFrom(t, start, server.Options{Alerts: st, Playbooks: st, Approvals: st, Control: control, Ready: ready})
}

// newServerFrom serves opts with a webhook pipeline over the test sources.
func newServerFrom(t *testing.T, start ingest.Starter, opts server.Options) http.Handler {
	t.Helper()
	return newServerWithSources(t, fmt.Sprintf("sources: {crowdstrike: {secret: %q}, ocsf: {secret: %q}}", secret, secret), start, opts)
}

// newServerWithSources is newServerFrom with a sources file of the test's.
func newServerWithSources(t *testing.T, sourcesDoc string, start ingest.Starter, opts server.Options) http.Handler {
	t.Helper()
	sources, err := ingest.ParseSources([]byte(sourcesDoc), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	if opts.Pipeline, err = ingest.NewPipeline(ingest.Options{Sources: sources, Starter: start}); err != nil {
		t.Fatal(err)
	}
	return server.New(opts).Handler()
}

func do(t *testing.T, h http.Handler, method, path string, body []byte, header map[string]string) (int, map[string]any) {
	t.Helper()
	code, out, _ := doHeader(t, h, method, path, body, header)
	return code, out
}

// doHeader is do that also returns the response's header.
func doHeader(t *testing.T, h http.Handler, method, path string, body []byte, header map[string]string) (int, map[string]any, http.Header) {
	t.Helper()
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	req.Host = "127.0.0.1:8080" // the open API answers loopback names only
	for k, v := range header {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var out map[string]any
	if ct := rec.Header().Get("Content-Type"); strings.HasPrefix(ct, "application/json") {
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("%s %s: body is not JSON: %q", method, path, rec.Body.String())
		}
	}
	return rec.Code, out, rec.Header()
}

func errCode(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func TestWebhookStatusCodesAndErrorShape(t *testing.T) {
	h := newServer(t, storetest.SQLite(t), starter{})
	body, err := os.ReadFile("../examples/alerts/crowdstrike-ransomware.json")
	if err != nil {
		t.Fatal(err)
	}
	sign := func(b []byte) map[string]string {
		return map[string]string{"Content-Type": "application/json", ingest.SignatureHeader: ingest.Sign([]byte(secret), time.Now(), b)}
	}
	code, out := do(t, h, http.MethodPost, "/api/v1/webhooks/crowdstrike", body, sign(body))
	if code != http.StatusAccepted || out["alert_id"] == "" || out["workflow_id"] == "" || out["duplicate"] != false {
		t.Fatalf("accepted: %d %v", code, out)
	}
	bad := []byte(`{"metadata":{},"event":{}}`)
	cases := []struct {
		name   string
		path   string
		body   []byte
		header map[string]string
		status int
		code   string
	}{
		{"unknown source", "/api/v1/webhooks/nope", body, sign(body), 404, "unknown_source"},
		{"no signature", "/api/v1/webhooks/crowdstrike", body, map[string]string{"Content-Type": "application/json"}, 401, "missing_signature"},
		{"wrong media type", "/api/v1/webhooks/crowdstrike", body, map[string]string{"Content-Type": "text/plain", ingest.SignatureHeader: "t=1,v1=00"}, 415, "unsupported_media_type"},
		{"schema violation", "/api/v1/webhooks/crowdstrike", bad, sign(bad), 400, "schema_violation"},
		{"too large", "/api/v1/webhooks/ocsf", bytes.Repeat([]byte(" "), 1<<20+1), map[string]string{"Content-Type": "application/json", ingest.SignatureHeader: "t=1,v1=00"}, 413, "body_too_large"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out := do(t, h, http.MethodPost, c.path, c.body, c.header)
			if code != c.status || errCode(out) != c.code {
				t.Fatalf("got %d %v, want %d %s", code, out, c.status, c.code)
			}
			if msg, _ := out["error"].(map[string]any)["message"].(string); msg == "" {
				t.Fatal("error without a message")
			}
		})
	}
	code, out = do(t, h, http.MethodPost, "/api/v1/webhooks/crowdstrike", bad, sign(bad))
	details, _ := out["error"].(map[string]any)["details"].([]any)
	if code != 400 || len(details) < 2 {
		t.Fatalf("schema errors must list each field: %v", out)
	}

	down := newServer(t, storetest.SQLite(t), starter{err: errors.New("unavailable")})
	code, out, header := doHeader(t, down, http.MethodPost, "/api/v1/webhooks/crowdstrike", body, sign(body))
	if code != http.StatusServiceUnavailable || errCode(out) != "workflow_unavailable" || header.Get("Retry-After") != "5" {
		t.Fatalf("temporal down: %d %v (Retry-After %q)", code, out, header.Get("Retry-After"))
	}
}

func TestRoutingErrorsUseTheErrorShape(t *testing.T) {
	h := newServer(t, storetest.SQLite(t), starter{})
	for _, c := range []struct {
		method, path string
		status       int
		code         string
	}{
		{http.MethodGet, "/api/v1/nothing", 404, "not_found"},
		{http.MethodDelete, "/api/v1/alerts", 405, "method_not_allowed"},
		{http.MethodGet, "/api/v1/webhooks/crowdstrike", 405, "method_not_allowed"},
		{http.MethodGet, "/api/v1/alerts/does-not-exist", 404, "not_found"},
		{http.MethodGet, "/api/v1/alerts/" + strings.Repeat("x", 100), 404, "not_found"},
		{http.MethodGet, "/api/v1/alerts?limit=0", 400, "invalid_query"},
		{http.MethodGet, "/api/v1/alerts?limit=abc", 400, "invalid_query"},
		{http.MethodGet, "/api/v1/alerts?status=weird", 400, "invalid_query"},
		{http.MethodGet, "/api/v1/alerts?severity=9", 400, "invalid_query"},
		{http.MethodGet, "/api/v1/alerts?min_severity=extreme", 400, "invalid_query"},
		{http.MethodGet, "/api/v1/alerts?cursor=%25%25", 400, "invalid_query"},
		{http.MethodGet, "/api/v1/alerts?cursor=%%%", 400, "invalid_query"},
		{http.MethodGet, "/api/v1/approvals?status=%zz", 400, "invalid_query"},
	} {
		code, out := do(t, h, c.method, c.path, nil, nil)
		if code != c.status || errCode(out) != c.code {
			t.Errorf("%s %s: %d %v, want %d %s", c.method, c.path, code, out, c.status, c.code)
		}
	}
}

func TestAlertsAPI(t *testing.T) {
	st := storetest.SQLite(t)
	ctx := context.Background()
	t0 := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	for i, sev := range []int{2, 5, 4} {
		id := fmt.Sprintf("alert-%d", i)
		a := &store.Alert{ID: id, WorkflowID: "alert/fp" + id, Fingerprint: "fp" + id, Source: "crowdstrike", Title: "t" + id,
			SeverityID: sev, Severity: schemas.SeverityName(sev), Status: store.AlertProcessing,
			EventTime: t0, ReceivedAt: t0.Add(time.Duration(i) * time.Minute), LastSeenAt: t0, RawJSON: `{"raw":true}`,
			AlertJSON: fmt.Sprintf(`{"source":"crowdstrike","device":{"hostname":"ws-%d"},"user":{"name":"user-%d"}}`, i%2, i)}
		run := &store.Run{ID: id, WorkflowID: a.WorkflowID, WorkflowType: "AlertWorkflow", AlertID: id, Status: store.StatusRunning, StartedAt: t0}
		host := []schemas.Entity{{Kind: schemas.EntityHostname, Value: fmt.Sprintf("ws-%d", i%2)}}
		if err := st.RecordAlert(ctx, a, host, run); err != nil {
			t.Fatal(err)
		}
	}
	done := t0.Add(time.Second)
	_ = st.SaveStep(ctx, &store.Step{RunID: "alert-1", Name: "detect", Seq: 1, Status: store.StatusSucceeded, StartedAt: t0, FinishedAt: &done, OutputJSON: `{"stage":14}`})
	_, _, _ = st.ClaimAction(ctx, &store.Action{IdempotencyKey: "k", AlertID: "alert-1", RunID: "alert-1", Integration: "crowdstrike", Operation: "isolate_host", Target: "dev"})
	// An action that found its host already contained (another alert's asked first) succeeds with no call.
	_, _, _ = st.ClaimAction(ctx, &store.Action{IdempotencyKey: "k2", AlertID: "alert-1", RunID: "alert-1", Integration: "crowdstrike", Operation: "isolate_host", Target: "dev2"})
	_ = st.UpdateAction(ctx, "k2", store.ActionUpdate{Status: store.StatusSucceeded, VendorStatus: "contained"})
	_ = st.UpdateAlert(ctx, "alert-1", store.AlertUpdate{Status: store.AlertContained, DecisionJSON: `{"contain":true,"inputs":{"enrich.ioc_hits":1}}`})

	h := newServer(t, st, starter{})
	code, out := do(t, h, http.MethodGet, "/api/v1/alerts?limit=2", nil, nil)
	alerts, _ := out["alerts"].([]any)
	if code != 200 || len(alerts) != 2 || alerts[0].(map[string]any)["id"] != "alert-2" || out["next_cursor"] == nil {
		t.Fatalf("list: %d %v", code, out)
	}
	// Each alert says whom it is about, for a queue an analyst scans.
	if first := alerts[0].(map[string]any); first["hostname"] != "ws-0" || first["user"] != "user-2" {
		t.Fatalf("list: the newest alert's subject = %v, %v", first["hostname"], first["user"])
	}
	code, out = do(t, h, http.MethodGet, "/api/v1/alerts?cursor="+out["next_cursor"].(string), nil, nil)
	if alerts, _ = out["alerts"].([]any); code != 200 || len(alerts) != 1 || alerts[0].(map[string]any)["id"] != "alert-0" {
		t.Fatalf("second page: %d %v", code, out)
	}
	code, out = do(t, h, http.MethodGet, "/api/v1/alerts?min_severity=high&status=contained", nil, nil)
	if alerts, _ = out["alerts"].([]any); code != 200 || len(alerts) != 1 || alerts[0].(map[string]any)["id"] != "alert-1" {
		t.Fatalf("filtered: %d %v", code, out)
	}
	code, out = do(t, h, http.MethodGet, "/api/v1/alerts?entity=WS-0", nil, nil)
	if alerts, _ = out["alerts"].([]any); code != 200 || len(alerts) != 2 || alerts[0].(map[string]any)["id"] != "alert-2" || alerts[1].(map[string]any)["id"] != "alert-0" {
		t.Fatalf("about ws-0: %d %v", code, out)
	}
	if code, out = do(t, h, http.MethodGet, "/api/v1/alerts?entity="+strings.Repeat("x", 513), nil, nil); code != 400 || errCode(out) != "invalid_query" {
		t.Fatalf("a long entity: %d %v", code, out)
	}
	code, out = do(t, h, http.MethodGet, "/api/v1/alerts?rule=%20talert-1%20", nil, nil)
	if alerts, _ = out["alerts"].([]any); code != 200 || len(alerts) != 1 || alerts[0].(map[string]any)["id"] != "alert-1" {
		t.Fatalf("by rule: %d %v", code, out)
	}
	if code, out = do(t, h, http.MethodGet, "/api/v1/alerts?rule="+strings.Repeat("x", 1025), nil, nil); code != 400 || errCode(out) != "invalid_query" {
		t.Fatalf("a long rule: %d %v", code, out)
	}
	code, out = do(t, h, http.MethodGet, "/api/v1/alerts/alert-1", nil, nil)
	if code != 200 {
		t.Fatalf("detail: %d %v", code, out)
	}
	steps, _ := out["steps"].([]any)
	actions, _ := out["actions"].([]any)
	decision, _ := out["decision"].(map[string]any)
	temporal, _ := out["temporal"].(map[string]any)
	notes := map[string]any{}
	for _, a := range actions {
		notes[a.(map[string]any)["idempotency_key"].(string)] = a.(map[string]any)["note"]
	}
	if len(actions) != 2 || notes["k"] != nil || notes["k2"] != "no call needed: the target was already contained" {
		t.Fatalf("actions = %v", actions)
	}
	if len(steps) != 1 || steps[0].(map[string]any)["duration_ms"] != float64(1000) ||
		decision["contain"] != true || temporal["workflow_id"] != "alert/fpalert-1" || temporal["run_id"] != "alert-1" ||
		out["raw"].(map[string]any)["raw"] != true || out["run"].(map[string]any)["status"] != "running" {
		t.Fatalf("detail = %v", out)
	}
	// The run in flight has no outcome to time yet; the source's lateness shows.
	timings, _ := out["timings"].(map[string]any)
	if timings["report_delay_ms"] != float64(60_000) || timings["time_to_outcome_ms"] != nil || timings["summary"] != "reported 1 min 0 s after the event" {
		t.Fatalf("timings in flight = %v", out["timings"])
	}
	outcome := t0.Add(time.Minute + 2500*time.Millisecond)
	if err := st.UpdateRun(ctx, "alert-1", store.RunUpdate{Status: store.StatusCompleted, CompletedAt: &outcome}); err != nil {
		t.Fatal(err)
	}
	_, out = do(t, h, http.MethodGet, "/api/v1/alerts/alert-1", nil, nil)
	timings, _ = out["timings"].(map[string]any)
	if timings["time_to_outcome_ms"] != float64(2500) || timings["summary"] != "contained 2.5 s after receipt · reported 1 min 0 s after the event" {
		t.Fatalf("timings at the outcome = %v", out["timings"])
	}
	// That was an alert recorded before alerts kept their outcome's time; one
	// that keeps it is timed by it, in the list too.
	outcome = outcome.Add(500 * time.Millisecond)
	if err := st.UpdateAlert(ctx, "alert-1", store.AlertUpdate{OutcomeAt: &outcome}); err != nil {
		t.Fatal(err)
	}
	_, out = do(t, h, http.MethodGet, "/api/v1/alerts/alert-1", nil, nil)
	_, list := do(t, h, http.MethodGet, "/api/v1/alerts?status=contained", nil, nil)
	if alerts, _ = list["alerts"].([]any); len(alerts) != 1 {
		t.Fatalf("contained alerts = %v", list)
	}
	for _, got := range []any{out["timings"], alerts[0].(map[string]any)["timings"]} {
		if timings, _ = got.(map[string]any); timings["time_to_outcome_ms"] != float64(3000) {
			t.Fatalf("timings by the alert's outcome = %v", got)
		}
	}
}

func TestHealthAndReadiness(t *testing.T) {
	st := storetest.SQLite(t)
	ok := newServer(t, st, starter{}, server.Check{Name: "database", Check: st.Ping})
	if code, out := do(t, ok, http.MethodGet, "/readyz", nil, nil); code != 200 || out["status"] != "ready" {
		t.Fatalf("readyz: %d %v", code, out)
	}
	broken := newServer(t, st, starter{}, server.Check{Name: "temporal", Check: func(context.Context) error { return errors.New("connection refused") }})
	code, out := do(t, broken, http.MethodGet, "/readyz", nil, nil)
	if code != http.StatusServiceUnavailable || out["checks"].(map[string]any)["temporal"] == "ok" {
		t.Fatalf("readyz with temporal down: %d %v", code, out)
	}
	if code, _ := do(t, broken, http.MethodGet, "/healthz", nil, nil); code != 200 {
		t.Fatalf("healthz: %d", code)
	}
	// A request that fails while the database is down says so: 503, try again.
	closed := storetest.SQLite(t)
	down := newServer(t, closed, starter{}, server.Check{Name: "database", Check: closed.Ping})
	if err := closed.Close(); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/api/v1/alerts", "/api/v1/alerts/some-id", "/api/v1/approvals", "/api/v1/playbooks"} {
		code, body, header := doHeader(t, down, http.MethodGet, path, nil, nil)
		msg, _ := body["error"].(map[string]any)["message"].(string)
		if code != http.StatusServiceUnavailable || errCode(body) != "unavailable" || !strings.HasPrefix(msg, "database is unavailable") ||
			header.Get("Retry-After") != "5" {
			t.Errorf("GET %s with the database down: %d %v (Retry-After %q)", path, code, body, header.Get("Retry-After"))
		}
	}
	// The same failure with every dependency answering is Rampart's own: 500.
	if code, out := do(t, newServer(t, closed, starter{}), http.MethodGet, "/api/v1/alerts", nil, nil); code != 500 || errCode(out) != "internal" {
		t.Fatalf("a failure with no dependency down: %d %v", code, out)
	}
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	rec := httptest.NewRecorder()
	ok.ServeHTTP(rec, req)
	page, _ := io.ReadAll(rec.Body)
	if rec.Code != 200 || !bytes.Contains(page, []byte("<title>Rampart</title>")) {
		t.Fatalf("ui: %d", rec.Code)
	}
	rec = httptest.NewRecorder()
	ok.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/ui/app.js", nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "/api/v1/alerts") {
		t.Fatalf("ui script: %d", rec.Code)
	}
}

func TestLintEndpoint(t *testing.T) {
	h := newServer(t, storetest.SQLite(t), starter{})
	good, err := os.ReadFile("../examples/playbooks/malware-isolate-host.yaml")
	if err != nil {
		t.Fatal(err)
	}
	code, out := do(t, h, http.MethodPost, "/api/v1/playbooks:lint?file=malware.yaml", good, map[string]string{"Content-Type": "application/yaml"})
	if code != 200 || out["ok"] != true || out["name"] != "malware-isolate-host" {
		t.Fatalf("lint of a good playbook: %d %v", code, out)
	}
	bad := bytes.Replace(good, []byte("alert.file.sha256 }}"), []byte("alert.file.sha265 }}"), 1)
	code, out = do(t, h, http.MethodPost, "/api/v1/playbooks:lint?file=malware.yaml", bad, map[string]string{"Content-Type": "application/yaml"})
	diags, _ := out["diagnostics"].([]any)
	if code != 200 || out["ok"] != false || len(diags) != 1 {
		t.Fatalf("lint of a bad playbook: %d %v", code, out)
	}
	d := diags[0].(map[string]any)
	if d["file"] != "malware.yaml" || d["line"] != float64(16) || d["column"] != float64(28) || !strings.Contains(d["message"].(string), "did you mean sha256") {
		t.Fatalf("diagnostic = %v", d)
	}
	// An alias inside its own anchor once recursed until the process died.
	selfRef := []byte("name: x\nvars: &v {self: *v}\n")
	code, out = do(t, h, http.MethodPost, "/api/v1/playbooks:lint?file=x.yaml", selfRef, map[string]string{"Content-Type": "application/yaml"})
	if diags, _ := out["diagnostics"].([]any); code != 200 || out["ok"] != false || len(diags) != 1 ||
		!strings.Contains(diags[0].(map[string]any)["message"].(string), "inside its own anchor") {
		t.Fatalf("lint of a self-referring alias: %d %v", code, out)
	}
	if code, out := do(t, h, http.MethodPost, "/api/v1/playbooks:lint", good, map[string]string{"Content-Type": "text/plain"}); code != 415 || errCode(out) != "unsupported_media_type" {
		t.Fatalf("text/plain: %d %v", code, out)
	}
	if code, out := do(t, h, http.MethodPost, "/api/v1/playbooks:lint?file=../x", good, map[string]string{"Content-Type": "application/yaml"}); code != 400 {
		t.Fatalf("file=../x: %d %v", code, out)
	}
}

func TestPlaybookLifecycle(t *testing.T) {
	st := storetest.SQLite(t)
	h := newServer(t, st, starter{})
	yaml := map[string]string{"Content-Type": "application/yaml"}
	src, err := os.ReadFile("../examples/playbooks/bruteforce-block-ip.yaml")
	if err != nil {
		t.Fatal(err)
	}
	code, out := do(t, h, http.MethodPost, "/api/v1/playbooks?file=bf.yaml", src, yaml)
	if code != http.StatusCreated || out["name"] != "bruteforce-block-ip" || out["version"] != float64(1) || out["created"] != true {
		t.Fatalf("apply: %d %v", code, out)
	}
	// Only comments differ: the same definition, no new version.
	code, out = do(t, h, http.MethodPost, "/api/v1/playbooks", append([]byte("# a comment\n"), src...), yaml)
	if code != http.StatusOK || out["version"] != float64(1) || out["created"] != false {
		t.Fatalf("re-apply: %d %v", code, out)
	}
	changed := bytes.Replace(src, []byte("duration: 24h"), []byte("duration: 12h"), 1)
	code, out = do(t, h, http.MethodPost, "/api/v1/playbooks", changed, yaml)
	if code != http.StatusCreated || out["version"] != float64(2) {
		t.Fatalf("change: %d %v", code, out)
	}
	broken := bytes.Replace(src, []byte("alert.src_ip }}"), []byte("alert.src_addr }}"), 1)
	code, out = do(t, h, http.MethodPost, "/api/v1/playbooks?file=bf.yaml", broken, yaml)
	details, _ := out["error"].(map[string]any)["details"].([]any)
	if code != http.StatusUnprocessableEntity || errCode(out) != "invalid_playbook" || len(details) == 0 {
		t.Fatalf("broken: %d %v", code, out)
	}
	if d := details[0].(map[string]any); d["file"] != "bf.yaml" || !strings.Contains(d["message"].(string), "src_addr") {
		t.Fatalf("diagnostic = %v", d)
	}
	code, out = do(t, h, http.MethodGet, "/api/v1/playbooks", nil, nil)
	list, _ := out["playbooks"].([]any)
	// The example ships disabled (its integrations are not configured yet).
	if code != 200 || len(list) != 1 || list[0].(map[string]any)["latest_version"] != float64(2) || list[0].(map[string]any)["enabled"] != false {
		t.Fatalf("list: %d %v", code, out)
	}
	code, out = do(t, h, http.MethodPost, "/api/v1/playbooks/bruteforce-block-ip:enable", nil, nil)
	if enabled, _ := st.EnabledPlaybooks(context.Background()); code != 200 || out["enabled"] != true || len(enabled) != 1 || enabled[0].Version != 2 {
		t.Fatalf("enable: %d %v; enabled %+v", code, out, enabled)
	}
	code, out = do(t, h, http.MethodGet, "/api/v1/playbooks/bruteforce-block-ip", nil, nil)
	if versions, _ := out["versions"].([]any); code != 200 || len(versions) != 2 {
		t.Fatalf("get: %d %v", code, out)
	}
	code, out = do(t, h, http.MethodGet, "/api/v1/playbooks/bruteforce-block-ip/versions/1", nil, nil)
	if code != 200 || !strings.Contains(out["source"].(string), "duration: 24h") || out["definition"].(map[string]any)["name"] != "bruteforce-block-ip" {
		t.Fatalf("version 1: %d %v", code, out)
	}
	code, out = do(t, h, http.MethodPost, "/api/v1/playbooks/bruteforce-block-ip:disable", nil, nil)
	if code != 200 || out["enabled"] != false {
		t.Fatalf("disable: %d %v", code, out)
	}
	if enabled, _ := st.EnabledPlaybooks(context.Background()); len(enabled) != 0 {
		t.Fatal("disabled playbook still enabled")
	}
	for _, c := range []struct {
		method, path string
		status       int
	}{
		{http.MethodGet, "/api/v1/playbooks/nope", 404},
		{http.MethodGet, "/api/v1/playbooks/bruteforce-block-ip/versions/7", 404},
		{http.MethodGet, "/api/v1/playbooks/bruteforce-block-ip/versions/x", 400},
		{http.MethodPost, "/api/v1/playbooks/nope:enable", 404},
		{http.MethodPost, "/api/v1/playbooks/bruteforce-block-ip:explode", 404},
	} {
		if code, out := do(t, h, c.method, c.path, nil, nil); code != c.status || errCode(out) == "" {
			t.Errorf("%s %s: %d %v, want %d", c.method, c.path, code, out, c.status)
		}
	}
}

func TestRateLimitedWebhookSaysWhenToRetry(t *testing.T) {
	sources, err := ingest.ParseSources([]byte(fmt.Sprintf("sources: {crowdstrike: {secret: %q, rate_limit: {per_second: 0.1, burst: 1}}}", secret)),
		func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	p, err := ingest.NewPipeline(ingest.Options{Sources: sources, Starter: starter{}})
	if err != nil {
		t.Fatal(err)
	}
	h := server.New(server.Options{Pipeline: p, Alerts: storetest.SQLite(t)}).Handler()
	body, err := os.ReadFile("../examples/alerts/crowdstrike-ransomware.json")
	if err != nil {
		t.Fatal(err)
	}
	var rec *httptest.ResponseRecorder
	for i, want := range []int{http.StatusAccepted, http.StatusTooManyRequests} {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/webhooks/crowdstrike", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(ingest.SignatureHeader, ingest.Sign([]byte(secret), time.Now().Add(-time.Duration(i)*time.Second), body))
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Fatalf("delivery %d: %d %s, want %d", i, rec.Code, rec.Body, want)
		}
	}
	var out struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Error.Code != "rate_limited" {
		t.Fatalf("body = %s (%v)", rec.Body, err)
	}
	// One delivery every ten seconds: the next fits in ten seconds at most.
	if s, err := strconv.Atoi(rec.Header().Get("Retry-After")); err != nil || s < 9 || s > 10 {
		t.Fatalf("Retry-After = %q", rec.Header().Get("Retry-After"))
	}
}
