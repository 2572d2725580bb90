// Package playbook is the playbook DSL: the model, a parser that keeps every value's
// file position, semantic validation, and the typed expression language (expr-lang
// with `${{ … }}` interpolation and Rampart's function library). Everything here is
// checked before a playbook is applied, so a wrong field name fails at lint time,
// not at 3 a.m.
//
// It is pure: it imports the standard library, yaml, expr-lang, schemas and triage,
// and does no I/O. Workflow code may import it.
package playbook

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Playbook is one parsed playbook file.
type Playbook struct {
	Name        string `yaml:"name" json:"name"`
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
	// Priority orders matching playbooks, lowest first.
	Priority int   `yaml:"priority,omitempty" json:"priority,omitempty"`
	Enabled  *bool `yaml:"enabled,omitempty" json:"enabled,omitempty"`
	// Mode "dry_run" records contain and notify actions instead of running them.
	Mode        string `yaml:"mode,omitempty" json:"mode,omitempty"`
	StopOnMatch bool   `yaml:"stop_on_match,omitempty" json:"stop_on_match,omitempty"`
	Trigger     struct {
		When string `yaml:"when" json:"when"`
	} `yaml:"trigger" json:"trigger"`
	Inputs  map[string]Input  `yaml:"inputs,omitempty" json:"inputs,omitempty"`
	Vars    map[string]any    `yaml:"vars,omitempty" json:"vars,omitempty"`
	Secrets []string          `yaml:"secrets,omitempty" json:"secrets,omitempty"`
	Steps   []Step            `yaml:"steps" json:"steps"`
	Outputs map[string]string `yaml:"outputs,omitempty" json:"outputs,omitempty"`
	// OnFailure runs when the playbook fails.
	OnFailure []Step `yaml:"on_failure,omitempty" json:"on_failure,omitempty"`
}

// IsEnabled reports the enabled flag, true when absent.
func (p *Playbook) IsEnabled() bool { return p.Enabled == nil || *p.Enabled }

// Input is a declared input of a playbook run as a child (call).
type Input struct {
	Type        string `yaml:"type" json:"type"` // string, number, integer, boolean, list, object
	Required    bool   `yaml:"required,omitempty" json:"required,omitempty"`
	Default     any    `yaml:"default,omitempty" json:"default,omitempty"`
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
}

// Step is one step. Exactly one of the kind fields is set.
type Step struct {
	ID      string `yaml:"id" json:"id"`
	Name    string `yaml:"name,omitempty" json:"name,omitempty"`
	If      string `yaml:"if,omitempty" json:"if,omitempty"`
	Timeout string `yaml:"timeout,omitempty" json:"timeout,omitempty"`

	// action
	Uses        string         `yaml:"uses,omitempty" json:"uses,omitempty"`
	With        map[string]any `yaml:"with,omitempty" json:"with,omitempty"`
	Retry       *Retry         `yaml:"retry,omitempty" json:"retry,omitempty"`
	OnError     string         `yaml:"on_error,omitempty" json:"on_error,omitempty"`
	RevertAfter string         `yaml:"revert_after,omitempty" json:"revert_after,omitempty"`
	Approval    *Approval      `yaml:"approval,omitempty" json:"approval,omitempty"`

	Switch   []Case         `yaml:"switch,omitempty" json:"switch,omitempty"`
	Parallel *Parallel      `yaml:"parallel,omitempty" json:"parallel,omitempty"`
	Foreach  *Foreach       `yaml:"foreach,omitempty" json:"foreach,omitempty"`
	Wait     *Wait          `yaml:"wait,omitempty" json:"wait,omitempty"`
	Set      map[string]any `yaml:"set,omitempty" json:"set,omitempty"`
	Call     *Call          `yaml:"call,omitempty" json:"call,omitempty"`
	Succeed  *string        `yaml:"succeed,omitempty" json:"succeed,omitempty"`
	Fail     *string        `yaml:"fail,omitempty" json:"fail,omitempty"`
}

