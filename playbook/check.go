package playbook

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
)

// Problem is one thing wrong with a playbook: where, as a dotted path into the
// document (steps.2.with.host_id), and for an expression also inside the string.
type Problem struct {
	Path    string
	Message string
	Expr    *ExprError // set when the problem is inside an expression
	// Key: the problem is the key at Path (an unknown name), not its value.
	Key bool
}

func (p Problem) String() string { return p.Path + ": " + p.Message }

// CheckOptions give Check what lies outside the playbook.
type CheckOptions struct {
	// Operations is the integration catalogue; nil skips operation checks.
	Operations Operations
	// OperationNames are the catalogue's names, to suggest one for a misspelt `uses`.
	OperationNames []string
	// Playbooks finds a playbook `call` names; nil skips those checks.
	Playbooks func(name string) (*Playbook, bool)
}

// MaxSteps is the default per-run step budget: loops made with goto end there.
const MaxSteps = 1000

// reserved names cannot be a foreach item: they are the environment's own.
var reserved = []string{"alert", "detect", "enrich", "run", "vars", "inputs", "secrets", "steps"}

// Check validates a decoded playbook: step ids, kinds, goto targets, durations,
// operations and their inputs, and every expression, type-checked against the
// playbook's environment. It returns nothing for a valid playbook.
func Check(pb *Playbook, opts CheckOptions) []Problem {
	c := &checker{pb: pb, opts: opts, ids: map[string]*Step{}}
	c.collectIDs("steps", pb.Steps)
	c.collectIDs("on_failure", pb.OnFailure)
	types := c.buildTypes()
	base := scope{types: types}

	if strings.TrimSpace(pb.Trigger.When) == "" {
		c.add("trigger.when", "the trigger needs a when expression")
	} else if err := compileBool(pb.Trigger.When, scope{types: types, trigger: true}); err != nil {
		c.addErr("trigger.when", err)
	}
	if pb.Mode != "" && pb.Mode != "live" && pb.Mode != "dry_run" {
		c.add("mode", "mode is live or dry_run")
	}
	for name, in := range sorted(pb.Inputs) {
		if in.Default != nil && !fitsSchemaType(literalType(in.Default), in.Type) {
			c.add("inputs."+name+".default", fmt.Sprintf("the default is %s but the input is declared %s", typeName(literalType(in.Default)), in.Type))
		}
	}
	for i, name := range pb.Secrets {
		if strings.HasSuffix(name, "_file") { // the worker reads secret <name> from the file RAMPART_SECRET_<NAME>_FILE names
			c.add(fmt.Sprintf("secrets.%d", i), fmt.Sprintf("secret %q: a name may not end in _file, which the worker reads as the file that holds secret %s", name, strings.TrimSuffix(name, "_file")))
		}
	}
	c.checkSteps("steps", pb.Steps, base)
	c.checkSteps("on_failure", pb.OnFailure, base)
	for name, v := range sorted(pb.Outputs) {
		if _, err := templateType(v, base); err != nil {
			c.addErr("outputs."+name, err)
		}
	}
	return c.problems
}

type checker struct {
	pb       *Playbook
	opts     CheckOptions
	ids      map[string]*Step
	problems []Problem
}

func (c *checker) add(path, msg string) {
	c.problems = append(c.problems, Problem{Path: path, Message: msg})
}

// addKey reports a problem with the key at path itself.
func (c *checker) addKey(path, msg string) {
	c.problems = append(c.problems, Problem{Path: path, Message: msg, Key: true})
}

func (c *checker) addErr(path string, err error) {
	var ee *ExprError
	if errors.As(err, &ee) {
		c.problems = append(c.problems, Problem{Path: path, Message: ee.Message, Expr: ee})
		return
	}
	c.add(path, err.Error())
}

// collectIDs records every step id, nested ones included: ids are unique across
// the playbook, since expressions address any step as steps.<id>.
func (c *checker) collectIDs(path string, steps []Step) {
	for i := range steps {
		s := &steps[i]
		p := fmt.Sprintf("%s.%d", path, i)
		if s.ID != "" {
			if _, dup := c.ids[s.ID]; dup {
				c.add(p+".id", fmt.Sprintf("step id %q is used twice: ids are unique across the playbook", s.ID))
			} else {
				c.ids[s.ID] = s
			}
		}
		if s.Parallel != nil {
			for j, b := range s.Parallel.Branches {
				c.collectIDs(fmt.Sprintf("%s.parallel.branches.%d.steps", p, j), b.Steps)
			}
		}
		if s.Foreach != nil {
			c.collectIDs(p+".foreach.steps", s.Foreach.Steps)
		}
	}
}

