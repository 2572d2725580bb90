// Package policy decides whether Rampart may act: the containment rule (an expr-lang
// expression compiled once against a typed environment) and the guardrails no rule
// can override. Playbooks replace the single rule in a later issue; the guardrails
// stay.
//
// It is pure: it imports the standard library, expr-lang, schemas and triage, and
// does no I/O.
package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm"

	"github.com/rampart-soar/rampart/schemas"
	"github.com/rampart-soar/rampart/triage"
)

// Env is what a decide expression sees.
type Env struct {
	Alert  schemas.Alert     `expr:"alert"`
	Detect triage.Detection  `expr:"detect"`
	Enrich triage.Enrichment `expr:"enrich"`
}

// DefaultContainWhen contains a host only on a local IOC hit, for an alert of high
// severity or more, on an asset that is not protected.
const DefaultContainWhen = `enrich.ioc_hits > 0 && !enrich.asset.protected && alert.severity_id >= 4`

// ContainRule is a compiled `decide.contain_when` expression.
type ContainRule struct {
	source  string
	program *vm.Program
	inputs  []ruleInput
}

// ruleInput is one value the expression reads, evaluated on its own so a decision
// can say what drove it.
type ruleInput struct {
	path    string
	program *vm.Program
}

// CompileContainRule type-checks the expression against Env; an unknown field or a
// non-boolean result is an error naming the position.
func CompileContainRule(expression string) (*ContainRule, error) {
	expression = strings.TrimSpace(expression)
	if expression == "" {
		return nil, errors.New("decide.contain_when: expression is empty")
	}
	program, err := expr.Compile(expression, expr.Env(Env{}), expr.AsBool())
	if err != nil {
		return nil, fmt.Errorf("decide.contain_when: %w", err)
	}
	r := &ContainRule{source: expression, program: program}
	for _, path := range inputPaths(program.Node()) {
		p, err := expr.Compile(path, expr.Env(Env{}))
		if err != nil {
			// A path that compiled inside the full expression always compiles alone;
			// if not, leave it out of the explanation rather than refuse the rule.
			continue
		}
		r.inputs = append(r.inputs, ruleInput{path: path, program: p})
	}
	return r, nil
}

// Source is the expression text.
func (r *ContainRule) Source() string { return r.source }

// Verdict is a containment decision and what drove it.
type Verdict struct {
	Contain bool `json:"contain"`
	// RuleMatched is the expression's own result, before guardrails.
	RuleMatched bool   `json:"rule_matched"`
	Expression  string `json:"expression"`
	// Inputs are the values the expression read, by path (enrich.ioc_hits: 2).
	Inputs map[string]any `json:"inputs"`
	// Guardrail names the guardrail that overrode the rule, if one did.
	Guardrail string `json:"guardrail,omitempty"`
	Reason    string `json:"reason"`
}

// Evaluate runs the rule, then the guardrails.
func (r *ContainRule) Evaluate(env Env) (Verdict, error) {
	out, err := expr.Run(r.program, env)
	if err != nil {
		return Verdict{}, fmt.Errorf("decide.contain_when: %w", err)
	}
	matched, _ := out.(bool)
	v := Verdict{
		Contain:     matched,
		RuleMatched: matched,
		Expression:  r.source,
		Inputs:      make(map[string]any, len(r.inputs)),
	}
	for _, in := range r.inputs {
		val, err := expr.Run(in.program, env)
		if err != nil {
			val = "error: " + err.Error()
		}
		v.Inputs[in.path] = val
	}
	if matched {
		v.Reason = "contain_when matched"
	} else {
		v.Reason = "contain_when did not match"
	}
	applyGuardrails(env, &v)
	return v, nil
}

// applyGuardrails refuses containment that no rule may order: acting on an
// incomplete picture, on a protected asset, or without a device to act on.
func applyGuardrails(env Env, v *Verdict) {
	if !v.Contain {
		return
	}
	switch {
	case !env.Enrich.Complete:
		v.Guardrail = "enrichment_incomplete"
		v.Reason = "rule matched, but enrichment is incomplete (" + strings.Join(env.Enrich.Errors, "; ") + "): not acting on a partial picture"
	case env.Enrich.Asset.Protected:
		v.Guardrail = "protected_asset"
		v.Reason = "rule matched, but the asset is protected: containment needs a human"
	case ContainTarget(env.Alert, env.Enrich) == "":
		v.Guardrail = "no_device_id"
		v.Reason = "rule matched, but neither the alert nor the inventory gives an EDR device id"
	default:
		return
	}
	v.Contain = false
}

// ContainTarget is the EDR device id containment acts on: the alert's own, else the
// inventory's.
func ContainTarget(alert schemas.Alert, enrich triage.Enrichment) string {
	if alert.Device.ID != "" {
		return alert.Device.ID
	}
	return enrich.Asset.DeviceID
}

// inputPaths lists the longest env member chains the expression reads
// (enrich.asset.protected, not enrich or enrich.asset), in source order.
func inputPaths(root ast.Node) []string {
	c := &pathCollector{}
	ast.Walk(&root, c)
	var out []string
	for _, p := range c.paths {
		covered := slices.ContainsFunc(c.paths, func(q string) bool {
			return q != p && strings.HasPrefix(q, p+".")
		})
		if !covered && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

type pathCollector struct{ paths []string }

func (c *pathCollector) Visit(node *ast.Node) {
	if path, ok := memberPath(*node); ok {
		c.paths = append(c.paths, path)
	}
}

// memberPath renders a chain of plain field accesses rooted at an env variable.
func memberPath(n ast.Node) (string, bool) {
	switch n := n.(type) {
	case *ast.IdentifierNode:
		switch n.Value {
		case "alert", "detect", "enrich":
			return n.Value, true
		}
	case *ast.MemberNode:
		if n.Method {
			return "", false
		}
		prop, ok := n.Property.(*ast.StringNode)
		if !ok {
			return "", false
		}
		base, ok := memberPath(n.Node)
		if !ok {
			return "", false
		}
		return base + "." + prop.Value, true
	case *ast.ChainNode:
		return memberPath(n.Node)
	}
	return "", false
}
