package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampart-soar/rampart/server"
	"github.com/rampart-soar/rampart/server/ingest"
	"github.com/rampart-soar/rampart/server/telemetry"
	"github.com/rampart-soar/rampart/server/telemetry/telemetrytest"
	"github.com/rampart-soar/rampart/store"
	"github.com/rampart-soar/rampart/store/storetest"
)

// foldingStarter starts a workflow id's first delivery and folds the later ones.
type foldingStarter struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (s *foldingStarter) StartAlert(_ context.Context, req ingest.StartRequest) (ingest.StartResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	started := !s.seen[req.WorkflowID]
	s.seen[req.WorkflowID] = true
	return ingest.StartResult{RunID: "run-1", Started: started}, nil
}

// polling answers who polls the task queue, or fails.
type polling struct {
	view server.WorkersView
	err  error
}

func (p *polling) Workers(context.Context) (server.WorkersView, error) { return p.view, p.err }

// TestSourcesCountPreviousSecret: while a source's secret is rotated, the
// deliveries its tool still signs with the previous one are accepted and counted,
// so the operator sees when the previous secret can go.
func TestSourcesCountPreviousSecret(t *testing.T) {
	body, err := os.ReadFile("../examples/alerts/crowdstrike-ransomware.json")
	if err != nil {
		t.Fatal(err)
	}
	const previous = "previous-secret-0123456789"
	h := newServerWithSources(t, fmt.Sprintf("sources: {crowdstrike: {secret: %q, previous_secret: %q}, ocsf: {secret: %q}}", secret, previous, secret),
		&foldingStarter{seen: map[string]bool{}}, server.Options{Metrics: telemetry.NewMetrics()})
	for i, key := range []string{previous, secret, previous} {
		at := time.Now().Add(-time.Duration(i) * time.Second)
		header := map[string]string{"Content-Type": "application/json", ingest.SignatureHeader: ingest.Sign([]byte(key), at, body)}
		if code, out := do(t, h, http.MethodPost, "/api/v1/webhooks/crowdstrike", body, header); code != 202 || out["previous_secret"] != nil {
			t.Fatalf("delivery %d: %d %v", i, code, out)
		}
	}
	_, out := do(t, h, http.MethodGet, "/api/v1/sources", nil, nil)
	sources, _ := out["sources"].([]any)
	cs, ocsf := sources[0].(map[string]any), sources[1].(map[string]any)
	if cs["previous_secret"] != true || cs["previous_secret_used"] != float64(2) || cs["previous_secret_last_at"] == nil ||
		cs["accepted"] != float64(1) || cs["duplicates"] != float64(2) {
		t.Fatalf("crowdstrike: %v", cs)
	}
	if ocsf["previous_secret"] != nil || ocsf["previous_secret_used"] != nil {
		t.Fatalf("ocsf, no rotation: %v", ocsf)
	}
	_, _, text := get(h, "/api/v1/metrics")
	if !strings.Contains(text, `rampart_webhook_previous_secret_total{source="crowdstrike"} 2`+"\n") || strings.Contains(text, `previous_secret_total{source="ocsf"}`) {
		t.Fatalf("metrics:\n%s", text)
	}
	telemetrytest.Parse(t, text)
}