// buildTypes derives the environment's types: vars from their initial values,
// inputs from their declarations, steps from their operations' output schemas.
func (c *checker) buildTypes() *Types {
	empty := structOf(nil)
	t := &Types{vars: empty, inputs: empty, secrets: empty, steps: empty}

	inputs := make([]field, 0, len(c.pb.Inputs))
	for name, in := range c.pb.Inputs {
		inputs = append(inputs, field{name, inputType(in.Type)})
	}
	t.inputs = structOf(inputs)
	secrets := make([]field, 0, len(c.pb.Secrets))
	for _, name := range c.pb.Secrets {
		secrets = append(secrets, field{name, stringType})
	}
	t.secrets = structOf(secrets)
	steps := make([]field, 0, len(c.ids))
	for id, s := range c.ids {
		steps = append(steps, field{id, reflect.StructOf([]reflect.StructField{
			{Name: "Output", Type: stepOutputType(s, c.opts.Operations), Tag: `json:"output" expr:"output"`},
			{Name: "Status", Type: stringType, Tag: `json:"status" expr:"status"`},
			{Name: "Error", Type: stringType, Tag: `json:"error" expr:"error"`},
		})})
	}
	t.steps = structOf(steps)

	// A var's initial value may read anything but other vars, whose types are what
	// is being worked out here.
	vars := make([]field, 0, len(c.pb.Vars))
	initial := scope{types: t}
	for name, v := range sorted(c.pb.Vars) {
		vars = append(vars, field{name, valueType(v, initial, "vars."+name, c.addErr)})
	}
	t.vars = structOf(vars)
	return t
}

// checkSteps checks one list of sibling steps: the targets goto may name.
func (c *checker) checkSteps(path string, steps []Step, sc scope) {
	siblings := make([]string, 0, len(steps))
	for _, s := range steps {
		siblings = append(siblings, s.ID)
	}
	for i := range steps {
		c.checkStep(fmt.Sprintf("%s.%d", path, i), &steps[i], sc, siblings)
	}
}

func (c *checker) checkStep(path string, s *Step, sc scope, siblings []string) {
	if s.ID == "" {
		c.add(path+".id", "every step needs an id")
	}
	kinds := s.Kinds()
	switch len(kinds) {
	case 0:
		keys := make([]string, 0, len(Kinds))
		for _, k := range Kinds {
			keys = append(keys, kindKey[k])
		}
		c.add(path, "a step needs one of "+strings.Join(keys, ", "))
		return
	case 1:
	default:
		c.add(path, fmt.Sprintf("a step is one kind; this one has both %s and %s", kindKey[kinds[0]], kindKey[kinds[1]]))
		return
	}
	if s.If != "" {
		if err := compileBool(s.If, sc); err != nil {
			c.addErr(path+".if", err)
		}
	}
	c.duration(path+".timeout", s.Timeout)
	if s.Timeout != "" && s.Kind() != KindAction && !s.Bounded() {
		c.add(path+".timeout", "timeout applies to action, wait, parallel, foreach and call steps: this step takes no time")
	}
	if s.Kind() != KindAction {
		for _, f := range []struct {
			key string
			set bool
		}{{"with", s.With != nil}, {"retry", s.Retry != nil}, {"on_error", s.OnError != ""}, {"revert_after", s.RevertAfter != ""}, {"approval", s.Approval != nil}} {
			if f.set {
				c.add(path+"."+f.key, f.key+" applies only to an action step (uses)")
			}
		}
	}
	switch s.Kind() {
	case KindAction:
		c.checkAction(path, s, sc, siblings)
	case KindSwitch:
		c.checkSwitch(path, s, sc, siblings)
	case KindParallel:
		c.checkParallel(path, s, sc)
	case KindForeach:
		c.checkForeach(path, s, sc)
	case KindWait:
		c.checkWait(path, s, sc)
	case KindSet:
		c.checkSet(path, s, sc)
	case KindCall:
		c.checkCall(path, s, sc)
	case KindSucceed:
		c.template(path+".succeed", *s.Succeed, sc)
	case KindFail:
		c.template(path+".fail", *s.Fail, sc)
	}
}

