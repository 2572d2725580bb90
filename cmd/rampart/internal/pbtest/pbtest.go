// Package pbtest runs playbook unit tests: `*.test.yaml` files next to playbooks
// give an alert, mocked integration answers, approvals to inject and what should
// happen. Each case runs the real PlaybookWorkflow interpreter on Temporal's test
// environment, offline, with timers skipped; only the action and record
// activities are replaced, by the mocks and a recorder.
//
// It is tooling for `rampart playbook test` and shadow replay: it may import
// workflows, activities (to pin definitions), playbook, integrations (for
// operation declarations), server/ingest (to normalize alert fixtures) and the
// Temporal test suite; it reads no store.
package pbtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/rampart-soar/rampart/activities"
	"github.com/rampart-soar/rampart/playbook"
	"github.com/rampart-soar/rampart/playbook/lint"
	"github.com/rampart-soar/rampart/schemas"
	"github.com/rampart-soar/rampart/server/ingest"
	"github.com/rampart-soar/rampart/triage"
	"github.com/rampart-soar/rampart/workflows"
)

// Suffix names test files: malware.yaml is tested by malware.test.yaml.
const Suffix = ".test.yaml"

// File is one test file.
type File struct {
	// Playbook is the playbook file under test, relative to the test file; by
	// default the test file's name without .test.
	Playbook string `yaml:"playbook"`
	Tests    []Case `yaml:"tests"`
}

// Case is one test.
type Case struct {
	Name string `yaml:"name"`
	// Alert is the normalized alert (the Alert model's JSON fields), or AlertFile
	// a webhook payload in a source format (Format: ocsf or crowdstrike), relative
	// to the test file. Detection features are computed from the alert unless
	// Detect gives them.
	Alert     map[string]any `yaml:"alert"`
	AlertFile string         `yaml:"alert_file"`
	Format    string         `yaml:"format"`
	Detect    map[string]any `yaml:"detect"`
	// Enrich is the enrichment (enrich.* as expressions see it); complete
	// defaults to true.
	Enrich map[string]any `yaml:"enrich"`
	Inputs map[string]any `yaml:"inputs"`
	DryRun bool           `yaml:"dry_run"`
	// Mocks answer actions, by step name (isolate, or isolate[2] for one foreach
	// iteration) or by operation (ti.lookup_hash). An action nothing mocks answers
	// with its operation's declared simulated output.
	Mocks map[string]Mock `yaml:"mocks"`
	// Approvals answer the approval a step asks for, by step name. An approval
	// no one answers times out.
	Approvals map[string]Answer `yaml:"approvals"`
	Expect    Expect            `yaml:"expect"`
}

// Mock is one mocked answer: an output, or an error.
type Mock struct {
	Output map[string]any `yaml:"output"`
	Error  string         `yaml:"error"`
}

// Answer is an injected approval decision.
type Answer struct {
	Decision string `yaml:"decision"` // approve or deny
	By       string `yaml:"by"`
	Reason   string `yaml:"reason"`
}

// Expect is what should happen. Only what is given is checked.
type Expect struct {
	Status string `yaml:"status"` // succeeded or failed
	// Message must appear in the run's final message.
	Message string `yaml:"message"`
	// Steps are the steps taken, in order: "id", or {id: status}.
	Steps []any `yaml:"steps"`
	// Actions are every operation called, in order, with the inputs given
	// (a subset match).
	Actions []ExpectedAction `yaml:"actions"`
	Outputs map[string]any   `yaml:"outputs"`
	// AnyOrder compares steps and actions as sets: for steps that run side by
	// side (parallel branches, foreach with concurrency), whose order varies.
	AnyOrder bool `yaml:"any_order"`
}

// ExpectedAction is one expected operation call.
type ExpectedAction struct {
	Step string         `yaml:"step"`
	Uses string         `yaml:"uses"`
	With map[string]any `yaml:"with"`
	// Simulated, when set, says whether the call was a dry run's record.
	Simulated *bool `yaml:"simulated"`
}

// Result is one case's outcome.
type Result struct {
	File     string
	Name     string
	Duration time.Duration
	// Failures are the differences from the expectations; Err a case that could
	// not run at all.
	Failures []string
	Err      error
}

// OK reports a passing case.
func (r *Result) OK() bool { return r.Err == nil && len(r.Failures) == 0 }

// Files lists the test files in paths (files, or directories: not recursive).
func Files(paths []string) ([]string, error) {
	return lint.FilesIn(paths, func(name string) bool { return strings.HasSuffix(name, Suffix) })
}

