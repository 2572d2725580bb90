package activities_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/rampart-soar/rampart/playbook"
	"github.com/rampart-soar/rampart/store"
	"github.com/rampart-soar/rampart/triage"
	"github.com/rampart-soar/rampart/workflows"
)

func applyPlaybook(t *testing.T, st *store.Store, src string, enabled bool) {
	t.Helper()
	var pb playbook.Playbook
	if err := yaml.Unmarshal([]byte(src), &pb); err != nil {
		t.Fatal(err)
	}
	def, hash, err := playbook.Canonical(&pb)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.ApplyPlaybook(context.Background(), pb.Name, hash, src, string(def), pb.Priority, "", enabled); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) selectPlaybooks(t *testing.T) workflows.SelectOutput {
	t.Helper()
	now := time.Now()
	var out workflows.SelectOutput
	get(t, f.env, workflows.ActivitySelectPlaybooks, workflows.DecideInput{
		Ref: f.ref, Alert: testAlert(), Detection: triage.Detection{Techniques: []string{"T1486"}},
		Enrichment:    triage.Enrichment{Complete: true, IOCHits: 1, Asset: triage.Asset{Found: true, Criticality: "high"}},
		EnrichStarted: now, EnrichFinished: now, DecideStarted: now,
	}, &out)
	return out
}

func TestSelectPlaybooks(t *testing.T) {
	f := newFixture(t)
	if sel := f.selectPlaybooks(t); sel.Configured || len(sel.Playbooks) != 0 {
		t.Fatalf("with no playbooks: %+v", sel)
	}
	if d, _ := f.store.GetAlert(context.Background(), "run-1"); len(d.Steps) != 1 {
		t.Fatalf("selection recorded steps although no playbook is enabled: %+v", d.Steps)
	}

	step := "\nsteps: [{id: s, succeed: ok}]\n"
	applyPlaybook(t, f.store, "name: broken\npriority: 1\ntrigger: {when: 'alert.attacks[5].technique.uid == \"x\"'}"+step, true)
	applyPlaybook(t, f.store, "name: caller\npriority: 10\ntrigger: {when: 'enrich.asset.criticality == \"high\"'}\nsteps: [{id: c, call: {playbook: helper}}]\n", true)
	applyPlaybook(t, f.store, "name: helper\ntrigger: {when: 'false'}\nsteps: [{id: c, call: {playbook: leaf}}]\n", false)
	applyPlaybook(t, f.store, "name: leaf\ntrigger: {when: 'false'}"+step, false)
	applyPlaybook(t, f.store, "name: nomatch\npriority: 15\ntrigger: {when: 'alert.severity_id < 3'}"+step, true)
	applyPlaybook(t, f.store, "name: stopper\npriority: 20\nstop_on_match: true\ntrigger: {when: '\"T1486\" in detect.techniques'}"+step, true)
	applyPlaybook(t, f.store, "name: late\npriority: 30\ntrigger: {when: 'true'}"+step, true)

	sel := f.selectPlaybooks(t)
	var names []string
	for _, p := range sel.Playbooks {
		names = append(names, p.Definition.Name)
	}
	if !sel.Configured || len(names) != 2 || names[0] != "caller" || names[1] != "stopper" {
		t.Fatalf("selected %v", names)
	}
	if _, ok := sel.Callees["helper"]; !ok || len(sel.Callees) != 2 || sel.Callees["leaf"].Version != 1 {
		t.Fatalf("callees = %+v", sel.Callees)
	}
	want := []workflows.TriggerResult{
		{Playbook: "broken", Version: 1}, {Playbook: "caller", Version: 1, Matched: true},
		{Playbook: "nomatch", Version: 1}, {Playbook: "stopper", Version: 1, Matched: true}, {Playbook: "late", Version: 1, Stopped: true},
	}
	if len(sel.Triggers) != len(want) {
		t.Fatalf("triggers = %+v", sel.Triggers)
	}
	for i, tr := range sel.Triggers {
		if tr.Error != "" != (i == 0) {
			t.Fatalf("trigger %d error = %q", i, tr.Error)
		}
		tr.Error = ""
		if tr != want[i] {
			t.Fatalf("trigger %d = %+v, want %+v", i, tr, want[i])
		}
	}
	d, _ := f.store.GetAlert(context.Background(), "run-1")
	if len(d.Steps) != 3 || d.Steps[1].Name != workflows.StageEnrich || d.Steps[2].Name != workflows.StageDecide || d.Alert.DecisionJSON == "" {
		t.Fatalf("recorded steps %+v, decision %s", d.Steps, d.Alert.DecisionJSON)
	}
}

// TestDecideResponse: one activity decides either way; the contain rule only
// when no playbook is enabled, and each way records its decision.
func TestDecideResponse(t *testing.T) {
	f := newFixture(t)
	decide := func() workflows.ResponseDecision {
		t.Helper()
		var d workflows.ResponseDecision
		get(t, f.env, workflows.ActivityDecideResponse, f.containableInput(), &d)
		return d
	}
	d := decide()
	if d.Selection.Configured || d.Verdict == nil || !d.Verdict.Contain {
		t.Fatalf("with no playbook enabled: %+v", d)
	}
	recorded, _ := f.store.GetAlert(context.Background(), "run-1")
	if !strings.Contains(recorded.Alert.DecisionJSON, `"contain":true`) {
		t.Fatalf("rule's decision not recorded: %s", recorded.Alert.DecisionJSON)
	}

	applyPlaybook(t, f.store, "name: any\ntrigger: {when: 'true'}\nsteps: [{id: s, succeed: ok}]\n", true)
	d = decide()
	if !d.Selection.Configured || len(d.Selection.Playbooks) != 1 || d.Verdict != nil {
		t.Fatalf("with a playbook enabled: %+v", d)
	}
	recorded, _ = f.store.GetAlert(context.Background(), "run-1")
	if !strings.Contains(recorded.Alert.DecisionJSON, `"matched":1`) {
		t.Fatalf("selection not recorded as the decision: %s", recorded.Alert.DecisionJSON)
	}
}
