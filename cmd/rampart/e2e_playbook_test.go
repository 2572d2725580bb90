package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/rampart-soar/rampart/cmd/rampart/internal/app"
	"github.com/rampart-soar/rampart/integrations"
	"github.com/rampart-soar/rampart/server"
	"github.com/rampart-soar/rampart/server/ingest"
	"github.com/rampart-soar/rampart/workflows"
)

const (
	dcHost  = "b7c4e2a9d1f3406e8a5b6c7d8e9f0a1b"
	pupHost = "3c9e7b1a5d2f4c68b0e1a2d3c4b5f6e7"
)

// TestEndToEndPlaybooks runs the example playbooks, applied at boot as `rampart
// dev` applies them, on the real embedded Temporal: ransomware is contained by its
// playbook, noise is closed, an alert no trigger matches takes no action, and a
// domain controller waits for an analyst, who denies through the CLI and then, for
// a repeat, approves through the API.
func TestEndToEndPlaybooks(t *testing.T) {
	cfg := devConfig(t, 3*time.Second)
	cfg.PlaybooksDir = filepath.Join(examples, "playbooks")
	d := startDev(t, cfg)
	send := func(file string) ingest.Accepted {
		t.Helper()
		source := map[bool]string{true: "crowdstrike", false: "ocsf"}[strings.HasPrefix(file, "crowdstrike")]
		return accepted(t, d.URL, d.Sources(), source, readFile(t, filepath.Join(examples, "alerts", file)))
	}
	settled := func(acc ingest.Accepted, status string) server.AlertDetail {
		t.Helper()
		return awaitAlert(t, d.URL, acc.AlertID, acc.AlertID+" to be "+status, waitTimeout, func(a server.AlertDetail) bool {
			return a.Status == status && a.Run != nil && a.Run.CompletedAt != nil
		})
	}

	// Ransomware: ransomware-burst (stop_on_match) isolates the host; chat and
	// ticketing are not configured, and the playbook carries on without them.
	ransom := settled(send("crowdstrike-ransomware.json"), "contained")
	if n := d.Simulator.ContainCalls(ransomHost); n != 1 {
		t.Fatalf("contain calls = %d", n)
	}
	if len(ransom.Playbooks) != 1 || ransom.Playbooks[0].Playbook != "ransomware-burst" || ransom.Playbooks[0].Run.Status != "completed" {
		t.Fatalf("playbook runs = %+v", ransom.Playbooks)
	}
	steps := map[string]string{}
	for _, s := range ransom.Playbooks[0].Steps {
		steps[s.Name] = s.Status
	}
	if steps["isolate[0]"] != "succeeded" || steps["page"] != "failed" || steps["done"] != "succeeded" || steps["isolate[0].revert"] != "" {
		t.Fatalf("steps = %v", steps)
	}
	if len(ransom.Actions) != 1 || ransom.Actions[0].Operation != "isolate_host" || ransom.Actions[0].VendorCalls != 1 {
		t.Fatalf("actions = %+v", ransom.Actions)
	}
	if !bytes.Contains(ransom.Decision, []byte(`"stopped":true`)) {
		t.Fatalf("decision = %s", ransom.Decision)
	}
	// The CLI shows it all for a reader.
	code, out := runCLI(t, "alert", "show", ransom.ID, "--url", d.URL)
	for _, want := range []string{
		"1 IOC hit(s): sha256 4be1f82c", "ransomware-burst v1 matched; malware-isolate-host v1 not evaluated (stop_on_match)",
		"Playbook ransomware-burst v1: succeeded — 1 host(s) isolated", "crowdstrike.isolate_host  " + ransomHost + "  succeeded · vendor contained",
	} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("alert show: exit %d, no %q in:\n%s", code, want, out)
		}
	}
	// Run the playbook again on the alert, as a dry run: nothing reaches the EDR.
	if code, out := runCLI(t, "playbook", "run", "ransomware-burst", "--alert", ransom.ID, "--dry-run", "--by", "ana",
		"--reason", "what would v1 do now", "--url", d.URL); code != 0 || !strings.Contains(out, "(dry run)") {
		t.Fatalf("playbook run --dry-run: exit %d: %s", code, out)
	}
	var dry server.AlertDetail
	waitFor(t, "the dry run to finish", waitTimeout, func() bool {
		dry, _ = getAlert(t, d.URL, ransom.ID)
		return len(dry.Playbooks) == 2 && dry.Playbooks[1].Run.Status == "completed"
	})
	if !dry.Playbooks[1].DryRun || d.Simulator.ContainCalls(ransomHost) != 1 || !bytes.Contains(dry.Playbooks[1].Result, []byte(`"simulated":true`)) {
		t.Fatalf("dry run = %+v; contain calls %d", dry.Playbooks[1], d.Simulator.ContainCalls(ransomHost))
	}
	// The run says who started it, and why; the one the trigger started, nobody.
	if r := dry.Playbooks[1].Run; r.RequestedBy != "ana" || r.RequestReason != "what would v1 do now" || dry.Playbooks[0].Run.RequestedBy != "" {
		t.Fatalf("requested by: %+v, trigger's run %+v", r, dry.Playbooks[0].Run)
	}
	if code, out := runCLI(t, "alert", "show", ransom.ID, "--url", d.URL); code != 0 ||
		!strings.Contains(out, "Playbook ransomware-burst v1 (dry run; run by ana: what would v1 do now): succeeded") {
		t.Fatalf("alert show after the dry run: exit %d:\n%s", code, out)
	}
	simulated := 0
	for _, a := range dry.Actions {
		if a.Status == "simulated" {
			simulated++
		}
	}
	if simulated != 3 { // isolate, page, ticket
		t.Fatalf("actions = %+v", dry.Actions)
	}
	// Replayed in shadow, the same version decides the same: the notifications
	// that failed live are answered as they were then, not as a dry run's successes.
	if code, out := runCLI(t, "playbook", "replay", "ransomware-burst", "--version", "1", "--alerts", ransom.ID, "--url", d.URL); code != 0 ||
		!strings.Contains(out, "1 alert(s): 1 same, 0 changed") {
		t.Fatalf("replay of the version that ran: exit %d:\n%s", code, out)
	}

	// Noise is closed by benign-noise-autoclose; an alert no enabled trigger
	// matches (the brute-force playbook ships disabled) takes no action.
	pup := settled(send("crowdstrike-pup.json"), "no_action")
	if len(pup.Playbooks) != 1 || pup.Playbooks[0].Playbook != "benign-noise-autoclose" || !bytes.Contains(pup.Playbooks[0].Result, []byte("auto-closed")) {
		t.Fatalf("pup playbooks = %+v", pup.Playbooks)
	}
	spray := settled(send("ocsf-password-spray.json"), "no_action")
	if last := spray.Steps[len(spray.Steps)-1]; len(spray.Playbooks) != 0 || !bytes.Contains(last.Output, []byte("no playbook trigger matched")) {
		t.Fatalf("spray: playbooks %+v, last step %+v", spray.Playbooks, last)
	}

	// The domain controller is critical: the malware playbook asks tier 2 first.
	dc := send("ocsf-dc-credential-dumping.json")
	pending := waitApproval(t, d.URL, dc.AlertID)
	if pending.Operation != "edr.isolate_host" || pending.Step != "isolate_with_approval" || !strings.Contains(string(pending.Inputs), dcHost) {
		t.Fatalf("approval = %+v", pending)
	}
	a, _ := getAlert(t, d.URL, dc.AlertID)
	if a.Status != "processing" || len(a.Playbooks) != 1 || len(a.Playbooks[0].Steps) < 3 {
		t.Fatalf("while waiting, the steps so far are recorded: %+v", a.Playbooks)
	}
	// The runs say where they are: the playbook at its approval step.
	code, out = runCLI(t, "alert", "state", dc.AlertID, "--json", "--url", d.URL)
	var live server.AlertStateView
	if err := json.Unmarshal([]byte(out), &live); code != 0 || err != nil {
		t.Fatalf("alert state --json: exit %d, %v: %s", code, err, out)
	}
	if live.State.Stage != workflows.StageContain || len(live.Playbooks) != 1 || live.Playbooks[0].State == nil ||
		!slices.Contains(live.Playbooks[0].State.Position, "isolate_with_approval") || len(live.Playbooks[0].State.Approvals) != 1 {
		t.Fatalf("live state while waiting for the approval: %s", out)
	}
	// For a reader: each line a name and its value (compared with the columns' padding squeezed).
	code, out = runCLI(t, "alert", "state", dc.AlertID, "--url", d.URL)
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		lines[i] = strings.Join(strings.Fields(l), " ")
	}
	for _, want := range []string{"Alert " + dc.AlertID, "stage contain · processing", "Playbook malware-isolate-host v1: running",
		"at isolate_with_approval", "approval " + pending.ID + " edr.isolate_host (step isolate_with_approval): pending until " +
			pending.Deadline.Local().Format(time.DateTime), `vars.verdict "to isolate: the file is on the IOC list"`} {
		if code != 0 || !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, want) }) {
			t.Fatalf("alert state: exit %d, no line %q in:\n%s", code, want, out)
		}
	}
	if code, out := runCLI(t, "alert", "show", dc.AlertID, "--url", d.URL); code != 0 ||
		!strings.Contains(out, "Playbook malware-isolate-host v1: running\n  where it is now: rampart alert state "+dc.AlertID+"\n") {
		t.Fatalf("alert show while waiting for the approval: exit %d:\n%s", code, out)
	}
	// The run's validator refuses a decision bound to other arguments.
	control := &server.TemporalControl{Client: d.Client}
	err := control.DecideApproval(context.Background(), pending.WorkflowID, pending.RunID,
		workflows.Approval{Step: pending.Step, Approved: true, By: "mallory", ArgsHash: "not-the-args"})
	if !errors.Is(err, server.ErrRejected) || !strings.Contains(err.Error(), "arguments changed") {
		t.Fatalf("a decision on other arguments: %v", err)
	}
	if code, out := runCLI(t, "approvals", "deny", pending.ID, "--url", d.URL, "--by", "ana", "--reason", "domain controller, call IT first"); code != 0 ||
		!strings.Contains(out, "denied by ana") {
		t.Fatalf("approvals deny: exit %d: %s", code, out)
	}
	denied := settled(dc, "no_action")
	if n := d.Simulator.ContainCalls(dcHost); n != 0 {
		t.Fatalf("a denied isolation reached the EDR %d times", n)
	}
	var result workflows.PlaybookResult
	if err := json.Unmarshal(denied.Playbooks[0].Result, &result); err != nil || result.Status != workflows.RunSucceeded {
		t.Fatalf("after the denial the playbook notifies and ends: %s", denied.Playbooks[0].Result)
	}
	if code, out := runCLI(t, "approvals", "list", "--status", "denied", "--url", d.URL); code != 0 || !strings.Contains(out, pending.ID) {
		t.Fatalf("approvals list: exit %d: %s", code, out)
	}
	if code, out := runCLI(t, "approvals", "approve", pending.ID, "--url", d.URL, "--by", "bo"); code == 0 || !strings.Contains(out, "denied") {
		t.Fatalf("deciding twice: exit %d: %s", code, out)
	}

	// The same alert after its dedup window: a new run, approved over the API.
	awaitAlert(t, d.URL, dc.AlertID, "the first domain controller alert to close", waitTimeout, func(a server.AlertDetail) bool {
		return a.Run != nil && a.Run.ClosedAt != nil
	})
	again := send("ocsf-dc-credential-dumping.json")
	if again.Duplicate || again.AlertID == dc.AlertID {
		t.Fatalf("repeat = %+v", again)
	}
	next := waitApproval(t, d.URL, again.AlertID)
	var decided server.ApprovalView
	body := []byte(`{"decision":"approve","by":"bo","reason":"IT agrees"}`)
	if code := postJSON(t, d.URL+"/api/v1/approvals/"+next.ID+":decide", body, &decided); code != 200 || decided.Status != "approved" {
		t.Fatalf("approve: %d %+v", code, decided)
	}
	approved := settled(again, "contained")
	if n := d.Simulator.ContainCalls(dcHost); n != 1 {
		t.Fatalf("contain calls after approval = %d", n)
	}
	// The isolation lifts itself after 24h unless kept: the revert waits, and
	// keeping the alert cancels it.
	awaitAlert(t, d.URL, again.AlertID, "the revert to be scheduled", waitTimeout, func(a server.AlertDetail) bool {
		return hasStep(a, "isolate_with_approval.revert", "pending")
	})
	code, out = runCLI(t, "alert", "keep", again.AlertID, "--by", "bo", "--reason", "forensics first", "--url", d.URL)
	if code != 0 || out != "kept by bo: malware-isolate-host/isolate_with_approval\n" {
		t.Fatalf("alert keep: exit %d: %s", code, out)
	}
	var kept server.AlertDetail
	waitFor(t, "the revert to stand down", waitTimeout, func() bool {
		kept, _ = getAlert(t, d.URL, again.AlertID)
		return hasStep(kept, "isolate_with_approval.revert", "skipped")
	})
	// The revert's step says who kept the isolation, and why.
	for _, s := range kept.Playbooks[0].Steps {
		if s.Name == "isolate_with_approval.revert" &&
			string(s.Output) != `{"kept_by":"bo","note":"forensics first","reason":"kept by bo"}` {
			t.Fatalf("the kept revert recorded %s", s.Output)
		}
	}
	code, out = runCLI(t, "alert", "show", again.AlertID, "--url", d.URL)
	if code != 0 || !regexp.MustCompile(`(?m)^  isolate_with_approval\.revert\s+skipped\s+\d+ ms\s+kept by bo: forensics first$`).MatchString(out) {
		t.Fatalf("alert show after keep: exit %d:\n%s", code, out)
	}
	if h, _ := d.Simulator.Host(dcHost); h.Status != integrations.HostContained {
		t.Fatalf("host after keep = %+v", h)
	}

	saveHistory(t, d, ransom.WorkflowID, "alert_playbooks.json")
	saveHistory(t, d, ransom.Playbooks[0].WorkflowID, "playbook_ransomware.json")
	saveHistory(t, d, approved.Playbooks[0].WorkflowID, "playbook_approval.json")
	saveHistory(t, d, workflows.RevertWorkflowID(approved.Playbooks[0].WorkflowID, "isolate_with_approval"), "revert_kept.json")
}

