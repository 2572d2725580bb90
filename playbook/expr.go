package playbook

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
)

// ExprError is an expression that does not compile, located inside the string that
// holds it: Offset is where the expression starts in that string, Line (from 1) and
// Column (from 0) where the error is inside the expression.
type ExprError struct {
	Offset  int
	Line    int
	Column  int
	Message string
}

func (e *ExprError) Error() string { return e.Message }

const (
	openDelim  = "${{"
	closeDelim = "}}"
)

// segment is a piece of a template: literal text, or an expression and where it
// starts in the template.
type segment struct {
	text   string
	expr   bool
	offset int
}

// splitTemplate cuts s into literal and `${{ … }}` segments.
func splitTemplate(s string) ([]segment, error) {
	var out []segment
	pos := 0
	for {
		i := strings.Index(s[pos:], openDelim)
		if i < 0 {
			if pos < len(s) {
				out = append(out, segment{text: s[pos:], offset: pos})
			}
			return out, nil
		}
		start := pos + i
		if start > pos {
			out = append(out, segment{text: s[pos:start], offset: pos})
		}
		end := strings.Index(s[start+len(openDelim):], closeDelim)
		if end < 0 {
			return nil, &ExprError{Offset: start, Line: 1, Message: "unterminated ${{: add the closing }}"}
		}
		inner := s[start+len(openDelim) : start+len(openDelim)+end]
		trimmed := strings.TrimLeft(inner, " \t")
		exprStart := start + len(openDelim) + len(inner) - len(trimmed)
		if strings.TrimSpace(inner) == "" {
			return nil, &ExprError{Offset: start, Line: 1, Message: "empty ${{ }}"}
		}
		out = append(out, segment{text: strings.TrimRight(trimmed, " \t"), expr: true, offset: exprStart})
		pos = start + len(openDelim) + end + len(closeDelim)
	}
}

// HasExpression reports whether s interpolates anything.
func HasExpression(s string) bool { return strings.Contains(s, openDelim) }

// exactExpression returns the expression of a string that is exactly one
// `${{ … }}` (surrounding spaces allowed): such a value keeps the expression's type.
func exactExpression(s string) (segment, bool) {
	segs, err := splitTemplate(strings.TrimSpace(s))
	if err != nil || len(segs) != 1 || !segs[0].expr {
		return segment{}, false
	}
	seg := segs[0]
	seg.offset += len(s) - len(strings.TrimLeft(s, " \t\n"))
	return seg, true
}

// compileOptions are the options every expression compiles with in a scope.
func compileOptions(sc scope, clock func() time.Time) []expr.Option {
	env := reflect.New(sc.envType()).Elem().Interface()
	return append([]expr.Option{expr.Env(env)}, libraryOptions(clock)...)
}

// noClock stands in for the run's clock when expressions are only type-checked.
func noClock() time.Time { return time.Time{} }

// compileAt compiles one expression that starts at offset in its string.
func compileAt(src string, offset int, sc scope) (*vm.Program, error) {
	p, err := expr.Compile(src, compileOptions(sc, noClock)...)
	if err != nil {
		return nil, exprError(err, src, offset, sc.envType())
	}
	return p, nil
}

func exprError(err error, src string, offset int, env reflect.Type) *ExprError {
	var fe *file.Error
	if !errors.As(err, &fe) {
		return &ExprError{Offset: offset, Line: 1, Message: err.Error()}
	}
	msg := strings.TrimSpace(fe.Message)
	if m := noField.FindStringSubmatch(msg); m != nil {
		msg = unknownField(src, m[1], env)
	}
	return &ExprError{Offset: offset, Line: max(fe.Line, 1), Column: fe.Column, Message: msg}
}

