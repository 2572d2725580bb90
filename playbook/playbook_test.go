package playbook

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/expr-lang/expr"

	"github.com/rampart-soar/rampart/schemas"
)

func TestExtractors(t *testing.T) {
	text := `From: Attacker <Billing@Evil-Payments.example> — click https://login-microsoft-verify.example/o365?x=1, or
http://198.51.100.200:8080/drop.exe. Seen from 203.0.113.66 and 2001:db8::7 (again 203.0.113.66); attachment invoice.pdf
sha256 4BE1F82C6C5E0D3A9B7F2E1D0C8A6B4F3E2D1C0B9A8F7E6D5C4B3A2F1E0D9C8B md5 8f14e45fceea167a5a36dedd4bea2543 version 1.2.3.4.5`
	for name, c := range map[string]struct {
		fn   func(string) []string
		want []string
	}{
		"ips":     {ExtractIPs, []string{"198.51.100.200", "203.0.113.66", "2001:db8::7"}},
		"urls":    {ExtractURLs, []string{"https://login-microsoft-verify.example/o365?x=1", "http://198.51.100.200:8080/drop.exe"}},
		"emails":  {ExtractEmails, []string{"billing@evil-payments.example"}},
		"domains": {ExtractDomains, []string{"evil-payments.example", "login-microsoft-verify.example"}},
		"hashes":  {ExtractHashes, []string{"4be1f82c6c5e0d3a9b7f2e1d0c8a6b4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b", "8f14e45fceea167a5a36dedd4bea2543"}},
	} {
		if got := c.fn(text); !slices.Equal(got, c.want) {
			t.Errorf("%s = %q, want %q", name, got, c.want)
		}
	}
	if got := ExtractIPs("nothing here"); got == nil || len(got) != 0 {
		t.Errorf("no match must be an empty list, got %#v", got)
	}
}

func TestNetworkHelpers(t *testing.T) {
	if ok, err := CIDRContains("10.0.0.0/8", "10.20.4.142"); !ok || err != nil {
		t.Errorf("10.20.4.142 in 10/8: %v %v", ok, err)
	}
	if ok, _ := CIDRContains("10.0.0.0/8", "::ffff:10.1.1.1"); !ok {
		t.Error("IPv4-mapped address not matched")
	}
	if ok, _ := CIDRContains("10.0.0.0/8", "not-an-ip"); ok {
		t.Error("a non-address matched")
	}
	if _, err := CIDRContains("10.0.0.0/33", "10.0.0.1"); err == nil {
		t.Error("bad CIDR accepted")
	}
	for ip, private := range map[string]bool{"10.1.2.3": true, "192.168.1.1": true, "127.0.0.1": true, "fe80::1": true, "fd00::1": true, "203.0.113.66": false, "8.8.8.8": false, "bogus": false} {
		if IsPrivateIP(ip) != private {
			t.Errorf("IsPrivateIP(%s) != %v", ip, private)
		}
	}
	if !InList("b", []string{"a", "b"}) || InList(3, []int{1, 2}) || InList("a", "abc") {
		t.Error("InList")
	}
}

func TestLibraryInExpressions(t *testing.T) {
	at := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	opts := append([]expr.Option{expr.Env(map[string]any{"text": "see 203.0.113.66 and 10.0.0.1"})}, functionOptions(func() time.Time { return at })...)
	for src, want := range map[string]any{
		`now()`:                          at,
		`now() - duration("1h") < now()`: true,
		`extract_ips(text)`:              []string{"203.0.113.66", "10.0.0.1"},
		`filter(extract_ips(text), {!is_private_ip(#)})`:                []any{"203.0.113.66"},
		`cidr_contains("203.0.113.0/24", extract_ips(text)[0])`:         true,
		`regex_match("^see [0-9.]+", text) && in_list("x", ["x", "y"])`: true,
		`lower("ABC") + upper("d")`:                                     "abcD",
	} {
		p, err := expr.Compile(src, opts...)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		got, err := expr.Run(p, map[string]any{"text": "see 203.0.113.66 and 10.0.0.1"})
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v, want %#v", src, got, want)
		}
	}
	if _, err := expr.Compile(`regex_match(1, "x")`, opts...); err == nil {
		t.Error("regex_match(1, …) type-checked")
	}
}

