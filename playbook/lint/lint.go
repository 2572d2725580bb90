// Package lint reads playbook files and reports everything wrong with them, each
// problem with its file, line and column: YAML or JSON syntax, the playbook JSON
// Schema (schemas/playbook.schema.json), and playbook.Check's semantic and
// expression type checks against the integration catalogue.
//
// It may import playbook, schemas, integrations (the catalogue only), yaml and
// gojsonschema; it does no I/O beyond reading the files it is given.
package lint

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/xeipuuv/gojsonschema"
	"gopkg.in/yaml.v3"

	"github.com/rampart-soar/rampart/integrations"
	"github.com/rampart-soar/rampart/playbook"
	"github.com/rampart-soar/rampart/schemas"
)

// Diagnostic is one problem, positioned in its file.
type Diagnostic struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Column  int    `json:"column"`
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
}

func (d Diagnostic) String() string {
	return fmt.Sprintf("%s:%d:%d: %s", d.File, d.Line, d.Column, d.Message)
}

// Result is one linted file.
type Result struct {
	File     string
	Playbook *playbook.Playbook // nil when the file could not be decoded
	Problems []Diagnostic
}

// OK reports a file without problems.
func (r *Result) OK() bool { return len(r.Problems) == 0 }

// Operations is the integration catalogue as playbook.Check wants it.
func Operations(name string) (playbook.Operation, bool) {
	op, ok := integrations.LookupOperation(name)
	if !ok {
		return playbook.Operation{}, false
	}
	return playbook.Operation{Input: op.Input, Output: op.Output, SideEffect: op.SideEffect, Inverse: op.Inverse}, true
}

// operationNames are the catalogue's operation names, sorted.
var operationNames = sync.OnceValue(func() []string {
	var names []string
	for _, op := range integrations.Operations() {
		names = append(names, op.Name)
	}
	return names
})

var schema = sync.OnceValues(func() (*gojsonschema.Schema, error) {
	return gojsonschema.NewSchema(gojsonschema.NewBytesLoader(schemas.PlaybookSchema()))
})

// Source lints one playbook held in memory. playbooks resolves `call` targets; nil
// skips those checks.
func Source(file string, data []byte, playbooks func(string) (*playbook.Playbook, bool)) *Result {
	r := &Result{File: file}
	doc, err := parseDocument(data)
	if err != nil {
		r.Problems = append(r.Problems, syntaxDiagnostic(file, data, err))
		return r
	}
	s, err := schema()
	if err != nil {
		panic(fmt.Sprintf("lint: embedded playbook schema does not compile: %v", err)) // a build defect
	}
	res, err := s.Validate(gojsonschema.NewGoLoader(doc.value))
	if err != nil {
		r.Problems = append(r.Problems, Diagnostic{File: file, Line: 1, Column: 1, Message: err.Error()})
		return r
	}
	for _, e := range res.Errors() {
		path, msg, key := schemaProblem(e)
		r.Problems = append(r.Problems, doc.diagnostic(file, playbook.Problem{Path: path, Message: msg, Key: key}))
	}
	if len(r.Problems) > 0 {
		sortDiagnostics(r.Problems)
		return r // the model below would only repeat these
	}
	var pb playbook.Playbook
	if err := doc.root.Decode(&pb); err != nil {
		r.Problems = append(r.Problems, syntaxDiagnostic(file, data, err))
		return r
	}
	r.Playbook = &pb
	for _, p := range playbook.Check(&pb, playbook.CheckOptions{Operations: Operations, OperationNames: operationNames(), Playbooks: playbooks}) {
		r.Problems = append(r.Problems, doc.diagnostic(file, p))
	}
	sortDiagnostics(r.Problems)
	return r
}

// Files lints playbook files and directories (every .yaml, .yml and .json in
// them, test files excepted). Calls between them are checked too.
func Files(paths ...string) ([]*Result, error) {
	files, err := PlaybookFiles(paths...)
	if err != nil {
		return nil, err
	}
	sources := make([]File, 0, len(files))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		sources = append(sources, File{Name: f, Data: data})
	}
	return Sources(sources, nil), nil
}

// PlaybookFiles expands directories into the playbook files in them, sorted.
func PlaybookFiles(paths ...string) ([]string, error) {
	return FilesIn(paths, IsPlaybookFile)
}

// FilesIn lists the files named in paths, and those in the directories named
// (not recursively) whose names match, sorted.
func FilesIn(paths []string, match func(name string) bool) ([]string, error) {
	var files []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if match(e.Name()) && !e.IsDir() {
				files = append(files, filepath.Join(p, e.Name()))
			}
		}
	}
	sort.Strings(files)
	return files, nil
}

