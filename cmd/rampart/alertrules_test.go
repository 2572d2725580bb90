package main

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"gopkg.in/yaml.v3"

	"github.com/rampart-soar/rampart/server/telemetry/telemetrytest"
)

const alertRulesFile = examples + "/prometheus/rampart-alerts.yml"

// requirePromtoolEnv makes a missing promtool a failure rather than a skip of the
// rules' PromQL check; CI sets it after unpacking promtool.
const requirePromtoolEnv = "RAMPART_REQUIRE_PROMTOOL"

// alertRule is one rule of a Prometheus rule file.
type alertRule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func readAlertRules(t *testing.T) []alertRule {
	t.Helper()
	data, err := os.ReadFile(alertRulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Groups []struct {
			Name  string      `yaml:"name"`
			Rules []alertRule `yaml:"rules"`
		} `yaml:"groups"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true) // a misspelt key Prometheus would refuse
	if err := dec.Decode(&file); err != nil {
		t.Fatalf("%s: %v", alertRulesFile, err)
	}
	var rules []alertRule
	for _, g := range file.Groups {
		if g.Name == "" {
			t.Errorf("a group without a name")
		}
		rules = append(rules, g.Rules...)
	}
	return rules
}

// TestAlertRulesFile checks the shipped rules' shape: each names its alert, has an
// expression, a duration Prometheus reads, a severity and a summary; and, with
// promtool on the PATH, that Prometheus loads them (PromQL and templates).
// TestServerAndWorkerProcesses checks their metrics against what the processes export.
func TestAlertRulesFile(t *testing.T) {
	if promtool, err := exec.LookPath("promtool"); err == nil {
		if out, err := exec.Command(promtool, "check", "rules", alertRulesFile).CombinedOutput(); err != nil {
			t.Errorf("promtool check rules: %v\n%s", err, out)
		}
	} else if os.Getenv(requirePromtoolEnv) == "1" {
		t.Errorf("promtool is not on the PATH and %s=1", requirePromtoolEnv)
	} else {
		t.Log("promtool is not on the PATH: the rules' PromQL is not checked (Debian: the prometheus package has it)")
	}
	rules := readAlertRules(t)
	if len(rules) < 5 {
		t.Fatalf("%d rules", len(rules))
	}
	seen := map[string]bool{}
	for _, r := range rules {
		if r.Alert == "" || seen[r.Alert] || strings.TrimSpace(r.Expr) == "" {
			t.Errorf("rule %q: a unique name and an expression are required", r.Alert)
		}
		seen[r.Alert] = true
		if r.For != "" {
			if _, err := time.ParseDuration(r.For); err != nil {
				t.Errorf("rule %s: for %q: %v", r.Alert, r.For, err)
			}
		}
		if s := r.Labels["severity"]; s != "page" && s != "warning" {
			t.Errorf("rule %s: severity %q, want page or warning", r.Alert, s)
		}
		if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
			t.Errorf("rule %s: a summary and a description are required", r.Alert)
		}
		if strings.Count(r.Expr, "(") != strings.Count(r.Expr, ")") || strings.Count(r.Expr, "{") != strings.Count(r.Expr, "}") {
			t.Errorf("rule %s: unbalanced brackets in %s", r.Alert, r.Expr)
		}
	}
}

var (
	ruleMetric   = regexp.MustCompile(`\b((?:rampart|temporal)_[a-z0-9_]+)(\{[^}]*\})?`)
	ruleMatcher  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)
	ruleGrouping = regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)
)

// checkAlertRules fails t unless every metric the shipped rules name is one the
// expositions (a server's and a worker's, say) hold, and every label the rules
// match or group by is one that metric's series carry. A rule on a name nobody
// exports never fires: it would page no one, silently.
func checkAlertRules(t *testing.T, expositions ...string) {
	t.Helper()
	families := map[string]*dto.MetricFamily{}
	for _, text := range expositions {
		for name, f := range telemetrytest.Parse(t, text) {
			families[name] = f
		}
	}
	labelsOf := func(f *dto.MetricFamily) map[string]bool {
		have := map[string]bool{}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				have[l.GetName()] = true
			}
		}
		if f.GetType() == dto.MetricType_HISTOGRAM {
			have["le"] = true // on every _bucket series
		}
		return have
	}
	for _, r := range readAlertRules(t) {
		named := ruleMetric.FindAllStringSubmatch(r.Expr, -1)
		if len(named) == 0 {
			t.Errorf("rule %s names no Rampart or Temporal metric: %s", r.Alert, r.Expr)
			continue
		}
		labels := map[string]bool{}
		for _, m := range named {
			name := m[1]
			f := families[name]
			if f == nil {
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					if base, ok := strings.CutSuffix(name, suffix); ok && families[base].GetType() == dto.MetricType_HISTOGRAM {
						f = families[base]
					}
				}
			}
			if f == nil {
				t.Errorf("rule %s: no process exports %s", r.Alert, name)
				continue
			}
			have := labelsOf(f)
			for l := range have {
				labels[l] = true
			}
			for _, matcher := range ruleMatcher.FindAllStringSubmatch(m[2], -1) {
				if !have[matcher[1]] {
					t.Errorf("rule %s: %s has no label %s", r.Alert, name, matcher[1])
				}
			}
		}
		for _, g := range ruleGrouping.FindAllStringSubmatch(r.Expr, -1) {
			for _, l := range strings.Split(g[1], ",") {
				if l = strings.TrimSpace(l); l != "" && !labels[l] {
					t.Errorf("rule %s groups by %s, which none of its metrics carries", r.Alert, l)
				}
			}
		}
	}
}
