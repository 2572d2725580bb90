package playbook

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"

	"github.com/rampart-soar/rampart/schemas"
	"github.com/rampart-soar/rampart/triage"
)

// Env is the data an expression sees during a run. Steps holds, per step id,
// {"output": …, "status": …, "error": …}; Items the foreach item variables in scope.
type Env struct {
	Alert   schemas.Alert
	Detect  triage.Detection
	Enrich  triage.Enrichment
	Run     RunInfo
	Vars    map[string]any
	Inputs  map[string]any
	Secrets map[string]any
	Steps   map[string]any
	Items   map[string]any

	// built is the expression environment, assembled on first use: every
	// expression a step evaluates shares it.
	built map[string]any
	// shape names the item variables in scope, for the program cache.
	shape string
}

func (e *Env) data() map[string]any {
	if e.built != nil {
		return e.built
	}
	m := make(map[string]any, 8+len(e.Items))
	// Pointers: boxing the structs themselves would copy the alert on every step.
	m["alert"], m["detect"], m["enrich"], m["run"] = &e.Alert, &e.Detect, &e.Enrich, &e.Run
	m["vars"], m["inputs"], m["secrets"], m["steps"] = orEmpty(e.Vars), orEmpty(e.Inputs), orEmpty(e.Secrets), orEmpty(e.Steps)
	if len(e.Items) > 0 {
		names := make([]string, 0, len(e.Items))
		for k, v := range e.Items {
			m[k] = v
			names = append(names, k)
		}
		sort.Strings(names)
		e.shape = strings.Join(names, ",")
	}
	e.built = m
	return m
}

func orEmpty(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// Runtime evaluates a playbook's expressions during a run. Evaluation is
// deterministic: now() reads the clock the interpreter sets (the workflow's), and
// keys(), values() and toPairs() return map entries in key order, so a replay
// computes the same values. Programs are compiled on first use and kept.
type Runtime struct {
	mu        sync.Mutex
	now       time.Time
	programs  map[string]*vm.Program
	templates map[string][]segment
}

// NewRuntime returns an evaluator with empty caches.
func NewRuntime() *Runtime {
	return &Runtime{programs: map[string]*vm.Program{}, templates: map[string][]segment{}}
}

// segments splits a template once.
func (r *Runtime) segments(s string) ([]segment, error) {
	r.mu.Lock()
	segs, ok := r.templates[s]
	r.mu.Unlock()
	if ok {
		return segs, nil
	}
	segs, err := splitTemplate(s)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.templates[s] = segs
	r.mu.Unlock()
	return segs, nil
}

// SetNow sets the time now() returns.
func (r *Runtime) SetNow(t time.Time) {
	r.mu.Lock()
	r.now = t
	r.mu.Unlock()
}

func (r *Runtime) clock() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.now
}

// Eval evaluates a bare expression (if, when, until, items).
func (r *Runtime) Eval(src string, env *Env) (any, error) {
	data := env.data()
	p, err := r.program(src, env.shape, data)
	if err != nil {
		return nil, err
	}
	out, err := expr.Run(p, data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	return out, nil
}

// EvalBool evaluates a condition; anything but true is false, except an error.
func (r *Runtime) EvalBool(src string, env *Env) (bool, error) {
	out, err := r.Eval(src, env)
	if err != nil {
		return false, err
	}
	b, ok := out.(bool)
	if !ok && out != nil {
		return false, fmt.Errorf("%s: got %T, not a boolean", src, out)
	}
	return b, nil
}

// Render resolves every `${{ … }}` in a value, recursing into maps and lists. A
// string that is exactly one expression becomes the expression's value; any other
// string with expressions becomes text.
func (r *Runtime) Render(v any, env *Env) (any, error) {
	switch v := v.(type) {
	case string:
		return r.renderString(v, env)
	case map[string]any:
		out := make(map[string]any, len(v))
		for _, k := range slices.Sorted(maps.Keys(v)) {
			rv, err := r.Render(v[k], env)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			out[k] = rv
		}
		return out, nil
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			rv, err := r.Render(e, env)
			if err != nil {
				return nil, err
			}
			out[i] = rv
		}
		return out, nil
	}
	return v, nil
}

func (r *Runtime) renderString(s string, env *Env) (any, error) {
	if !HasExpression(s) {
		return s, nil
	}
	if seg, ok := exactExpression(s); ok {
		return r.Eval(seg.text, env)
	}
	segs, err := r.segments(s)
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	for _, seg := range segs {
		if !seg.expr {
			b.WriteString(seg.text)
			continue
		}
		v, err := r.Eval(seg.text, env)
		if err != nil {
			return nil, err
		}
		b.WriteString(Text(v))
	}
	return b.String(), nil
}

// Text formats a value for interpolation into a string: nil is empty, times are
// RFC 3339, whole floats (JSON numbers) have no decimals.
func Text(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case time.Time:
		return v.UTC().Format(time.RFC3339)
	case float64:
		if v == float64(int64(v)) {
			return fmt.Sprint(int64(v))
		}
	}
	return fmt.Sprint(v)
}

// program compiles src for an environment with the given item variables (shape
// names them), once.
func (r *Runtime) program(src, shape string, data map[string]any) (*vm.Program, error) {
	key := src
	if shape != "" {
		key = shape + "\x00" + src
	}
	r.mu.Lock()
	p, ok := r.programs[key]
	r.mu.Unlock()
	if ok {
		return p, nil
	}
	opts := append([]expr.Option{expr.Env(data)}, libraryOptions(r.clock)...)
	p, err := expr.Compile(src, opts...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	r.mu.Lock()
	r.programs[key] = p
	r.mu.Unlock()
	return p, nil
}

// libraryOptions are every function expressions may call, for lint and runs alike.
func libraryOptions(clock func() time.Time) []expr.Option {
	return append(functionOptions(clock), orderedMapBuiltins()...)
}

// orderedMapBuiltins replace expr's keys, values and toPairs, which follow Go's
// random map order, with versions in key order: workflow code must not depend on
// map order.
func orderedMapBuiltins() []expr.Option {
	mapArg := func(params []any) (reflect.Value, error) {
		v := reflect.ValueOf(params[0])
		if v.Kind() != reflect.Map {
			return reflect.Value{}, fmt.Errorf("expected a map, got %T", params[0])
		}
		return v, nil
	}
	sortedMapKeys := func(v reflect.Value) []reflect.Value {
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return fmt.Sprint(keys[i].Interface()) < fmt.Sprint(keys[j].Interface()) })
		return keys
	}
	return []expr.Option{
		expr.DisableBuiltin("keys"), expr.DisableBuiltin("values"), expr.DisableBuiltin("toPairs"),
		expr.Function("keys", func(params ...any) (any, error) {
			v, err := mapArg(params)
			if err != nil {
				return nil, err
			}
			out := []any{}
			for _, k := range sortedMapKeys(v) {
				out = append(out, k.Interface())
			}
			return out, nil
		}),
		expr.Function("values", func(params ...any) (any, error) {
			v, err := mapArg(params)
			if err != nil {
				return nil, err
			}
			out := []any{}
			for _, k := range sortedMapKeys(v) {
				out = append(out, v.MapIndex(k).Interface())
			}
			return out, nil
		}),
		expr.Function("toPairs", func(params ...any) (any, error) {
			v, err := mapArg(params)
			if err != nil {
				return nil, err
			}
			out := []any{}
			for _, k := range sortedMapKeys(v) {
				out = append(out, []any{k.Interface(), v.MapIndex(k).Interface()})
			}
			return out, nil
		}),
	}
}