// Step kinds.
const (
	KindAction   = "action"
	KindSwitch   = "switch"
	KindParallel = "parallel"
	KindForeach  = "foreach"
	KindWait     = "wait"
	KindSet      = "set"
	KindCall     = "call"
	KindSucceed  = "succeed"
	KindFail     = "fail"
)

// Kinds lists the step kinds in the order their keys are checked.
var Kinds = []string{KindAction, KindSwitch, KindParallel, KindForeach, KindWait, KindSet, KindCall, KindSucceed, KindFail}

// kindKey is the YAML key that makes a step of each kind.
var kindKey = map[string]string{KindAction: "uses", KindSwitch: "switch", KindParallel: "parallel", KindForeach: "foreach",
	KindWait: "wait", KindSet: "set", KindCall: "call", KindSucceed: "succeed", KindFail: "fail"}

// Kinds reports every kind whose key the step sets; a valid step has exactly one.
func (s *Step) Kinds() []string {
	var out []string
	for _, k := range Kinds {
		if s.has(k) {
			out = append(out, k)
		}
	}
	return out
}

// Kind is the step's kind, or "" when it has none or several.
func (s *Step) Kind() string {
	if k := s.Kinds(); len(k) == 1 {
		return k[0]
	}
	return ""
}

// Bounded says the step's timeout bounds the whole step, which waits on other
// work: parallel, foreach, wait and call. An action's timeout bounds each attempt;
// the other steps take no time and take no timeout.
func (s *Step) Bounded() bool {
	switch s.Kind() {
	case KindParallel, KindForeach, KindWait, KindCall:
		return true
	}
	return false
}

func (s *Step) has(kind string) bool {
	switch kind {
	case KindAction:
		return s.Uses != ""
	case KindSwitch:
		return s.Switch != nil
	case KindParallel:
		return s.Parallel != nil
	case KindForeach:
		return s.Foreach != nil
	case KindWait:
		return s.Wait != nil
	case KindSet:
		return s.Set != nil
	case KindCall:
		return s.Call != nil
	case KindSucceed:
		return s.Succeed != nil
	case KindFail:
		return s.Fail != nil
	}
	return false
}

// Retry bounds an action's attempts.
type Retry struct {
	MaxAttempts     int     `yaml:"max_attempts,omitempty" json:"max_attempts,omitempty"`
	InitialInterval string  `yaml:"initial_interval,omitempty" json:"initial_interval,omitempty"`
	Backoff         float64 `yaml:"backoff,omitempty" json:"backoff,omitempty"`
	MaxInterval     string  `yaml:"max_interval,omitempty" json:"max_interval,omitempty"`
}

