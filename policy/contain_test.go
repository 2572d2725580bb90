package policy_test

import (
	"strings"
	"testing"

	"github.com/expr-lang/expr"

	"github.com/rampart-soar/rampart/policy"
	"github.com/rampart-soar/rampart/schemas"
	"github.com/rampart-soar/rampart/triage"
)

func env(iocHits, severity int, protected bool) policy.Env {
	return policy.Env{
		Alert: schemas.Alert{SeverityID: severity, Device: schemas.Device{ID: "dev-1"}},
		Enrich: triage.Enrichment{
			Complete: true,
			IOCHits:  iocHits,
			Asset:    triage.Asset{Found: true, Protected: protected},
		},
	}
}

func TestContainRuleDecidesAndExplains(t *testing.T) {
	rule, err := policy.CompileContainRule(policy.DefaultContainWhen)
	if err != nil {
		t.Fatal(err)
	}
	v, err := rule.Evaluate(env(2, 5, false))
	if err != nil {
		t.Fatal(err)
	}
	if !v.Contain || !v.RuleMatched || v.Guardrail != "" {
		t.Fatalf("verdict = %+v", v)
	}
	want := map[string]any{"enrich.ioc_hits": 2, "enrich.asset.protected": false, "alert.severity_id": 5}
	if len(v.Inputs) != len(want) {
		t.Fatalf("inputs = %v, want %v", v.Inputs, want)
	}
	for k, w := range want {
		if v.Inputs[k] != w {
			t.Fatalf("input %s = %v, want %v", k, v.Inputs[k], w)
		}
	}
	if v, _ := rule.Evaluate(env(0, 5, false)); v.Contain || v.RuleMatched {
		t.Fatalf("no IOC hit must not contain: %+v", v)
	}
	if v, _ := rule.Evaluate(env(1, 3, false)); v.Contain {
		t.Fatalf("medium severity must not contain: %+v", v)
	}
}

func TestGuardrailsOverrideTheRule(t *testing.T) {
	rule, err := policy.CompileContainRule(`alert.severity_id >= 4`) // a rule that forgets protection
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		env       policy.Env
		guardrail string
	}{
		"protected asset": {env(1, 5, true), "protected_asset"},
		"incomplete enrichment": {func() policy.Env {
			e := env(1, 5, false)
			e.Enrich.Complete, e.Enrich.Errors = false, []string{"asset: timeout"}
			return e
		}(), "enrichment_incomplete"},
		"no device id": {func() policy.Env {
			e := env(1, 5, false)
			e.Alert.Device.ID = ""
			return e
		}(), "no_device_id"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			v, err := rule.Evaluate(c.env)
			if err != nil {
				t.Fatal(err)
			}
			if v.Contain || !v.RuleMatched || v.Guardrail != c.guardrail {
				t.Fatalf("verdict = %+v, want guardrail %s", v, c.guardrail)
			}
		})
	}
	// The inventory's device id stands in for a missing one on the alert.
	e := env(1, 5, false)
	e.Alert.Device.ID, e.Enrich.Asset.DeviceID = "", "inv-1"
	if v, _ := rule.Evaluate(e); !v.Contain || policy.ContainTarget(e.Alert, e.Enrich) != "inv-1" {
		t.Fatalf("inventory device id not used: %+v", v)
	}
}

func TestCompileErrorsArePositioned(t *testing.T) {
	for expr, want := range map[string]string{
		`enrich.ioc_hitz > 0`:          "ioc_hitz",
		`alert.severity_id`:            "bool",
		`alert.severity_id >= "high"`:  "mismatched types",
		`enrich.asset.protected &&`:    "unexpected",
		``:                             "empty",
		`detect.features.lolbin || no`: "unknown name no",
	} {
		_, err := policy.CompileContainRule(expr)
		if err == nil {
			t.Errorf("%q compiled", expr)
			continue
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %q does not mention %q", expr, err, want)
		}
		// A wrong result type concerns the whole expression, so it has no position.
		if expr != "" && want != "bool" && !strings.Contains(err.Error(), "(1:") {
			t.Errorf("%q: error %q has no line:column", expr, err)
		}
	}
}

func BenchmarkContainRule(b *testing.B) {
	rule, err := policy.CompileContainRule(policy.DefaultContainWhen)
	if err != nil {
		b.Fatal(err)
	}
	e := env(1, 5, false)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rule.Evaluate(e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkExprBaseline runs the same compiled expression with expr alone: no
// explanation of its inputs, no guardrails. BenchmarkContainRule is reported
// against it.
func BenchmarkExprBaseline(b *testing.B) {
	program, err := expr.Compile(policy.DefaultContainWhen, expr.Env(policy.Env{}), expr.AsBool())
	if err != nil {
		b.Fatal(err)
	}
	e := env(1, 5, false)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := expr.Run(program, e); err != nil {
			b.Fatal(err)
		}
	}
}
