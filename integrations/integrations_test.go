package integrations_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/xeipuuv/gojsonschema"

	"github.com/rampart-soar/rampart/integrations"
)

func TestSecretNeverPrints(t *testing.T) {
	s := integrations.NewSecret("hunter2-very-secret")
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "secret", s, "struct", struct{ S integrations.Secret }{s})
	js, _ := json.Marshal(map[string]any{"s": s})
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s", s, s, s, s), string(js), logged.String()} {
		if strings.Contains(out, "hunter2") {
			t.Fatalf("secret leaked: %s", out)
		}
	}
	if s.Reveal() != "hunter2-very-secret" || s.IsZero() || !integrations.NewSecret("").IsZero() {
		t.Fatal("Reveal/IsZero")
	}
}

func TestAPIErrorClasses(t *testing.T) {
	for status, retryable := range map[int]bool{400: false, 401: false, 403: false, 404: false, 409: false, 408: true, 429: true, 500: true, 502: true, 503: true} {
		e := &integrations.APIError{Integration: "x", Operation: "y", StatusCode: status}
		if e.Retryable() != retryable {
			t.Errorf("HTTP %d retryable = %v", status, e.Retryable())
		}
	}
	e := &integrations.APIError{Integration: "crowdstrike", Operation: "contain", StatusCode: 409, Code: "409", Message: "device is contained", TraceID: "t-1"}
	if got := e.Error(); got != "crowdstrike contain: HTTP 409 409: device is contained (trace t-1)" {
		t.Fatalf("message = %q", got)
	}
}

// TestCatalogue checks every operation declaration: a known side-effect class,
// inverses that exist and point back, schemas that compile, and a simulated output
// (what a dry run returns) that its own output schema accepts.
func TestCatalogue(t *testing.T) {
	ops := integrations.Operations()
	if len(ops) < 10 {
		t.Fatalf("%d operations declared", len(ops))
	}
	for _, op := range ops {
		if !slices.Contains([]string{integrations.SideEffectRead, integrations.SideEffectNotify, integrations.SideEffectContain}, op.SideEffect) {
			t.Errorf("%s: side effect %q", op.Name, op.SideEffect)
		}
		if op.Inverse != "" {
			inv, ok := integrations.LookupOperation(op.Inverse)
			if !ok || inv.Inverse != op.Name {
				t.Errorf("%s: inverse %s does not exist or does not point back", op.Name, op.Inverse)
			}
		}
		if op.Idempotency == "" || op.Throttling == "" {
			t.Errorf("%s: idempotency and throttling must be documented", op.Name)
		}
		for what, schema := range map[string]map[string]any{"input": op.Input, "output": op.Output} {
			if _, err := gojsonschema.NewSchema(gojsonschema.NewGoLoader(schema)); err != nil {
				t.Errorf("%s %s schema: %v", op.Name, what, err)
			}
		}
		out, _ := gojsonschema.NewSchema(gojsonschema.NewGoLoader(op.Output))
		if res, err := out.Validate(gojsonschema.NewGoLoader(op.SimulatedOutput)); err != nil || !res.Valid() {
			t.Errorf("%s: simulated output does not match the output schema: %v %v", op.Name, err, res.Errors())
		}
	}
	op, ok := integrations.LookupOperation("edr.isolate_host")
	if !ok || op.SideEffect != integrations.SideEffectContain || op.Inverse != "edr.release_host" {
		t.Fatalf("isolate_host = %+v", op)
	}
	reg := integrations.NewRegistry()
	if _, err := reg.EDR("crowdstrike"); err == nil {
		t.Fatal("empty registry returned an EDR")
	}
}