func TestParseDuration(t *testing.T) {
	for s, want := range map[string]time.Duration{"30s": 30 * time.Second, "15m": 15 * time.Minute, "24h": 24 * time.Hour, "7d": 7 * 24 * time.Hour, "1h30m": 90 * time.Minute, "250ms": 250 * time.Millisecond} {
		if got, err := ParseDuration(s); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v", s, got, err)
		}
	}
	for _, bad := range []string{"", "1 day", "10", "-5m", "1w", "m"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) accepted", bad)
		}
	}
}

func TestTemplates(t *testing.T) {
	segs, err := splitTemplate("host ${{ alert.device.hostname }} is ${{steps.x.status}}!")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range segs {
		if s.expr {
			got = append(got, fmt.Sprintf("{%s}@%d", s.text, s.offset))
		} else {
			got = append(got, s.text)
		}
	}
	if strings.Join(got, "|") != "host |{alert.device.hostname}@9| is |{steps.x.status}@40|!" {
		t.Fatalf("segments = %v", got)
	}
	for _, bad := range []string{"${{ unterminated", "empty ${{   }}"} {
		if _, err := splitTemplate(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if seg, ok := exactExpression("  ${{ alert.severity_id }} "); !ok || seg.text != "alert.severity_id" || seg.offset != 6 {
		t.Fatalf("exact = %+v %v", seg, ok)
	}
	if _, ok := exactExpression("x ${{ a }}"); ok {
		t.Fatal("a template with text is not exact")
	}
}

// TestInterpolationKeepsTypes: a value that is exactly one ${{ … }} has the
// expression's type; one with text around it is a string.
func TestInterpolationKeepsTypes(t *testing.T) {
	types := &Types{vars: structOf(nil), inputs: structOf(nil), secrets: structOf(nil), steps: structOf(nil)}
	sc := scope{types: types}
	for src, want := range map[string]reflect.Kind{
		"${{ alert.severity_id }}":                   reflect.Int,
		"${{ alert.severity_id >= 4 }}":              reflect.Bool,
		"${{ detect.tactics }}":                      reflect.Slice,
		"${{ enrich.asset }}":                        reflect.Struct,
		"level ${{ alert.severity_id }}":             reflect.String,
		"${{ alert.device.hostname }}-${{ run.id }}": reflect.String,
	} {
		got, err := templateType(src, sc)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if got.Kind() != want {
			t.Errorf("%s is %s, want %s", src, got.Kind(), want)
		}
	}
}

func TestSchemaTypes(t *testing.T) {
	typ := SchemaType(map[string]any{"type": "object", "properties": map[string]any{
		"malicious":  map[string]any{"type": "integer"},
		"categories": map[string]any{"type": "array", "items": map[string]any{"type": "string"}},
		"meta":       map[string]any{"type": "object"},
	}})
	p, err := expr.Compile(`out.malicious > 2 && "x" in out.categories && out.meta.anything == nil`,
		expr.Env(map[string]any{"out": reflect.New(typ).Elem().Interface()}))
	if err != nil {
		t.Fatal(err)
	}
	if p.Node().Type().Kind() != reflect.Bool {
		t.Fatal("not boolean")
	}
	if _, err := expr.Compile(`out.malicous > 2`, expr.Env(map[string]any{"out": reflect.New(typ).Elem().Interface()})); err == nil {
		t.Fatal("unknown output field compiled")
	}
}

func TestStepKinds(t *testing.T) {
	msg := "done"
	for _, c := range []struct {
		step Step
		want string
	}{
		{Step{Uses: "edr.get_host"}, KindAction},
		{Step{Switch: []Case{{Default: "x"}}}, KindSwitch},
		{Step{Set: map[string]any{"a": 1}}, KindSet},
		{Step{Succeed: &msg}, KindSucceed},
		{Step{Uses: "x.y", Fail: &msg}, ""},
		{Step{}, ""},
	} {
		if got := c.step.Kind(); got != c.want {
			t.Errorf("kind of %+v = %q, want %q", c.step, got, c.want)
		}
	}
	s := Step{OnError: "goto:cleanup"}
	if s.GotoTarget() != "cleanup" || (&Step{OnError: "continue"}).GotoTarget() != "" {
		t.Error("GotoTarget")
	}
}

func TestZeroOutputsAndConform(t *testing.T) {
	schema := map[string]any{"type": "object", "properties": map[string]any{
		"malicious": map[string]any{"type": "integer"},
		"names":     map[string]any{"type": "array"},
		"verdict":   map[string]any{"type": "string"},
		"details":   map[string]any{"type": "object", "properties": map[string]any{"ok": map[string]any{"type": "boolean"}}},
	}}
	ops := func(name string) (Operation, bool) {
		return Operation{Output: schema}, name == "ti.lookup_hash"
	}
	pb := &Playbook{Steps: []Step{
		{ID: "ti", Uses: "ti.lookup_hash"},
		{ID: "p", Parallel: &Parallel{Branches: []Branch{{Name: "b", Steps: []Step{{ID: "inner", Uses: "ti.lookup_hash"}}}}}},
		{ID: "other", Uses: "x.unknown"},
	}}
	zero := pb.ZeroOutputs(ops)
	want := map[string]any{"malicious": 0.0, "names": []any{}, "verdict": "", "details": map[string]any{"ok": false}}
	if len(zero) != 2 || !reflect.DeepEqual(zero["ti"], want) || !reflect.DeepEqual(zero["inner"], want) {
		t.Fatalf("zero outputs = %#v", zero)
	}
	in := map[string]any{"malicious": 4.0, "details": map[string]any{}, "extra": "kept"}
	got := Conform(in, schema)
	if got["malicious"] != 4.0 || got["verdict"] != "" || got["extra"] != "kept" || got["details"].(map[string]any)["ok"] != false {
		t.Fatalf("conformed = %#v", got)
	}
	if _, changed := in["verdict"]; changed || len(in["details"].(map[string]any)) != 0 {
		t.Fatal("Conform changed its argument")
	}
	rt := NewRuntime()
	ok, err := rt.EvalBool("steps.ti.output.malicious >= 3", &Env{Steps: map[string]any{"ti": map[string]any{"output": zero["ti"]}}})
	if err != nil || ok {
		t.Fatalf("a failed lookup's zero output: %v, %v", ok, err)
	}
}

func TestParseDurationFunction(t *testing.T) {
	rt := NewRuntime()
	rt.SetNow(time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC))
	ok, err := rt.EvalBool(`parse_duration("7d") == duration("168h") && now() - alert.time < parse_duration("1h30m")`,
		&Env{Alert: schemas.Alert{Time: time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)}})
	if err != nil || !ok {
		t.Fatalf("%v, %v", ok, err)
	}
	if _, err := rt.Eval(`parse_duration("soon")`, &Env{}); err == nil {
		t.Fatal("a bad duration evaluated")
	}
}