// TestReloadSourcesKeepsTheCounts ends a rotation and swaps a source by a
// reload: the kept source keeps its counts but those of the previous secret,
// the removed one goes, and the added one starts at zero.
func TestReloadSourcesKeepsTheCounts(t *testing.T) {
	body, err := os.ReadFile("../examples/alerts/crowdstrike-ransomware.json")
	if err != nil {
		t.Fatal(err)
	}
	parse := func(doc string) map[string]*ingest.Source {
		t.Helper()
		sources, err := ingest.ParseSources([]byte(doc), func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatal(err)
		}
		return sources
	}
	const previous = "previous-secret-0123456789"
	pipeline, err := ingest.NewPipeline(ingest.Options{Starter: &foldingStarter{seen: map[string]bool{}},
		Sources: parse(fmt.Sprintf("sources: {crowdstrike: {secret: %q, previous_secret: %q}, ocsf: {secret: %q}}", secret, previous, secret))})
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(server.Options{Pipeline: pipeline, Metrics: telemetry.NewMetrics()})
	h := srv.Handler()
	post := func(source, key string, at time.Time) int {
		code, _ := do(t, h, http.MethodPost, "/api/v1/webhooks/"+source, body,
			map[string]string{"Content-Type": "application/json", ingest.SignatureHeader: ingest.Sign([]byte(key), at, body)})
		return code
	}
	if post("crowdstrike", previous, time.Now()) != 202 || post("crowdstrike", secret, time.Now().Add(-time.Second)) != 202 {
		t.Fatal("deliveries before the reload were refused")
	}

	changes, err := srv.ReloadSources(parse(fmt.Sprintf("sources: {crowdstrike: {secret: %q}, edr: {format: crowdstrike, secret: %q}}", secret, secret)))
	if err != nil || !slices.Equal(changes.Rekeyed, []string{"crowdstrike"}) {
		t.Fatalf("reload: %+v, %v", changes, err)
	}
	if code := post("crowdstrike", previous, time.Now().Add(-2*time.Second)); code != http.StatusUnauthorized {
		t.Fatalf("the previous secret after the rotation ended: %d", code)
	}
	if code := post("ocsf", secret, time.Now()); code != http.StatusNotFound {
		t.Fatalf("the removed source: %d", code)
	}
	var list server.SourceList
	code, _, raw := get(h, "/api/v1/sources")
	if err := json.Unmarshal([]byte(raw), &list); err != nil || code != 200 || len(list.Sources) != 2 || list.UnknownSource != 1 {
		t.Fatalf("sources: %d %s", code, raw)
	}
	cs, edr := list.Sources[0], list.Sources[1]
	if cs.Name != "crowdstrike" || cs.Accepted != 1 || cs.Duplicates != 1 || cs.Refused["invalid_signature"] != 1 ||
		cs.PreviousSecret || cs.PreviousSecretUsed != 0 || cs.PreviousSecretLastAt != nil {
		t.Fatalf("crowdstrike after the reload: %+v", cs)
	}
	if edr.Name != "edr" || edr.Format != "crowdstrike" || edr.Accepted != 0 || edr.Refused == nil {
		t.Fatalf("the added source: %+v", edr)
	}
	_, _, text := get(h, "/api/v1/metrics")
	if strings.Contains(text, "previous_secret_total") || strings.Contains(text, `source="ocsf"`) ||
		!strings.Contains(text, `rampart_webhook_deliveries_total{source="edr",outcome="accepted"} 0`+"\n") {
		t.Fatalf("metrics after the reload:\n%s", text)
	}
}

