package server

import (
	"testing"
	"time"

	"github.com/rampart-soar/rampart/store"
)

func TestExplainers(t *testing.T) {
	for _, c := range []struct {
		name, got, want string
	}{
		{"enrichment of a protected asset with IOC hits",
			explainEnrichment(`{"asset":{"found":true,"hostname":"dc-01","criticality":"critical","owner":"it-infra","protected":true},` +
				`"ioc_hits":2,"iocs":[{"type":"sha256","value":"abc"},{"type":"domain","value":"evil.example"}],"prior_alerts":3,"complete":true}`),
			"asset dc-01 (critical criticality, owner it-infra, protected) · 2 IOC hit(s): sha256 abc, domain evil.example · 3 prior alert(s) in 24 h"},
		{"enrichment of an unknown host, a lookup failed",
			explainEnrichment(`{"asset":{"found":false},"ioc_hits":0,"prior_alerts":0,"complete":false,"errors":["ioc lookup: timeout"]}`),
			"not in the inventory · 0 IOC hit(s) · 0 prior alert(s) in 24 h · incomplete: ioc lookup: timeout"},
		{"no enrichment yet", explainEnrichment(""), ""},
		{"unreadable enrichment", explainEnrichment("not json"), ""},
		{"playbook triggers",
			explainDecision(`{"matched":1,"playbooks":[{"playbook":"noise","version":2,"matched":true},` +
				`{"playbook":"ransom","version":1,"stopped":true},{"playbook":"bad","version":3,"error":"no such field"},{"playbook":"phish","version":1}]}`),
			"noise v2 matched; ransom v1 not evaluated (stop_on_match); bad v3 error: no such field; phish v1 no match"},
		{"the contain rule",
			explainDecision(`{"contain":false,"expression":"enrich.ioc_hits > 0","reason":"rule did not match"}`),
			"contain rule: rule did not match (enrich.ioc_hits > 0)"},
		{"a decision of another form", explainDecision(`{"other":1}`), `{"other":1}`},
		{"no decision yet", explainDecision(""), ""},
		{"a kept revert", stepNote(store.Step{Name: "block.revert", Status: store.StatusSkipped,
			OutputJSON: `{"kept_by":"ana","note":"forensics first","reason":"kept by ana"}`}), "kept by ana: forensics first"},
		{"a revert kept before keepers were named", stepNote(store.Step{Name: "block.revert", Status: store.StatusSkipped,
			OutputJSON: `{"reason":"kept by an analyst"}`}), "kept by an analyst"},
		{"a revert that ran", stepNote(store.Step{Name: "block.revert", Status: store.StatusSucceeded, OutputJSON: `{"reason":"x"}`}), ""},
		{"another skipped step", stepNote(store.Step{Name: "block", Status: store.StatusSkipped, OutputJSON: `{"reason":"x"}`}), ""},
		{"a run a trigger started", runNote(&store.Run{}), ""},
		{"a dry run started on demand", runNote(&store.Run{DryRun: true, RequestedBy: "ana", RequestReason: "try v2"}), "dry run; run by ana: try v2"},
		{"a live run started on demand, no reason", runNote(&store.Run{RequestedBy: "bo"}), "run by bo"},
	} {
		if c.got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.name, c.got, c.want)
		}
	}
}

func TestSpokenDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                                 "0 ms",
		850 * time.Millisecond:            "850 ms",
		2449 * time.Millisecond:           "2.4 s",
		3*time.Minute + 5*time.Second:     "3 min 5 s",
		2*time.Hour + 10*time.Minute:      "2 h 10 min",
		47*time.Hour + 59*time.Minute:     "47 h 59 min",
		6*24*time.Hour + 4*time.Hour + 30: "6 days 4 h",
	} {
		if got := SpokenDuration(d); got != want {
			t.Errorf("SpokenDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