// playbookDir writes playbooks (file name → YAML) into a new directory, for a
// dev's --playbooks.
func playbookDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func hasStep(a server.AlertDetail, name, status string) bool {
	for _, p := range a.Playbooks {
		for _, s := range p.Steps {
			if s.Name == name && s.Status == status {
				return true
			}
		}
	}
	return false
}

// waitApproval waits for the alert's pending approval to reach the inbox.
func waitApproval(t *testing.T, base, alertID string) server.ApprovalView {
	t.Helper()
	var found server.ApprovalView
	waitFor(t, "an approval for "+alertID, waitTimeout, func() bool {
		var out struct {
			Approvals []server.ApprovalView `json:"approvals"`
		}
		resp, err := http.Get(base + "/api/v1/approvals?status=pending")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		if json.NewDecoder(resp.Body).Decode(&out) != nil {
			return false
		}
		for _, a := range out.Approvals {
			if a.AlertID == alertID {
				found = a
				return true
			}
		}
		return false
	})
	return found
}

func postJSON(t *testing.T, url string, body []byte, into any) int {
	t.Helper()
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	return decodeAnswer(t, url, resp, err, into)
}

func getJSON(t *testing.T, url string, into any) int {
	t.Helper()
	resp, err := http.Get(url)
	return decodeAnswer(t, url, resp, err, into)
}

