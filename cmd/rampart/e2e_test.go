package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/proxy"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/rampart-soar/rampart/cmd/rampart/internal/app"
	"github.com/rampart-soar/rampart/cmd/rampart/internal/codec"
	"github.com/rampart-soar/rampart/cmd/rampart/internal/embedded"
	"github.com/rampart-soar/rampart/integrations"
	"github.com/rampart-soar/rampart/integrations/crowdstrike"
	"github.com/rampart-soar/rampart/policy"
	"github.com/rampart-soar/rampart/server"
	"github.com/rampart-soar/rampart/server/ingest"
	"github.com/rampart-soar/rampart/server/telemetry/telemetrytest"
	"github.com/rampart-soar/rampart/store/storetest"
	"github.com/rampart-soar/rampart/workflows"
)

// The test binary doubles as the rampart binary, so the crash test can run
// `rampart dev` as a child process and kill it.
const childEnv = "RAMPART_E2E_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

const (
	examples    = "../../examples"
	ransomware  = examples + "/alerts/crowdstrike-ransomware.json"
	ransomHost  = "6a1f0c2e9b7d4e35a8c0f1d2e3b4a5c6"
	updateEnv   = "RAMPART_UPDATE_HISTORY"
	historyDir  = "../../workflows/testdata"
	waitTimeout = 90 * time.Second
)