// Approval makes an action wait for a human decision.
type Approval struct {
	Approvers  []string `yaml:"approvers" json:"approvers"`
	Timeout    string   `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	OnTimeout  string   `yaml:"on_timeout,omitempty" json:"on_timeout,omitempty"` // fail (default), deny, escalate
	EscalateTo []string `yaml:"escalate_to,omitempty" json:"escalate_to,omitempty"`
}

// Case is one switch case: when → goto, or the default.
type Case struct {
	When    string `yaml:"when,omitempty" json:"when,omitempty"`
	Goto    string `yaml:"goto,omitempty" json:"goto,omitempty"`
	Default string `yaml:"default,omitempty" json:"default,omitempty"`
}

// Parallel runs named branches side by side.
type Parallel struct {
	Branches []Branch `yaml:"branches" json:"branches"`
	Join     string   `yaml:"join,omitempty" json:"join,omitempty"` // all (default) or any
	// OnFailure is fail (default: a failed branch fails the step) or continue.
	OnFailure string `yaml:"on_failure,omitempty" json:"on_failure,omitempty"`
}

// Branch is one named branch of a parallel step.
type Branch struct {
	Name  string `yaml:"name" json:"name"`
	Steps []Step `yaml:"steps" json:"steps"`
}

// Foreach runs its steps once per item of a list.
type Foreach struct {
	Items       string `yaml:"items" json:"items"`
	As          string `yaml:"as,omitempty" json:"as,omitempty"` // default "item"
	Concurrency int    `yaml:"concurrency,omitempty" json:"concurrency,omitempty"`
	Steps       []Step `yaml:"steps" json:"steps"`
}

// ItemName is the variable each iteration sees its item as.
func (f *Foreach) ItemName() string {
	if f.As == "" {
		return "item"
	}
	return f.As
}

// Wait pauses for a duration, or until a condition holds (re-evaluated on new
// signals) with a timeout.
type Wait struct {
	Duration string `yaml:"duration,omitempty" json:"duration,omitempty"`
	Until    string `yaml:"until,omitempty" json:"until,omitempty"`
	Timeout  string `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// Call runs another playbook as a child workflow.
type Call struct {
	Playbook string         `yaml:"playbook" json:"playbook"`
	With     map[string]any `yaml:"with,omitempty" json:"with,omitempty"`
}

// OnError policies.
const (
	OnErrorFail     = "fail"
	OnErrorContinue = "continue"
	gotoPrefix      = "goto:"
)

// GotoTarget is the step id of an on_error "goto:<id>", or "".
func (s *Step) GotoTarget() string {
	t, _ := strings.CutPrefix(s.OnError, gotoPrefix)
	if t == s.OnError {
		return ""
	}
	return strings.TrimSpace(t)
}

var (
	durationPattern = regexp.MustCompile(`^(\d+(ms|s|m|h|d))+$`)
	durationPart    = regexp.MustCompile(`(\d+)(ms|s|m|h|d)`)
	durationUnits   = map[string]time.Duration{"ms": time.Millisecond, "s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour}
)

// ParseDuration reads a duration such as 90s, 15m, 24h or 7d (Go's units plus days).
func ParseDuration(s string) (time.Duration, error) {
	if !durationPattern.MatchString(s) {
		return 0, fmt.Errorf("%q is not a duration like 30s, 15m, 24h or 7d", s)
	}
	var total time.Duration
	for _, m := range durationPart.FindAllStringSubmatch(s, -1) {
		n, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%q: %w", s, err)
		}
		total += time.Duration(n) * durationUnits[m[2]]
	}
	return total, nil
}

// Canonical is the definition as JSON with a fixed field and key order, and its
// SHA-256: the same playbook written differently (comments, key order, quoting)
// has the same hash, so applying it again makes no new version.
func Canonical(pb *Playbook) ([]byte, string, error) {
	b, err := json.Marshal(pb)
	if err != nil {
		return nil, "", fmt.Errorf("playbook %s: %w", pb.Name, err)
	}
	sum := sha256.Sum256(b)
	return b, hex.EncodeToString(sum[:]), nil
}

// Walk calls fn for every step, nested ones (parallel branches, foreach bodies) and
// on_failure steps included, in file order.
func (p *Playbook) Walk(fn func(s *Step)) {
	var walk func([]Step)
	walk = func(steps []Step) {
		for i := range steps {
			s := &steps[i]
			fn(s)
			if s.Parallel != nil {
				for _, b := range s.Parallel.Branches {
					walk(b.Steps)
				}
			}
			if s.Foreach != nil {
				walk(s.Foreach.Steps)
			}
		}
	}
	walk(p.Steps)
	walk(p.OnFailure)
}

// Callees lists the playbooks a definition's call steps name, in order, once each.
func (p *Playbook) Callees() []string {
	var out []string
	p.Walk(func(s *Step) {
		if s.Call != nil && !slices.Contains(out, s.Call.Playbook) {
			out = append(out, s.Call.Playbook)
		}
	})
	return out
}

// ZeroOutputs maps each action step whose operation declares an output schema to
// that schema's zero value: what steps.<id>.output holds when the step failed or
// was skipped, so `steps.ti.output.malicious >= 3` is false rather than an error
// after a lookup failed with on_error: continue.
func (p *Playbook) ZeroOutputs(ops Operations) map[string]any {
	var out map[string]any
	p.Walk(func(s *Step) {
		if s.Kind() != KindAction {
			return
		}
		op, ok := ops(s.Uses)
		if !ok || op.Output == nil {
			return
		}
		if out == nil {
			out = map[string]any{}
		}
		out[s.ID] = SchemaZero(op.Output)
	})
	return out
}
