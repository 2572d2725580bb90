package pbtest

import "testing"

// TestDiffLines: a step or action missing, added or changed shows as that line
// alone, the rest in place, as diff shows it.
func TestDiffLines(t *testing.T) {
	for name, c := range map[string]struct {
		want, got []string
		diff      string
	}{
		"equal":   {[]string{"a", "b"}, []string{"a", "b"}, ""},
		"none":    {nil, nil, ""},
		"added":   {[]string{"a", "b", "c"}, []string{"a", "x", "b", "c"}, "      a\n    + x\n      b\n      c"},
		"missing": {[]string{"a", "b", "c"}, []string{"a", "c"}, "      a\n    - b\n      c"},
		"changed": {[]string{"a", "b: skipped", "c"}, []string{"a", "b: failed", "c"}, "      a\n    - b: skipped\n    + b: failed\n      c"},
		"all new": {nil, []string{"a"}, "    + a"},
		"reordered": {[]string{"a", "b", "c"}, []string{"b", "a", "c"},
			"    - a\n      b\n    + a\n      c"},
	} {
		if got := diffLines(c.want, c.got); got != c.diff {
			t.Errorf("%s: diff\n%s\nwant\n%s", name, got, c.diff)
		}
	}
}

// TestCompareActions: a call that meets its expectation reads as the expectation
// (only the inputs it names), so an extra call stands out alone.
func TestCompareActions(t *testing.T) {
	yes := true
	want := []ExpectedAction{
		{Uses: "ti.lookup_hash"},
		{Uses: "edr.isolate_host", With: map[string]any{"host_id": "h-1"}, Step: "isolate"},
		{Uses: "chat.post_message", Simulated: &yes},
	}
	calls := []Call{
		{Step: "ti", Operation: "ti.lookup_hash", Inputs: map[string]any{"hash": "abc"}},
		{Step: "page", Operation: "chat.post_message", Inputs: map[string]any{"channel": "#oncall"}},
		{Step: "isolate", Operation: "edr.isolate_host", Inputs: map[string]any{"host_id": "h-1", "comment": "c"}},
		{Step: "notify", Operation: "chat.post_message", Inputs: map[string]any{"channel": "#soc"}, Simulated: true},
	}
	if d := compareActions(want, calls); d != "      ti.lookup_hash\n"+
		"    + chat.post_message {\"channel\":\"#oncall\"} at step page\n"+
		"      edr.isolate_host {\"host_id\":\"h-1\"} at step isolate\n"+
		"      chat.post_message (simulated: true)" {
		t.Errorf("diff:\n%s", d)
	}
	// The isolation at another step, and the post not simulated: both differ.
	calls = []Call{calls[0], {Step: "again", Operation: "edr.isolate_host", Inputs: map[string]any{"host_id": "h-1"}},
		{Step: "notify", Operation: "chat.post_message"}}
	if d := compareActions(want, calls); d != "      ti.lookup_hash\n"+
		"    - edr.isolate_host {\"host_id\":\"h-1\"} at step isolate\n"+
		"    - chat.post_message (simulated: true)\n"+
		"    + edr.isolate_host {\"host_id\":\"h-1\"} at step again\n"+
		"    + chat.post_message at step notify" {
		t.Errorf("diff:\n%s", d)
	}
	if d := compareActions(want[:1], calls[:1]); d != "" {
		t.Errorf("equal: %q", d)
	}
}
