package lint

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// base is a valid playbook the cases below break one line at a time.
const base = `name: test-playbook
trigger:
  when: alert.severity_id >= 4
vars:
  verdict: unknown
  count: 0
secrets: [api_token]
steps:
  - id: ti
    uses: ti.lookup_hash
    with:
      hash: ${{ alert.file.sha256 }}
    on_error: continue
  - id: route
    switch:
      - when: steps.ti.output.malicious >= 3
        goto: isolate
      - default: done
  - id: isolate
    uses: edr.isolate_host
    with:
      host_id: ${{ alert.device.id }}
      comment: "rampart ${{ run.id }}"
    revert_after: 24h
  - id: each
    foreach:
      items: ${{ extract_ips(alert.finding.desc) }}
      as: ip
      concurrency: 2
      steps:
        - id: block
          uses: firewall.block_ip
          with:
            ip: ${{ ip }}
            duration: 1h
  - id: bump
    set:
      count: ${{ vars.count + 1 }}
  - id: settle
    wait:
      until: steps.isolate.status == "succeeded"
      timeout: 10m
  - id: done
    succeed: "verdict ${{ vars.verdict }}"
`

func lintString(t *testing.T, src string) *Result {
	t.Helper()
	return Source("pb.yaml", []byte(src), nil)
}

func TestValidPlaybookHasNoProblems(t *testing.T) {
	r := lintString(t, base)
	if !r.OK() {
		t.Fatalf("problems: %v", r.Problems)
	}
	if r.Playbook.Name != "test-playbook" || len(r.Playbook.Steps) != 7 || r.Playbook.Steps[3].Foreach.Concurrency != 2 {
		t.Fatalf("decoded = %+v", r.Playbook)
	}
}

// TestDiagnosticsArePositioned breaks the base playbook and expects each problem at
// its file, line and column.
func TestDiagnosticsArePositioned(t *testing.T) {
	cases := []struct {
		name, old, new string
		want           string // "line:col: message substring"
	}{
		{"unknown alert field", "alert.severity_id >= 4", "alert.severity >= 4", `3:24: when: invalid operation: >= (mismatched types string and int)`},
		{"misspelt field", "alert.file.sha256 }}", "alert.file.sha265 }}", `12:28: hash: alert.file has no field "sha265" (did you mean sha256?)`},
		{"unknown step id", "steps.ti.output.malicious", "steps.tx.output.malicious", `16:21: when: no step with id "tx" (did you mean ti?)`},
		{"unknown output field", "steps.ti.output.malicious", "steps.ti.output.malicios", `16:31: when: steps.ti.output has no field "malicios" (did you mean malicious?)`},
		{"non-boolean condition", "steps.ti.output.malicious >= 3", "steps.ti.output.malicious", `16:15: when: must be a boolean, but this expression is an integer`},
		{"unknown operation", "uses: edr.isolate_host", "uses: edr.isolate_hots", `20:11: unknown integration operation "edr.isolate_hots" (did you mean edr.isolate_host?)`},
		{"unknown input", "comment: \"rampart", "remark: \"rampart", `23:7: edr.isolate_host has no input "remark" (it takes comment, host_id)`},
		{"missing required input", "      host_id: ${{ alert.device.id }}\n", "", `21:5: edr.isolate_host needs input "host_id"`},
		{"input type", "host_id: ${{ alert.device.id }}", "host_id: ${{ alert.severity_id }}", `22:16: edr.isolate_host.host_id is string, but this value is an integer`},
		{"function argument type", "alert.severity_id >= 4", `lower(alert.severity_id) == "x"`, `3:21: when: cannot use int as argument (type string) to call lower`},
		{"bad goto", "goto: isolate", "goto: isolat", `17:15: goto "isolat": no such step (did you mean isolate?)`},
		{"goto into another block", "goto: isolate", "goto: block", `17:15: goto "block": that step is in another block`},
		{"duplicate id", "  - id: bump", "  - id: isolate", `36:9: step id "isolate" is used twice`},
		{"bad duration", "revert_after: 24h", "revert_after: 1 day", `24:19: "1 day" is not a duration like 30s, 15m, 24h or 7d`},
		{"unknown field", "    on_error: continue", "    on_eror: continue", `13:5: unknown field "on_eror"`},
		{"two kinds", "    succeed: \"verdict", "    fail: x\n    succeed: \"verdict", `43:5: a step is one kind; this one has both succeed and fail`},
		{"set undeclared var", "count: ${{ vars.count + 1 }}", "total: ${{ vars.count + 1 }}", `38:7: vars.total is not declared: add it under vars`},
		{"set wrong type", "count: ${{ vars.count + 1 }}", "count: ${{ vars.verdict }}", `38:14: vars.count is an integer, but this value is a string`},
		{"foreach over a non-list", "items: ${{ extract_ips(alert.finding.desc) }}", "items: ${{ alert.finding.desc }}", `27:14: items: must be a list, but this expression is a string`},
		{"item outside its foreach", "succeed: \"verdict ${{ vars.verdict }}\"", "succeed: \"verdict ${{ ip }}\"", `44:27: succeed: unknown name ip`},
		{"timeout on a step that takes no time", "  - id: bump\n", "  - id: bump\n    timeout: 5m\n", `37:14: timeout applies to action, wait, parallel, foreach and call steps`},
		{"wait until without timeout", "      timeout: 10m\n", "", `40:5: wait until needs a timeout`},
		{"undeclared secret", "comment: \"rampart ${{ run.id }}\"", "comment: \"rampart ${{ secrets.token }}\"", `23:37: comment: secrets.token is not declared under secrets (it has api_token)`},
		{"secret named like a file", "secrets: [api_token]", "secrets: [api_token_file]", `7:11: secret "api_token_file": a name may not end in _file`},
		{"revert without inverse", "uses: edr.isolate_host", "uses: idp.revoke_sessions", `22:7: idp.revoke_sessions has no input "host_id"`},
		{"unterminated interpolation", "hash: ${{ alert.file.sha256 }}", "hash: ${{ alert.file.sha256", `12:13: hash: unterminated ${{`},
		{"missing trigger", "trigger:\n  when: alert.severity_id >= 4\n", "", `1:1: trigger is required`},
		{"bad name", "name: test-playbook", "name: Test Playbook", `1:7: "Test Playbook" does not match`},
		{"yaml syntax", "    switch:\n", "    switch: [\n", `15:`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := strings.Replace(base, c.old, c.new, 1)
			if src == base {
				t.Fatalf("case does not change the playbook: %q", c.old)
			}
			r := lintString(t, src)
			var got []string
			for _, p := range r.Problems {
				got = append(got, strings.TrimPrefix(p.String(), "pb.yaml:"))
				if strings.TrimSpace(p.Message) != p.Message {
					t.Errorf("message with space around it: %q", p.Message)
				}
			}
			for _, g := range got {
				if strings.HasPrefix(g, c.want) || (strings.Contains(c.want, ": ") && strings.HasPrefix(g, strings.SplitN(c.want, ": ", 2)[0]) && strings.Contains(g, strings.SplitN(c.want, ": ", 2)[1])) {
					return
				}
			}
			t.Fatalf("want %q among:\n  %s", c.want, strings.Join(got, "\n  "))
		})
	}
}

