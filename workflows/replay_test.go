package workflows_test

import (
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/worker"

	"github.com/rampart-soar/rampart/workflows"
)

// TestReplayRecordedHistories replays histories recorded from real runs on the
// embedded server (contained, no action, 50 duplicates) against today's workflow
// code. A failure means a change is not deterministic for runs in flight: guard it
// with workflow.GetVersion. Re-record with
// RAMPART_UPDATE_HISTORY=1 go test ./cmd/rampart -run 'TestEndToEnd(Containment|Duplicates)'
// only when the old histories can no longer be running anywhere.
func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil || len(files) < 3 {
		t.Fatalf("recorded histories: %v, %v", files, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			workflows.Register(r)
			if err := r.ReplayWorkflowHistoryFromJSONFile(nil, f); err != nil {
				t.Fatal(err)
			}
		})
	}
}
