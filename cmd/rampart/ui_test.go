package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampart-soar/rampart/integrations"
	"github.com/rampart-soar/rampart/server"
	"github.com/rampart-soar/rampart/store/storetest"
)

// requireBrowserEnv makes a missing Chromium or ChromeDriver a failure rather
// than a skip; CI sets it after installing them.
const requireBrowserEnv = "RAMPART_REQUIRE_BROWSER"

// TestUIApprovesAnAction drives the web UI in headless Chromium against
// `rampart dev`: the analyst opens the approval inbox, follows the isolation the
// malware playbook asks about to its alert, the domain controller's, approves it
// there, the host is contained, and the analyst keeps it so (no timed revert),
// then dry-runs another playbook on the alert and finds the approval among the
// approved ones.
func TestUIApprovesAnAction(t *testing.T) {
	browser := startBrowser(t)
	cfg := devConfig(t, 3*time.Second)
	cfg.PlaybooksDir = filepath.Join(examples, "playbooks")
	d := startDev(t, cfg)
	// The analyst has the inbox open before the alert arrives: it shows up by itself.
	browser.navigate(t, d.URL+"/#approvals")
	browser.waitText(t, "#approvals-empty", "Nothing is waiting for a decision.")
	acc := accepted(t, d.URL, d.Sources(), "ocsf", readFile(t, filepath.Join(examples, "alerts", "ocsf-dc-credential-dumping.json")))
	pending := waitApproval(t, d.URL, acc.AlertID)
	browser.waitText(t, "#nav-approvals", "Approvals (1)")
	row := fmt.Sprintf(`[id="approval-%s"]`, pending.ID)
	if got := browser.text(t, row+" td:nth-child(5)"); got != "edr.isolate_host" {
		t.Fatalf("the inbox shows action %q", got)
	}
	// The inputs, one to a line, name the host by its device id; the alert cell by name.
	if got := browser.text(t, row+" td:nth-child(6)"); !strings.Contains(got, "host_id: "+dcHost) {
		t.Fatalf("the inbox shows inputs %q", got)
	}
	if got := browser.text(t, row+" td:nth-child(3)"); got != "dc-01 · svc-backup · Credential dumping from LSASS Critical" {
		t.Fatalf("the inbox shows alert %q", got)
	}
	browser.element(t, row+" button.approve")
	// The alert's page shows what the inbox shows, with the same buttons.
	browser.click(t, row+" td:nth-child(3) a")
	row = fmt.Sprintf(`[id="alert-approval-%s"]`, pending.ID)
	if got := browser.text(t, row+" td:nth-child(3)"); got != "edr.isolate_host" {
		t.Fatalf("the alert's page shows action %q", got)
	}
	// The playbook run in flight says where it is, as the run itself answers.
	browser.waitTextThat(t, "#detail div.live", "say the run is at the approval", func(got string) bool {
		return strings.HasPrefix(got, "Now at isolate_with_approval · ")
	})
	// While the alert waits, its page refreshes itself; what the analyst picked in
	// the run form stays picked.
	browser.click(t, `#run-playbook option[value="phishing-report"]`)
	browser.click(t, "#run-playbook input[type=checkbox]")
	browser.click(t, "#detail h2") // focus away from the form, which holds refreshes off
	title := browser.element(t, "#detail h2")
	waitFor(t, "the alert's page to refresh", waitTimeout, func() bool {
		id, err := browser.find("#detail h2")
		return err == nil && id != title
	})
	if got := browser.property(t, "#run-playbook select", "value"); got != "phishing-report" {
		t.Fatalf("after a refresh the run form offers %v", got)
	}
	if got := browser.property(t, "#run-playbook input[type=checkbox]", "checked"); got != false {
		t.Fatalf("after a refresh the dry-run box is %v; the analyst had unticked it", got)
	}
	browser.click(t, "#run-playbook input[type=checkbox]") // a dry run again, for later

	browser.click(t, row+" button.approve")
	if q := browser.answerPrompt(t, "tier 2 confirmed the dump"); !strings.Contains(q, "Reason") {
		t.Fatalf("first prompt: %q", q)
	}
	if q := browser.answerPrompt(t, "ana"); !strings.Contains(q, "Your name") {
		t.Fatalf("second prompt: %q", q)
	}
	browser.waitText(t, row+" td:last-child", "approved by ana: tier 2 confirmed the dump")
	// The alert's page follows the run on its own until the alert settles.
	browser.waitText(t, "#playbook-malware-isolate-host", "Playbook malware-isolate-host v1: succeeded")

	waitFor(t, "the domain controller to be contained", waitTimeout, func() bool {
		h, _ := d.Simulator.Host(dcHost)
		return h.Status == integrations.HostContained
	})
	var decided server.ApprovalView
	if code := getJSON(t, d.URL+"/api/v1/approvals/"+pending.ID, &decided); code != 200 ||
		decided.Status != "approved" || decided.DecidedBy != "ana" || decided.Reason != "tier 2 confirmed the dump" {
		t.Fatalf("the approval: %d %+v", code, decided)
	}
	// The alert's page says how the playbook ended, and why.
	awaitAlert(t, d.URL, acc.AlertID, "the playbook run to finish, its revert scheduled", waitTimeout, func(a server.AlertDetail) bool {
		return len(a.Playbooks) == 1 && a.Playbooks[0].Run.CompletedAt != nil && hasStep(a, "isolate_with_approval.revert", "pending")
	})
	browser.refresh(t) // still on the alert's page
	browser.waitText(t, "#playbook-malware-isolate-host", "Playbook malware-isolate-host v1: succeeded")
	browser.waitText(t, "#playbook-malware-isolate-host + p", "isolated after approval")
	browser.waitText(t, row+" td:last-child", "approved by ana: tier 2 confirmed the dump")

	// The isolation lifts itself in 24 h unless kept; the analyst keeps it.
	if got := browser.text(t, "#reverts tr td:first-child"); got != "malware-isolate-host · isolate_with_approval" {
		t.Fatalf("the pending revert shows as %q", got)
	}
	browser.click(t, "#reverts button.keep")
	if q := browser.answerPrompt(t, "forensics first"); !strings.Contains(q, "Keep these actions") {
		t.Fatalf("keep prompt: %q", q)
	}
	browser.waitText(t, "#reverts span.kept", "kept by ana: malware-isolate-host/isolate_with_approval")
	awaitAlert(t, d.URL, acc.AlertID, "the revert to stand down", waitTimeout, func(a server.AlertDetail) bool {
		return hasStep(a, "isolate_with_approval.revert", "skipped")
	})
	browser.refresh(t)
	browser.waitText(t, "#playbook-malware-isolate-host + p + table tr:last-child td:nth-child(4)", "kept by ana: forensics first")
	// A failed step says the playbook went on past it (no threat-intel integration here).
	if got := browser.text(t, `#playbook-malware-isolate-host + p + table tr[data-step="ti"] td:nth-child(4)`); !strings.HasPrefix(got, "ti.lookup_hash: ") ||
		!strings.HasSuffix(got, " — the playbook went on (on_error: continue)") {
		t.Fatalf("the failed ti step says %q", got)
	}
	// Each step unfolds what it was given and what it returned.
	isolate := `#playbook-malware-isolate-host + p + table tr[data-step="isolate_with_approval"] td:last-child details`
	browser.click(t, isolate+":first-child summary")
	if got := browser.text(t, isolate+":first-child pre"); !strings.Contains(got, `"host_id": "`+dcHost+`"`) {
		t.Fatalf("the isolate step's input: %q", got)
	}
	browser.click(t, isolate+":last-child summary")
	if got := browser.text(t, isolate+":last-child pre"); !strings.Contains(got, `"status": "contained"`) {
		t.Fatalf("the isolate step's output: %q", got)
	}
	// The page says in lines what the alert is about, what the lookups found, how
	// the alert was decided and what was done.
	facts := browser.text(t, "#facts")
	for _, want := range []string{"dc-01 · 10.30.0.10 · " + dcHost, "svc-backup · svc-backup@corp.example",
		"dumpert.exe · dumpert.exe -o C:\\ProgramData\\d.bin", "T1003.001 LSASS Memory", "edr-lsass-read · confidence 85",
		"asset dc-01 (critical criticality, owner it-infra, protected)", "malware-isolate-host v1 matched", " after the event"} {
		if !strings.Contains(facts, want) {
			t.Fatalf("the alert's facts: want %q in %q", want, facts)
		}
	}
	if got := browser.text(t, "#actions thead"); got != "Action Target Status Vendor Calls Error or note" {
		t.Fatalf("the actions' headings: %q", got)
	}
	if got := browser.text(t, "#actions tbody tr:first-child"); !strings.HasPrefix(got, "crowdstrike.isolate_host "+dcHost+" succeeded vendor contained") {
		t.Fatalf("the alert's action: %q", got)
	}

	// The analyst runs another playbook on the alert, as a dry run (the default).
	browser.click(t, `#run-playbook option[value="benign-noise-autoclose"]`)
	browser.click(t, "#run-playbook button.run")
	if q := browser.answerPrompt(t, "would the noise rule close it"); !strings.Contains(q, "benign-noise-autoclose on this alert as a dry run") {
		t.Fatalf("run prompt: %q", q)
	}
	waitFor(t, "the run to start", waitTimeout, func() bool {
		return strings.HasPrefix(browser.text(t, "#run-playbook .run-result"), "started playbook/"+acc.AlertID+"/benign-noise-autoclose/manual-")
	})
	awaitAlert(t, d.URL, acc.AlertID, "the dry run to finish", waitTimeout, func(a server.AlertDetail) bool {
		return len(a.Playbooks) == 2 && a.Playbooks[1].Run.CompletedAt != nil
	})
	browser.refresh(t)
	browser.waitText(t, "#playbook-benign-noise-autoclose",
		"Playbook benign-noise-autoclose v1 (dry run; run by ana: would the noise rule close it): succeeded")

	// The inbox is empty now; the approved ones are a choice away, with who and why.
	browser.navigate(t, d.URL+"/#approvals")
	browser.waitText(t, "#approvals-empty", "Nothing is waiting for a decision.")
	browser.waitText(t, "#nav-approvals", "Approvals")
	browser.click(t, `#approval-status option[value="approved"]`)
	browser.waitText(t, fmt.Sprintf(`[id="approval-%s"] td:last-child`, pending.ID), "approved by ana: tier 2 confirmed the dump")
	if _, err := browser.find("#reverts"); err == nil {
		t.Fatal("the alert still shows a pending revert once kept")
	}

	// The list on screen takes in a new alert by itself; narrowed to the alerts
	// about the domain controller's host name, it shows that one alone.
	browser.navigate(t, d.URL+"/")
	browser.waitText(t, "#alerts tr:nth-child(1) td:nth-child(3)", "Credential dumping from LSASS")
	accepted(t, d.URL, d.Sources(), "crowdstrike", readFile(t, filepath.Join(examples, "alerts", "crowdstrike-pup.json")))
	browser.waitText(t, "#alerts tr:nth-child(2) td:nth-child(3)", "Credential dumping from LSASS")
	browser.typeText(t, `#filters input[name="entity"]`, "DC-01\ue007")
	browser.waitText(t, "#alerts tr:nth-child(1) td:nth-child(3)", "Credential dumping from LSASS")
	browser.waitText(t, "#alerts tr:nth-child(1) td:nth-child(4)", "dc-01 · svc-backup") // whom it is about
	if _, err := browser.find("#alerts tr:nth-child(2)"); err == nil {
		t.Fatal("the list about dc-01 shows another alert")
	}
	// Narrowed further to another rule's alerts, it shows none of dc-01's.
	browser.typeText(t, `#filters input[name="rule"]`, "PotentiallyUnwantedProgram\ue007")
	waitFor(t, "the list of dc-01's PotentiallyUnwantedProgram alerts to be empty", waitTimeout, func() bool {
		_, err := browser.find("#alerts tr:nth-child(1)")
		return err != nil
	})
}