// RunFile runs the cases of one test file whose names match filter (all when nil).
func RunFile(path string, filter *regexp.Regexp) ([]Result, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(f.Tests) == 0 {
		return nil, fmt.Errorf("%s: no tests", path)
	}
	dir := filepath.Dir(path)
	pbFile := f.Playbook
	if pbFile == "" {
		pbFile = strings.TrimSuffix(filepath.Base(path), Suffix) + ".yaml"
	}
	pinned, callees, err := load(beside(dir, pbFile))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var out []Result
	for i := range f.Tests {
		c := &f.Tests[i]
		if c.Name == "" {
			c.Name = fmt.Sprintf("test %d", i+1)
		}
		if filter != nil && !filter.MatchString(c.Name) {
			continue
		}
		start := time.Now()
		res := Result{File: path, Name: c.Name}
		in, err := c.input(dir, pinned, callees)
		if err != nil {
			res.Err = err
		} else {
			res.Failures, res.Err = run(c, in)
		}
		res.Duration = time.Since(start)
		out = append(out, res)
	}
	return out, nil
}

// load lints and pins the playbook under test and every playbook in its
// directory it may call.
func load(path string) (workflows.PinnedPlaybook, map[string]workflows.PinnedPlaybook, error) {
	results, err := lint.Files(filepath.Dir(path))
	if err != nil {
		return workflows.PinnedPlaybook{}, nil, err
	}
	byName := map[string]workflows.PinnedPlaybook{}
	var target *workflows.PinnedPlaybook
	for _, r := range results {
		if filepath.Clean(r.File) == filepath.Clean(path) && !r.OK() {
			return workflows.PinnedPlaybook{}, nil, fmt.Errorf("the playbook has problems (run rampart playbook lint %s): %s", path, r.Problems[0])
		}
		if r.Playbook == nil || !r.OK() {
			continue
		}
		_, hash, err := playbook.Canonical(r.Playbook)
		if err != nil {
			return workflows.PinnedPlaybook{}, nil, err
		}
		p := activities.Pinned(*r.Playbook, 1, hash)
		byName[r.Playbook.Name] = p
		if filepath.Clean(r.File) == filepath.Clean(path) {
			target = &p
		}
	}
	if target == nil {
		return workflows.PinnedPlaybook{}, nil, fmt.Errorf("no playbook at %s", path)
	}
	// Lint has checked that every call names a playbook of this directory.
	callees, err := activities.CalleesOf([]workflows.PinnedPlaybook{*target}, func(name string) (workflows.PinnedPlaybook, bool, error) {
		p, ok := byName[name]
		return p, ok, nil
	})
	if err != nil {
		return workflows.PinnedPlaybook{}, nil, err
	}
	return *target, callees, nil
}

// input builds the run's input from the case's fixtures.
func (c *Case) input(dir string, pinned workflows.PinnedPlaybook, callees map[string]workflows.PinnedPlaybook) (workflows.PlaybookInput, error) {
	alert, err := c.alert(dir)
	if err != nil {
		return workflows.PlaybookInput{}, err
	}
	det, attacks := triage.NewAttack().Detect(&alert)
	alert.Attacks = attacks
	if c.Detect != nil {
		if err := remarshal(c.Detect, &det); err != nil {
			return workflows.PlaybookInput{}, fmt.Errorf("detect: %w", err)
		}
	}
	enrich := triage.Enrichment{Complete: true}
	if c.Enrich != nil {
		if err := remarshal(c.Enrich, &enrich); err != nil {
			return workflows.PlaybookInput{}, fmt.Errorf("enrich: %w", err)
		}
		if _, set := c.Enrich["complete"]; !set {
			enrich.Complete = true
		}
	}
	alert.Raw = nil
	return workflows.PlaybookInput{
		Playbook: pinned, Callees: callees, Alert: alert, Detection: det, Enrichment: enrich,
		Inputs: c.Inputs, DryRun: c.DryRun, AlertID: "test-alert",
	}, nil
}

// beside is the path a test file names: relative to the test file's folder dir,
// unless absolute.
func beside(dir, path string) string {
	if filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(dir, path)
}

func (c *Case) alert(dir string) (schemas.Alert, error) {
	switch {
	case c.AlertFile != "" && c.Alert != nil:
		return schemas.Alert{}, errors.New("give alert or alert_file, not both")
	case c.AlertFile != "":
		body, err := os.ReadFile(beside(dir, c.AlertFile))
		if err != nil {
			return schemas.Alert{}, err
		}
		format := c.Format
		if format == "" {
			format = "ocsf"
		}
		src := &ingest.Source{Name: format, Format: format, Auth: ingest.AuthHMAC}
		p, err := ingest.NewPipeline(ingest.Options{Sources: map[string]*ingest.Source{format: src}, Starter: noStarter{}})
		if err != nil {
			return schemas.Alert{}, err
		}
		a, err := p.Normalize(src, body)
		if err != nil {
			return schemas.Alert{}, fmt.Errorf("%s: %w", c.AlertFile, err)
		}
		return a, nil
	case c.Alert != nil:
		var a schemas.Alert
		if err := remarshal(c.Alert, &a); err != nil {
			return schemas.Alert{}, fmt.Errorf("alert: %w", err)
		}
		if a.Source == "" {
			a.Source = "test"
		}
		return a, nil
	}
	return schemas.Alert{}, errors.New("the case needs an alert or an alert_file")
}

// remarshal decodes a YAML-decoded value into a typed one through JSON, rejecting
// unknown fields: a typo in a fixture is an error, not a silent zero.
func remarshal(in any, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(out)
}
