package workflows_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/rampart-soar/rampart/workflows"
)

// TestReplayRecordedHistories replays histories recorded from real runs on the
// embedded server (alerts contained, no action, 50 duplicates, through playbooks;
// playbook runs with a parallel foreach, with an approval and a revert, and with
// a parallel step whose timeout cancelled its branches; a timed revert an analyst
// kept; an alert that waited out a store outage; an alert cancelled while its
// playbook waited for an approval; an alert run reset to its last task while its
// playbook waited) against
// today's workflow code. A failure means a change is not deterministic for
// runs in flight: guard it with workflow.GetVersion. Runs of today's code are
// re-recorded with
// RAMPART_UPDATE_HISTORY=1 go test ./cmd/rampart -run 'TestEndToEnd(Containment|DuplicatesFoldIntoOneWorkflow|Playbooks|StoreOutage|CancelledWork|RunsStoppedInTemporal|ResetRunCarriesOn)$'
// and *.vN.json keep runs recorded at version N of a change, for as long as such
// runs can be in flight (alert_contained.unclaimed.json: a run recorded before the
// decision claimed its isolation).
func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil || len(files) < 3 {
		t.Fatalf("recorded histories: %v, %v", files, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			// Histories record the workflow id beside the events: child workflow ids
			// derive from it, so replay runs under the original one.
			var original struct {
				WorkflowID string `json:"workflowId"`
			}
			if err := json.Unmarshal(data, &original); err != nil {
				t.Fatal(err)
			}
			hist, err := client.HistoryFromJSON(bytes.NewReader(data), client.HistoryJSONOptions{})
			if err != nil {
				t.Fatal(err)
			}
			r := worker.NewWorkflowReplayer()
			workflows.Register(r)
			err = r.ReplayWorkflowHistoryWithOptions(nil, hist, worker.ReplayWorkflowHistoryOptions{
				OriginalExecution: workflow.Execution{ID: original.WorkflowID},
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}
