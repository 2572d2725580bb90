package pbtest

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/rampart-soar/rampart/cmd/rampart/internal/linediff"
	"github.com/rampart-soar/rampart/server/ingest"
	"github.com/rampart-soar/rampart/workflows"
)

// run executes one case and compares what happened with what it expects.
func run(c *Case, in workflows.PlaybookInput) ([]string, error) {
	for step, a := range c.Approvals {
		if a.Decision != "approve" && a.Decision != "deny" {
			return nil, fmt.Errorf("approvals.%s: decision is approve or deny", step)
		}
	}
	out, err := Execute(in, Answers{
		Action: func(call Call) (map[string]any, error, bool) {
			if call.Simulated {
				return nil, nil, false // a dry run calls nothing: mocks do not apply
			}
			m, ok := c.mock(call.Step, call.Operation)
			if !ok {
				return nil, nil, false
			}
			if m.Error != "" {
				return nil, errors.New(m.Error), true
			}
			return m.Output, nil, m.Output != nil
		},
		Approval: func(step string) *workflows.Approval {
			a, ok := c.Approvals[step]
			if !ok {
				a, ok = c.Approvals[BaseStep(step)]
			}
			if !ok {
				return nil
			}
			return &workflows.Approval{Approved: a.Decision == "approve", By: cmp.Or(a.By, "playbook-test"), Reason: a.Reason}
		},
	})
	if err != nil {
		return nil, err
	}
	return append(out.Problems, c.Expect.compare(out.Result, out.Steps, out.Calls)...), nil
}

// mock finds the mock for a step: by its name, its name without the foreach
// iteration, or its operation.
func (c *Case) mock(step, operation string) (Mock, bool) {
	for _, key := range []string{step, BaseStep(step), operation} {
		if m, ok := c.Mocks[key]; ok {
			return m, true
		}
	}
	return Mock{}, false
}

// compare lists every difference between what was expected and what happened.
func (e *Expect) compare(res workflows.PlaybookResult, steps []workflows.StepRecord, calls []Call) []string {
	var out []string
	if e.Status != "" && res.Status != e.Status {
		out = append(out, fmt.Sprintf("status: want %s, got %s (%s)", e.Status, res.Status, res.Message))
	}
	if e.Message != "" && !strings.Contains(res.Message, e.Message) {
		out = append(out, fmt.Sprintf("message: want it to contain %q, got %q", e.Message, res.Message))
	}
	if e.Steps != nil {
		want, got := e.stepLines(steps)
		if e.AnyOrder {
			slices.Sort(want)
			slices.Sort(got)
		}
		if d := diffLines(want, got); d != "" {
			out = append(out, "steps (- want, + got):\n"+d)
		}
	}
	if e.Actions != nil {
		if e.AnyOrder {
			calls = matchOrder(e.Actions, calls)
		}
		if d := compareActions(e.Actions, calls); d != "" {
			out = append(out, "actions (- want, + got):\n"+d)
		}
	}
	for name, want := range e.Outputs {
		got, ok := res.Outputs[name]
		if !ok || !reflect.DeepEqual(jsonish(want), jsonish(got)) {
			out = append(out, fmt.Sprintf("outputs.%s: want %s, got %s", name, show(want), show(got)))
		}
	}
	return out
}

// stepLines renders the expected steps and the taken ones alike: "id", or
// "id: status" for a step whose expectation names a status.
func (e *Expect) stepLines(steps []workflows.StepRecord) (want, got []string) {
	withStatus := map[string]bool{}
	for _, s := range e.Steps {
		switch s := s.(type) {
		case string:
			want = append(want, s)
		case map[string]any:
			for id, status := range s {
				want = append(want, fmt.Sprintf("%s: %v", id, status))
				withStatus[id] = true
			}
		default:
			want = append(want, fmt.Sprint(s))
		}
	}
	for _, s := range steps {
		if withStatus[s.Name] {
			got = append(got, s.Name+": "+s.Status)
		} else {
			got = append(got, s.Name)
		}
	}
	return want, got
}

// compareActions diffs the expected actions against the calls made. A call that
// meets an expectation, in order, shows as that expectation's line, so that only
// what differs stands out; any other call shows all its inputs and its step.
func compareActions(want []ExpectedAction, calls []Call) string {
	w := make([]string, len(want))
	for i, a := range want {
		w[i] = callLine(a.Uses, a.With)
		if a.Step != "" {
			w[i] += " at step " + a.Step
		}
		if a.Simulated != nil {
			w[i] += fmt.Sprintf(" (simulated: %v)", *a.Simulated)
		}
	}
	g := make([]string, 0, len(calls))
	next := 0
	for _, c := range calls {
		line := callLine(c.Operation, c.Inputs) + " at step " + c.Step
		if c.Simulated {
			line += " (simulated: true)"
		}
		for i := next; i < len(want); i++ {
			if meets(want[i], c) {
				line, next = w[i], i+1
				break
			}
		}
		g = append(g, line)
	}
	return diffLines(w, g)
}

// meets reports whether call c is the action a expects.
func meets(a ExpectedAction, c Call) bool {
	return c.Operation == a.Uses && matches(a.With, c.Inputs) && (a.Step == "" || a.Step == c.Step) &&
		(a.Simulated == nil || *a.Simulated == c.Simulated)
}

// matchOrder reorders the calls to follow the expectations where a call matches
// one, the rest after them in their own order: comparing as sets.
func matchOrder(want []ExpectedAction, calls []Call) []Call {
	left := append([]Call(nil), calls...)
	var out []Call
	for _, a := range want {
		for i, c := range left {
			if meets(a, c) {
				out = append(out, c)
				left = append(left[:i], left[i+1:]...)
				break
			}
		}
	}
	return append(out, left...)
}

func callLine(op string, inputs map[string]any) string {
	if len(inputs) == 0 {
		return op
	}
	return op + " " + show(inputs)
}

// matches reports whether every input the expectation names has that value.
func matches(want, got map[string]any) bool {
	for k, v := range want {
		if !reflect.DeepEqual(jsonish(v), jsonish(got[k])) {
			return false
		}
	}
	return true
}

// diffLines is a line diff of want against got, as diff gives one: the lines
// both have indented, what only want has as "- ", what only got has as "+ ".
// Empty when they are equal.
func diffLines(want, got []string) string {
	if slices.Equal(want, got) {
		return ""
	}
	var b strings.Builder
	for _, e := range linediff.Script(want, got) {
		if e.Op == ' ' {
			fmt.Fprintf(&b, "      %s\n", e.Text)
		} else {
			fmt.Fprintf(&b, "    %c %s\n", e.Op, e.Text)
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

// jsonish normalizes a value to what JSON decoding gives (numbers as float64),
// so a YAML 3 equals a workflow's 3.0.
func jsonish(v any) any {
	var out any
	if remarshal(v, &out) != nil {
		return fmt.Sprint(v)
	}
	return out
}

func show(v any) string {
	if v == nil {
		return "{}"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// noStarter stands in for Temporal when a fixture is only normalized.
type noStarter struct{}

func (noStarter) StartAlert(context.Context, ingest.StartRequest) (ingest.StartResult, error) {
	return ingest.StartResult{}, fmt.Errorf("not started: a playbook test only normalizes")
}