// FuzzExpression: whatever expression a playbook holds, type-checking it and then
// running it (as the interpreter would, when it checked clean) answers with a
// problem or a value, never a panic.
func FuzzExpression(f *testing.F) {
	for _, src := range []string{
		`alert.severity_id >= 4 && enrich.ioc_hits > 0`,
		`steps.a.status == "succeeded" ? "x" : lower(alert.finding.title)`,
		`len(filter(extract_ips(alert.finding.desc), {!is_private_ip(#)})) > 0`,
		`cidr_contains("10.0.0.0/8", alert.src_ip) || regex_match("(a+)+$", alert.rule.name)`,
		`now() - duration("1h") < now()`,
		`vars.n / 0 > 1`,
		`((((((((((1))))))))))`,
	} {
		f.Add(src)
	}
	f.Fuzz(func(t *testing.T, src string) {
		pb := &Playbook{
			Name:  "fuzz",
			Vars:  map[string]any{"n": 1},
			Steps: []Step{{ID: "a", Succeed: ptr("${{ " + src + " }}")}},
		}
		pb.Trigger.When = src
		if problems := Check(pb, CheckOptions{}); len(problems) > 0 {
			return
		}
		// The interpreter's environment: every step visible, pending.
		env := func() *Env {
			return &Env{Vars: map[string]any{"n": 1}, Steps: map[string]any{"a": map[string]any{"output": nil, "status": "pending", "error": ""}}}
		}
		rt := NewRuntime()
		_, _ = rt.EvalBool(src, env())
		_, _ = rt.Render("${{ "+src+" }}", env())
	})
}

func ptr[T any](v T) *T { return &v }