// webDriver is one W3C WebDriver session with ChromeDriver: plain JSON over
// HTTP on loopback.
type webDriver struct {
	base    string // http://127.0.0.1:port/session/<id>
	timeout time.Duration
}

// TestUISaysWhenItCannotRefresh: with the database gone, the page on screen keeps
// what it last read and says, under the header, that it is not up to date and why.
func TestUISaysWhenItCannotRefresh(t *testing.T) {
	browser := startBrowser(t)
	d := startDev(t, devConfig(t, time.Second))
	acc := accepted(t, d.URL, d.Sources(), "crowdstrike", readFile(t, ransomware))
	awaitAlert(t, d.URL, acc.AlertID, "the alert to be recorded", waitTimeout, func(a server.AlertDetail) bool { return a.Status == "contained" })
	browser.navigate(t, d.URL+"/")
	browser.waitText(t, "#alerts tr:nth-child(1) td:nth-child(6)", "contained")
	// How long it took, from the webhook to contained, as the API's summary says it.
	if got := browser.text(t, "#alerts tr:nth-child(1) td:nth-child(7)"); !regexp.MustCompile(`^(\d+ ms|\d+\.\d s)$`).MatchString(got) {
		t.Fatalf("the alert took %q", got)
	}
	if err := d.Store.Close(); err != nil {
		t.Fatal(err)
	}
	browser.waitTextThat(t, "#stale", "say the page is not up to date", func(got string) bool {
		return strings.HasPrefix(got, "Not up to date: database is unavailable")
	})
	if got := browser.text(t, "#alerts tr:nth-child(1) td:nth-child(6)"); got != "contained" {
		t.Fatalf("the list on screen shows %q", got)
	}
}

