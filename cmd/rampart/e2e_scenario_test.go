package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rampart-soar/rampart/integrations"
	"github.com/rampart-soar/rampart/server"
	"github.com/rampart-soar/rampart/triage"
)

const scenarios = "../../../shared/scenarios"

// scenarioRecord is a line of the labelled week; truth is for scoring only.
type scenarioRecord struct {
	Seq     int             `json:"seq"`
	Source  string          `json:"source"`
	Payload json.RawMessage `json:"payload"`
	Truth   struct {
		Kind     string `json:"kind"`
		Campaign string `json:"campaign"`
		Stage    string `json:"stage"`
	} `json:"truth"`
}

// TestScenarioWeekThroughThePipeline replays three stretches of the labelled
// week — the phishing campaign's morning, the password spray's night and the
// ransomware burst, each with the noise around it — through the webhooks with
// `rampart alert replay`, on the week's own asset inventory and IOC list and the
// example playbooks, and scores what Rampart did against the analysts' truth:
// every delivery accepted and found again, every re-sent finding folded into
// the alert it repeats, no benign alert's host contained, no attack alert
// auto-closed as noise. RAMPART_SCENARIO=full replays the whole week.
func TestScenarioWeekThroughThePipeline(t *testing.T) {
	week, err := os.ReadFile(filepath.Join(scenarios, "week1.ndjson"))
	if err != nil {
		t.Skipf("the labelled scenarios are not beside the repository: %v", err)
	}
	inSlice := func(seq int) bool {
		return seq >= 1240 && seq <= 1420 || seq >= 1830 && seq <= 1860 || seq >= 3090
	}
	if os.Getenv("RAMPART_SCENARIO") == "full" {
		inSlice = func(int) bool { return true }
	}
	var records []scenarioRecord
	var slice bytes.Buffer
	for line := range bytes.Lines(week) {
		var r scenarioRecord
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatal(err)
		}
		if inSlice(r.Seq) {
			records = append(records, r)
			slice.Write(line)
		}
	}
	dir := t.TempDir()
	in, results := filepath.Join(dir, "slice.ndjson"), filepath.Join(dir, "results.ndjson")
	if err := os.WriteFile(in, slice.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}

	cfg := devConfig(t, 10*time.Minute) // the default window: the whole replay fits in it
	cfg.AssetsFile = filepath.Join(scenarios, "week1.assets.csv")
	cfg.IOCsFile = filepath.Join(scenarios, "week1.iocs.csv")
	cfg.PlaybooksDir = filepath.Join(examples, "playbooks")
	d := startDev(t, cfg)

	start := time.Now()
	code, out := runCLI(t, "alert", "replay", in, "--url", d.URL, "--sources", examples+"/sources.yaml", "--out", results, "--concurrency", "4")
	if code != 0 {
		t.Fatalf("replay: exit %d: %s", code, out)
	}
	t.Logf("replayed %d alerts in %v: %s", len(records), time.Since(start).Round(time.Millisecond), strings.TrimSpace(out))

	// Every delivery was accepted; a re-sent finding folded into the alert it repeats.
	bySeq := map[int]replayResult{}
	for _, r := range readReplayResults(t, results) {
		var seq int
		_ = json.Unmarshal(r.Seq, &seq)
		bySeq[seq] = r
	}
	if len(bySeq) != len(records) {
		t.Fatalf("%d results for %d records", len(bySeq), len(records))
	}
	// (Four deliveries are in flight at once, so of a finding and its re-sends any
	// one may be the first to arrive and start the run.)
	firstOf := map[string]int{}                // payload → the seq that first carried it
	recordsOf := map[string][]scenarioRecord{} // alert id → the records it took in
	started := 0
	for _, r := range records {
		res := bySeq[r.Seq]
		if res.Status != http.StatusAccepted {
			t.Fatalf("seq %d: %d %s %s", r.Seq, res.Status, res.Code, res.Error)
		}
		if first, ok := firstOf[string(r.Payload)]; ok && r.Truth.Kind == "duplicate" {
			if res.AlertID != bySeq[first].AlertID {
				t.Errorf("seq %d re-sends seq %d but was not folded into its alert: %+v", r.Seq, first, res)
			}
		} else if r.Truth.Kind == "duplicate" {
			t.Errorf("seq %d: a duplicate of nothing earlier", r.Seq)
		}
		if !res.Duplicate {
			started++
		}
		firstOf[string(r.Payload)] = r.Seq
		recordsOf[res.AlertID] = append(recordsOf[res.AlertID], r)
	}
	if started != len(recordsOf) {
		t.Errorf("%d deliveries started a run, for %d alerts", started, len(recordsOf))
	}

	// Every alert is found again and settles: done, or waiting for an analyst (its
	// summary says so).
	alerts := map[string]server.AlertDetail{}
	waitFor(t, fmt.Sprintf("%d alerts to settle", len(recordsOf)), 5*time.Minute, func() bool {
		for id := range recordsOf {
			a, ok := getAlert(t, d.URL, id)
			if !ok || a.Run == nil || a.Run.CompletedAt == nil && !strings.HasPrefix(a.Summary, "waiting for approval: ") {
				return false
			}
			alerts[id] = a
		}
		return true
	})

	// Score against the truth.
	type outcome struct{ status, playbooks, actions string }
	outcomeOf := func(a server.AlertDetail) outcome {
		var pbs, acts []string
		for _, p := range a.Playbooks {
			pbs = append(pbs, p.Playbook+":"+p.Run.Status)
		}
		for _, act := range a.Actions {
			acts = append(acts, act.Operation+":"+act.Status)
		}
		return outcome{a.Status, strings.Join(pbs, ","), strings.Join(acts, ",")}
	}
	contained := func(a server.AlertDetail) bool {
		return slices.ContainsFunc(a.Actions, func(act server.ActionView) bool { return act.Operation == "isolate_host" })
	}
	autoClosed := func(a server.AlertDetail) bool {
		return slices.ContainsFunc(a.Playbooks, func(p server.PlaybookRunView) bool { return p.Playbook == "benign-noise-autoclose" })
	}
	benignOutcomes := map[outcome]int{}
	var attacks []string
	attackTargets := map[string]bool{}
	for id, recs := range recordsOf {
		a := alerts[id]
		attack := slices.ContainsFunc(recs, func(r scenarioRecord) bool { return r.Truth.Kind == "attack" })
		switch {
		case attack:
			r := recs[0]
			if autoClosed(a) {
				t.Errorf("attack seq %d (%s %s) was auto-closed as noise: %+v", r.Seq, r.Truth.Campaign, r.Truth.Stage, outcomeOf(a))
			}
			var enrich triage.Enrichment
			if err := json.Unmarshal(a.Enrichment, &enrich); err != nil {
				t.Fatalf("seq %d enrichment: %v", r.Seq, err)
			}
			if enrich.IOCHits > 0 && a.SeverityID >= 4 && enrich.Asset.Found && !enrich.Asset.Protected && !contained(a) {
				t.Errorf("attack seq %d hit a listed IOC on an unprotected host and was not contained: %+v", r.Seq, outcomeOf(a))
			}
			for _, act := range a.Actions {
				attackTargets[act.Target] = true
			}
			attacks = append(attacks, fmt.Sprintf("seq %4d %-8s %-18s %+v", r.Seq, r.Truth.Campaign, r.Truth.Stage, outcomeOf(a)))
		case contained(a):
			t.Errorf("benign alert seq %d (%s) contained its host: %+v", recs[0].Seq, recs[0].Truth.Campaign, outcomeOf(a))
		default:
			benignOutcomes[outcomeOf(a)]++
		}
		// The list says why, in a line: the auto-close's reason, or that nothing matched.
		switch {
		case a.Run.CompletedAt == nil: // waiting for an approval, as settling checked
		case autoClosed(a) && !strings.HasPrefix(a.Summary, "benign-noise-autoclose succeeded: auto-closed: "),
			len(a.Playbooks) == 0 && a.Status == "no_action" && a.Summary != "no playbook trigger matched",
			a.Summary == "":
			t.Errorf("alert %s (%s, %+v) has the summary %q", id, a.Status, outcomeOf(a), a.Summary)
		}
	}
	slices.Sort(attacks)
	t.Logf("attack alerts:\n  %s", strings.Join(attacks, "\n  "))
	for o, n := range benignOutcomes {
		t.Logf("benign alerts: %4d %+v", n, o)
	}
	// The EDR saw containment only of hosts that attack alerts acted on.
	var isolated []string
	for _, h := range d.Simulator.Hosts() {
		if h.Status != integrations.HostNormal {
			isolated = append(isolated, h.Hostname)
			if !attackTargets[h.ID] {
				t.Errorf("host %s (%s) is %s, and no attack alert acted on it", h.Hostname, h.ID, h.Status)
			}
		}
	}
	slices.Sort(isolated)
	t.Logf("hosts isolated at the EDR: %s", strings.Join(isolated, ", "))
}
