package pbtest_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rampart-soar/rampart/cmd/rampart/internal/pbtest"
)

func TestEveryExampleHasPassingTests(t *testing.T) {
	dir := "../../../../examples/playbooks"
	playbooks, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	files, err := pbtest.Files([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	if want := len(playbooks) - len(files); len(files) < 6 || want != len(files) {
		t.Fatalf("%d test files for %d playbooks", len(files), len(playbooks)-len(files))
	}
	for _, f := range files {
		results, err := pbtest.RunFile(f, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range results {
			if !r.OK() {
				t.Errorf("%s: %s: %v %v", f, r.Name, r.Err, r.Failures)
			}
		}
	}
}

const probe = `name: probe
trigger: {when: "true"}
vars: {n: 0}
steps:
  - id: look
    uses: ti.lookup_ip
    with: {ip: "${{ alert.src_ip }}"}
  - id: gate
    if: steps.look.output.abuse_confidence > 50
    uses: firewall.block_ip
    with: {ip: "${{ alert.src_ip }}", duration: 1h}
    approval: {approvers: [role:tier2], timeout: 10m}
outputs:
  score: ${{ steps.look.output.abuse_confidence }}
`

func write(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestDifferencesAreReported(t *testing.T) {
	dir := write(t, map[string]string{"probe.yaml": probe, "probe.test.yaml": `
tests:
  - name: wrong on every count
    alert: {finding: {uid: f, title: t}, src_ip: 45.155.205.233}
    mocks:
      ti.lookup_ip: {output: {abuse_confidence: 90}}
    approvals:
      gate: {decision: approve, by: ana}
    expect:
      status: failed
      steps: [look, {gate: skipped}]
      actions:
        - uses: ti.lookup_ip
          with: {ip: 1.2.3.4}
      outputs: {score: 10}
  - name: right
    alert: {finding: {uid: f, title: t}, src_ip: 45.155.205.233}
    mocks:
      ti.lookup_ip: {output: {abuse_confidence: 90}}
    approvals:
      gate: {decision: approve, by: ana}
    expect:
      status: succeeded
      steps: [look, {gate: succeeded}]
      actions:
        - uses: ti.lookup_ip
          with: {ip: 45.155.205.233}
        - uses: firewall.block_ip
          with: {duration: 1h}
      outputs: {score: 90}
`})
	results, err := pbtest.RunFile(filepath.Join(dir, "probe.test.yaml"), nil)
	if err != nil || len(results) != 2 {
		t.Fatalf("%v, %d results", err, len(results))
	}
	if !results[1].OK() {
		t.Fatalf("the right expectations failed: %v %v", results[1].Err, results[1].Failures)
	}
	got := strings.Join(results[0].Failures, "\n")
	for _, want := range []string{
		"status: want failed, got succeeded",
		"    - gate: skipped\n    + gate: succeeded",
		`    - ti.lookup_ip {"ip":"1.2.3.4"}`,
		`    + ti.lookup_ip {"ip":"45.155.205.233"}`,
		"    + firewall.block_ip",
		"outputs.score: want 10, got 90",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the report lacks %q:\n%s", want, got)
		}
	}
	only, err := pbtest.RunFile(filepath.Join(dir, "probe.test.yaml"), regexp.MustCompile("^right$"))
	if err != nil || len(only) != 1 || only[0].Name != "right" {
		t.Fatalf("filtered: %+v, %v", only, err)
	}
}

func TestBrokenTestFilesSayWhy(t *testing.T) {
	for name, c := range map[string]struct{ files map[string]string }{
		"unknown field": {map[string]string{"probe.yaml": probe, "probe.test.yaml": "tests: [{name: x, alert: {}, expekt: {}}]"}},
		"no playbook":   {map[string]string{"probe.test.yaml": "tests: [{name: x, alert: {}}]"}},
		"no tests":      {map[string]string{"probe.yaml": probe, "probe.test.yaml": "tests: []"}},
	} {
		dir := write(t, c.files)
		if _, err := pbtest.RunFile(filepath.Join(dir, "probe.test.yaml"), nil); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	dir := write(t, map[string]string{"probe.yaml": probe, "probe.test.yaml": `
tests:
  - name: fixture typo
    alert: {finding: {uid: f}, src_ipp: 1.2.3.4}
  - name: bad decision
    alert: {finding: {uid: f}}
    approvals: {gate: {decision: maybe}}
`})
	results, err := pbtest.RunFile(filepath.Join(dir, "probe.test.yaml"), nil)
	if err != nil || len(results) != 2 {
		t.Fatal(err)
	}
	if results[0].Err == nil || !strings.Contains(results[0].Err.Error(), "src_ipp") {
		t.Errorf("fixture typo: %v", results[0].Err)
	}
	if results[1].Err == nil || !strings.Contains(results[1].Err.Error(), "approve or deny") {
		t.Errorf("bad decision: %v", results[1].Err)
	}
}

// TestAbsolutePaths: a test file may name its playbook and alert files by
// absolute path (a relative one is relative to its folder, as the examples' are).
func TestAbsolutePaths(t *testing.T) {
	alert, err := os.ReadFile("../../../../examples/alerts/ocsf-password-spray.json")
	if err != nil {
		t.Fatal(err)
	}
	elsewhere := write(t, map[string]string{"probe.yaml": probe, "alert.json": string(alert)})
	dir := write(t, map[string]string{"mine.test.yaml": `
playbook: ` + filepath.Join(elsewhere, "probe.yaml") + `
tests:
  - name: absolute
    alert_file: ` + filepath.Join(elsewhere, "alert.json") + `
    format: ocsf
    mocks:
      ti.lookup_ip: {output: {abuse_confidence: 10}}
    expect:
      steps: [look, {gate: skipped}]
      actions: [{uses: ti.lookup_ip}]
`})
	results, err := pbtest.RunFile(filepath.Join(dir, "mine.test.yaml"), nil)
	if err != nil || len(results) != 1 || !results[0].OK() {
		t.Fatalf("%v: %+v", err, results)
	}
}
