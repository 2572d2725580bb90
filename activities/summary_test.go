package activities

import (
	"strings"
	"testing"

	"github.com/rampart-soar/rampart/workflows"
)

func TestOutcomeSummarySaysWhy(t *testing.T) {
	for _, c := range []struct {
		in   workflows.FinishInput
		want string
	}{
		{workflows.FinishInput{Outcome: workflows.OutcomeContained}, "contained: contain_when matched"},
		{workflows.FinishInput{Outcome: workflows.OutcomeNoAction, SkipContain: "no playbook trigger matched"}, "no playbook trigger matched"},
		{workflows.FinishInput{Outcome: workflows.OutcomeResponded, Playbooks: []workflows.PlaybookRunState{
			{Playbook: "benign-noise-autoclose", Status: "succeeded", Message: "auto-closed: PUP with no IOC hit"},
			{Playbook: "notify", Status: "succeeded"},
		}}, "benign-noise-autoclose succeeded: auto-closed: PUP with no IOC hit; notify succeeded"},
		{workflows.FinishInput{Outcome: workflows.OutcomeFailed, Error: "respond: playbook malware failed", Playbooks: []workflows.PlaybookRunState{
			{Playbook: "malware", Status: "failed", Message: "isolate: HTTP 403"},
		}}, "malware failed: isolate: HTTP 403; failed: respond: playbook malware failed"},
		// The response stage failing because a run failed: said once.
		{workflows.FinishInput{Outcome: workflows.OutcomeFailed, FailedStage: workflows.StageContain,
			Error: "playbooks failed: malware: isolate: HTTP 403", Playbooks: []workflows.PlaybookRunState{
				{Playbook: "malware", Status: "failed", Message: "isolate: HTTP 403"},
				{Playbook: "notify", Status: "succeeded"},
			}}, "malware failed: isolate: HTTP 403; notify succeeded"},
		{workflows.FinishInput{Outcome: workflows.OutcomeResponded, Playbooks: []workflows.PlaybookRunState{
			{Playbook: "chatty", Status: "succeeded", Message: strings.Repeat("é", 1000)},
		}}, "chatty succeeded: " + strings.Repeat("é", maxSummary-len("chatty succeeded: ")-1) + "…"},
	} {
		if got := outcomeSummary(c.in); got != c.want {
			t.Errorf("outcomeSummary(%+v) = %q, want %q", c.in, got, c.want)
		}
	}
}
