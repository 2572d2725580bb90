package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rampart-soar/rampart/server"
	"github.com/rampart-soar/rampart/server/ingest"
	"github.com/rampart-soar/rampart/store/storetest"
)

// replayStarter is Temporal as the webhook sees it: the first start fails (the
// engine is briefly unavailable), later ones start a run per workflow id or
// signal the open one.
type replayStarter struct {
	mu     sync.Mutex
	failed bool
	runs   map[string]string
	starts []ingest.StartRequest
}

func (s *replayStarter) StartAlert(_ context.Context, req ingest.StartRequest) (ingest.StartResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.failed {
		s.failed = true
		return ingest.StartResult{}, errors.New("frontend unavailable")
	}
	s.starts = append(s.starts, req)
	if run, ok := s.runs[req.WorkflowID]; ok {
		return ingest.StartResult{RunID: run}, nil
	}
	run := fmt.Sprintf("run-%d", len(s.runs)+1)
	s.runs[req.WorkflowID] = run
	return ingest.StartResult{RunID: run, Started: true}, nil
}

func TestAlertReplaySendsEveryLineAndRetriesWhatMayBeRetried(t *testing.T) {
	dir := t.TempDir()
	sourcesFile := filepath.Join(dir, "sources.yaml")
	// One delivery a second for crowdstrike: the second one meets a 429.
	if err := os.WriteFile(sourcesFile, []byte(`sources:
  crowdstrike: {auth: hmac, secret: replay-test-crowdstrike-secret-0123456789, rate_limit: {per_second: 1, burst: 1}}
  ocsf: {auth: hmac, secret: replay-test-ocsf-secret-0123456789abcdef}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	sources, err := ingest.LoadSources(sourcesFile)
	if err != nil {
		t.Fatal(err)
	}
	starter := &replayStarter{runs: map[string]string{}}
	pipeline, err := ingest.NewPipeline(ingest.Options{Sources: sources, Starter: starter})
	if err != nil {
		t.Fatal(err)
	}
	st := storetest.SQLite(t)
	srv := httptest.NewServer(server.New(server.Options{Alerts: st, Playbooks: st, Pipeline: pipeline}).Handler())
	t.Cleanup(srv.Close)

	ransom := compactJSON(readFile(t, ransomware))
	spray := compactJSON(readFile(t, examples+"/alerts/ocsf-password-spray.json"))
	record := func(seq int, source, payload string) string {
		return fmt.Sprintf(`{"seq":%d,"time":"2026-11-02T00:00:%02dZ","source":%q,"payload":%s,"truth":{"kind":"secret-label"}}`, seq, seq, source, payload)
	}
	lines := []string{
		record(1, "crowdstrike", ransom),        // 503 first, then accepted
		record(2, "crowdstrike", ransom),        // the same body: a duplicate, after a 429
		spray,                                   // a bare payload: goes to --source ocsf
		"",                                      // blank lines are skipped
		record(4, "ocsf", `{"class_uid":2004}`), // refused: schema violation
		record(5, "splunk", ransom),             // refused: no such source
	}
	in := filepath.Join(dir, "week.ndjson")
	if err := os.WriteFile(in, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	outFile := filepath.Join(dir, "results.ndjson")
	code, out := runCLI(t, "alert", "replay", in, "--source", "ocsf", "--url", srv.URL, "--sources", sourcesFile, "--out", outFile)
	if code != 2 || !strings.Contains(out, "5 sent: 2 accepted, 1 duplicate(s), 2 refused") ||
		!strings.Contains(out, "schema_violation: 1") || !strings.Contains(out, "not_sent: 1") {
		t.Fatalf("exit %d:\n%s", code, out)
	}

	results := map[int]replayResult{}
	for _, r := range readReplayResults(t, outFile) {
		results[r.Line] = r
	}
	first, dup, bare := results[1], results[2], results[3]
	if first.Status != http.StatusAccepted || first.Attempts < 2 || first.AlertID != "run-1" || string(first.Seq) != "1" {
		t.Errorf("line 1 (503, then accepted) = %+v", first)
	}
	if dup.Status != http.StatusAccepted || !dup.Duplicate || dup.AlertID != "run-1" || dup.Attempts < 2 {
		t.Errorf("line 2 (429, then a duplicate) = %+v", dup)
	}
	if bare.Status != http.StatusAccepted || bare.Source != "ocsf" || bare.AlertID != "run-2" || bare.Seq != nil {
		t.Errorf("line 3 (bare payload) = %+v", bare)
	}
	if r := results[5]; r.Status != http.StatusBadRequest || r.Code != "schema_violation" || r.Attempts != 1 {
		t.Errorf("line 5 (schema violation) = %+v", r)
	}
	if r := results[6]; r.Status != 0 || r.Code != "not_sent" || !strings.Contains(r.Error, `"splunk"`) {
		t.Errorf("line 6 (unknown source) = %+v", r)
	}
	// What reached Temporal is the payloads alone: the records' labels never travel.
	if len(starter.starts) != 3 {
		t.Fatalf("starts = %d", len(starter.starts))
	}
	for _, s := range starter.starts {
		if strings.Contains(string(s.Input.Alert.Raw), "secret-label") || strings.Contains(string(s.Input.Alert.Raw), `"seq"`) {
			t.Fatalf("a record's own fields were sent: %s", s.Input.Alert.Raw)
		}
	}

	// A file of bare payloads needs --source; --skip and --limit pick lines.
	if code, out := runCLI(t, "alert", "replay", in, "--url", srv.URL, "--sources", sourcesFile, "--skip", "2", "--limit", "1"); code != 1 ||
		!strings.Contains(out, "line 3: no source") {
		t.Fatalf("bare payload without --source: exit %d: %s", code, out)
	}
	if code, out := runCLI(t, "alert", "replay", in, "--url", srv.URL, "--sources", sourcesFile, "--skip", "4", "--limit", "1"); code != 2 ||
		!strings.Contains(out, "1 sent: 0 accepted, 0 duplicate(s), 1 refused") {
		t.Fatalf("--skip 4 --limit 1: exit %d: %s", code, out)
	}

	// A line that is not JSON stops the replay there, after saying what was sent.
	broken := filepath.Join(dir, "broken.ndjson")
	if err := os.WriteFile(broken, []byte(spray+"\n{not json\n"+spray+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := runCLI(t, "alert", "replay", broken, "--source", "ocsf", "--url", srv.URL, "--sources", sourcesFile); code != 1 ||
		!strings.Contains(out, "1 sent: 0 accepted, 1 duplicate(s), 0 refused") || !strings.Contains(out, "line 2: not a JSON object") {
		t.Fatalf("broken line: exit %d: %s", code, out)
	}
}

// readReplayResults reads what `alert replay --out` wrote.
func readReplayResults(t *testing.T, path string) []replayResult {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []replayResult
	for sc := bufio.NewScanner(f); sc.Scan(); {
		var r replayResult
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}