// workersSeen answers who polls as set, safely for the server's goroutines.
type workersSeen struct {
	mu   sync.Mutex
	view server.WorkersView
}

func (w *workersSeen) Workers(context.Context) (server.WorkersView, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.view, nil
}

func (w *workersSeen) set(v server.WorkersView) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.view = v
}

// TestUISaysWhenNoWorkerPolls: with no worker polling the task queue, every page
// says so under the header (alerts wait in Temporal and the list alone would not
// say why); once one polls, the note goes.
func TestUISaysWhenNoWorkerPolls(t *testing.T) {
	browser := startBrowser(t)
	st := storetest.SQLite(t)
	lastPoll := time.Date(2026, 11, 28, 6, 0, 0, 0, time.UTC)
	workers := &workersSeen{view: server.WorkersView{TaskQueue: "rampart", Workers: []server.WorkerView{
		{Identity: "rampart-worker-1a2b", LastPoll: lastPoll},
	}}}
	url := apiServerFrom(t, server.Options{Alerts: st, Playbooks: st, Approvals: st, Workers: workers})
	browser.navigate(t, url+"/")
	browser.waitTextThat(t, "#no-workers", "say no worker polls", func(got string) bool {
		return strings.HasPrefix(got, "No worker has polled task queue rampart since ") &&
			strings.HasSuffix(got, ": alerts are accepted and wait in Temporal until one runs (rampart worker).")
	})
	workers.set(server.WorkersView{TaskQueue: "rampart", Polling: 1, Workers: []server.WorkerView{
		{Identity: "rampart-worker-3c4d", LastPoll: time.Now(), Polling: true},
	}})
	waitFor(t, "the note to go once a worker polls", waitTimeout, func() bool {
		return browser.property(t, "#no-workers", "hidden") == true
	})
}