func (c *checker) checkAction(path string, s *Step, sc scope, siblings []string) {
	var op Operation
	known := true
	if c.opts.Operations != nil {
		op, known = c.opts.Operations(s.Uses)
		if !known {
			msg := fmt.Sprintf("unknown integration operation %q", s.Uses)
			if best := closest(s.Uses, c.opts.OperationNames); best != "" {
				msg += fmt.Sprintf(" (did you mean %s?)", best)
			}
			c.add(path+".uses", msg)
		}
	}
	report := c.addErr
	got := map[string]reflect.Type{}
	for key, v := range sorted(s.With) {
		got[key] = valueType(v, sc, path+".with."+key, report)
	}
	if known && op.Input != nil {
		c.checkInputs(path+".with", s.Uses, op.Input, got)
	}
	if s.Retry != nil {
		if s.Retry.MaxAttempts < 0 || s.Retry.MaxAttempts > 10 {
			c.add(path+".retry.max_attempts", "max_attempts is 1 to 10")
		}
		c.duration(path+".retry.initial_interval", s.Retry.InitialInterval)
		c.duration(path+".retry.max_interval", s.Retry.MaxInterval)
	}
	switch {
	case s.OnError == "", s.OnError == OnErrorFail, s.OnError == OnErrorContinue:
	case s.GotoTarget() != "":
		c.gotoTarget(path+".on_error", s.GotoTarget(), siblings)
	default:
		c.add(path+".on_error", "on_error is fail, continue or goto:<step id>")
	}
	if s.RevertAfter != "" {
		c.duration(path+".revert_after", s.RevertAfter)
		if known && c.opts.Operations != nil && op.Inverse == "" {
			c.add(path+".revert_after", fmt.Sprintf("%s has no inverse operation to revert with", s.Uses))
		}
	}
	if a := s.Approval; a != nil {
		c.duration(path+".approval.timeout", a.Timeout)
		if a.OnTimeout == "escalate" && len(a.EscalateTo) == 0 {
			c.add(path+".approval.escalate_to", "on_timeout: escalate needs escalate_to")
		}
	}
}

// checkInputs compares an action's with: against the operation's input schema.
func (c *checker) checkInputs(path, uses string, schema map[string]any, got map[string]reflect.Type) {
	props, _ := schema["properties"].(map[string]any)
	for key, t := range sorted(got) {
		p, ok := props[key].(map[string]any)
		if !ok {
			if extra, _ := schema["additionalProperties"].(bool); !extra {
				names := make([]string, 0, len(props))
				for n := range props {
					names = append(names, n)
				}
				sort.Strings(names)
				c.addKey(path+"."+key, fmt.Sprintf("%s has no input %q (it takes %s)", uses, key, strings.Join(names, ", ")))
			}
			continue
		}
		want, _ := p["type"].(string)
		if !fitsSchemaType(t, want) {
			c.add(path+"."+key, fmt.Sprintf("%s.%s is %s, but this value is %s", uses, key, want, typeName(t)))
		}
	}
	required, _ := schema["required"].([]any)
	for _, r := range required {
		if name, _ := r.(string); name != "" {
			if _, ok := got[name]; !ok {
				c.add(path, fmt.Sprintf("%s needs input %q", uses, name))
			}
		}
	}
}

func (c *checker) checkSwitch(path string, s *Step, sc scope, siblings []string) {
	defaults := 0
	for i, cs := range s.Switch {
		p := fmt.Sprintf("%s.switch.%d", path, i)
		switch {
		case cs.Default != "" && (cs.When != "" || cs.Goto != ""):
			c.add(p, "a case is either when + goto or default")
		case cs.Default != "":
			defaults++
			if i != len(s.Switch)-1 {
				c.add(p, "default must be the last case")
			}
			c.gotoTarget(p+".default", cs.Default, siblings)
		case cs.When == "" || cs.Goto == "":
			c.add(p, "a case needs both when and goto")
		default:
			if err := compileBool(cs.When, sc); err != nil {
				c.addErr(p+".when", err)
			}
			c.gotoTarget(p+".goto", cs.Goto, siblings)
		}
	}
	if defaults > 1 {
		c.add(path+".switch", "a switch has at most one default")
	}
}

func (c *checker) checkParallel(path string, s *Step, sc scope) {
	p := s.Parallel
	if p.Join != "" && p.Join != "all" && p.Join != "any" {
		c.add(path+".parallel.join", "join is all or any")
	}
	if p.OnFailure != "" && p.OnFailure != "fail" && p.OnFailure != "continue" {
		c.add(path+".parallel.on_failure", "on_failure is fail or continue")
	}
	seen := map[string]bool{}
	for i, b := range p.Branches {
		bp := fmt.Sprintf("%s.parallel.branches.%d", path, i)
		if seen[b.Name] {
			c.add(bp+".name", fmt.Sprintf("branch name %q is used twice", b.Name))
		}
		seen[b.Name] = true
		c.checkSteps(bp+".steps", b.Steps, sc)
	}
}

func (c *checker) checkForeach(path string, s *Step, sc scope) {
	f := s.Foreach
	items := strings.TrimSpace(f.Items)
	if seg, ok := exactExpression(items); ok {
		items = seg.text // the value may be written as one ${{ … }} or bare
	}
	if items == "" {
		c.add(path+".foreach.items", "foreach needs an items expression")
	} else if p, err := compileAt(items, 0, sc); err != nil {
		c.addErr(path+".foreach.items", err)
	} else if err := wantKind(p, 0, "a list", reflect.Slice, reflect.Array); err != nil {
		c.addErr(path+".foreach.items", err)
	}
	name := f.ItemName()
	if slices.Contains(reserved, name) || slices.Contains(sc.items, name) {
		c.add(path+".foreach.as", fmt.Sprintf("%q is already a name in expressions; choose another", name))
	}
	if f.Concurrency < 0 || f.Concurrency > 50 {
		c.add(path+".foreach.concurrency", "concurrency is 1 to 50")
	}
	c.checkSteps(path+".foreach.steps", f.Steps, sc.with(name))
}

