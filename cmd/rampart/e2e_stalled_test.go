package main

import (
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/rampart-soar/rampart/cmd/rampart/internal/app"
	"github.com/rampart-soar/rampart/integrations"
	"github.com/rampart-soar/rampart/server"
	"github.com/rampart-soar/rampart/workflows"
)

// TestEndToEndStalledRunsAreReported deploys a bad build on the real embedded
// server: its playbook workflow panics, so two alerts' playbook runs make no
// progress, and its alert workflow panics on OCSF input, so a third alert is
// never recorded. The API, the CLI and the UI say which runs are stalled and why, and
// once the deploy is rolled back the runs carry on and the report goes away.
func TestEndToEndStalledRunsAreReported(t *testing.T) {
	cfg := devConfig(t, time.Hour)
	cfg.PlaybooksDir = playbookDir(t, map[string]string{"isolate.yaml": `name: isolate
trigger: {when: "alert.device.id != ''"}
steps:
  - id: isolate
    uses: edr.isolate_host
    with: {host_id: "${{ alert.device.id }}", comment: "rampart ${{ run.id }}"}
`})
	d := startDev(t, cfg)

	// The bad build: the same workflows and activities, but a playbook run panics
	// in its workflow code (the SDK's default policy blocks the run, as in production).
	reg, err := app.NewIntegrations(&d.Config)
	if err != nil {
		t.Fatal(err)
	}
	acts, err := app.NewActivities(&d.Config, d.Store, reg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	acts.PollInterval = 50 * time.Millisecond
	d.Worker.Stop()
	bad := worker.New(d.Client, cfg.TaskQueue, worker.Options{})
	workflows.Register(bad)
	acts.Register(bad)
	bad.RegisterWorkflowWithOptions(func(workflow.Context, workflows.PlaybookInput) (workflows.PlaybookResult, error) {
		panic("index out of range [3] with length 3")
	}, workflow.RegisterOptions{Name: workflows.PlaybookWorkflowName, DisableAlreadyRegisteredCheck: true})
	// ... and an alert workflow that fails on OCSF input at once, before it records anything.
	bad.RegisterWorkflowWithOptions(func(ctx workflow.Context, in workflows.AlertInput) (workflows.AlertResult, error) {
		if in.Alert.Source == "ocsf" {
			panic("runtime error: invalid memory address or nil pointer dereference")
		}
		return workflows.AlertWorkflow(ctx, in)
	}, workflow.RegisterOptions{Name: workflows.AlertWorkflowName, DisableAlreadyRegisteredCheck: true})
	if err := bad.Start(); err != nil {
		t.Fatal(err)
	}
	d.Worker = &app.Worker{Worker: bad} // stopped at the end with the rest

	pup := accepted(t, d.URL, d.Sources(), "crowdstrike", readFile(t, examples+"/alerts/crowdstrike-pup.json"))
	acc := accepted(t, d.URL, d.Sources(), "crowdstrike", readFile(t, ransomware))
	spray := accepted(t, d.URL, d.Sources(), "ocsf", readFile(t, examples+"/alerts/ocsf-password-spray.json"))
	awaitAlert(t, d.URL, pup.AlertID, "its playbook run reported stalled", waitTimeout, func(a server.AlertDetail) bool { return a.Stalled })
	a := awaitAlert(t, d.URL, acc.AlertID, "its playbook run reported stalled", waitTimeout, func(a server.AlertDetail) bool {
		return a.Stalled
	})
	if a.Status != "processing" || len(a.StalledRuns) != 1 {
		t.Fatalf("alert %s with stalled runs %+v", a.Status, a.StalledRuns)
	}
	r := a.StalledRuns[0]
	t.Logf("reported: %+v", r)
	if r.WorkflowType != workflows.PlaybookWorkflowName || r.AlertID != acc.AlertID ||
		r.WorkflowID != workflows.PlaybookRunID(acc.AlertID, "isolate") || r.Attempts < 2 || r.Since == nil ||
		!strings.Contains(r.Error, "index out of range [3] with length 3") || r.Problem == "" {
		t.Fatalf("stalled run %+v", r)
	}

	// The alert no worker could record says it was received, and why nothing more.
	unrecorded := awaitAlert(t, d.URL, spray.AlertID, "its own run reported stalled", waitTimeout, func(a server.AlertDetail) bool {
		return a.Stalled
	})
	if sr := unrecorded.StalledRuns; unrecorded.Status != server.AlertReceived || unrecorded.Summary != "" || len(sr) != 1 ||
		sr[0].WorkflowType != workflows.AlertWorkflowName || sr[0].AlertID != spray.AlertID || sr[0].RunID != spray.AlertID ||
		!strings.Contains(sr[0].Error, "nil pointer dereference") {
		t.Fatalf("the unrecorded alert: %+v, stalled runs %+v", unrecorded.AlertSummary, sr)
	}
	if code, out := runCLI(t, "alert", "show", spray.AlertID, "--url", d.URL); code != 0 ||
		!strings.HasPrefix(out, "An alert not recorded yet\n") || !regexp.MustCompile(`(?m)^\s*status\s+received$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^\s*stalled\s+AlertWorkflow: its workflow task keeps failing \(\d+ attempts since .+\): runtime error: invalid memory address or nil pointer dereference$`).MatchString(out) {
		t.Fatalf("rampart alert show: exit %d\n%s", code, out)
	}

	var list server.AlertList
	if code := getJSON(t, d.URL+"/api/v1/alerts", &list); code != http.StatusOK || len(list.Alerts) != 2 || !list.Alerts[0].Stalled || !list.Alerts[1].Stalled {
		t.Fatalf("the alert list does not mark the alerts stalled: %+v", list.Alerts)
	}
	var stalled server.StalledList
	if code := getJSON(t, d.URL+"/api/v1/stalled?limit=1", &stalled); code != http.StatusOK || len(stalled.Runs) != 1 || stalled.Total != 3 {
		t.Fatalf("GET /api/v1/stalled?limit=1: %+v", stalled)
	}
	if code := getJSON(t, d.URL+"/api/v1/stalled", &stalled); code != http.StatusOK || len(stalled.Runs) != 3 || stalled.Total != 3 {
		t.Fatalf("GET /api/v1/stalled: %+v", stalled)
	}
	for _, sr := range stalled.Runs {
		if sr.RunID == r.RunID && sr.Error != r.Error {
			t.Fatalf("GET /api/v1/stalled says %+v, the alert %+v", sr, r)
		}
	}
	code, out := runCLI(t, "alert", "stalled", "--url", d.URL)
	if code != 0 || !strings.Contains(out, acc.AlertID) || !strings.Contains(out, pup.AlertID) || !strings.Contains(out, spray.AlertID) ||
		!strings.Contains(out, "index out of range") || !strings.Contains(out, "nil pointer dereference") {
		t.Fatalf("rampart alert stalled: exit %d\n%s", code, out)
	}
	for _, host := range []string{ransomHost, pupHost} {
		if h, _ := d.Simulator.Host(host); h.Status == integrations.HostContained {
			t.Fatalf("a stalled playbook contained %s", host)
		}
	}
	t.Run("the UI says so", func(t *testing.T) {
		browser := startBrowser(t)
		browser.navigate(t, d.URL+"/")
		browser.waitText(t, "#alerts tr:nth-child(1) td:nth-child(6)", "processing (stalled)")
		browser.navigate(t, d.URL+"/#"+acc.AlertID)
		browser.waitTextThat(t, "#detail p.stalled", "say which run is stalled and why", func(got string) bool {
			return strings.HasPrefix(got, "Stalled: PlaybookWorkflow "+r.WorkflowID+": its workflow task") &&
				strings.Contains(got, "index out of range [3] with length 3")
		})
		// Whatever page is open, the header says runs are stalled, and leads to them.
		browser.waitText(t, "#nav-stalled", "Stalled (3)")
		browser.click(t, "#nav-stalled")
		browser.waitTextThat(t, "#stalled-rows", "list the stalled runs", func(got string) bool {
			return strings.Contains(got, acc.AlertID) && strings.Contains(got, pup.AlertID) && strings.Contains(got, spray.AlertID) &&
				strings.Count(got, "index out of range [3] with length 3") == 2 && strings.Contains(got, "nil pointer dereference")
		})
		browser.click(t, `#stalled-rows a[href="#`+acc.AlertID+`"]`)
		browser.waitTextThat(t, "#detail p.stalled", "the alert's page", func(got string) bool { return strings.Contains(got, r.WorkflowID) })
		// The alert no worker could record says so, and why.
		browser.navigate(t, d.URL+"/#"+spray.AlertID)
		browser.waitText(t, "#detail h2", "An alert not recorded yet")
		browser.waitTextThat(t, "#detail p.stalled", "say why it is not recorded", func(got string) bool {
			return strings.HasPrefix(got, "Stalled: AlertWorkflow ") && strings.Contains(got, "nil pointer dereference")
		})
	})

	// Roll back: a worker of the good build takes the run's next attempt.
	bad.Stop()
	good, err := app.StartWorker(d.Client, cfg.TaskQueue, acts, worker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d.Worker = good
	a = awaitAlert(t, d.URL, acc.AlertID, "the run to carry on once rolled back", 2*waitTimeout, func(a server.AlertDetail) bool {
		return a.Status == "contained" && !a.Stalled
	})
	awaitAlert(t, d.URL, pup.AlertID, "the other run to carry on", waitTimeout, func(a server.AlertDetail) bool {
		return a.Status == "contained" && !a.Stalled
	})
	awaitAlert(t, d.URL, spray.AlertID, "the unrecorded alert to be recorded and decided", waitTimeout, func(a server.AlertDetail) bool {
		return a.Status == "no_action" && !a.Stalled && len(a.Steps) > 0
	})
	for _, host := range []string{ransomHost, pupHost} {
		if h, _ := d.Simulator.Host(host); h.Status != integrations.HostContained || len(a.StalledRuns) != 0 {
			t.Fatalf("host %+v, stalled runs %+v", h, a.StalledRuns)
		}
	}
	waitFor(t, "the stall report to go", waitTimeout, func() bool {
		var now server.StalledList
		return getJSON(t, d.URL+"/api/v1/stalled", &now) == http.StatusOK && len(now.Runs) == 0 && now.Total == 0
	})
	if code, out = runCLI(t, "alert", "stalled", "--url", d.URL); code != 0 || !strings.Contains(out, "No run is stalled.") {
		t.Fatalf("rampart alert stalled: exit %d\n%s", code, out)
	}
}