// TestUISaysWhenDeliveriesAreRefused: a webhook delivery refused lately (a
// tool signing with a rotated secret) is said under the header on every page,
// with the answer the tool got.
func TestUISaysWhenDeliveriesAreRefused(t *testing.T) {
	browser := startBrowser(t)
	st := storetest.SQLite(t)
	url := apiServerFrom(t, server.Options{Alerts: st, Playbooks: st, Approvals: st})
	browser.navigate(t, url+"/")
	if got := browser.property(t, "#refused", "hidden"); got != true {
		t.Fatalf("a note before any refusal: hidden = %v", got)
	}
	for range 2 {
		if code, out := runCLI(t, "alert", "send", ransomware, "--source", "crowdstrike", "--url", url, "--secret", "rotated-away-long-ago"); code != 2 {
			t.Fatalf("a wrong secret: exit %d: %s", code, out)
		}
	}
	browser.waitTextThat(t, "#refused", "say crowdstrike's deliveries are refused", func(got string) bool {
		return strings.HasPrefix(got, "Webhook source crowdstrike had a delivery refused at ") &&
			strings.Contains(got, ": 401 invalid_signature, signature does not match the body (2 refused since ") &&
			!strings.Contains(got, "ocsf")
	})
}

// startBrowser runs ChromeDriver on a free loopback port and opens a headless
// Chromium session; both stop when the test ends.
func startBrowser(t *testing.T) *webDriver {
	t.Helper()
	if testing.Short() {
		t.Skip("browser: skipped with -short")
	}
	missing := func(what string) {
		if os.Getenv(requireBrowserEnv) == "1" {
			t.Fatalf("%s not found but %s=1", what, requireBrowserEnv)
		}
		t.Skipf("%s not found: skipping the browser test (Debian: apt-get install chromium chromium-driver)", what)
	}
	driverBin, err := exec.LookPath("chromedriver")
	if err != nil {
		missing("chromedriver")
	}
	chromium := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			chromium = p
			break
		}
	}
	if chromium == "" {
		missing("chromium")
	}
	port := freePort(t)
	cmd := exec.Command(driverBin, "--port="+strconv.Itoa(port), "--allowed-ips=127.0.0.1")
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	root := "http://127.0.0.1:" + strconv.Itoa(port)
	waitFor(t, "chromedriver to start", 30*time.Second, func() bool {
		resp, err := http.Get(root + "/status")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	})
	var session struct {
		SessionID string `json:"sessionId"`
	}
	caps := map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{
		"browserName": "chrome",
		// Prompts stay open for the test to answer.
		"unhandledPromptBehavior": "ignore",
		"goog:chromeOptions": map[string]any{
			"binary": chromium,
			"args":   []string{"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--user-data-dir=" + t.TempDir()},
		},
	}}}
	w := &webDriver{base: root + "/session", timeout: 30 * time.Second}
	if err := w.call(http.MethodPost, "", caps, &session); err != nil {
		t.Fatalf("new browser session: %v", err)
	}
	w.base += "/" + session.SessionID
	t.Cleanup(func() { _ = w.call(http.MethodDelete, "", nil, nil) })
	return w
}