func TestRevertNeedsAnInverse(t *testing.T) {
	src := strings.Replace(base, "uses: edr.isolate_host\n    with:\n      host_id: ${{ alert.device.id }}\n      comment: \"rampart ${{ run.id }}\"",
		"uses: idp.revoke_sessions\n    with:\n      user: ${{ alert.user.name }}", 1)
	r := lintString(t, src)
	if len(r.Problems) != 1 || !strings.Contains(r.Problems[0].Message, "idp.revoke_sessions has no inverse operation") || r.Problems[0].Line != 23 {
		t.Fatalf("problems: %v", r.Problems)
	}
}

func TestJSONPlaybook(t *testing.T) {
	src := `{"name": "json-playbook", "trigger": {"when": "alert.severity_id > 2"},
 "steps": [{"id": "post", "uses": "chat.post_message", "with": {"channel": "#soc", "text": "${{ alert.finding.titel }}"}}]}`
	r := Source("pb.json", []byte(src), nil)
	if len(r.Problems) != 1 || r.Problems[0].Line != 2 || !strings.Contains(r.Problems[0].Message, `alert.finding has no field "titel" (did you mean title?)`) {
		t.Fatalf("problems: %v", r.Problems)
	}
}

func TestFilesChecksCallsAcrossPlaybooks(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("child.yaml", `name: child
trigger: {when: "false"}
inputs:
  host: {type: string, required: true}
steps:
  - id: isolate
    uses: edr.isolate_host
    with: {host_id: "${{ inputs.host }}"}
outputs:
  status: ${{ steps.isolate.output.status }}
`)
	write("parent.yaml", `name: parent
trigger: {when: "true"}
steps:
  - id: run_child
    call:
      playbook: child
      with: {hots: "${{ alert.device.id }}"}
  - id: again
    call: {playbook: missing}
`)
	write("parent.test.yaml", "not: a playbook\n")
	results, err := Files(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 2 {
		t.Fatalf("%d files linted; test files must be skipped", len(results))
	}
	var msgs []string
	for _, r := range results {
		for _, p := range r.Problems {
			msgs = append(msgs, p.String())
		}
	}
	joined := strings.Join(msgs, "\n")
	for _, want := range []string{`playbook child has no input "hots"`, `playbook child needs input "host"`, `no playbook named "missing"`} {
		if !strings.Contains(joined, want) {
			t.Errorf("missing %q in:\n%s", want, joined)
		}
	}
}

func TestExamplePlaybooksLintClean(t *testing.T) {
	results, err := Files("../../examples/playbooks")
	if err != nil {
		t.Fatal(err)
	}
	if len(results) == 0 {
		t.Fatal("no example playbooks")
	}
	for _, r := range results {
		for _, p := range r.Problems {
			t.Errorf("%s", p)
		}
	}
}

// TestReferenceExampleLintsClean keeps the language reference's whole-playbook
// example true to the linter.
func TestReferenceExampleLintsClean(t *testing.T) {
	doc, err := os.ReadFile("../../docs/PLAYBOOKS.md")
	if err != nil {
		t.Fatal(err)
	}
	linted := 0
	for _, block := range strings.Split(string(doc), "```yaml\n")[1:] {
		src, _, _ := strings.Cut(block, "```")
		if !strings.Contains(src, "\nname: ") && !strings.HasPrefix(src, "name: ") {
			continue // a fragment, not a playbook
		}
		linted++
		for _, p := range Source("PLAYBOOKS.md", []byte(src), nil).Problems {
			t.Errorf("%s", p)
		}
	}
	if linted == 0 {
		t.Fatal("no whole playbook in docs/PLAYBOOKS.md")
	}
}

// TestYAMLPitfallsAreExplained: two ways plain YAML cuts an expression short, each
// reported with how to fix it.
func TestYAMLPitfallsAreExplained(t *testing.T) {
	colon := strings.Replace(base, "count: ${{ vars.count + 1 }}", "count: ${{ vars.count > 1 ? 1 : 2 }}", 1)
	r := lintString(t, colon)
	if len(r.Problems) != 1 || r.Problems[0].Line != 38 || !strings.Contains(r.Problems[0].Message, `quote the value: an unquoted ": "`) {
		t.Fatalf("colon: %v", r.Problems)
	}
	hash := strings.Replace(base, "count: ${{ vars.count + 1 }}", "count: ${{ len(filter([1, 2], {# > 1 && # < 3})) }}", 1)
	r = lintString(t, hash)
	if len(r.Problems) != 1 || r.Problems[0].Line != 38 || !strings.Contains(r.Problems[0].Message, `" #" starts a comment`) {
		t.Fatalf("hash: %v", r.Problems)
	}
	quoted := strings.Replace(base, "count: ${{ vars.count + 1 }}", "count: '${{ len(filter([1, 2], {# > 1 && # < 3})) }}'", 1)
	if r := lintString(t, quoted); !r.OK() {
		t.Fatalf("quoted: %v", r.Problems)
	}
}

// TestAliases: an alias may repeat a block; one inside its own anchor, or an
// expansion bomb, is a diagnostic, not a hang.
func TestAliases(t *testing.T) {
	reuse := `name: reuse
trigger: {when: "true"}
steps:
  - id: first
    uses: edr.get_host
    with: &host {host_id: "${{ alert.device.id }}"}
  - id: second
    uses: edr.get_host
    with: *host
`
	if r := lintString(t, reuse); !r.OK() || r.Playbook.Steps[1].With["host_id"] != "${{ alert.device.id }}" {
		t.Fatalf("a repeated block: %v", r.Problems)
	}
	bomb := "name: x\nvars:\n  a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	for _, level := range []string{"a", "b", "c", "d", "e"} {
		next := string(rune(level[0] + 1))
		bomb += "  " + next + ": &" + next + " [" + strings.Repeat("*"+level+", ", 9) + "*" + level + "]\n"
	}
	for name, c := range map[string]struct{ src, want string }{
		"inside its own anchor": {"name: x\nvars: &v {self: *v}\n", "2:17: alias *v is inside its own anchor"},
		"a bomb":                {bomb, "expands to more than 100000 values"},
	} {
		r := lintString(t, c.src)
		if len(r.Problems) != 1 || !strings.Contains(r.Problems[0].String(), c.want) {
			t.Errorf("%s: %v", name, r.Problems)
		}
	}
}

// FuzzSource: whatever the text, lint answers with diagnostics (or a playbook) and
// never panics: the API's lint and apply take it from anyone with a token.
func FuzzSource(f *testing.F) {
	f.Add([]byte(base))
	f.Add([]byte("name: x\ntrigger: {when: \"alert.severity_id >= ${{ 4 }}\"}\nsteps: [{id: a, succeed: \"${{ lower(alert.finding.title) }}\"}]\n"))
	f.Add([]byte(`{"name": "x", "trigger": {"when": "true"}, "steps": [{"id": "a", "foreach": "[1,2]", "as": "n", "steps": [{"id": "b", "set": {"v": "${{ n }}"}}]}]}`))
	f.Add([]byte("a: &a [*a]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := Source("f.yaml", data, nil)
		if r == nil || r.Playbook == nil && len(r.Problems) == 0 {
			t.Fatalf("no playbook and no problem for %q", data)
		}
	})
}