// File is a playbook file's name and content.
type File struct {
	Name string
	Data []byte
}

// Sources lints playbooks held in memory. A call may name another of them, or a
// playbook others finds (the ones already stored); nil others checks calls among
// these only.
func Sources(files []File, others func(string) (*playbook.Playbook, bool)) []*Result {
	byName := map[string]*playbook.Playbook{}
	for _, f := range files {
		if doc, err := parseDocument(f.Data); err == nil {
			var pb playbook.Playbook
			if doc.root.Decode(&pb) == nil && pb.Name != "" {
				byName[pb.Name] = &pb
			}
		}
	}
	lookup := func(name string) (*playbook.Playbook, bool) {
		if pb, ok := byName[name]; ok {
			return pb, true
		}
		if others != nil {
			return others(name)
		}
		return nil, false
	}
	out := make([]*Result, 0, len(files))
	seen := map[string]string{}
	for _, f := range files {
		r := Source(f.Name, f.Data, lookup)
		if r.Playbook != nil {
			if other, dup := seen[r.Playbook.Name]; dup {
				r.Problems = append(r.Problems, Diagnostic{File: f.Name, Line: 1, Column: 1, Path: "name",
					Message: fmt.Sprintf("playbook name %q is also used by %s", r.Playbook.Name, other)})
			}
			seen[r.Playbook.Name] = f.Name
		}
		out = append(out, r)
	}
	return out
}

// IsPlaybookFile reports a playbook file name: YAML or JSON, not a test file.
func IsPlaybookFile(name string) bool {
	ext := strings.ToLower(filepath.Ext(name))
	if ext != ".yaml" && ext != ".yml" && ext != ".json" {
		return false
	}
	return !strings.HasSuffix(strings.TrimSuffix(name, filepath.Ext(name)), ".test")
}

// schemaProblem turns a schema error into a dotted path, a sentence, and whether
// the problem is the key at the path.
func schemaProblem(e gojsonschema.ResultError) (path, msg string, key bool) {
	path = e.Field()
	if path == "(root)" {
		path = ""
	}
	join := func(p, k string) string {
		if p == "" {
			return k
		}
		return p + "." + k
	}
	switch e.Type() {
	case "required":
		prop, _ := e.Details()["property"].(string)
		return path, fmt.Sprintf("%s is required", prop), false
	case "additional_property_not_allowed":
		prop, _ := e.Details()["property"].(string)
		return join(path, prop), fmt.Sprintf("unknown field %q", prop), true
	case "number_one_of", "number_any_of":
		return path, "does not match any allowed form", false
	case "enum":
		return path, fmt.Sprintf("must be one of %v", e.Details()["allowed"]), false
	case "pattern":
		if fmt.Sprint(e.Details()["pattern"]) == durationPattern {
			return path, fmt.Sprintf("%q is not a duration like 30s, 15m, 24h or 7d", e.Value()), false
		}
		return path, fmt.Sprintf("%q does not match %v", e.Value(), e.Details()["pattern"]), false
	case "invalid_type":
		return path, fmt.Sprintf("must be %v, not %v", e.Details()["expected"], e.Details()["given"]), false
	}
	return path, e.Description(), false
}

// durationPattern is the schema's pattern for durations, recognized to say so.
const durationPattern = "^([0-9]+(ms|s|m|h|d))+$"

var yamlLine = regexp.MustCompile(`line (\d+)(?::? column (\d+))?`)

// syntaxDiagnostic positions a YAML or JSON syntax error.
func syntaxDiagnostic(file string, data []byte, err error) Diagnostic {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	d := Diagnostic{File: file, Line: 1, Column: 1}
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		d.Line, _ = strconv.Atoi(m[1])
		if m[2] != "" {
			d.Column, _ = strconv.Atoi(m[2])
		}
		msg = strings.TrimLeft(strings.TrimPrefix(msg, m[0]), ": ")
	}
	d.Message = msg
	lines := strings.Split(string(data), "\n")
	if d.Line >= 1 && d.Line <= len(lines) && strings.Contains(msg, "mapping values are not allowed") &&
		strings.Contains(lines[d.Line-1], "${{") {
		d.Message += ` (quote the value: an unquoted ": " inside ${{ … }} reads as a YAML key)`
	}
	return d
}

func sortDiagnostics(ds []Diagnostic) {
	sort.SliceStable(ds, func(i, j int) bool {
		if ds[i].Line != ds[j].Line {
			return ds[i].Line < ds[j].Line
		}
		return ds[i].Column < ds[j].Column
	})
}
