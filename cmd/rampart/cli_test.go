package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampart-soar/rampart/schemas"
	"github.com/rampart-soar/rampart/server"
	"github.com/rampart-soar/rampart/server/ingest"
	"github.com/rampart-soar/rampart/store"
	"github.com/rampart-soar/rampart/store/storetest"
	"github.com/rampart-soar/rampart/workflows"
)

type cliStarter struct{}

func (cliStarter) StartAlert(_ context.Context, req ingest.StartRequest) (ingest.StartResult, error) {
	return ingest.StartResult{RunID: "run-1", Started: true}, nil
}

// apiServer serves the real HTTP API over the example sources, with the secrets the
// environment sets when the server starts.
func apiServer(t *testing.T, st *store.Store) string {
	t.Helper()
	return apiServerFrom(t, server.Options{Alerts: st, Playbooks: st})
}

// apiServerFrom serves opts with a webhook pipeline over the example sources.
func apiServerFrom(t *testing.T, opts server.Options) string {
	t.Helper()
	sources, err := ingest.LoadSources(examples + "/sources.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if opts.Pipeline, err = ingest.NewPipeline(ingest.Options{Sources: sources, Starter: cliStarter{}}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(server.New(opts).Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}

func runCLI(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return code, out.String() + errOut.String()
}

func TestAlertSendSignsWithTheServersSecret(t *testing.T) {
	url := apiServer(t, storetest.SQLite(t))
	code, out := runCLI(t, "alert", "send", ransomware, "--source", "crowdstrike", "--url", url, "--sources", examples+"/sources.yaml")
	if code != 0 || !strings.Contains(out, `"alert_id":"run-1"`) {
		t.Fatalf("exit %d: %s", code, out)
	}
	code, out = runCLI(t, "alert", "send", ransomware, "--source", "crowdstrike", "--url", url, "--secret", "not-the-secret-at-all")
	if code != 2 || !strings.Contains(out, "invalid_signature") {
		t.Fatalf("wrong secret: exit %d: %s", code, out)
	}
	// The server counts both, and says why it refused the second.
	code, out = runCLI(t, "alert", "sources", "--url", url)
	if code != 0 || !regexp.MustCompile(`(?m)^crowdstrike\s+crowdstrike\s+hmac\s+1\s+0\s+1 \(invalid_signature 1\)\s+\S+ \S+\s+\S+ \S+ 401 invalid_signature: signature does not match the body$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^ocsf\s+ocsf\s+hmac\s+0\s+0\s+0\s+-\s+-$`).MatchString(out) || !strings.Contains(out, "Counted by this server since ") {
		t.Fatalf("sources: exit %d: %s", code, out)
	}
	code, out = runCLI(t, "alert", "send", ransomware, "--source", "splunk", "--url", url, "--sources", examples+"/sources.yaml")
	if code != 1 || !strings.Contains(out, `"splunk" is not in`) {
		t.Fatalf("unknown source: exit %d: %s", code, out)
	}
	code, out = runCLI(t, "alert", "send", "no-such-file.json", "--source", "crowdstrike", "--url", url)
	if code != 1 || !strings.Contains(out, "no-such-file.json") {
		t.Fatalf("missing file: exit %d: %s", code, out)
	}
}

func TestAlertSendUsesTheEnvironmentOverride(t *testing.T) {
	t.Setenv(ingest.SecretEnv("crowdstrike"), "rotated-secret-from-the-environment")
	url := apiServer(t, storetest.SQLite(t)) // the server reads the override too
	code, out := runCLI(t, "alert", "send", ransomware, "--source", "crowdstrike", "--url", url, "--sources", examples+"/sources.yaml")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
}

// TestAlertSourcesDuringARotation: the server takes a new secret from the
// environment and keeps the file's as the previous one; the tool still on the
// previous secret is accepted, and `alert sources` says so.
func TestAlertSourcesDuringARotation(t *testing.T) {
	sources, err := ingest.LoadSources(examples + "/sources.yaml")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(ingest.SecretEnv("crowdstrike"), "the-new-secret-0123456789")
	t.Setenv(ingest.SecretEnv("crowdstrike")+ingest.PreviousSecretEnvSuffix, sources["crowdstrike"].Secret())
	url := apiServer(t, storetest.SQLite(t))
	code, out := runCLI(t, "alert", "send", ransomware, "--source", "crowdstrike", "--url", url, "--secret", sources["crowdstrike"].Secret())
	if code != 0 {
		t.Fatalf("signed with the previous secret: exit %d: %s", code, out)
	}
	code, out = runCLI(t, "alert", "sources", "--url", url)
	if code != 0 || !regexp.MustCompile(`(?m)^crowdstrike\s+crowdstrike\s+hmac\+previous\s+1\s+0\s+0\s`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^crowdstrike: 1 deliveries signed with its previous secret, the last at \S+ \S+: its tool has not moved to the new one\.$`).MatchString(out) ||
		strings.Contains(out, "ocsf:") {
		t.Fatalf("sources: exit %d: %s", code, out)
	}
}

func TestAlertListAndShow(t *testing.T) {
	st := storetest.SQLite(t)
	at := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	if err := st.RecordAlert(context.Background(), &store.Alert{ID: "a-1", WorkflowID: "alert/x", Fingerprint: "x", Source: "ocsf",
		Title: "Password spray against SSO", SeverityID: 3, Severity: schemas.SeverityName(3), Status: store.AlertNoAction,
		EventTime: at, ReceivedAt: at, LastSeenAt: at, AlertJSON: `{"user":{"name":"ravi.patel"}}`}, []schemas.Entity{{Kind: schemas.EntityUser, Value: "ravi.patel"}}, nil); err != nil {
		t.Fatal(err)
	}
	outcome := at.Add(1234 * time.Millisecond)
	if err := st.UpdateAlert(context.Background(), "a-1", store.AlertUpdate{OutcomeAt: &outcome}); err != nil {
		t.Fatal(err)
	}
	url := apiServer(t, st)
	code, out := runCLI(t, "alert", "list", "--url", url)
	if code != 0 || !strings.Contains(out, "a-1") || !strings.Contains(out, "Password spray against SSO") ||
		!regexp.MustCompile(`no_action\s+1\.2 s\s+0\s+ocsf\s+ravi\.patel\s+Password spray`).MatchString(out) { // took 1.2 s; no host: the user
		t.Fatalf("list: exit %d: %s", code, out)
	}
	if code, out = runCLI(t, "alert", "list", "--entity", "Ravi.Patel", "--url", url); code != 0 || !strings.Contains(out, "a-1") {
		t.Fatalf("list about ravi.patel: exit %d: %s", code, out)
	}
	if code, out = runCLI(t, "alert", "list", "--entity", "dana.okafor", "--url", url); code != 0 || strings.Contains(out, "a-1") {
		t.Fatalf("list about dana.okafor: exit %d: %s", code, out)
	}
	if code, out = runCLI(t, "alert", "list", "--rule", "Password spray against SSO", "--url", url); code != 0 || !strings.Contains(out, "a-1") {
		t.Fatalf("list of the rule: exit %d: %s", code, out)
	}
	if code, out = runCLI(t, "alert", "list", "--rule", "Password spray", "--url", url); code != 0 || strings.Contains(out, "a-1") {
		t.Fatalf("list of another rule: exit %d: %s", code, out)
	}
	code, out = runCLI(t, "alert", "show", "a-1", "--url", url)
	if code != 0 || !strings.HasPrefix(out, "Password spray against SSO\n") || !regexp.MustCompile(`(?m)^  status\s+no_action$`).MatchString(out) ||
		!strings.Contains(out, "Medium (confidence 0) · source ocsf") || !strings.Contains(out, "Steps\n  (none yet)") {
		t.Fatalf("show: exit %d: %s", code, out)
	}
	code, out = runCLI(t, "alert", "show", "a-1", "--json", "--url", url)
	if code != 0 || !strings.Contains(out, `"workflow_id": "alert/x"`) {
		t.Fatalf("show --json: exit %d: %s", code, out)
	}
	code, out = runCLI(t, "alert", "show", "missing", "--url", url)
	if code != 1 || !strings.Contains(out, "404") {
		t.Fatalf("show missing: exit %d: %s", code, out)
	}
	code, out = runCLI(t, "alert", "list", "--url", "http://127.0.0.1:1")
	if code != 1 || !strings.Contains(out, "is rampart running") {
		t.Fatalf("no server: exit %d: %s", code, out)
	}
}

func TestPlaybookLint(t *testing.T) {
	code, out := runCLI(t, "playbook", "lint", examples+"/playbooks")
	if code != 0 || !strings.Contains(out, "0 problem(s)") {
		t.Fatalf("examples: exit %d: %s", code, out)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("name: bad\ntrigger:\n  when: alert.severty_id > 3\nsteps:\n  - id: x\n    succeed: ok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out = runCLI(t, "playbook", "lint", bad)
	if code != 1 || !strings.Contains(out, bad+`:3:15: when: alert has no field "severty_id" (did you mean severity_id?)`) {
		t.Fatalf("bad: exit %d: %s", code, out)
	}
	code, out = runCLI(t, "playbook", "lint", "--json", bad)
	if code != 1 || !strings.Contains(out, `"line": 3`) {
		t.Fatalf("json: exit %d: %s", code, out)
	}
}

func TestPlaybookApplyListShowDiff(t *testing.T) {
	url := apiServer(t, storetest.SQLite(t))
	code, out := runCLI(t, "playbook", "apply", examples+"/playbooks", "--url", url)
	if code != 0 || strings.Count(out, "new version") != 6 {
		t.Fatalf("apply: exit %d: %s", code, out)
	}
	code, out = runCLI(t, "playbook", "apply", examples+"/playbooks", "--url", url)
	if code != 0 || strings.Count(out, "unchanged") != 6 {
		t.Fatalf("re-apply: exit %d: %s", code, out)
	}
	dir := t.TempDir()
	src, _ := os.ReadFile(examples + "/playbooks/bruteforce-block-ip.yaml")
	changed := filepath.Join(dir, "bf.yaml")
	_ = os.WriteFile(changed, bytes.Replace(src, []byte("duration: 24h"), []byte("duration: 12h"), 1), 0o600)
	if code, out = runCLI(t, "playbook", "apply", changed, "--url", url); code != 0 || !regexp.MustCompile(`bruteforce-block-ip\s+2\s+new version`).MatchString(out) {
		t.Fatalf("apply v2: exit %d: %s", code, out)
	}
	code, out = runCLI(t, "playbook", "list", "--url", url)
	if code != 0 || !strings.Contains(out, "bruteforce-block-ip") || !strings.Contains(out, "ransomware-burst") {
		t.Fatalf("list: exit %d: %s", code, out)
	}
	code, out = runCLI(t, "playbook", "diff", "bruteforce-block-ip", "1", "2", "--url", url)
	if code != 0 || !strings.Contains(out, "-      duration: 24h") || !strings.Contains(out, "+      duration: 12h") || strings.Contains(out, "+name:") {
		t.Fatalf("diff: exit %d: %s", code, out)
	}
	code, out = runCLI(t, "playbook", "show", "bruteforce-block-ip", "--version", "1", "--url", url)
	if code != 0 || !strings.Contains(out, "# bruteforce-block-ip v1") || !strings.Contains(out, "duration: 24h") {
		t.Fatalf("show: exit %d: %s", code, out)
	}
	code, out = runCLI(t, "playbook", "export", "bruteforce-block-ip", "--url", url)
	if code != 0 || !strings.Contains(out, "duration: 12h") || strings.HasPrefix(out, "#") && !strings.HasPrefix(out, "# yaml-language-server") {
		t.Fatalf("export: exit %d: %s", code, out)
	}
	if code, out = runCLI(t, "playbook", "disable", "bruteforce-block-ip", "--url", url); code != 0 {
		t.Fatalf("disable: exit %d: %s", code, out)
	}
	if _, out = runCLI(t, "playbook", "list", "--url", url); !regexp.MustCompile(`bruteforce-block-ip\s+2\s+false`).MatchString(out) {
		t.Fatalf("list after disable: %s", out)
	}
	if code, out = runCLI(t, "playbook", "enable", "nope", "--url", url); code != 1 || !strings.Contains(out, "no such playbook") {
		t.Fatalf("enable unknown: exit %d: %s", code, out)
	}
	bad := filepath.Join(dir, "bad.yaml")
	_ = os.WriteFile(bad, []byte("name: bad\ntrigger: {when: \"nope > 1\"}\nsteps:\n  - id: x\n    succeed: ok\n"), 0o600)
	if code, out = runCLI(t, "playbook", "apply", bad, "--url", url); code != 1 || !strings.Contains(out, "nothing applied") {
		t.Fatalf("apply bad: exit %d: %s", code, out)
	}
}

func TestPlaybookTestCommand(t *testing.T) {
	code, out := runCLI(t, "playbook", "test", "-v", examples+"/playbooks")
	if code != 0 || !strings.Contains(out, "6 file(s): ") || !strings.Contains(out, " 0 failed") || !strings.Contains(out, "ok    ") {
		t.Fatalf("examples: exit %d:\n%s", code, out)
	}
	dir := t.TempDir()
	pb, err := os.ReadFile(examples + "/playbooks/benign-noise-autoclose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir+"/benign-noise-autoclose.yaml", pb, 0o644); err != nil {
		t.Fatal(err)
	}
	failing := "tests:\n  - name: expects a step that never runs\n    alert: {finding: {uid: f, title: t}}\n    expect: {steps: [close, reopen]}\n"
	if err := os.WriteFile(dir+"/benign-noise-autoclose.test.yaml", []byte(failing), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out = runCLI(t, "playbook", "test", dir)
	if code != 1 || !strings.Contains(out, "FAIL  ") || !strings.Contains(out, "- reopen") || !strings.Contains(out, "0 passed, 1 failed") {
		t.Fatalf("failing test: exit %d:\n%s", code, out)
	}
}

// decisions is the part of the workflow side the approvals CLI reaches: it
// records each decision the API delivers.
type decisions struct{ got []workflows.Approval }

func (d *decisions) DecideApproval(_ context.Context, _, _ string, a workflows.Approval) error {
	d.got = append(d.got, a)
	return nil
}
func (d *decisions) KeepAction(context.Context, string, workflows.Actor) error { return nil }
func (d *decisions) Query(context.Context, string, string, string, any) error {
	return server.ErrRunNotFound
}
func (d *decisions) AcceptedAlert(context.Context, string) (server.AcceptedRun, error) {
	return server.AcceptedRun{}, server.ErrRunNotFound
}

func TestCLISendsTheAPIToken(t *testing.T) {
	const token = "cli-test-api-token-0123456789abcdef"
	st := storetest.SQLite(t)
	at := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	for _, id := range []string{"ap-0", "ap-1"} {
		if err := st.SaveApproval(context.Background(), &store.Approval{ID: id, AlertID: "a-1", WorkflowID: "playbook/a-1/malware",
			RunID: "run-1", Playbook: "malware", Step: "isolate", Operation: "edr.isolate_host", InputsJSON: `{"host_id":"h-1","comment":"<dc-01> & co"}`,
			ApproversJSON: `["role:tier2","ana"]`, Status: store.ApprovalPending, RequestedAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.RecordAlert(context.Background(), &store.Alert{ID: "a-1", WorkflowID: "alert/fp", Source: "ocsf",
		Status: store.AlertProcessing, Title: "Credential dumping from LSASS", Severity: "Critical", SeverityID: 5,
		AlertJSON: `{"device":{"hostname":"dc-01"},"file":{"name":"dumpert.exe","md5":"0123456789abcdef0123456789abcdef"},` +
			`"process":{"name":"dumpert.exe","cmd_line":"dumpert.exe -o d.bin"}}`,
		EventTime: at, ReceivedAt: at, LastSeenAt: at}, nil, nil); err != nil {
		t.Fatal(err)
	}
	tokens, err := server.NewAPITokens(map[string]string{"ana": token})
	if err != nil {
		t.Fatal(err)
	}
	ctl := &decisions{}
	url := apiServerFrom(t, server.Options{Alerts: st, Playbooks: st, Approvals: st, Control: ctl, Tokens: tokens})

	t.Setenv(apiTokenEnv, "")
	if code, out := runCLI(t, "approvals", "list", "--url", url); code != 1 || !strings.Contains(out, "HTTP 401") {
		t.Fatalf("without a token: exit %d: %s", code, out)
	}
	// A mounted file may hold the token; the variable and the file both set is a mistake.
	tokenFile := filepath.Join(t.TempDir(), "cli.token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(apiTokenEnv+"_FILE", tokenFile)
	if code, out := runCLI(t, "approvals", "list", "--url", url); code != 0 || !strings.Contains(out, "ap-0") {
		t.Fatalf("with a token file: exit %d: %s", code, out)
	}
	t.Setenv(apiTokenEnv, token)
	if code, out := runCLI(t, "approvals", "list", "--url", url); code != 1 || !strings.Contains(out, "set RAMPART_API_TOKEN or RAMPART_API_TOKEN_FILE, not both") ||
		strings.Contains(out, token) {
		t.Fatalf("with a token and a token file: exit %d: %s", code, out)
	}
	t.Setenv(apiTokenEnv+"_FILE", "")
	if code, out := runCLI(t, "approvals", "list", "--url", url); code != 0 || !strings.Contains(out, "ap-0") ||
		!strings.Contains(out, "dc-01 · Critical · Credential dumping from LSASS") || !strings.Contains(out, "role:tier2, ana") {
		t.Fatalf("list with a token: exit %d: %s", code, out)
	}
	// The inputs one to a line, each exactly as the action would get it.
	code, out := runCLI(t, "approvals", "show", "ap-0", "--url", url)
	for _, want := range []string{"edr.isolate_host on dc-01 · Critical · Credential dumping from LSASS\n", "\n  status          pending\n",
		"\n  inputs.comment  \"<dc-01> & co\"\n  inputs.host_id  \"h-1\"\n",
		"\n  step            isolate (playbook malware)\n", "\n  approvers       role:tier2, ana\n"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("approvals show: exit %d, want %q in:\n%s", code, want, out)
		}
	}
	var shown server.ApprovalView
	if code, out := runCLI(t, "approvals", "show", "ap-0", "--json", "--url", url); code != 0 || json.Unmarshal([]byte(out), &shown) != nil ||
		shown.ID != "ap-0" || shown.Alert == nil || shown.Alert.Hostname != "dc-01" {
		t.Fatalf("approvals show --json: exit %d: %s", code, out)
	}
	// The alert shows its approvals: what to run for a pending one, how a decided one ended.
	ap1, _ := st.GetApproval(context.Background(), "ap-1")
	ap1.Status, ap1.DecidedBy, ap1.Reason = store.ApprovalDenied, "bo", "a backup job"
	if err := st.SaveApproval(context.Background(), &ap1); err != nil {
		t.Fatal(err)
	}
	code, out = runCLI(t, "alert", "show", "a-1", "--url", url)
	for _, want := range []string{"\nApprovals\n", "pending: rampart approvals approve|deny ap-0\n", "denied by bo: a backup job\n",
		"dumpert.exe · 0123456789abcdef0123456789abcdef\n", "process   dumpert.exe · dumpert.exe -o d.bin\n"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("alert show: exit %d, want %q in:\n%s", code, want, out)
		}
	}
	// Webhook deliveries still sign with the source's secret.
	if code, out := runCLI(t, "alert", "send", ransomware, "--source", "crowdstrike", "--url", url, "--sources", examples+"/sources.yaml"); code != 0 {
		t.Fatalf("alert send: exit %d: %s", code, out)
	}
	// The server names who decides after the token; claiming another name fails.
	if code, out := runCLI(t, "approvals", "approve", "ap-0", "--url", url); code != 0 || !strings.Contains(out, "approved by ana") {
		t.Fatalf("approve: exit %d: %s", code, out)
	}
	if code, out := runCLI(t, "approvals", "deny", "ap-0", "--by", "bo", "--url", url); code != 1 || !strings.Contains(out, "HTTP 403") {
		t.Fatalf("deny as bo with ana's token: exit %d: %s", code, out)
	}
	if len(ctl.got) != 1 || ctl.got[0].By != "ana" || !ctl.got[0].Approved {
		t.Fatalf("decisions delivered: %+v", ctl.got)
	}
}

func TestHealthcheckAsksReadyz(t *testing.T) {
	var down atomic.Bool
	ops := httptest.NewServer(server.NewOps([]server.Check{{Name: "temporal", Check: func(context.Context) error {
		if down.Load() {
			return errors.New("connection refused")
		}
		return nil
	}}}, nil, nil).Handler())
	defer ops.Close()

	code, out := runCLI(t, "healthcheck", "--url", ops.URL+"/readyz")
	if code != 0 || !strings.Contains(out, `"status":"ready"`) {
		t.Fatalf("ready: exit %d: %s", code, out)
	}
	down.Store(true)
	code, out = runCLI(t, "healthcheck", "--url", ops.URL+"/readyz")
	if code != 1 || !strings.Contains(out, "503 Service Unavailable") || !strings.Contains(out, "connection refused") {
		t.Fatalf("not ready: exit %d: %s", code, out)
	}
	ops.Close()
	if code, out = runCLI(t, "healthcheck", "--url", ops.URL+"/readyz"); code != 1 || !strings.Contains(out, "connect") {
		t.Fatalf("nothing listening: exit %d: %s", code, out)
	}
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	defer slow.Close()
	if code, out = runCLI(t, "healthcheck", "--url", slow.URL, "--timeout", "200ms"); code != 1 || !strings.Contains(out, "deadline exceeded") {
		t.Fatalf("no answer: exit %d: %s", code, out)
	}
}

// TestPrintAlertState: `alert state` says, for a reader, what the runs answered,
// and which could not answer.
func TestPrintAlertState(t *testing.T) {
	until := time.Date(2026, 12, 8, 5, 0, 0, 0, time.UTC)
	v := server.AlertStateView{AlertID: "a-1", WorkflowID: "alert/f1", RunID: "a-1",
		State: workflows.AlertState{Stage: workflows.StageContain, Outcome: "processing", Duplicates: 2, DedupUntil: until,
			Waiting: "the store is unreachable since 04:55: waiting 1m0s before trying again",
			Action:  &workflows.ContainOutput{Integration: "crowdstrike", Operation: "isolate_host", Target: "h-1", Status: "contained"}},
		Playbooks: []server.PlaybookStateView{
			{Playbook: "malware", WorkflowID: "playbook/a-1/malware", RunID: "r-1", State: &workflows.PlaybookState{
				Playbook: "malware", Version: 3, Position: []string{"left", "right"}, Steps: 7,
				Vars: map[string]any{"b": []any{"x"}, "a": 1}}},
			{Playbook: "phish", WorkflowID: "playbook/a-1/phish", Error: "no worker answered"},
		}}
	var out bytes.Buffer
	printAlertState(&out, &v)
	got := out.String()
	for _, want := range []string{"Alert a-1\n", "  stage       contain · processing\n",
		"  waiting     the store is unreachable since 04:55: waiting 1m0s before trying again\n",
		"  action      crowdstrike.isolate_host h-1 · vendor contained\n",
		"  duplicates  2, the window closes at " + until.Local().Format(time.DateTime) + "\n",
		"\nPlaybook malware v3: running\n", "  at        left, right\n", "  steps     7 started\n",
		"  vars.a    1\n  vars.b    [\"x\"]\n", "\nPlaybook phish: not answered: no worker answered\n"} {
		if !strings.Contains(got, want) {
			t.Fatalf("no %q in:\n%s", want, got)
		}
	}
}
