package server

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/rampart-soar/rampart/policy"
	"github.com/rampart-soar/rampart/store"
	"github.com/rampart-soar/rampart/triage"
	"github.com/rampart-soar/rampart/workflows"
)

// The explainers below turn recorded JSON into the lines a reader wants, so the
// web UI and the CLI say the same thing. Each answers "" when it has nothing to
// say: no record yet, or one it cannot read.

// explainEnrichment says what the lookups found, in a line.
func explainEnrichment(raw string) string {
	var e triage.Enrichment
	if raw == "" || json.Unmarshal([]byte(raw), &e) != nil {
		return ""
	}
	var parts []string
	if e.Asset.Found {
		details := []string{or(e.Asset.Criticality, "-") + " criticality"}
		if e.Asset.Owner != "" {
			details = append(details, "owner "+e.Asset.Owner)
		}
		if e.Asset.Protected {
			details = append(details, "protected")
		}
		parts = append(parts, fmt.Sprintf("asset %s (%s)", or(e.Asset.Hostname, "-"), strings.Join(details, ", ")))
	} else {
		parts = append(parts, "not in the inventory")
	}
	hits := fmt.Sprintf("%d IOC hit(s)", e.IOCHits)
	if len(e.IOCs) > 0 {
		iocs := make([]string, 0, len(e.IOCs))
		for _, m := range e.IOCs {
			iocs = append(iocs, m.Type+" "+m.Value)
		}
		hits += ": " + strings.Join(iocs, ", ")
	}
	parts = append(parts, hits, fmt.Sprintf("%d prior alert(s) in 24 h", e.PriorAlerts))
	if !e.Complete {
		parts = append(parts, "incomplete: "+strings.Join(e.Errors, "; "))
	}
	return strings.Join(parts, " · ")
}

// explainDecision says how the alert was decided: which playbooks' triggers
// matched, or the contain rule's verdict.
func explainDecision(raw string) string {
	if raw == "" {
		return ""
	}
	var selection struct {
		Playbooks []workflows.TriggerResult `json:"playbooks"`
	}
	if json.Unmarshal([]byte(raw), &selection) == nil && selection.Playbooks != nil {
		parts := make([]string, 0, len(selection.Playbooks))
		for _, t := range selection.Playbooks {
			outcome := "no match"
			switch {
			case t.Stopped:
				outcome = "not evaluated (stop_on_match)"
			case t.Error != "":
				outcome = "error: " + t.Error
			case t.Matched:
				outcome = "matched"
			}
			parts = append(parts, fmt.Sprintf("%s v%d %s", t.Playbook, t.Version, outcome))
		}
		return strings.Join(parts, "; ")
	}
	var v policy.Verdict
	if json.Unmarshal([]byte(raw), &v) == nil && v.Expression != "" {
		return fmt.Sprintf("contain rule: %s (%s)", v.Reason, v.Expression)
	}
	return raw // a form this code does not know: as recorded
}

// runNote says how a playbook run was started, when not by a trigger in earnest:
// "dry run; run by ana: why".
func runNote(r *store.Run) string {
	var notes []string
	if r.DryRun {
		notes = append(notes, "dry run")
	}
	if r.RequestedBy != "" {
		by := "run by " + r.RequestedBy
		if r.RequestReason != "" {
			by += ": " + r.RequestReason
		}
		notes = append(notes, by)
	}
	return strings.Join(notes, "; ")
}

// stepNote is what a step's record says beyond its status and error: where the
// playbook went after a failure the step's on_error handled; for a revert an
// analyst kept, who kept it and why.
func stepNote(st store.Step) string {
	if st.Note != "" {
		return st.Note
	}
	if !strings.HasSuffix(st.Name, workflows.RevertStepSuffix) || st.Status != store.StatusSkipped {
		return ""
	}
	var out workflows.KeptRevert
	if json.Unmarshal([]byte(st.OutputJSON), &out) != nil || out.Reason == "" {
		return ""
	}
	if out.Note != "" {
		return out.Reason + ": " + out.Note
	}
	return out.Reason
}

func or(s, otherwise string) string {
	if s == "" {
		return otherwise
	}
	return s
}
