package playbook

import (
	"fmt"
	"testing"
	"time"

	"github.com/expr-lang/expr"

	"github.com/rampart-soar/rampart/schemas"
	"github.com/rampart-soar/rampart/triage"
)

// benchEnv is what an expression sees a few steps into a malware playbook.
func benchEnv() *Env {
	return &Env{
		Alert: schemas.Alert{Source: "crowdstrike", SeverityID: 5, Finding: schemas.Finding{UID: "f-1", Title: "MassFileEncryption"},
			Device: schemas.Device{ID: "6a1f0c2e9b7d4e35a8c0f1d2e3b4a5c6", Hostname: "fin-ws-0142"},
			File:   schemas.File{SHA256: "4be1f82c6c5e0d3a9b7f2e1d0c8a6b4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b"}},
		Detect: triage.Detection{Techniques: []string{"T1486"}},
		Enrich: triage.Enrichment{Complete: true, IOCHits: 1, Asset: triage.Asset{Found: true, Criticality: "high"}},
		Run:    RunInfo{ID: "run-1", Playbook: "malware-isolate-host", Version: 3},
		Vars:   map[string]any{"verdict": "unknown"},
		Steps: map[string]any{
			"ti":    map[string]any{"output": map[string]any{"malicious": 12.0, "total": 70.0}, "status": "succeeded", "error": ""},
			"route": map[string]any{"output": map[string]any{"goto": "decide"}, "status": "succeeded", "error": ""},
		},
	}
}

const benchCondition = `steps.ti.output.malicious >= 3 || enrich.ioc_hits > 0 && enrich.asset.criticality in ["high", "critical"]`

// BenchmarkEvalCondition is a typical switch condition evaluated the way the
// interpreter does, on the step's environment: the cached program looked up and
// run.
func BenchmarkEvalCondition(b *testing.B) {
	rt, env := NewRuntime(), benchEnv()
	rt.SetNow(time.Now())
	if ok, err := rt.EvalBool(benchCondition, env); err != nil || !ok {
		b.Fatal(ok, err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_, _ = rt.EvalBool(benchCondition, env)
	}
}

// BenchmarkStepEnvironment is what each step pays once before its first
// expression: the environment assembled from the run's state.
func BenchmarkStepEnvironment(b *testing.B) {
	env := benchEnv()
	b.ReportAllocs()
	for b.Loop() {
		e := *env
		e.built = nil
		_ = e.data()
	}
}

// BenchmarkExprBaseline is the same condition compiled once and run by expr on a
// ready environment: the floor.
func BenchmarkExprBaseline(b *testing.B) {
	data := benchEnv().data()
	p, err := expr.Compile(benchCondition, expr.Env(data))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_, _ = expr.Run(p, data)
	}
}

const benchTemplate = "rampart ${{ run.id }}: ${{ alert.finding.title }} on ${{ alert.device.hostname }} (${{ steps.ti.output.malicious }} engines)"

// BenchmarkRender interpolates a comment with four expressions.
func BenchmarkRender(b *testing.B) {
	rt, env := NewRuntime(), benchEnv()
	b.ReportAllocs()
	for b.Loop() {
		_, _ = rt.Render(benchTemplate, env)
	}
}

// BenchmarkRenderBaseline builds the same text with fmt from Go values.
func BenchmarkRenderBaseline(b *testing.B) {
	env := benchEnv()
	b.ReportAllocs()
	for b.Loop() {
		ti := env.Steps["ti"].(map[string]any)["output"].(map[string]any)
		_ = fmt.Sprintf("rampart %s: %s on %s (%s engines)", env.Run.ID, env.Alert.Finding.Title, env.Alert.Device.Hostname, Text(ti["malicious"]))
	}
}