var (
	noField     = regexp.MustCompile(`has no field (\w+)$`)
	memberChain = regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_]*(?:\s*\??\.\s*[A-Za-z_][A-Za-z0-9_]*)+`)
)

// unknownField rewrites expr's "type … has no field x" (whose type may be one of
// the environment's generated structs) as what the author wrote wrong, with the
// fields that do exist and the likeliest one.
func unknownField(src, name string, env reflect.Type) string {
	for _, chain := range memberChain.FindAllString(src, -1) {
		parts := strings.Split(strings.NewReplacer(" ", "", "?", "").Replace(chain), ".")
		for i := 1; i < len(parts); i++ {
			if parts[i] != name {
				continue
			}
			parent, ok := resolve(env, parts[:i])
			if !ok {
				continue
			}
			names := fieldNames(parent)
			where := strings.Join(parts[:i], ".")
			var msg string
			switch where {
			case "steps":
				msg = fmt.Sprintf("no step with id %q", name)
			case "vars":
				msg = fmt.Sprintf("vars.%s is not declared under vars", name)
			case "inputs":
				msg = fmt.Sprintf("inputs.%s is not declared under inputs", name)
			case "secrets":
				msg = fmt.Sprintf("secrets.%s is not declared under secrets", name)
			default:
				msg = fmt.Sprintf("%s has no field %q", where, name)
			}
			if best := closest(name, names); best != "" {
				msg += fmt.Sprintf(" (did you mean %s?)", best)
			} else if len(names) > 0 && len(names) <= 12 {
				msg += " (it has " + strings.Join(names, ", ") + ")"
			}
			return msg
		}
	}
	return fmt.Sprintf("unknown field %q", name)
}

// resolve walks a member chain through struct types by their expr names.
func resolve(t reflect.Type, chain []string) (reflect.Type, bool) {
	for _, name := range chain {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return nil, false
		}
		f, ok := fieldByTag(t, name)
		if !ok {
			return nil, false
		}
		t = f.Type
	}
	return t, t.Kind() == reflect.Struct
}

func fieldNames(t reflect.Type) []string {
	names := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		if n := t.Field(i).Tag.Get("expr"); n != "" && n != "-" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// closest is the name within edit distance 2 of want, if there is one.
func closest(want string, names []string) string {
	best, bestDist := "", 3
	for _, n := range names {
		if d := editDistance(want, n); d < bestDist {
			best, bestDist = n, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// compileBool compiles a bare boolean expression (if, when, until).
func compileBool(src string, sc scope) error {
	p, err := compileAt(src, 0, sc)
	if err != nil {
		return err
	}
	return wantKind(p, 0, "a boolean", reflect.Bool)
}

// wantKind checks a compiled expression's static type; an interface (unknown until
// run time) passes.
func wantKind(p *vm.Program, offset int, what string, kinds ...reflect.Kind) error {
	t := p.Node().Type()
	if t == nil || t.Kind() == reflect.Interface {
		return nil
	}
	for _, k := range kinds {
		if t.Kind() == k {
			return nil
		}
	}
	return &ExprError{Offset: offset, Line: 1, Message: fmt.Sprintf("must be %s, but this expression is %s", what, typeName(t))}
}

// templateType compiles every expression in a string value and returns the type
// the value has: the expression's own for an exact `${{ … }}`, string otherwise.
func templateType(s string, sc scope) (reflect.Type, error) {
	if seg, ok := exactExpression(s); ok {
		p, err := compileAt(seg.text, seg.offset, sc)
		if err != nil {
			return nil, err
		}
		if t := p.Node().Type(); t != nil {
			return t, nil
		}
		return anyType, nil
	}
	segs, err := splitTemplate(s)
	if err != nil {
		return nil, err
	}
	for _, seg := range segs {
		if seg.expr {
			if _, err := compileAt(seg.text, seg.offset, sc); err != nil {
				return nil, err
			}
		}
	}
	return stringType, nil
}

// valueType is the type of a YAML value that may hold templates, checking every
// template inside it. path reports where a nested template failed.
func valueType(v any, sc scope, path string, report func(path string, err error)) reflect.Type {
	switch v := v.(type) {
	case string:
		if !HasExpression(v) {
			return stringType
		}
		t, err := templateType(v, sc)
		if err != nil {
			report(path, err)
			return anyType
		}
		return t
	case map[string]any:
		for k, e := range v {
			valueType(e, sc, path+"."+k, report)
		}
		return mapType
	case []any:
		for i, e := range v {
			valueType(e, sc, fmt.Sprintf("%s.%d", path, i), report)
		}
		return listType
	}
	return literalType(v)
}

func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "a boolean"
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "an integer"
	case reflect.Float64, reflect.Float32:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		if t == timeType {
			return "a time"
		}
		return "an object"
	}
	return t.String()
}

// assignable reports whether a value of type got fits a JSON Schema type name.
func fitsSchemaType(got reflect.Type, want string) bool {
	if got == nil || got.Kind() == reflect.Interface {
		return true
	}
	switch want {
	case "", "any":
		return true
	case "string":
		return got.Kind() == reflect.String
	case "integer":
		return isInt(got)
	case "number":
		return isInt(got) || got.Kind() == reflect.Float64 || got.Kind() == reflect.Float32
	case "boolean":
		return got.Kind() == reflect.Bool
	case "array", "list":
		return got.Kind() == reflect.Slice || got.Kind() == reflect.Array
	case "object":
		return got.Kind() == reflect.Map || (got.Kind() == reflect.Struct && got != timeType)
	}
	return true
}

func isInt(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint32, reflect.Uint64:
		return true
	}
	return false
}