// call makes one WebDriver request and decodes its "value".
func (w *webDriver) call(method, path string, body, into any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, w.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var out struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return fmt.Errorf("%s %s: %d: %w", method, path, resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %d: %s", method, path, resp.StatusCode, out.Value)
	}
	if into == nil {
		return nil
	}
	return json.Unmarshal(out.Value, into)
}

func (w *webDriver) navigate(t *testing.T, url string) {
	t.Helper()
	if err := w.call(http.MethodPost, "/url", map[string]string{"url": url}, nil); err != nil {
		t.Fatal(err)
	}
}

func (w *webDriver) refresh(t *testing.T) {
	t.Helper()
	if err := w.call(http.MethodPost, "/refresh", map[string]any{}, nil); err != nil {
		t.Fatal(err)
	}
}

// find looks up the element a CSS selector names, once.
func (w *webDriver) find(selector string) (string, error) {
	var ref map[string]string
	if err := w.call(http.MethodPost, "/element", map[string]string{"using": "css selector", "value": selector}, &ref); err != nil {
		return "", err
	}
	for _, id := range ref {
		return id, nil
	}
	return "", fmt.Errorf("%s: no element reference in %v", selector, ref)
}

// element waits for the element a CSS selector names and returns its reference.
func (w *webDriver) element(t *testing.T, selector string) string {
	t.Helper()
	deadline := time.Now().Add(w.timeout)
	for {
		id, err := w.find(selector)
		if err == nil {
			return id
		}
		if time.Now().After(deadline) {
			var page string
			_ = w.call(http.MethodGet, "/source", nil, &page)
			t.Fatalf("%s did not appear: %v\npage: %.3000s", selector, err, page)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (w *webDriver) click(t *testing.T, selector string) {
	t.Helper()
	if err := w.call(http.MethodPost, "/element/"+w.element(t, selector)+"/click", map[string]any{}, nil); err != nil {
		t.Fatal(err)
	}
}

// typeText types text into an input, as a user does; "\ue007" is Enter.
func (w *webDriver) typeText(t *testing.T, selector, text string) {
	t.Helper()
	if err := w.call(http.MethodPost, "/element/"+w.element(t, selector)+"/value", map[string]any{"text": text}, nil); err != nil {
		t.Fatal(err)
	}
}

func (w *webDriver) text(t *testing.T, selector string) string {
	t.Helper()
	var s string
	if err := w.call(http.MethodGet, "/element/"+w.element(t, selector)+"/text", nil, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// property reads a property of the element (an input's value, a checkbox's checked).
func (w *webDriver) property(t *testing.T, selector, name string) any {
	t.Helper()
	var v any
	if err := w.call(http.MethodGet, "/element/"+w.element(t, selector)+"/property/"+name, nil, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// waitText waits until the element's text is want.
func (w *webDriver) waitText(t *testing.T, selector, want string) {
	t.Helper()
	w.waitTextThat(t, selector, fmt.Sprintf("say %q", want), func(got string) bool { return got == want })
}

// waitTextThat waits until the element's text passes ok.
func (w *webDriver) waitTextThat(t *testing.T, selector, what string, ok func(string) bool) {
	t.Helper()
	waitFor(t, selector+" to "+what, w.timeout, func() bool {
		id, err := w.find(selector)
		var got string
		return err == nil && w.call(http.MethodGet, "/element/"+id+"/text", nil, &got) == nil && ok(got)
	})
}

// answerPrompt waits for a prompt, types answer and accepts it. It returns the
// prompt's question.
func (w *webDriver) answerPrompt(t *testing.T, answer string) string {
	t.Helper()
	var question string
	waitFor(t, "a prompt", w.timeout, func() bool {
		return w.call(http.MethodGet, "/alert/text", nil, &question) == nil
	})
	if err := w.call(http.MethodPost, "/alert/text", map[string]string{"text": answer}, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.call(http.MethodPost, "/alert/accept", map[string]any{}, nil); err != nil {
		t.Fatal(err)
	}
	return question
}
