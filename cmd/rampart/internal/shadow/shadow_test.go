package shadow

import (
	"slices"
	"testing"

	"github.com/rampart-soar/rampart/server"
)

func TestCompareClassifies(t *testing.T) {
	ran := server.ReplaySide{Version: 1, Triggered: true, Status: "succeeded",
		Steps: []string{"host: succeeded", "gate: succeeded"}, Actions: []string{`gate edr.isolate_host {"host_id":"h1"}`}}
	for name, c := range map[string]struct {
		replayed server.ReplaySide
		verdict  string
		diffs    []string
	}{
		"the same decisions, branches in another order": {
			server.ReplaySide{Version: 2, Triggered: true, Status: "succeeded",
				Steps: []string{"gate: succeeded", "host: succeeded"}, Actions: ran.Actions},
			server.ReplaySame, nil,
		},
		"a skipped action": {
			server.ReplaySide{Version: 2, Triggered: true, Status: "succeeded", Steps: []string{"host: succeeded", "gate: skipped"}},
			server.ReplayChanged,
			[]string{"- step gate: succeeded", "+ step gate: skipped", `- action gate edr.isolate_host {"host_id":"h1"}`},
		},
		"a run that now fails": {
			server.ReplaySide{Version: 2, Triggered: true, Status: "failed", Steps: []string{"host: failed"}},
			server.ReplayNewFailure,
			[]string{"status: succeeded → failed", "- step gate: succeeded", "- step host: succeeded", "+ step host: failed",
				`- action gate edr.isolate_host {"host_id":"h1"}`},
		},
		"no longer triggered": {
			server.ReplaySide{Version: 2},
			server.ReplayChanged,
			[]string{"trigger: ran true, replayed false", "status: succeeded → not run", "- step gate: succeeded", "- step host: succeeded",
				`- action gate edr.isolate_host {"host_id":"h1"}`},
		},
	} {
		verdict, diffs := compare(ran, c.replayed)
		if verdict != c.verdict || !slices.Equal(diffs, c.diffs) {
			t.Errorf("%s: %s %q, want %s %q", name, verdict, diffs, c.verdict, c.diffs)
		}
	}
	if v, d := compare(server.ReplaySide{}, server.ReplaySide{Version: 2}); v != server.ReplaySame || d != nil {
		t.Errorf("triggered by neither: %s %v", v, d)
	}
}

func TestSameInputsIgnoresRunIDs(t *testing.T) {
	if !sameInputs(`{"comment":"rampart run-9","host_id":"h1"}`, "run-9", map[string]any{"host_id": "h1", "comment": "rampart " + testRunID}) {
		t.Fatal("the same call under two run ids differs")
	}
	if sameInputs(`{"host_id":"h1"}`, "run-9", map[string]any{"host_id": "h2"}) {
		t.Fatal("different inputs match")
	}
}
