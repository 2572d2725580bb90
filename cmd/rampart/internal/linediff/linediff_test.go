package linediff

import (
	"strings"
	"testing"
)

// render writes a script as diff's lines: op then text.
func render(edits []Edit) string {
	var b strings.Builder
	for _, e := range edits {
		b.WriteByte(e.Op)
		b.WriteString(e.Text)
		b.WriteByte(' ')
	}
	return strings.TrimSpace(b.String())
}

func TestScript(t *testing.T) {
	for name, c := range map[string]struct {
		a, b   string
		script string
	}{
		"equal":     {"a b", "a b", " a  b"},
		"both none": {"", "", ""},
		"all added": {"", "a b", "+a +b"},
		"all gone":  {"a b", "", "-a -b"},
		"inserted":  {"a b c", "a x b c", " a +x  b  c"},
		"removed":   {"a b c", "a c", " a -b  c"},
		"changed":   {"a b c", "a y c", " a -b +y  c"},
		"moved":     {"a b c", "b a c", "-a  b +a  c"},
	} {
		if got := render(Script(strings.Fields(c.a), strings.Fields(c.b))); got != strings.TrimSpace(c.script) {
			t.Errorf("%s: %q, want %q", name, got, strings.TrimSpace(c.script))
		}
	}
}