// decodeAnswer decodes a JSON answer into into and returns its status.
func decodeAnswer(t *testing.T, url string, resp *http.Response, err error, into any) int {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	return resp.StatusCode
}

// TestEndToEndPlaybookSecrets runs a playbook that reads a configured secret, from
// the file a _FILE variable names, into a variable and actions' inputs: the
// workflow history and the store hold the placeholder and the redaction, never
// the value, even where the vendor's answer echoes it.
func TestEndToEndPlaybookSecrets(t *testing.T) {
	const token = "s3cr3t-soc-token-5f2c9a"
	tokenFile := filepath.Join(t.TempDir(), "soc.token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("RAMPART_SECRET_SOC_TOKEN_FILE", tokenFile)
	src := `name: secret-probe
trigger: {when: "true"}
secrets: [soc_token]
vars:
  auth: "Bearer ${{ secrets.soc_token }}"
steps:
  - id: host
    uses: edr.get_host
    with: {host_id: "${{ alert.device.id }}"}
  - id: echo
    uses: edr.get_host
    with: {host_id: "${{ secrets.soc_token }}"}
    on_error: continue
  - id: tell
    uses: chat.post_message
    with: {channel: "#soc", text: "${{ vars.auth }} for ${{ steps.host.output.hostname }}"}
    on_error: continue
`
	var logs syncBuffer
	cfg := devConfig(t, 2*time.Second)
	cfg.PlaybooksDir = playbookDir(t, map[string]string{"secret-probe.yaml": src})
	d := startDev(t, cfg, &logs)
	acc := accepted(t, d.URL, d.Sources(), "crowdstrike", readFile(t, ransomware))
	a := awaitAlert(t, d.URL, acc.AlertID, "the playbook run to finish", waitTimeout, func(a server.AlertDetail) bool {
		return len(a.Playbooks) == 1 && a.Playbooks[0].Run.Status == "completed"
	})
	steps := map[string]server.StepView{}
	for _, s := range a.Playbooks[0].Steps {
		steps[s.Name] = s
	}
	if tell := steps["tell"]; !bytes.Contains(tell.Input, []byte("Bearer [secret soc_token] for fin-ws-0142")) {
		t.Fatalf("the step's recorded input = %s", tell.Input)
	}
	// The secret was read from its file and sent: the simulator answered that it
	// knows no such device, naming it, and the step's error names the secret instead.
	if echo := steps["echo"]; echo.Status != "failed" || !strings.Contains(echo.Error, "crowdstrike: device [secret soc_token]: not found at vendor") {
		t.Fatalf("echo step: %s: %s", echo.Status, echo.Error)
	}
	history := historyPayloads(t, d, a.Playbooks[0].WorkflowID)
	if !bytes.Contains(history, []byte("rampart-secret:soc_token")) {
		t.Fatal("nothing to search: the history holds no placeholder")
	}
	wantNoSecrets(t, append(configuredSecrets(t, d), token), withDatabase(t, cfg.DataDir, map[string][]byte{
		"logs": logs.Bytes(), "playbook history": history, "alert history": historyPayloads(t, d, acc.WorkflowID),
	}))
}

// TestEndToEndPinningAndShadowReplay: a run started on version 1 finishes on
// version 1 after version 2 is applied; then a shadow replay of version 2 on the
// same alert shows the decision that would change, and one of version 1 shows
// none. A replay leaves out of its comparison a run still waiting, and keeps an
// alert that an earlier playbook's stop_on_match took away from it.
func TestEndToEndPinningAndShadowReplay(t *testing.T) {
	closer := `name: closer
priority: 1
stop_on_match: true
trigger: {when: "alert.rule.name == 'PotentiallyUnwantedProgram'"}
steps:
  - id: close
    succeed: noise
`
	v1 := `name: triage
priority: 50
trigger: {when: "alert.device.id != ''"}
steps:
  - id: host
    uses: edr.get_host
    with: {host_id: "${{ alert.device.id }}"}
  - id: gate
    if: enrich.ioc_hits > 0
    uses: edr.isolate_host
    with: {host_id: "${{ alert.device.id }}", comment: "rampart ${{ run.id }}"}
    approval: {approvers: ["role:tier2"], timeout: 1h}
`
	dir := playbookDir(t, map[string]string{"closer.yaml": closer, "triage.yaml": v1})
	cfg := devConfig(t, 2*time.Second)
	cfg.PlaybooksDir = dir
	d := startDev(t, cfg)
	acc := accepted(t, d.URL, d.Sources(), "crowdstrike", readFile(t, ransomware))
	pending := waitApproval(t, d.URL, acc.AlertID)
	// Waiting for its approval, the run has decided nothing final.
	code, out := runCLI(t, "playbook", "replay", "triage", "--version", "1", "--alerts", acc.AlertID, "--all", "--url", d.URL)
	if code != 0 || !strings.Contains(out, "IN_FLIGHT") || !strings.Contains(out, "1 alert(s): 0 same, 0 changed, 0 new failure(s), 1 in flight") {
		t.Fatalf("replay while waiting: exit %d:\n%s", code, out)
	}

	// Version 2 never isolates. Applied while version 1 waits.
	v2 := strings.Replace(v1, "if: enrich.ioc_hits > 0", "if: enrich.ioc_hits > 99", 1)
	if err := os.WriteFile(filepath.Join(dir, "triage.yaml"), []byte(v2), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out := runCLI(t, "playbook", "apply", dir, "--url", d.URL); code != 0 || !strings.Contains(out, "new version") {
		t.Fatalf("apply v2: exit %d: %s", code, out)
	}
	var decided server.ApprovalView
	if code := postJSON(t, d.URL+"/api/v1/approvals/"+pending.ID+":decide", []byte(`{"decision":"approve","by":"ana"}`), &decided); code != 200 {
		t.Fatalf("approve: %d %+v", code, decided)
	}
	a := awaitAlert(t, d.URL, acc.AlertID, "the version 1 run to finish", waitTimeout, func(a server.AlertDetail) bool {
		return a.Status == "contained"
	})
	if len(a.Playbooks) != 1 || a.Playbooks[0].Version != 1 || d.Simulator.ContainCalls(ransomHost) != 1 {
		t.Fatalf("the run was not pinned to version 1: %+v, %d contain calls", a.Playbooks, d.Simulator.ContainCalls(ransomHost))
	}

	// Shadow replay: version 2 would not have isolated.
	code, out = runCLI(t, "playbook", "replay", "triage", "--version", "2", "--alerts", acc.AlertID, "--url", d.URL)
	if code != 0 || !strings.Contains(out, "CHANGED") || !strings.Contains(out, "- action gate edr.isolate_host") ||
		!strings.Contains(out, "+ step gate: skipped") || !strings.Contains(out, "1 alert(s): 0 same, 1 changed, 0 new failure(s)") {
		t.Fatalf("replay v2: exit %d:\n%s", code, out)
	}
	t.Logf("replay v2:\n%s", out)
	if d.Simulator.ContainCalls(ransomHost) != 1 || strings.Contains(out, "no recording of edr.get_host") {
		t.Fatalf("the replay reached the EDR, or did not use the recorded read:\n%s", out)
	}
	// Noise the closer took, triage's trigger matching too: replayed, triage is
	// still not reached.
	pup := accepted(t, d.URL, d.Sources(), "crowdstrike", readFile(t, filepath.Join(examples, "alerts", "crowdstrike-pup.json")))
	awaitAlert(t, d.URL, pup.AlertID, "the closer to close the noise", waitTimeout, func(a server.AlertDetail) bool {
		return a.Status == "no_action" && len(a.Playbooks) == 1 && a.Playbooks[0].Playbook == "closer"
	})
	code, out = runCLI(t, "playbook", "replay", "triage", "--version", "2", "--alerts", pup.AlertID+",no-such-alert", "--all", "--url", d.URL)
	if code != 0 || !strings.Contains(out, "closer (stop_on_match) comes first") || !strings.Contains(out, "NOT_FOUND   no-such-alert") ||
		!strings.Contains(out, "2 alert(s): 1 same, 0 changed, 0 new failure(s), 1 not found") {
		t.Fatalf("replay on the closed noise: exit %d:\n%s", code, out)
	}
	// Version 1 replayed decides as it did, the analyst's approval included.
	code, out = runCLI(t, "playbook", "replay", "triage", "--version", "1", "--since", "1h", "--all", "--url", d.URL)
	if code != 0 || !strings.Contains(out, "SAME") || !strings.Contains(out, "2 alert(s): 2 same, 0 changed") {
		t.Fatalf("replay v1: exit %d:\n%s", code, out)
	}
	// The API answers with the whole report too.
	var report server.ReplayReport
	body := []byte(`{"alerts":["` + acc.AlertID + `"]}`)
	if code := postJSON(t, d.URL+"/api/v1/playbooks/triage/versions/2:replay", body, &report); code != 200 ||
		report.Summary.Changed != 1 || report.Alerts[0].Ran.Version != 1 || len(report.Alerts[0].Replayed.Actions) != 0 {
		t.Fatalf("replay API: %d %+v", code, report)
	}
}

// TestEndToEndCancelledWork: a parallel step whose time runs out, on the real
// server and store, cancels its branches; each records the step it was in as
// cancelled, the approval one waited for leaves the inbox as cancelled, nothing
// reaches the EDR, and the run fails saying why.
func TestEndToEndCancelledWork(t *testing.T) {
	bounded := `name: bounded
priority: 1
stop_on_match: true
trigger: {when: "alert.device.id != ''"}
steps:
  - id: race
    timeout: 3s
    parallel:
      join: any
      branches:
        - name: ask
          steps:
            - id: gate
              uses: edr.isolate_host
              with: {host_id: "${{ alert.device.id }}", comment: "rampart ${{ run.id }}"}
              approval: {approvers: ["role:tier2"], timeout: 1h}
        - name: watch
          steps:
            - id: settle
              wait: {until: "run.events > 100", timeout: 1h}
  - id: never
    succeed: never
`
	cfg := devConfig(t, 2*time.Second)
	cfg.PlaybooksDir = playbookDir(t, map[string]string{"bounded.yaml": bounded})
	d := startDev(t, cfg)
	acc := accepted(t, d.URL, d.Sources(), "crowdstrike", readFile(t, ransomware))
	pending := waitApproval(t, d.URL, acc.AlertID)

	a := awaitAlert(t, d.URL, acc.AlertID, "the bounded run to end", waitTimeout, func(a server.AlertDetail) bool {
		return a.Status == "failed" && len(a.Playbooks) == 1 && a.Playbooks[0].Run.CompletedAt != nil
	})
	steps := map[string]string{}
	for _, s := range a.Playbooks[0].Steps {
		steps[s.Name] = s.Status + ": " + s.Error
	}
	if want := map[string]string{"gate": "cancelled: cancelled", "settle": "cancelled: cancelled", "race": "failed: timed out after 3s"}; !maps.Equal(steps, want) {
		t.Fatalf("steps = %v, want %v", steps, want)
	}
	if !bytes.Contains(a.Playbooks[0].Result, []byte("step race failed: timed out after 3s")) || d.Simulator.ContainCalls(ransomHost) != 0 {
		t.Fatalf("result %s, contain calls %d", a.Playbooks[0].Result, d.Simulator.ContainCalls(ransomHost))
	}
	var ap server.ApprovalView
	if code := getJSON(t, d.URL+"/api/v1/approvals/"+pending.ID, &ap); code != http.StatusOK || ap.Status != "cancelled" || ap.Reason == "" {
		t.Fatalf("the approval: %d %+v", code, ap)
	}
	var inbox struct {
		Approvals []server.ApprovalView `json:"approvals"`
	}
	if getJSON(t, d.URL+"/api/v1/approvals?status=pending", &inbox); len(inbox.Approvals) != 0 {
		t.Fatalf("still pending: %+v", inbox.Approvals)
	}
	saveHistory(t, d, a.Playbooks[0].WorkflowID, "playbook_cancelled.json")
}

// heldPlaybook isolates the alert's host once tier 2 approves, on alerts that
// match trigger: a run that waits, for a test to stop or reset it meanwhile.
func heldPlaybook(trigger string) string {
	return `name: held
trigger: {when: "` + trigger + `"}
steps:
  - id: gate
    uses: edr.isolate_host
    with: {host_id: "${{ alert.device.id }}", comment: "rampart ${{ run.id }}"}
    approval: {approvers: ["role:tier2"], timeout: 1h}
`
}

// TestEndToEndRunsStoppedInTemporal: runs an operator stops from Temporal end in
// the store too, on the real embedded server. A timed revert's step says the
// revert will not run. A cancelled alert run winds its
// playbook run down and records its end itself; a terminated one runs no code
// again, so the worker's sweep records it from Temporal's visibility store. Either
// way the alert fails saying why, the playbook run and its step stop, the
// approval leaves the inbox, and nothing is contained.
func TestEndToEndRunsStoppedInTemporal(t *testing.T) {
	held := heldPlaybook("alert.device.id != '' && alert.device.hostname != 'eng-ws-0077'")
	lifted := `name: lifted
trigger: {when: "alert.device.hostname == 'eng-ws-0077'"}
steps:
  - id: isolate
    uses: edr.isolate_host
    with: {host_id: "${{ alert.device.id }}", comment: "rampart ${{ run.id }}"}
    revert_after: 1h
`
	cfg := devConfig(t, time.Hour)
	cfg.PlaybooksDir = playbookDir(t, map[string]string{"held.yaml": held, "lifted.yaml": lifted})
	cfg.ReconcileEvery = 200 * time.Millisecond
	d := startDev(t, cfg)
	ctx := context.Background()

	// A timed revert stopped in Temporal will not run, and its step says so.
	isolated := accepted(t, d.URL, d.Sources(), "crowdstrike", readFile(t, examples+"/alerts/crowdstrike-pup.json"))
	a := awaitAlert(t, d.URL, isolated.AlertID, "the revert to be scheduled", waitTimeout, func(a server.AlertDetail) bool {
		return hasStep(a, "isolate.revert", "pending")
	})
	revert := workflows.RevertWorkflowID(a.Playbooks[0].WorkflowID, "isolate")
	if err := d.Client.TerminateWorkflow(ctx, revert, "", "keep the host isolated"); err != nil {
		t.Fatal(err)
	}
	a = awaitAlert(t, d.URL, isolated.AlertID, "the stopped revert's end", waitTimeout, func(a server.AlertDetail) bool {
		return hasStep(a, "isolate.revert", "cancelled")
	})
	for _, st := range a.Playbooks[0].Steps {
		if st.Name == "isolate.revert" && !regexp.MustCompile(`^the revert will not run: terminated in Temporal by .+: keep the host isolated$`).MatchString(st.Note) {
			t.Fatalf("the stopped revert says %q", st.Note)
		}
	}
	if h, _ := d.Simulator.Host(pupHost); h.Status != integrations.HostContained || a.Status != "contained" {
		t.Fatalf("host %+v, alert %s", h, a.Status)
	}

	terminated := accepted(t, d.URL, d.Sources(), "crowdstrike", readFile(t, ransomware))
	cancelled := accepted(t, d.URL, d.Sources(), "ocsf", readFile(t, examples+"/alerts/ocsf-dc-credential-dumping.json"))
	approvals := map[string]server.ApprovalView{}
	for _, acc := range []ingest.Accepted{terminated, cancelled} {
		approvals[acc.AlertID] = waitApproval(t, d.URL, acc.AlertID)
	}
	if err := d.Client.TerminateWorkflow(ctx, terminated.WorkflowID, terminated.AlertID, "stuck: stopped by the on-call"); err != nil {
		t.Fatal(err)
	}
	if err := d.Client.CancelWorkflow(ctx, cancelled.WorkflowID, cancelled.AlertID); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name          string
		acc           ingest.Accepted
		summary       *regexp.Regexp
		playbookError string
	}{
		{"terminated", terminated, regexp.MustCompile(`^failed: terminated in Temporal by .+: stuck: stopped by the on-call$`), "terminated in Temporal along with the run that started it"},
		{"cancelled", cancelled, regexp.MustCompile(`^held failed: the run was cancelled$`), "the run was cancelled"},
	} {
		a := awaitAlert(t, d.URL, tc.acc.AlertID, "the "+tc.name+" run's end", waitTimeout, func(a server.AlertDetail) bool {
			return a.Status == "failed" && a.Run != nil && a.Run.ClosedAt != nil &&
				len(a.Playbooks) == 1 && a.Playbooks[0].Run.ClosedAt != nil
		})
		if !tc.summary.MatchString(a.Summary) || a.Run.Status != "failed" {
			t.Fatalf("%s: summary %q, run %+v", tc.name, a.Summary, a.Run)
		}
		pb := a.Playbooks[0]
		// A step waiting for its approval has no record yet; one the run wound
		// down records that it was cancelled.
		stopped := len(pb.Steps) == 0 && tc.name == "terminated" ||
			len(pb.Steps) == 1 && pb.Steps[0].Name == "gate" && pb.Steps[0].Status == "cancelled"
		if pb.Run.Status != "failed" || !strings.HasPrefix(pb.Run.Error, tc.playbookError) || !stopped {
			t.Fatalf("%s: playbook run %+v, steps %+v", tc.name, pb.Run, pb.Steps)
		}
		var ap server.ApprovalView
		if code := getJSON(t, d.URL+"/api/v1/approvals/"+approvals[tc.acc.AlertID].ID, &ap); code != http.StatusOK || ap.Status != "cancelled" {
			t.Fatalf("%s: the approval: %d %+v", tc.name, code, ap)
		}
	}
	var inbox struct {
		Approvals []server.ApprovalView `json:"approvals"`
	}
	if getJSON(t, d.URL+"/api/v1/approvals?status=pending", &inbox); len(inbox.Approvals) != 0 {
		t.Fatalf("still pending: %+v", inbox.Approvals)
	}
	for _, host := range []string{ransomHost, dcHost} {
		if n := d.Simulator.ContainCalls(host); n != 0 {
			t.Fatalf("%d containment calls for a run that was stopped", n)
		}
	}
	desc, err := d.Client.DescribeWorkflowExecution(ctx, cancelled.WorkflowID, cancelled.AlertID)
	if err != nil {
		t.Fatal(err)
	}
	if st := desc.GetWorkflowExecutionInfo().GetStatus(); st != enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED {
		t.Fatalf("the cancelled run closed as %s", st)
	}
	saveHistory(t, d, cancelled.WorkflowID, "alert_cancelled.json")
}

// TestEndToEndResetRunCarriesOn: an alert run and its playbook run reset in
// Temporal (each to its last completed task, as an operator does after
// deploying a fix) replay their histories and carry on as the same alert: the
// sweep does not take the resets' terminations of the first runs for their
// end, the approval the playbook waits for reaches the reset run and contains
// the host once, and the alert's state is asked of the runs that carry it on.
func TestEndToEndResetRunCarriesOn(t *testing.T) {
	held := heldPlaybook("alert.device.id != ''")
	cfg := devConfig(t, time.Hour)
	cfg.PlaybooksDir = playbookDir(t, map[string]string{"held.yaml": held})
	cfg.ReconcileEvery = 100 * time.Millisecond
	logs := &syncBuffer{}
	d := startDev(t, cfg, logs)
	acc := accepted(t, d.URL, d.Sources(), "crowdstrike", readFile(t, ransomware))
	pending := waitApproval(t, d.URL, acc.AlertID)

	// Both the alert's run and its playbook's run are reset, each to its last task.
	for _, run := range []struct{ workflowID, runID string }{{acc.WorkflowID, acc.AlertID}, {pending.WorkflowID, pending.RunID}} {
		resetAt := resetRun(t, d, run.workflowID, run.runID, lastTask)
		waitFor(t, "the reset run's first task", waitTimeout, func() bool {
			for _, ev := range history(t, d.Client, run.workflowID) {
				if ev.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED && ev.GetEventId() > resetAt {
					return true
				}
			}
			return false
		})
	}
	time.Sleep(time.Second) // the sweep runs ten times
	if a, _ := getAlert(t, d.URL, acc.AlertID); a.Status != "processing" || a.Run == nil || a.Run.ClosedAt != nil || a.Run.Error != "" {
		t.Fatalf("after the reset the alert reads %s %q, run %+v", a.Status, a.Summary, a.Run)
	}

	var decided server.ApprovalView
	if code := postJSON(t, d.URL+"/api/v1/approvals/"+pending.ID+":decide", []byte(`{"decision":"approve","by":"bo","reason":"after the fix"}`), &decided); code != http.StatusOK {
		t.Fatalf("approve: %d %+v", code, decided)
	}
	a := awaitAlert(t, d.URL, acc.AlertID, "the reset alert to be contained", waitTimeout, func(a server.AlertDetail) bool {
		return a.Status == "contained"
	})
	if a.Summary != "held succeeded" || a.Run.Error != "" || len(a.Playbooks) != 1 || d.Simulator.ContainCalls(ransomHost) != 1 {
		t.Fatalf("summary %q, run %+v, %d playbook runs, %d contain calls", a.Summary, a.Run, len(a.Playbooks), d.Simulator.ContainCalls(ransomHost))
	}
	if bytes.Contains(logs.Bytes(), []byte("TMPRL1100")) {
		t.Fatalf("the reset run failed its replay:\n%s", logs.Bytes())
	}
	// The alert's state is asked of the run that carries it on, not the first.
	var state server.AlertStateView
	if code := getJSON(t, d.URL+"/api/v1/alerts/"+acc.AlertID+"/state", &state); code != http.StatusOK ||
		state.State.Stage != workflows.StageDone || state.State.Outcome != workflows.OutcomeContained {
		t.Fatalf("state: %d %+v", code, state.State)
	}
	saveHistory(t, d, acc.WorkflowID, "alert_reset.json")
}

// resetRun resets a run as `temporal workflow reset` does, to the completed
// workflow task which pick chooses among the run's, and returns that task's event id.
func resetRun(t *testing.T, d *app.Dev, workflowID, runID string, pick func(tasks []int64) int64) int64 {
	t.Helper()
	var tasks []int64
	for _, ev := range history(t, d.Client, workflowID) {
		if ev.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED {
			tasks = append(tasks, ev.GetEventId())
		}
	}
	at := pick(tasks)
	_, err := d.Client.ResetWorkflowExecution(context.Background(), &workflowservice.ResetWorkflowExecutionRequest{
		Namespace:                 d.Config.Namespace,
		WorkflowExecution:         &commonpb.WorkflowExecution{WorkflowId: workflowID, RunId: runID},
		Reason:                    "fix deployed",
		WorkflowTaskFinishEventId: at,
		RequestId:                 runID + "/reset",
	})
	if err != nil {
		t.Fatal(err)
	}
	return at
}

func firstTask(tasks []int64) int64 { return tasks[0] }
func lastTask(tasks []int64) int64  { return tasks[len(tasks)-1] }

// TestEndToEndResetDoesNotContainTwice: an alert run reset to its first task,
// after it contained the host, runs its contain stage again under the same
// idempotency key: it finds the isolation it made and does not ask the EDR again.
func TestEndToEndResetDoesNotContainTwice(t *testing.T) {
	d := startDev(t, devConfig(t, 2*time.Second))
	ctx := context.Background()
	acc := accepted(t, d.URL, d.Sources(), "crowdstrike", readFile(t, ransomware))
	awaitAlert(t, d.URL, acc.AlertID, "the host to be contained", waitTimeout, func(a server.AlertDetail) bool {
		return a.Status == "contained"
	})
	resetRun(t, d, acc.WorkflowID, acc.AlertID, firstTask)
	var result workflows.AlertResult
	if err := d.Client.GetWorkflow(ctx, acc.WorkflowID, "").Get(ctx, &result); err != nil {
		t.Fatal(err)
	}
	// One action: claimed by the decision, tried by the first run and found by
	// the reset run (each counts an attempt), the vendor asked once.
	a, _ := getAlert(t, d.URL, acc.AlertID)
	if result.Outcome != workflows.OutcomeContained || a.Status != "contained" || len(a.Actions) != 1 ||
		a.Actions[0].Attempts < 3 || a.Actions[0].VendorCalls != 1 || d.Simulator.ContainCalls(ransomHost) != 1 {
		t.Fatalf("after the reset: result %+v, alert %s, actions %+v, contain calls %d",
			result, a.Status, a.Actions, d.Simulator.ContainCalls(ransomHost))
	}
}
