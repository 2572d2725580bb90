package workflows_test

import (
	"reflect"
	"testing"

	"github.com/rampart-soar/rampart/workflows"
)

func TestSecretPlaceholders(t *testing.T) {
	p := workflows.SecretPlaceholder
	in := map[string]any{
		"auth":  "Bearer " + p("token"),
		"pair":  p("a") + ":" + p("b") + "!",
		"list":  []any{p("token"), 3.0},
		"plain": "no secret",
	}
	got := workflows.RedactSecrets(in)
	want := map[string]any{
		"auth": "Bearer [secret token]", "pair": "[secret a]:[secret b]!",
		"list": []any{"[secret token]", 3.0}, "plain": "no secret",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("redacted = %#v", got)
	}
	resolved := workflows.ReplaceSecrets(in, func(name string) string { return "<" + name + ">" })
	if resolved.(map[string]any)["pair"] != "<a>:<b>!" || in["auth"] != "Bearer "+p("token") {
		t.Fatalf("resolved = %#v; the input changed: %v", resolved, in["auth"] != "Bearer "+p("token"))
	}
	if workflows.RedactSecrets(nil) != nil {
		t.Fatal("nil redacts to nil")
	}
}