func (c *checker) checkWait(path string, s *Step, sc scope) {
	w := s.Wait
	switch {
	case w.Duration != "" && w.Until != "":
		c.add(path+".wait", "wait takes a duration or an until condition, not both")
	case w.Duration != "":
		c.duration(path+".wait.duration", w.Duration)
	case w.Until != "":
		if err := compileBool(w.Until, sc); err != nil {
			c.addErr(path+".wait.until", err)
		}
		if w.Timeout == "" {
			c.add(path+".wait.timeout", "wait until needs a timeout")
		}
	default:
		c.add(path+".wait", "wait needs a duration or an until condition")
	}
	c.duration(path+".wait.timeout", w.Timeout)
}

func (c *checker) checkSet(path string, s *Step, sc scope) {
	for name, v := range sorted(s.Set) {
		got := valueType(v, sc, path+".set."+name, c.addErr)
		f, ok := fieldByTag(sc.types.vars, name)
		if !ok {
			c.addKey(path+".set."+name, fmt.Sprintf("vars.%s is not declared: add it under vars with its initial value", name))
			continue
		}
		if !assignableTo(got, f.Type) {
			c.add(path+".set."+name, fmt.Sprintf("vars.%s is %s, but this value is %s", name, typeName(f.Type), typeName(got)))
		}
	}
}

func (c *checker) checkCall(path string, s *Step, sc scope) {
	got := map[string]reflect.Type{}
	for key, v := range sorted(s.Call.With) {
		got[key] = valueType(v, sc, path+".call.with."+key, c.addErr)
	}
	if c.opts.Playbooks == nil {
		return
	}
	if s.Call.Playbook == c.pb.Name {
		c.add(path+".call.playbook", "a playbook cannot call itself")
		return
	}
	callee, ok := c.opts.Playbooks(s.Call.Playbook)
	if !ok {
		c.add(path+".call.playbook", fmt.Sprintf("no playbook named %q", s.Call.Playbook))
		return
	}
	for key, t := range sorted(got) {
		in, ok := callee.Inputs[key]
		if !ok {
			c.addKey(path+".call.with."+key, fmt.Sprintf("playbook %s has no input %q", callee.Name, key))
		} else if !fitsSchemaType(t, in.Type) {
			c.add(path+".call.with."+key, fmt.Sprintf("input %s is %s, but this value is %s", key, in.Type, typeName(t)))
		}
	}
	for name, in := range sorted(callee.Inputs) {
		if _, ok := got[name]; in.Required && !ok {
			c.add(path+".call.with", fmt.Sprintf("playbook %s needs input %q", callee.Name, name))
		}
	}
}

func (c *checker) template(path, s string, sc scope) {
	if _, err := templateType(s, sc); err != nil {
		c.addErr(path, err)
	}
}

func (c *checker) duration(path, s string) {
	if s == "" {
		return
	}
	if _, err := ParseDuration(s); err != nil {
		c.add(path, err.Error())
	}
}

func (c *checker) gotoTarget(path, id string, siblings []string) {
	if slices.Contains(siblings, id) {
		return
	}
	if _, elsewhere := c.ids[id]; elsewhere {
		c.add(path, fmt.Sprintf("goto %q: that step is in another block; goto stays among its own siblings", id))
		return
	}
	msg := fmt.Sprintf("goto %q: no such step", id)
	if best := closest(id, siblings); best != "" {
		msg += fmt.Sprintf(" (did you mean %s?)", best)
	}
	c.add(path, msg)
}

// fieldByTag finds the field expressions call name in a dynamic struct.
func fieldByTag(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		if f := t.Field(i); f.Tag.Get("expr") == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// assignableTo reports whether a value of type got may be stored in a var of type
// want: the same kind, or an unknown (interface) on either side.
func assignableTo(got, want reflect.Type) bool {
	if got == nil || want.Kind() == reflect.Interface || got.Kind() == reflect.Interface {
		return true
	}
	if isInt(want) && isInt(got) {
		return true
	}
	if want.Kind() == reflect.Float64 && (isInt(got) || got.Kind() == reflect.Float64) {
		return true
	}
	return got.Kind() == want.Kind()
}

// sorted ranges over a map in key order, so problems come out in a stable order.
func sorted[V any](m map[string]V) func(func(string, V) bool) {
	return func(yield func(string, V) bool) {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if !yield(k, m[k]) {
				return
			}
		}
	}
}
