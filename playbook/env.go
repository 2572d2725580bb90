package playbook

import (
	"fmt"
	"reflect"
	"slices"
	"sort"
	"time"

	"github.com/rampart-soar/rampart/schemas"
	"github.com/rampart-soar/rampart/triage"
)

// RunInfo is what expressions see as `run`.
type RunInfo struct {
	ID         string    `json:"id" expr:"id"`
	WorkflowID string    `json:"workflow_id" expr:"workflow_id"`
	Playbook   string    `json:"playbook" expr:"playbook"`
	Version    int       `json:"version" expr:"version"`
	Hash       string    `json:"hash" expr:"hash"`
	StartedAt  time.Time `json:"started_at" expr:"started_at"`
	DryRun     bool      `json:"dry_run" expr:"dry_run"`
	// Events counts the events the run was told of (new deliveries of its alert);
	// wait until conditions can watch it.
	Events int `json:"events" expr:"events"`
}

// StepState is what expressions see as steps.<id>: the step's output, its status
// (pending, succeeded, failed, skipped) and its error.
type StepState[T any] struct {
	Output T      `json:"output" expr:"output"`
	Status string `json:"status" expr:"status"`
	Error  string `json:"error" expr:"error"`
}

// Operation is what lint needs to know of an integration operation: its input and
// output JSON Schemas (decoded), side-effect class and inverse.
type Operation struct {
	Input, Output       map[string]any
	SideEffect, Inverse string
}

// Operations looks an integration operation up by name (edr.isolate_host); ok is
// false for an unknown one.
type Operations func(name string) (op Operation, ok bool)

// Types are the static types of a playbook's expression environment: every
// expression is compiled against them, so an unknown field, an unknown step id or a
// type mismatch fails at lint time.
type Types struct {
	vars    reflect.Type
	inputs  reflect.Type
	secrets reflect.Type
	steps   reflect.Type
}

var (
	alertType  = reflect.TypeOf(schemas.Alert{})
	detectType = reflect.TypeOf(triage.Detection{})
	enrichType = reflect.TypeOf(triage.Enrichment{})
	runType    = reflect.TypeOf(RunInfo{})
	anyType    = reflect.TypeOf((*any)(nil)).Elem()
	mapType    = reflect.TypeOf(map[string]any{})
	listType   = reflect.TypeOf([]any{})
)

// field names a dynamic struct field: Go needs an exported name, expressions see
// the tag.
type field struct {
	name string
	typ  reflect.Type
}

// structOf builds a struct type whose fields expressions address by name. Fields
// are sorted so the same names always give the same type.
func structOf(fields []field) reflect.Type {
	sort.Slice(fields, func(i, j int) bool { return fields[i].name < fields[j].name })
	out := make([]reflect.StructField, 0, len(fields))
	for i, f := range fields {
		out = append(out, reflect.StructField{
			Name: fmt.Sprintf("F%d", i),
			Type: f.typ,
			Tag:  reflect.StructTag(fmt.Sprintf(`json:%q expr:%q`, f.name, f.name)),
		})
	}
	return reflect.StructOf(out)
}

// SchemaType is the Go type a JSON Schema describes: objects with properties become
// structs (so expressions are checked field by field), other objects maps.
func SchemaType(s map[string]any) reflect.Type {
	switch t, _ := s["type"].(string); t {
	case "string":
		return stringType
	case "integer":
		return reflect.TypeOf(0)
	case "number":
		return reflect.TypeOf(0.0)
	case "boolean":
		return reflect.TypeOf(false)
	case "array":
		items, _ := s["items"].(map[string]any)
		if items == nil {
			return listType
		}
		return reflect.SliceOf(SchemaType(items))
	case "object":
		props, _ := s["properties"].(map[string]any)
		if len(props) == 0 {
			return mapType
		}
		fields := make([]field, 0, len(props))
		for name, p := range props {
			ps, _ := p.(map[string]any)
			fields = append(fields, field{name, SchemaType(ps)})
		}
		return structOf(fields)
	}
	return anyType
}

// SchemaZero is the zero value of what a JSON Schema describes, as JSON decodes it:
// an object with every declared property at its zero, an empty list, "", 0, false.
func SchemaZero(s map[string]any) any {
	switch t, _ := s["type"].(string); t {
	case "string":
		return ""
	case "integer", "number":
		return 0.0
	case "boolean":
		return false
	case "array":
		return []any{}
	case "object":
		return Conform(map[string]any{}, s)
	}
	return nil
}

// Conform returns v with the properties an object schema declares but v lacks
// filled with their zero values, recursively, so a vendor that omits a field does
// not turn a typed expression into a runtime error. v itself is not changed.
func Conform(v map[string]any, s map[string]any) map[string]any {
	props, _ := s["properties"].(map[string]any)
	if len(props) == 0 {
		return v
	}
	out := make(map[string]any, len(v)+len(props))
	for k, x := range v {
		out[k] = x
	}
	for name, p := range props {
		ps, _ := p.(map[string]any)
		switch cur := out[name]; cur := cur.(type) {
		case nil:
			if z := SchemaZero(ps); z != nil {
				out[name] = z
			}
		case map[string]any:
			out[name] = Conform(cur, ps)
		}
	}
	return out
}

// inputType is the Go type of a declared input: its type is a JSON Schema type,
// but for list (array).
func inputType(typ string) reflect.Type {
	if typ == "list" {
		typ = "array"
	}
	return SchemaType(map[string]any{"type": typ})
}

// literalType is the type of a YAML literal.
func literalType(v any) reflect.Type {
	switch v.(type) {
	case string:
		return stringType
	case int, int64:
		return reflect.TypeOf(0)
	case float64:
		return reflect.TypeOf(0.0)
	case bool:
		return reflect.TypeOf(false)
	case []any:
		return listType
	case map[string]any:
		return mapType
	}
	return anyType
}

// stepOutputType is the type of steps.<id>.output for a step.
func stepOutputType(s *Step, ops Operations) reflect.Type {
	switch s.Kind() {
	case KindAction:
		if ops != nil {
			if op, ok := ops(s.Uses); ok && op.Output != nil {
				return SchemaType(op.Output)
			}
		}
		return anyType
	case KindForeach:
		return reflect.TypeOf([]map[string]any{})
	}
	return mapType
}

// scope is what an expression sees at one place: the playbook's types plus the
// item variables of the foreach steps it sits in.
type scope struct {
	types   *Types
	items   []string // innermost last
	trigger bool     // a trigger sees only the alert and what detect and enrich learned
}

func (sc scope) with(item string) scope {
	return scope{types: sc.types, items: append(slices.Clone(sc.items), item)}
}

// envType is the expression environment's type in this scope.
func (sc scope) envType() reflect.Type {
	if sc.trigger {
		return structOf([]field{{"alert", alertType}, {"detect", detectType}, {"enrich", enrichType}})
	}
	fields := []field{
		{"alert", alertType},
		{"detect", detectType},
		{"enrich", enrichType},
		{"run", runType},
		{"vars", sc.types.vars},
		{"inputs", sc.types.inputs},
		{"secrets", sc.types.secrets},
		{"steps", sc.types.steps},
	}
	for _, it := range sc.items {
		fields = append(fields, field{it, anyType})
	}
	return structOf(fields)
}
