package lint

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/rampart-soar/rampart/playbook"
)

// document is a parsed file: its YAML tree, the same as plain data for schema
// validation, and where every path's key and value are.
type document struct {
	root  *yaml.Node
	value any
	lines []string
	keys  map[string]*yaml.Node // path → the mapping key node
	vals  map[string]*yaml.Node // path → the value node

	// Aliases (*name) may repeat a block, but not contain themselves, and the
	// plain data they expand to is bounded: an alias of an alias of … grows
	// exponentially, and lint takes files from anyone the API lets in.
	expanding map[*yaml.Node]bool // anchors being walked, outermost first
	nodes     int                 // nodes walked so far, aliases expanded
}

// maxNodes bounds a playbook's plain data, aliases expanded. The largest example
// has under a thousand nodes.
const maxNodes = 100_000

// parseDocument reads YAML (or JSON, which YAML includes). Keys must be strings and
// appear once per mapping.
func parseDocument(data []byte) (*document, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, err
	}
	if root.Kind != yaml.DocumentNode || len(root.Content) == 0 {
		return nil, errors.New("line 1: the file is empty")
	}
	d := &document{
		root:  root.Content[0],
		lines: strings.Split(string(data), "\n"),
		keys:  map[string]*yaml.Node{},
		vals:  map[string]*yaml.Node{},

		expanding: map[*yaml.Node]bool{},
	}
	if d.root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: a playbook is a mapping (name:, trigger:, steps: …)", d.root.Line)
	}
	v, err := d.walk(d.root, "")
	if err != nil {
		return nil, err
	}
	d.value = v
	return d, nil
}

// walk converts a node to plain data, indexing positions by dotted path.
func (d *document) walk(n *yaml.Node, path string) (any, error) {
	d.vals[path] = n
	if d.nodes++; d.nodes > maxNodes {
		return nil, fmt.Errorf("line %d column %d: the playbook expands to more than %d values (aliases included)", n.Line, n.Column, maxNodes)
	}
	switch n.Kind {
	case yaml.AliasNode:
		if d.expanding[n.Alias] {
			return nil, fmt.Errorf("line %d column %d: alias *%s is inside its own anchor", n.Line, n.Column, n.Value)
		}
		d.expanding[n.Alias] = true
		defer delete(d.expanding, n.Alias)
		return d.walk(n.Alias, path)
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d column %d: keys must be plain strings", k.Line, k.Column)
			}
			if _, dup := out[k.Value]; dup {
				return nil, fmt.Errorf("line %d column %d: key %q appears twice", k.Line, k.Column, k.Value)
			}
			child := join(path, k.Value)
			d.keys[child] = k
			val, err := d.walk(v, child)
			if err != nil {
				return nil, err
			}
			out[k.Value] = val
		}
		return out, nil
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for i, c := range n.Content {
			val, err := d.walk(c, join(path, strconv.Itoa(i)))
			if err != nil {
				return nil, err
			}
			out = append(out, val)
		}
		return out, nil
	default:
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, err
		}
		return v, nil
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// diagnostic positions a problem: at the expression error inside the value when
// there is one; at the key for a problem with a name, or whose value is a whole
// block; else at the value; else at the nearest ancestor that exists.
func (d *document) diagnostic(file string, p playbook.Problem) Diagnostic {
	diag := Diagnostic{File: file, Path: p.Path, Message: p.Message}
	n, ok := d.vals[p.Path]
	if !ok {
		n = d.nearest(p.Path)
	}
	if k, isKey := d.keys[p.Path]; isKey && (p.Key || !ok || n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode) {
		n = k
	}
	diag.Line, diag.Column = n.Line, n.Column
	if p.Expr != nil && n.Kind == yaml.ScalarNode && !p.Key {
		diag.Line, diag.Column = d.inScalar(n, p.Expr.Offset, p.Expr.Line, p.Expr.Column)
		if p.Path != "" {
			diag.Message = fmt.Sprintf("%s: %s", lastKey(p.Path), p.Message)
		}
		if n.Style == 0 && n.Line <= len(d.lines) && strings.Contains(d.lines[n.Line-1][n.Column-1:], " #") {
			diag.Message += ` (quote the value: in plain YAML " #" starts a comment, cutting the expression short)`
		}
	}
	return diag
}

// nearest is the closest ancestor of path that exists: its key when it has one,
// so a missing field is reported where its block begins.
func (d *document) nearest(path string) *yaml.Node {
	for path != "" {
		i := strings.LastIndexByte(path, '.')
		if i < 0 {
			path = ""
		} else {
			path = path[:i]
		}
		if k, ok := d.keys[path]; ok {
			return k
		}
		if n, ok := d.vals[path]; ok {
			return n
		}
	}
	return d.root
}

// inScalar maps a position inside a scalar's value (the expression's offset in the
// string, then line and column inside the expression) to the file.
func (d *document) inScalar(n *yaml.Node, offset, exprLine, exprCol int) (line, col int) {
	text := n.Value[:min(offset, len(n.Value))]
	before := strings.Count(text, "\n")
	lastLine := text[strings.LastIndexByte(text, '\n')+1:]
	switch n.Style {
	case yaml.LiteralStyle, yaml.FoldedStyle:
		// The value starts on the line after the indicator, at the block's indent.
		line = n.Line + 1 + before
		col = d.indent(line) + 1 + len(lastLine)
	case yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle:
		line, col = n.Line+before, n.Column+1+len(lastLine)
	default:
		line, col = n.Line+before, n.Column+len(lastLine)
	}
	if exprLine > 1 {
		return line + exprLine - 1, exprCol + 1
	}
	return line, col + exprCol
}

func (d *document) indent(line int) int {
	if line < 1 || line > len(d.lines) {
		return 0
	}
	l := d.lines[line-1]
	return len(l) - len(strings.TrimLeft(l, " "))
}

func lastKey(path string) string {
	return path[strings.LastIndexByte(path, '.')+1:]
}