// TestReloadSourcesUnderDeliveries reloads the sources over and over while
// deliveries signed with a secret every version accepts keep coming: none is
// refused, and every one is counted (run with -race, it also finds the two
// sharing no memory unguarded).
func TestReloadSourcesUnderDeliveries(t *testing.T) {
	body, err := os.ReadFile("../examples/alerts/crowdstrike-ransomware.json")
	if err != nil {
		t.Fatal(err)
	}
	versions := make([]map[string]*ingest.Source, 2)
	for i, doc := range []string{
		fmt.Sprintf("sources: {crowdstrike: {secret: %q}}", secret),
		fmt.Sprintf("sources: {crowdstrike: {secret: %q, previous_secret: %q}, ocsf: {secret: %q}}", "rotated-secret-0123456789", secret, secret),
	} {
		if versions[i], err = ingest.ParseSources([]byte(doc), func(string) (string, bool) { return "", false }); err != nil {
			t.Fatal(err)
		}
	}
	pipeline, err := ingest.NewPipeline(ingest.Options{Starter: &foldingStarter{seen: map[string]bool{}}, Sources: versions[0]})
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(server.Options{Pipeline: pipeline, Metrics: telemetry.NewMetrics()})
	h := srv.Handler()
	const senders, each = 4, 50
	var wg sync.WaitGroup
	refused := make(chan string, senders*each)
	base := time.Now()
	for g := range senders {
		wg.Go(func() {
			for i := range each {
				at := base.Add(-time.Duration(g*each+i) * time.Second) // each signature its own
				req := httptest.NewRequest(http.MethodPost, "/api/v1/webhooks/crowdstrike", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set(ingest.SignatureHeader, ingest.Sign([]byte(secret), at, body))
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusAccepted {
					refused <- fmt.Sprint(rec.Code, rec.Body.String())
				}
			}
		})
	}
	for i := range 40 {
		if _, err := srv.ReloadSources(versions[(i+1)%2]); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	close(refused)
	for r := range refused {
		t.Errorf("refused during a reload: %s", r)
	}
	var list server.SourceList
	_, _, raw := get(h, "/api/v1/sources")
	if err := json.Unmarshal([]byte(raw), &list); err != nil || list.Sources[0].Name != "crowdstrike" ||
		list.Sources[0].Accepted+list.Sources[0].Duplicates != senders*each {
		t.Fatalf("counted %s, want %d deliveries", raw, senders*each)
	}
}

func TestSourcesCountDeliveries(t *testing.T) {
	body, err := os.ReadFile("../examples/alerts/crowdstrike-ransomware.json")
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	st := storetest.SQLite(t)
	for i, status := range []string{store.ApprovalPending, store.ApprovalPending, store.ApprovalApproved} {
		if err := st.SaveApproval(context.Background(), &store.Approval{
			ID: fmt.Sprint("ap-", i), AlertID: "alert-1", WorkflowID: "playbook/alert-1/malware", RunID: "run-1", Playbook: "malware",
			Step: fmt.Sprint("isolate-", i), Operation: "edr.isolate_host", InputsJSON: `{}`, ArgsHash: "hash", ApproversJSON: `[]`,
			Status: status, RequestedAt: time.Now().Add(time.Duration(i-1) * 10 * time.Minute), // the first pending one 10 minutes ago
		}); err != nil {
			t.Fatal(err)
		}
	}
	found := &stalls{runs: []server.StalledRun{{RunID: "a"}, {RunID: "b"}}}
	workers := &polling{view: server.WorkersView{TaskQueue: "rampart", Polling: 3}}
	h := newServerFrom(t, &foldingStarter{seen: map[string]bool{}}, server.Options{Alerts: st, Approvals: st,
		Stalls: found, Workers: workers, Metrics: telemetry.NewMetrics(), Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	signedBy := func(key string, at time.Time, b []byte) map[string]string {
		return map[string]string{"Content-Type": "application/json", ingest.SignatureHeader: ingest.Sign([]byte(key), at, b)}
	}
	bad := []byte(`{"metadata":{},"event":{}}`)
	for _, d := range []struct {
		source string
		body   []byte
		header map[string]string
		status int
	}{
		{"crowdstrike", body, signedBy(secret, time.Now(), body), 202},
		{"crowdstrike", body, signedBy(secret, time.Now().Add(-time.Second), body), 202}, // a duplicate
		{"crowdstrike", body, signedBy("rotated-away", time.Now(), body), 401},
		{"crowdstrike", body, signedBy("rotated-away", time.Now(), body), 401},
		{"crowdstrike", bad, signedBy(secret, time.Now(), bad), 400},
		{"nope", body, signedBy(secret, time.Now(), body), 404},
	} {
		if code, out := do(t, h, http.MethodPost, "/api/v1/webhooks/"+d.source, d.body, d.header); code != d.status {
			t.Fatalf("%s: %d %v, want %d", d.source, code, out, d.status)
		}
	}

	code, out := do(t, h, http.MethodGet, "/api/v1/sources", nil, nil)
	sources, _ := out["sources"].([]any)
	if code != 200 || len(sources) != 2 || out["unknown_source"] != float64(1) || out["since"] == nil {
		t.Fatalf("sources: %d %v", code, out)
	}
	cs, ocsf := sources[0].(map[string]any), sources[1].(map[string]any)
	refused, _ := cs["refused"].(map[string]any)
	last, _ := cs["last_refusal"].(map[string]any)
	if cs["name"] != "crowdstrike" || cs["format"] != "crowdstrike" || cs["auth"] != "hmac" || cs["accepted"] != float64(1) ||
		cs["duplicates"] != float64(1) || cs["last_accepted_at"] == nil || len(refused) != 2 ||
		refused["invalid_signature"] != float64(2) || refused["schema_violation"] != float64(1) ||
		last["code"] != "schema_violation" || last["status"] != float64(400) {
		t.Fatalf("crowdstrike: %v", cs)
	}
	if ocsf["name"] != "ocsf" || ocsf["accepted"] != float64(0) || ocsf["last_accepted_at"] != nil || ocsf["last_refusal"] != nil {
		t.Fatalf("ocsf: %v", ocsf)
	}

	// One warning per source and kind of refusal a minute, none for an unknown
	// source name (anyone may make those up); never the secret or the signature.
	warnings := strings.Count(logs.String(), `msg="webhook refused"`)
	if warnings != 2 || !strings.Contains(logs.String(), "code=invalid_signature") ||
		!strings.Contains(logs.String(), "code=schema_violation") || strings.Contains(logs.String(), secret) ||
		strings.Contains(logs.String(), "v1=") {
		t.Fatalf("%d warnings in the log:\n%s", warnings, logs.String())
	}

	metrics := func() (int, string, string) { return get(h, "/api/v1/metrics") }
	code, contentType, text := metrics()
	for _, want := range []string{
		`rampart_webhook_deliveries_total{source="crowdstrike",outcome="accepted"} 1`,
		`rampart_webhook_deliveries_total{source="crowdstrike",outcome="duplicate"} 1`,
		`rampart_webhook_deliveries_total{source="crowdstrike",outcome="invalid_signature"} 2`,
		`rampart_webhook_deliveries_total{source="ocsf",outcome="accepted"} 0`,
		"rampart_webhook_unknown_source_total 1",
		`rampart_webhook_last_accepted_timestamp_seconds{source="crowdstrike"} `,
		"# TYPE rampart_stalled_runs gauge\nrampart_stalled_runs 2\n",
		`rampart_workers_polling{task_queue="rampart"} 3` + "\n",
		"# TYPE rampart_approvals_pending gauge\nrampart_approvals_pending 2\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if code != 200 || !strings.HasPrefix(contentType, "text/plain; version=0.0.4") || strings.Contains(text, `source="ocsf"} `) {
		t.Fatalf("metrics: %d %s\n%s", code, contentType, text)
	}
	// What Prometheus itself reads.
	families := telemetrytest.Parse(t, text)
	if len(families) != 8 || len(families["rampart_webhook_deliveries_total"].GetMetric()) != 6 {
		t.Fatalf("Prometheus reads %d families:\n%s", len(families), text)
	}
	// The oldest approval waiting, not the older decided one, says how long the inbox has waited.
	if age := families["rampart_approvals_oldest_pending_age_seconds"].GetMetric()[0].GetGauge().GetValue(); age < 600 || age > 660 {
		t.Errorf("oldest pending approval's age = %v s, want about 600", age)
	}
	// Each answer to a configured source is timed by outcome; the unknown
	// source's is not, so that no request can make a series of its own.
	answers := families["rampart_webhook_answer_latency_seconds"]
	for outcome, n := range map[string]float64{"accepted": 1, "duplicate": 1, "invalid_signature": 2, "schema_violation": 1} {
		if got := telemetrytest.Sum(answers, map[string]string{"source": "crowdstrike", "outcome": outcome}); got != n {
			t.Errorf("answers timed for %s = %v, want %v", outcome, got, n)
		}
	}
	if len(answers.GetMetric()) != 4 {
		t.Errorf("answer latency series: %d, want 4:\n%s", len(answers.GetMetric()), text)
	}
	// Temporal away: no guess at the stalled runs or the workers; the rest as before.
	found.failing, workers.err = errors.New("connection refused"), errors.New("connection refused")
	if code, _, text = metrics(); code != 200 || strings.Contains(text, "rampart_stalled_runs") || strings.Contains(text, "rampart_workers_polling") ||
		!strings.Contains(text, "rampart_webhook_unknown_source_total 1") || !strings.Contains(text, "rampart_approvals_pending 2") {
		t.Fatalf("metrics with Temporal away: %d\n%s", code, text)
	}
}