func devConfig(t testing.TB, dedup time.Duration) app.Config {
	cfg := app.Config{
		Listen:      "127.0.0.1:0",
		DataDir:     t.TempDir(),
		Namespace:   "default",
		TaskQueue:   "rampart-e2e",
		SourcesFile: examples + "/sources.yaml",
		AssetsFile:  examples + "/assets.yaml",
		IOCsFile:    examples + "/iocs.csv",
		DedupWindow: dedup,
		LogLevel:    "warn",
	}
	if err := cfg.LoadPolicy(""); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// startDev runs a one-process Rampart; its logs go to logs at debug level when
// given, else nowhere (to stderr at warn with -v).
func startDev(t testing.TB, cfg app.Config, logs ...io.Writer) *app.Dev {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end: skipped with -short")
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	switch {
	case len(logs) > 0:
		log = slog.New(slog.NewTextHandler(logs[0], &slog.HandlerOptions{Level: slog.LevelDebug}))
	case testing.Verbose():
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	d, err := app.StartDev(context.Background(), app.DevOptions{
		Config:       cfg,
		ContainDelay: 100 * time.Millisecond,
		PollInterval: 50 * time.Millisecond,
		Worker:       worker.Options{WorkflowPanicPolicy: worker.FailWorkflow},
		Logger:       log,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Stop(context.Background()) })
	return d
}

// post signs body for source as of at and posts it.
func post(t testing.TB, baseURL string, sources map[string]*ingest.Source, source string, body []byte, at time.Time) (int, ingest.Accepted) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, baseURL+"/api/v1/webhooks/"+source, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(ingest.SignatureHeader, ingest.Sign([]byte(sources[source].Secret()), at, body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out ingest.Accepted
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusAccepted {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatal(err)
		}
	} else {
		t.Logf("POST %s: %d %s", source, resp.StatusCode, raw)
	}
	return resp.StatusCode, out
}

// accepted posts a signed alert now and fails the test unless the webhook
// answers 202; it returns the answer.
func accepted(t testing.TB, baseURL string, sources map[string]*ingest.Source, source string, body []byte) ingest.Accepted {
	t.Helper()
	status, acc := post(t, baseURL, sources, source, body, time.Now())
	if status != http.StatusAccepted {
		t.Fatalf("the %s webhook answered %d", source, status)
	}
	return acc
}

func getAlert(t testing.TB, baseURL, id string) (server.AlertDetail, bool) {
	t.Helper()
	return getAlertWith(t, http.DefaultClient, baseURL, id)
}

// awaitAlert waits until the API shows the alert and cond holds for it, and
// returns what it showed then.
func awaitAlert(t testing.TB, baseURL, id, what string, timeout time.Duration, cond func(server.AlertDetail) bool) server.AlertDetail {
	t.Helper()
	var a server.AlertDetail
	waitFor(t, what, timeout, func() bool {
		var ok bool
		a, ok = getAlert(t, baseURL, id)
		return ok && cond(a)
	})
	return a
}

// getAlertWith is getAlert through a client of the caller's (one that presents
// an API token, say).
func getAlertWith(t testing.TB, c *http.Client, baseURL, id string) (server.AlertDetail, bool) {
	t.Helper()
	resp, err := c.Get(baseURL + "/api/v1/alerts/" + id)
	if err != nil {
		return server.AlertDetail{}, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return server.AlertDetail{}, false
	}
	var d server.AlertDetail
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	return d, true
}

// codecDecode asks the API's codec endpoint to decrypt payloads, and returns the
// answer's payload data one after another.
func codecDecode(t *testing.T, baseURL string, payloads *commonpb.Payloads) []byte {
	t.Helper()
	body, err := protojson.Marshal(payloads)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(baseURL+"/api/v1/codec/decode", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	var out commonpb.Payloads
	if resp.StatusCode != http.StatusOK || protojson.Unmarshal(answer, &out) != nil {
		t.Fatalf("codec: %d %s", resp.StatusCode, answer)
	}
	var data []byte
	for _, p := range out.GetPayloads() {
		data = append(data, p.GetData()...)
	}
	return data
}

// bearer presents an API token on every request.
type bearer string

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+string(b))
	return http.DefaultTransport.RoundTrip(r)
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEndToEndContainment(t *testing.T) {
	var logs syncBuffer
	cfg := devConfig(t, 3*time.Second)
	d := startDev(t, cfg, &logs)
	status, acc := post(t, d.URL, d.Sources(), "crowdstrike", readFile(t, ransomware), time.Now())
	if status != http.StatusAccepted || acc.Duplicate || acc.AlertID == "" {
		t.Fatalf("webhook answered %d %+v", status, acc)
	}
	waitFor(t, "the simulator to report the host contained", waitTimeout, func() bool {
		h, _ := d.Simulator.Host(ransomHost)
		return h.Status == integrations.HostContained
	})
	detail := awaitAlert(t, d.URL, acc.AlertID, "the API to show the run complete and closed", waitTimeout, func(detail server.AlertDetail) bool {
		return detail.Run != nil && detail.Run.ClosedAt != nil
	})
	if detail.Status != "contained" || detail.Summary != "contained: contain_when matched" || detail.Run.Status != "completed" ||
		detail.Temporal.WorkflowID != acc.WorkflowID || detail.Temporal.RunID != acc.AlertID {
		t.Fatalf("alert = %+v run %+v", detail.AlertSummary, detail.Run)
	}
	// The alert's outcome is timed as its run completed, in the list as in the
	// detail: from the webhook to contained.
	var list server.AlertList
	if code := getJSON(t, d.URL+"/api/v1/alerts", &list); code != http.StatusOK || len(list.Alerts) != 1 || list.Alerts[0].Timings == nil ||
		detail.Timings == nil || list.Alerts[0].Timings.Summary != detail.Timings.Summary ||
		*detail.Timings.TimeToOutcomeMS != detail.Run.CompletedAt.Sub(detail.ReceivedAt).Milliseconds() {
		t.Fatalf("timings: listed %+v, detail %+v, run %+v", list.Alerts, detail.Timings, detail.Run)
	}
	// In one process the webhook's start hands the run's first task straight to the
	// worker (eager start) instead of through the task queue.
	started := history(t, d.Client, acc.WorkflowID)[0].GetWorkflowExecutionStartedEventAttributes()
	if !started.GetEagerExecutionAccepted() {
		t.Fatal("the webhook's start was not eager")
	}
	// In one process the API's metrics carry the worker's SDK metrics too.
	resp, err := http.Get(d.URL + "/api/v1/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if telemetrytest.Sum(telemetrytest.Parse(t, string(metrics))["temporal_activity_execution_latency_seconds"],
		map[string]string{"activity_type": workflows.ActivityIsolateHost}) != 1 {
		t.Fatalf("the API's metrics do not count the one isolation:\n%s", metrics)
	}
	// Temporal holds the input encrypted; the API's codec endpoint reads it, as
	// `temporal workflow show --codec-endpoint <url>/api/v1/codec` does.
	if input := started.GetInput(); bytes.Contains(input.GetPayloads()[0].GetData(), []byte("fin-ws-0142")) ||
		!bytes.Contains(codecDecode(t, d.URL, input), []byte("fin-ws-0142")) {
		t.Fatal("the codec endpoint did not decrypt the run's input")
	}
	var names []string
	for _, s := range detail.Steps {
		names = append(names, s.Name+":"+s.Status)
	}
	if fmt.Sprint(names) != "[detect:succeeded enrich:succeeded decide:succeeded contain:succeeded]" {
		t.Fatalf("steps = %v", names)
	}
	var verdict policy.Verdict
	if err := json.Unmarshal(detail.Decision, &verdict); err != nil || !verdict.Contain || verdict.Inputs["enrich.ioc_hits"] != float64(1) {
		t.Fatalf("decision = %s", detail.Decision)
	}
	if len(detail.Actions) != 1 || detail.Actions[0].VendorCalls != 1 || detail.Actions[0].Status != "succeeded" || detail.Actions[0].VendorID == "" {
		t.Fatalf("actions = %+v", detail.Actions)
	}
	if n := d.Simulator.ContainCalls(ransomHost); n != 1 {
		t.Fatalf("contain calls = %d", n)
	}
	// The decision claimed the action, so the isolation's first attempt asked the
	// vendor with nothing before it.
	if in := isolateInput(t, d, acc.WorkflowID); !in.Claimed || in.IdempotencyKey != detail.Actions[0].IdempotencyKey {
		t.Fatalf("isolate input = %+v; want the decision's claim", in)
	}
	for _, call := range d.Simulator.Audit() {
		if slices.Contains(call.IDs, ransomHost) {
			if call.Action != "contain" {
				t.Fatalf("the first call about the host = %+v; want the contain request", call)
			}
			break
		}
	}
	// The other examples: no containment, each recorded with the reason.
	var noAction []ingest.Accepted
	for file, reason := range map[string]string{
		"crowdstrike-pup.json":            "contain_when did not match",
		"ocsf-dc-credential-dumping.json": "contain_when did not match", // the rule itself spares protected assets
		"ocsf-password-spray.json":        "contain_when did not match",
	} {
		source := map[bool]string{true: "crowdstrike", false: "ocsf"}[file[:3] == "cro"]
		acc := accepted(t, d.URL, d.Sources(), source, readFile(t, filepath.Join(examples, "alerts", file)))
		a := awaitAlert(t, d.URL, acc.AlertID, file+" to be decided", waitTimeout, func(a server.AlertDetail) bool {
			return a.Status == "no_action"
		})
		if !bytes.Contains(a.Steps[len(a.Steps)-1].Output, []byte(reason)) {
			t.Fatalf("%s: contain step = %+v", file, a.Steps[len(a.Steps)-1])
		}
		noAction = append(noAction, acc)
	}
	awaitAlert(t, d.URL, noAction[0].AlertID, "the no-action runs to close", waitTimeout, func(a server.AlertDetail) bool {
		return a.Run.ClosedAt != nil
	})
	saveHistory(t, d, noAction[0].WorkflowID, "alert_no_action.json")
	saveHistory(t, d, detail.WorkflowID, "alert_contained.json")

	// No secret in the logs, the workflow history or the app database's file.
	history := historyPayloads(t, d, detail.WorkflowID)
	if !bytes.Contains(logs.Bytes(), []byte("alert accepted")) || !bytes.Contains(history, []byte("fin-ws-0142")) {
		t.Fatal("nothing to search: the logs or history are empty")
	}
	wantNoSecrets(t, configuredSecrets(t, d), withDatabase(t, cfg.DataDir, map[string][]byte{"logs": logs.Bytes(), "history": history}))
}

// isolateInput is the input the run's isolate activity was scheduled with.
func isolateInput(t *testing.T, d *app.Dev, workflowID string) workflows.ContainInput {
	t.Helper()
	for _, ev := range decodedHistory(t, d, workflowID) {
		attrs := ev.GetActivityTaskScheduledEventAttributes()
		if attrs.GetActivityType().GetName() != workflows.ActivityIsolateHost {
			continue
		}
		var in workflows.ContainInput
		if err := converter.GetDefaultDataConverter().FromPayloads(attrs.GetInput(), &in); err != nil {
			t.Fatal(err)
		}
		return in
	}
	t.Fatalf("%s scheduled no isolation", workflowID)
	return workflows.ContainInput{}
}

// configuredSecrets are the secrets a dev process holds: the EDR's, every
// webhook source's and the payload key.
func configuredSecrets(t *testing.T, d *app.Dev) []string {
	t.Helper()
	secrets := []string{d.Config.CrowdStrike.ClientSecret.Reveal()}
	for _, src := range d.Sources() {
		secrets = append(secrets, src.Secret())
	}
	keyFile, err := os.ReadFile(filepath.Join(d.Config.DataDir, app.PayloadKeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := codec.ParseKeys(string(keyFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		secrets = append(secrets, codec.EncodeKey(k), string(k))
	}
	return secrets
}

// withDatabase adds the app database's files to the places to search.
func withDatabase(t *testing.T, dataDir string, places map[string][]byte) map[string][]byte {
	t.Helper()
	db, err := os.ReadFile(filepath.Join(dataDir, "rampart.db"))
	if err != nil {
		t.Fatal(err)
	}
	places["database"] = db
	places["database WAL"], _ = os.ReadFile(filepath.Join(dataDir, "rampart.db-wal"))
	return places
}

// wantNoSecrets fails when any secret appears in any of the places.
func wantNoSecrets(t *testing.T, secrets []string, places map[string][]byte) {
	t.Helper()
	for _, secret := range secrets {
		for where, blob := range places {
			if bytes.Contains(blob, []byte(secret)) {
				t.Errorf("a secret appears in the %s", where)
			}
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

// TestEndToEndEDRFailures: the EDR rate-limits the contain request once, then
// fails it twice with 503 (faults queued through the simulator's own HTTP
// endpoint, as the README shows). The isolate activity waits out the reset hint,
// retries with backoff, reads the host before each retry, and the host is
// contained by exactly one accepted request; the alert says it took four attempts.
func TestEndToEndEDRFailures(t *testing.T) {
	d := startDev(t, devConfig(t, 2*time.Second))
	for _, fault := range []string{
		`{"status":429,"retry_after":"1s","path":"/devices/entities/devices-actions/v2"}`,
		`{"status":503,"count":2,"path":"/devices/entities/devices-actions/v2"}`,
	} {
		resp, err := http.Post(d.Simulator.URL()+"/_sim/faults", "application/json", strings.NewReader(fault))
		if err != nil || resp.StatusCode != http.StatusAccepted {
			t.Fatalf("queue fault %s: %v %v", fault, resp, err)
		}
		_ = resp.Body.Close()
	}
	acc := accepted(t, d.URL, d.Sources(), "crowdstrike", readFile(t, ransomware))
	detail := awaitAlert(t, d.URL, acc.AlertID, "the alert to be contained despite the faults", waitTimeout, func(detail server.AlertDetail) bool {
		return detail.Status == "contained"
	})
	var contains []int
	for _, e := range d.Simulator.Audit() {
		if e.Action == "contain" {
			contains = append(contains, e.Status)
		}
	}
	if fmt.Sprint(contains) != "[429 503 503 202]" || d.Simulator.ContainCalls(ransomHost) != 1 {
		t.Fatalf("contain calls at the EDR: %v", contains)
	}
	if a := detail.Actions; len(a) != 1 || a[0].Attempts != 4 || a[0].VendorCalls != 1 || a[0].Status != "succeeded" || a[0].Error != "" {
		t.Fatalf("actions = %+v", a)
	}
	// The time to contain includes the vendor's reset hint, waited out.
	if tm := detail.Timings; tm == nil || tm.TimeToOutcomeMS == nil || *tm.TimeToOutcomeMS < 1000 || !strings.HasPrefix(tm.Summary, "contained ") {
		t.Fatalf("timings = %+v", detail.Timings)
	}
	if code, out := runCLI(t, "alert", "show", acc.AlertID, "--url", d.URL); code != 0 || !strings.Contains(out, "4 attempts, 1 vendor call(s)") ||
		!strings.Contains(out, detail.Timings.Summary) {
		t.Fatalf("alert show: exit %d:\n%s", code, out)
	}

	// The same detection once its run has closed, against an EDR that now refuses:
	// the refusal is final, and the alert says so in the vendor's words.
	awaitAlert(t, d.URL, acc.AlertID, "the first run to close", waitTimeout, func(a server.AlertDetail) bool {
		return a.Run != nil && a.Run.ClosedAt != nil
	})
	d.Simulator.InjectFault(crowdstrike.Fault{Status: http.StatusForbidden, Path: "/devices/entities/devices-actions/v2"})
	again := accepted(t, d.URL, d.Sources(), "crowdstrike", readFile(t, ransomware))
	refused := awaitAlert(t, d.URL, again.AlertID, "the refused alert to fail", waitTimeout, func(a server.AlertDetail) bool {
		return a.Status == "failed"
	})
	const why = "failed: contain: crowdstrike contain: HTTP 403: Forbidden (trace "
	if !strings.HasPrefix(refused.Summary, why) || strings.Contains(refused.Summary, "activity error") ||
		len(refused.Actions) != 1 || refused.Actions[0].Status != "failed" {
		t.Fatalf("refused alert: %q, actions %+v", refused.Summary, refused.Actions)
	}
}

func TestEndToEndDuplicatesFoldIntoOneWorkflow(t *testing.T) {
	d := startDev(t, devConfig(t, 6*time.Second))
	body := readFile(t, ransomware)
	const dups = 50
	start := time.Now()
	status, first := post(t, d.URL, d.Sources(), "crowdstrike", body, start)
	if status != http.StatusAccepted {
		t.Fatalf("first delivery: %d", status)
	}
	var wg sync.WaitGroup
	results := make(chan ingest.Accepted, dups)
	for i := range dups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A sender re-signs each delivery; identical signatures would be replays.
			status, acc := post(t, d.URL, d.Sources(), "crowdstrike", body, start.Add(-time.Duration(i+1)*time.Second))
			if status != http.StatusAccepted {
				t.Errorf("duplicate %d: HTTP %d", i, status)
			}
			results <- acc
		}()
	}
	wg.Wait()
	close(results)
	for acc := range results {
		if !acc.Duplicate || acc.AlertID != first.AlertID || acc.WorkflowID != first.WorkflowID {
			t.Fatalf("duplicate answered %+v, first was %+v", acc, first)
		}
	}
	detail := awaitAlert(t, d.URL, first.AlertID, "the run to close", waitTimeout, func(detail server.AlertDetail) bool {
		return detail.Run != nil && detail.Run.ClosedAt != nil
	})
	if detail.DuplicateCount != dups {
		t.Fatalf("duplicate count = %d, want %d", detail.DuplicateCount, dups)
	}
	if n := d.Simulator.ContainCalls(ransomHost); n != 1 {
		t.Fatalf("contain calls = %d, want exactly 1", n)
	}
	waitFor(t, "visibility to list the workflow", 30*time.Second, func() bool {
		resp, err := d.Client.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
			Query: fmt.Sprintf("WorkflowId = %q", first.WorkflowID),
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Executions) > 1 {
			t.Fatalf("%d executions for %s, want 1", len(resp.Executions), first.WorkflowID)
		}
		return len(resp.Executions) == 1 && resp.Executions[0].GetStatus().String() == "Completed"
	})
	// Search attributes reach visibility.
	resp, err := d.Client.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
		Query: `RampartSource = "crowdstrike" AND RampartSeverity = 5`,
	})
	if err != nil || len(resp.Executions) != 1 {
		t.Fatalf("search attribute query: %v, %d executions", err, len(resp.GetExecutions()))
	}
	saveHistory(t, d, first.WorkflowID, "alert_duplicates.json")
}

// saveHistory writes a workflow's history to workflows/testdata for the replay
// test, when RAMPART_UPDATE_HISTORY=1.
func saveHistory(t *testing.T, d *app.Dev, workflowID, name string) {
	t.Helper()
	if os.Getenv(updateEnv) != "1" {
		return
	}
	if err := os.WriteFile(filepath.Join(historyDir, name), append(historyJSON(t, d, workflowID), '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("recorded %s", name)
}

// history fetches a workflow's events.
func history(t *testing.T, c client.Client, workflowID string) []*historypb.HistoryEvent {
	t.Helper()
	var events []*historypb.HistoryEvent
	iter := c.GetWorkflowHistory(context.Background(), workflowID, "", false, 0)
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, ev)
	}
	return events
}

// decodedHistory is a workflow's history with its payloads decrypted, as the
// workers see it.
func decodedHistory(t *testing.T, d *app.Dev, workflowID string) []*historypb.HistoryEvent {
	t.Helper()
	events := history(t, d.Client, workflowID)
	for _, ev := range events {
		err := proxy.VisitPayloads(context.Background(), ev, proxy.VisitPayloadsOptions{
			Visitor: func(_ *proxy.VisitPayloadsContext, p []*commonpb.Payload) ([]*commonpb.Payload, error) {
				return d.Config.Payloads.Decode(p)
			},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return events
}

// historyPayloads is a workflow's decrypted history in proto wire form, where
// payloads are plain bytes (the JSON form base64-encodes them, which would hide a
// secret).
func historyPayloads(t *testing.T, d *app.Dev, workflowID string) []byte {
	t.Helper()
	return wireForm(t, decodedHistory(t, d, workflowID))
}

// wireForm is events in proto wire form, one after another.
func wireForm(t *testing.T, events []*historypb.HistoryEvent) []byte {
	t.Helper()
	var out []byte
	for _, ev := range events {
		b, err := proto.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	return out
}

// historyJSON is a workflow's decrypted history in the JSON `temporal workflow
// show` writes: what the replay tests read without the key.
func historyJSON(t *testing.T, d *app.Dev, workflowID string) []byte {
	t.Helper()
	// The workflow id travels with the events: replay must run under it, since
	// child workflow ids derive from it.
	hist := &historyEvents{WorkflowID: workflowID}
	for _, ev := range decodedHistory(t, d, workflowID) {
		raw, err := protojson.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		hist.Events = append(hist.Events, raw)
	}
	out, err := json.MarshalIndent(hist, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

type historyEvents struct {
	WorkflowID string            `json:"workflowId,omitempty"`
	Events     []json.RawMessage `json:"events"`
}

// startSimulator runs a Falcon simulator with the example ransomware host, for
// processes that are not `rampart dev` (which starts its own). Its client secret
// is the client id + "-secret-0123456789".
func startSimulator(t *testing.T, clientID string, containDelay time.Duration) *crowdstrike.Simulator {
	t.Helper()
	sim := crowdstrike.NewSimulator(crowdstrike.SimOptions{ClientID: clientID, ClientSecret: clientID + "-secret-0123456789", ContainDelay: containDelay})
	sim.AddHost(crowdstrike.SimHost{ID: ransomHost, Hostname: "fin-ws-0142"})
	if err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	return sim
}

// TestCrashAndRestartResumes kills `rampart dev` with SIGKILL twice — once while
// the isolate activity is in flight, once while the workflow waits out its dedup
// window — and restarts it on the same data dir each time. The run must complete
// with exactly one containment call at the vendor: when a playbook contains the
// host, and when the contain rule does (no playbook applied), where the decision
// claimed the action and the killed attempt was the isolation's first.
func TestCrashAndRestartResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: skipped with -short")
	}
	t.Run("playbook", func(t *testing.T) { crashAndRestart(t, examples+"/playbooks") })
	t.Run("contain rule", func(t *testing.T) { crashAndRestart(t, "") })
}

func crashAndRestart(t *testing.T, playbooks string) {
	sim := startSimulator(t, "crash-test", 4*time.Second)

	dir := t.TempDir()
	config := filepath.Join(dir, "rampart.yaml")
	if err := os.WriteFile(config, []byte("dedup_window: 25s\nretention: 24h\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	listen := freeAddr(t)
	baseURL := "http://" + listen
	args := []string{"dev", "--data-dir", filepath.Join(dir, "data"), "--listen", listen,
		"--temporal-port", strconv.Itoa(freePort(t)), "--config", config,
		"--sources", examples + "/sources.yaml", "--assets", examples + "/assets.yaml", "--iocs", examples + "/iocs.csv",
		"--playbooks", playbooks,
		"--crowdstrike-url", sim.URL(), "--crowdstrike-client-id", "crash-test", "--log-level", "warn"}
	env := []string{childEnv + "=1", "RAMPART_CROWDSTRIKE_CLIENT_SECRET=crash-test-secret-0123456789"}

	child := startChild(t, dir, "run1", args, env)
	waitReady(t, baseURL)
	sources, err := ingest.LoadSources(examples + "/sources.yaml")
	if err != nil {
		t.Fatal(err)
	}
	acc := accepted(t, baseURL, sources, "crowdstrike", readFile(t, ransomware))
	// The vendor accepted the request, the action recorded it, and the activity
	// is polling: kill it now. (Killed between the vendor's answer and that
	// record, the retry still sends nothing twice — it reads the host first — but
	// cannot tell its own containment from an earlier one.)
	waitFor(t, "the contain request to reach the vendor and be recorded", waitTimeout, func() bool {
		if sim.ContainCalls(ransomHost) != 1 {
			return false
		}
		a, ok := getAlert(t, baseURL, acc.AlertID)
		return ok && len(a.Actions) == 1 && a.Actions[0].VendorCalls == 1
	})
	child.kill(t)

	child = startChild(t, dir, "run2", args, env)
	waitReady(t, baseURL)
	awaitAlert(t, baseURL, acc.AlertID, "containment to complete after the restart", 2*waitTimeout, func(a server.AlertDetail) bool {
		return a.Status == "contained"
	})
	// Now the workflow waits out its dedup window: kill it again.
	child.kill(t)

	startChild(t, dir, "run3", args, env)
	waitReady(t, baseURL)
	detail := awaitAlert(t, baseURL, acc.AlertID, "the run to close after the second restart", 2*waitTimeout, func(detail server.AlertDetail) bool {
		return detail.Run != nil && detail.Run.ClosedAt != nil
	})
	if n := sim.ContainCalls(ransomHost); n != 1 {
		t.Fatalf("contain calls at the vendor = %d, want exactly 1", n)
	}
	if h, _ := sim.Host(ransomHost); h.Status != integrations.HostContained {
		t.Fatalf("host status = %s", h.Status)
	}
	if a := detail.Actions; len(a) != 1 || a[0].VendorCalls != 1 || a[0].Attempts < 2 {
		t.Fatalf("actions = %+v (want one vendor call over at least two attempts)", a)
	}
	if ran := len(detail.Playbooks) > 0; ran != (playbooks != "") {
		t.Fatalf("playbook runs = %+v; want them only when playbooks are applied", detail.Playbooks)
	}
}

type childProc struct {
	proc  *os.Process
	done  chan struct{}
	state *os.ProcessState // set when done closes
}

func startChild(t *testing.T, dir, name string, args, env []string) *childProc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	attr := &os.ProcAttr{Env: append(os.Environ(), env...), Files: []*os.File{nil, logf, logf}}
	proc, err := os.StartProcess(exe, append([]string{exe}, args...), attr)
	if err != nil {
		t.Fatal(err)
	}
	c := &childProc{proc: proc, done: make(chan struct{})}
	go func() { c.state, _ = proc.Wait(); close(c.done); _ = logf.Close() }()
	t.Cleanup(func() {
		c.kill(t)
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("%s output:\n%s", name, b)
		}
	})
	return c
}

func (c *childProc) kill(t *testing.T) {
	_ = c.proc.Kill() // SIGKILL: no shutdown path runs
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		t.Fatal("child did not die")
	}
}

func waitReady(t *testing.T, baseURL string) {
	t.Helper()
	waitFor(t, "rampart dev to be ready", waitTimeout, func() bool {
		resp, err := http.Get(baseURL + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

func freeAddr(t *testing.T) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
}

// freePort picks a port for a process the test starts to bind later: below the
// kernel's range for outgoing connections, so none of those takes it meanwhile.
func freePort(t *testing.T) int {
	t.Helper()
	port, err := embedded.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// TestServerAndWorkerProcesses runs the production shape: `rampart migrate`,
// `rampart server` and `rampart worker` as separate processes against a Temporal
// they do not embed and PostgreSQL, and follows one alert to containment.
func TestServerAndWorkerProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: skipped with -short")
	}
	dsn := storetest.PostgresDSN(t)
	temporalSrv, err := embedded.Start(context.Background(), embedded.Options{DataDir: t.TempDir(), Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = temporalSrv.Stop() })
	sim := startSimulator(t, "prod-shape", 100*time.Millisecond)

	dir := t.TempDir()
	env := []string{childEnv + "=1",
		"RAMPART_DATABASE_DSN=" + dsn,
		"RAMPART_TEMPORAL_ADDRESS=" + temporalSrv.FrontendAddress(),
		"RAMPART_TASK_QUEUE=rampart-prod-shape",
		"RAMPART_CONFIG=" + examples + "/rampart.yaml",
		"RAMPART_LOG_LEVEL=warn",
	}
	// The server is given the payload key in the environment, the worker in a file.
	key, err := codec.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "payload.key")
	if err := os.WriteFile(keyFile, []byte(codec.EncodeKey(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	migrate := startChild(t, dir, "migrate", []string{"migrate"}, env)
	select {
	case <-migrate.done:
		if !migrate.state.Success() {
			t.Fatalf("migrate: %v", migrate.state)
		}
	case <-time.After(time.Minute):
		t.Fatal("migrate did not finish")
	}
	// A server others could reach, with no API token configured, refuses to start.
	refusesToStart(t, dir, "open-server", []string{"server", "--listen", "0.0.0.0:0", "--sources", examples + "/sources.yaml"},
		append(env, "RAMPART_PAYLOAD_KEY="+codec.EncodeKey(key)), app.APITokenEnvPrefix+"<NAME>")
	// As in production, the API wants a token; the webhook its source's signature.
	const token = "prod-shape-api-token-0123456789abcdef"
	api := &http.Client{Transport: bearer(token), Timeout: 30 * time.Second}
	listen := freeAddr(t)
	sourcesFile := filepath.Join(dir, "sources.yaml") // a copy, to be spoiled below
	if err := os.WriteFile(sourcesFile, readFile(t, examples+"/sources.yaml"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Its API token and its crowdstrike webhook secret are mounted files, as
	// Docker or Kubernetes secrets are; the worker's CrowdStrike secret too.
	mounted := func(name, value string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(value+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sources, err := ingest.LoadSources(examples + "/sources.yaml")
	if err != nil {
		t.Fatal(err)
	}
	secretFile := mounted("crowdstrike.secret", sources["crowdstrike"].Secret())
	serverProc := startChild(t, dir, "server", []string{"server", "--listen", listen, "--sources", sourcesFile},
		append(env, "RAMPART_PAYLOAD_KEY="+codec.EncodeKey(key), app.APITokenEnvPrefix+"OPS"+ingest.SecretFileEnvSuffix+"="+mounted("api.token", token),
			ingest.SecretEnv("crowdstrike")+ingest.SecretFileEnvSuffix+"="+secretFile))
	baseURL := "http://" + listen
	waitReady(t, baseURL)

	// No worker yet: the alert is accepted, and the API says so rather than 404,
	// and that it waits for a worker.
	acc := accepted(t, baseURL, sources, "crowdstrike", readFile(t, ransomware))
	anonymous, err := http.Get(baseURL + "/api/v1/alerts/" + acc.AlertID)
	if err != nil {
		t.Fatal(err)
	}
	anonymous.Body.Close()
	if anonymous.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the API without a token: %d", anonymous.StatusCode)
	}
	waitFor(t, "the accepted alert to be answered as received", waitTimeout, func() bool {
		a, ok := getAlertWith(t, api, baseURL, acc.AlertID)
		return ok && a.Status == server.AlertReceived && a.WorkflowID == acc.WorkflowID && a.Source == "crowdstrike" &&
			strings.HasPrefix(a.Summary, "waiting for a worker: none has polled task queue ")
	})
	// Nor does any worker poll, and the API says that too.
	workers := func() server.WorkersView {
		var w server.WorkersView
		resp, err := api.Get(baseURL + "/api/v1/workers")
		if code := decodeAnswer(t, baseURL+"/api/v1/workers", resp, err, &w); code != http.StatusOK {
			t.Fatalf("GET /api/v1/workers: %d", code)
		}
		return w
	}
	if w := workers(); w.Polling != 0 || len(w.Workers) != 0 || w.TaskQueue == "" {
		t.Fatalf("workers before any started: %+v", w)
	}
	// Nobody can answer a state query yet, and the API says that too.
	resp, err := api.Get(baseURL + "/api/v1/alerts/" + acc.AlertID + "/state")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "no_answer") {
		t.Fatalf("state with no worker: %d %s", resp.StatusCode, body)
	}

	iocs := filepath.Join(dir, "iocs.csv") // a copy, to be spoiled below
	if err := os.WriteFile(iocs, readFile(t, examples+"/iocs.csv"), 0o600); err != nil {
		t.Fatal(err)
	}
	workerArgs := []string{"worker", "--assets", examples + "/assets.yaml", "--iocs", iocs,
		"--crowdstrike-url", sim.URL(), "--crowdstrike-client-id", "prod-shape"}
	workerEnv := append(env, "RAMPART_CROWDSTRIKE_CLIENT_SECRET_FILE="+mounted("crowdstrike-api.secret", "prod-shape-secret-0123456789"))
	// Without a payload key a worker refuses to start, rather than write history
	// its peers cannot read.
	refusesToStart(t, dir, "keyless-worker", workerArgs, workerEnv, "RAMPART_PAYLOAD_KEY")
	workerOps := freeAddr(t)
	workerProc := startChild(t, dir, "worker", append(workerArgs, "--payload-key-file", keyFile, "--metrics-listen", workerOps), workerEnv)
	waitFor(t, "the worker to poll", waitTimeout, func() bool {
		w := workers()
		return w.Polling == 1 && len(w.Workers) == 1 && w.Workers[0].Polling
	})
	waitFor(t, "the worker to contain the host, recorded in PostgreSQL", waitTimeout, func() bool {
		a, ok := getAlertWith(t, api, baseURL, acc.AlertID)
		return ok && a.Status == "contained"
	})
	if n := sim.ContainCalls(ransomHost); n != 1 {
		t.Fatalf("contain calls = %d", n)
	}
	// A hang-up reloads the worker's files; one with a mistake is refused, and the
	// worker carries on (TestHangUpReloadsTheFiles follows a good reload).
	if err := os.WriteFile(iocs, []byte("type,value\nsha256,4be1f82c\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hangUp(t, workerProc)
	waitFor(t, "the worker to refuse the spoiled IOC list", waitTimeout, func() bool {
		return strings.Contains(string(readFile(t, filepath.Join(dir, "worker.log"))), "reference data not reloaded")
	})
	// The server reloads its sources file on one: this one, spoiled, is
	// refused, and the server carries on with the sources it had.
	if err := os.WriteFile(sourcesFile, []byte("sources:\n  crowdstrike: {format: falcon, secret: a-secret-0123456789}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hangUp(t, serverProc)
	waitFor(t, "the server to refuse the spoiled sources file", waitTimeout, func() bool {
		return strings.Contains(string(readFile(t, filepath.Join(dir, "server.log"))), "webhook sources not reloaded")
	})
	select {
	case <-serverProc.done:
		t.Fatal("a hang-up ended the server")
	default:
	}
	// A Prometheus scraping the server, with a token, reads the alert it took, the
	// worker polling and nothing stalled or waiting; without one it is refused.
	if resp, err := http.Get(baseURL + "/api/v1/metrics"); err != nil || resp.Body.Close() != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("metrics without a token: %v %v", resp, err)
	}
	resp, err = api.Get(baseURL + "/api/v1/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	serverMetrics := string(metrics)
	for _, want := range []string{
		`rampart_webhook_deliveries_total{source="crowdstrike",outcome="accepted"} 1` + "\n",
		`rampart_workers_polling{task_queue="rampart-prod-shape"} 1` + "\n",
		"rampart_stalled_runs 0\n",
		"rampart_approvals_pending 0\n",
		"rampart_approvals_oldest_pending_age_seconds 0\n",
		`rampart_last_reload_successful{files="sources"} 0` + "\n", // the spoiled file
	} {
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(metrics), want) {
			t.Fatalf("metrics: %d, want %q in\n%s", resp.StatusCode, want, metrics)
		}
	}
	// The Temporal SDK's own metrics: the server's client requests beside its
	// own; the worker's tasks, from its ops endpoint, beside its probes.
	if families := telemetrytest.Parse(t, string(metrics)); telemetrytest.Sum(families["temporal_request_total"], nil) == 0 {
		t.Fatalf("the server's metrics count no Temporal request:\n%s", metrics)
	}
	workerURL := "http://" + workerOps
	if code := getJSON(t, workerURL+"/readyz", &struct{}{}); code != http.StatusOK {
		t.Fatalf("worker readyz: %d", code)
	}
	want := map[string]map[string]string{
		"temporal_workflow_task_execution_latency_seconds":  {"workflow_type": workflows.AlertWorkflowName, "task_queue": "rampart-prod-shape"},
		"temporal_activity_execution_latency_seconds":       {"activity_type": workflows.ActivityIsolateHost},
		"temporal_local_activity_execution_latency_seconds": {"activity_type": workflows.ActivityLookupAsset},
		"temporal_num_pollers":                              {"poller_type": "workflow_task"},
		"rampart_integration_calls_total":                   {"integration": "crowdstrike", "operation": "contain_host", "outcome": "ok"},
		"rampart_integration_call_latency_seconds":          {"integration": "crowdstrike", "operation": "get_host"},
		"rampart_alert_outcomes_total":                      {"outcome": "contained"},
		"rampart_alert_time_to_outcome_seconds":             {"outcome": "contained"},
	}
	// The outcome is counted a moment after the API shows it.
	waitFor(t, "the worker's metrics to show the run", waitTimeout, func() bool {
		resp, err := http.Get(workerURL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		metrics, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		families := telemetrytest.Parse(t, string(metrics))
		for family, labels := range want {
			if telemetrytest.Sum(families[family], labels) == 0 {
				t.Logf("the worker's metrics have no %s%v yet", family, labels)
				return false
			}
		}
		return true
	})
	if !strings.Contains(string(metrics), `rampart_last_reload_successful{files="reference_data"} 0`+"\n") {
		t.Fatalf("the worker's metrics do not say its reload failed:\n%s", metrics)
	}
	// The alerting rules shipped in examples/prometheus name what these export.
	checkAlertRules(t, serverMetrics, string(metrics))

	// What Temporal stored is ciphertext: the alert's host and user are not in it.
	stored := rawHistory(t, temporalSrv.FrontendAddress(), acc.WorkflowID)
	for _, plain := range []string{"fin-ws-0142", "dana.okafor", ransomHost} {
		if bytes.Contains(stored, []byte(plain)) {
			t.Errorf("workflow history stores %q in clear", plain)
		}
	}

	// The webhook secret and the API token rotated in their mounts, the sources
	// file mended and a hang-up sent, the server takes the new secret and token
	// and refuses the old ones.
	mounted("crowdstrike.secret", "rotated-in-the-mount-0123456789")
	const rotatedToken = "prod-shape-api-token-rotated-0123456789"
	mounted("api.token", rotatedToken)
	if err := os.WriteFile(sourcesFile, readFile(t, examples+"/sources.yaml"), 0o600); err != nil {
		t.Fatal(err)
	}
	hangUp(t, serverProc)
	rotated, err := ingest.ParseSources(readFile(t, sourcesFile), func(k string) (string, bool) {
		return "rotated-in-the-mount-0123456789", k == ingest.SecretEnv("crowdstrike")
	})
	if err != nil {
		t.Fatal(err)
	}
	pupBody := readFile(t, filepath.Join(examples, "alerts", "crowdstrike-pup.json"))
	waitFor(t, "the server to take the rotated secret", waitTimeout, func() bool {
		status, _ := post(t, baseURL, rotated, "crowdstrike", pupBody, time.Now())
		return status == http.StatusAccepted
	})
	if status, _ := post(t, baseURL, sources, "crowdstrike", pupBody, time.Now().Add(-time.Second)); status != http.StatusUnauthorized {
		t.Fatalf("the secret rotated out: %d", status)
	}
	rotatedAPI := &http.Client{Transport: bearer(rotatedToken), Timeout: 30 * time.Second}
	apiStatus := func(c *http.Client) int {
		t.Helper()
		resp, err := c.Get(baseURL + "/api/v1/alerts?limit=1")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	waitFor(t, "the server to take the rotated API token", waitTimeout, func() bool { return apiStatus(rotatedAPI) == http.StatusOK })
	if status := apiStatus(api); status != http.StatusUnauthorized {
		t.Fatalf("the API token rotated out: %d", status)
	}
	resp, err = rotatedAPI.Get(baseURL + "/api/v1/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, files := range []string{app.FilesSources, app.FilesAPITokens} {
		if !strings.Contains(string(metrics), `rampart_last_reload_successful{files="`+files+`"} 1`+"\n") {
			t.Fatalf("the server's metrics do not say its reload of %s succeeded:\n%s", files, metrics)
		}
	}

	// A server whose database does not answer starts all the same: its webhooks
	// take alerts (they need only Temporal), and the rest of its API says 503.
	downListen := freeAddr(t)
	var downEnv []string // env, the database swapped for one nobody listens for
	for _, kv := range env {
		if !strings.HasPrefix(kv, "RAMPART_DATABASE_DSN=") {
			downEnv = append(downEnv, kv)
		}
	}
	startChild(t, dir, "server-without-db", []string{"server", "--listen", downListen, "--sources", examples + "/sources.yaml"},
		append(downEnv, "RAMPART_DATABASE_DSN=postgres://postgres@"+freeAddr(t)+"/rampart?sslmode=disable&connect_timeout=2",
			"RAMPART_PAYLOAD_KEY="+codec.EncodeKey(key), app.APITokenEnvPrefix+"OPS="+token))
	downURL := "http://" + downListen
	waitFor(t, "the server without its database to answer", waitTimeout, func() bool {
		resp, err := http.Get(downURL + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	})
	var ready struct {
		Checks map[string]string `json:"checks"`
	}
	if code := getJSON(t, downURL+"/readyz", &ready); code != http.StatusServiceUnavailable ||
		!strings.HasPrefix(ready.Checks["database"], "unavailable") || ready.Checks["temporal"] != "ok" {
		t.Fatalf("readyz without the database: %d %v", code, ready.Checks)
	}
	pup := accepted(t, downURL, sources, "crowdstrike", readFile(t, filepath.Join(examples, "alerts", "crowdstrike-pup.json")))
	resp, err = api.Get(downURL + "/api/v1/alerts")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "database is unavailable") {
		t.Fatalf("the API without the database: %d %s", resp.StatusCode, body)
	}
	// The alert it took is the worker's like any other.
	waitFor(t, "the alert taken without the database to be decided", waitTimeout, func() bool {
		a, ok := getAlertWith(t, rotatedAPI, baseURL, pup.AlertID)
		return ok && a.Status == "no_action"
	})
}

// refusesToStart runs a rampart command that must exit with an error naming want,
// its output in <dir>/<name>.log.
func refusesToStart(t *testing.T, dir, name string, args, env []string, want string) {
	t.Helper()
	child := startChild(t, dir, name, args, env)
	select {
	case <-child.done:
		out, _ := os.ReadFile(filepath.Join(dir, name+".log"))
		if child.state.Success() || !strings.Contains(string(out), want) {
			t.Fatalf("%s: %v, want a refusal naming %s\n%s", name, child.state, want, out)
		}
	case <-time.After(time.Minute):
		t.Fatalf("%s kept running; it should have refused to start", name)
	}
}

// rawHistory is a workflow's history as Temporal stores it, read by a client
// without the payload key.
func rawHistory(t *testing.T, address, workflowID string) []byte {
	t.Helper()
	c, err := client.Dial(client.Options{HostPort: address, Logger: sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return wireForm(t, history(t, c, workflowID))
}
