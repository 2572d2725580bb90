package integrations_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

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

func TestCatalogue(t *testing.T) {
	op, ok := integrations.LookupOperation("edr.isolate_host")
	if !ok || op.SideEffect != integrations.SideEffectContain || op.Inverse != "edr.release_host" {
		t.Fatalf("isolate_host = %+v", op)
	}
	for _, op := range integrations.Operations() {
		if op.SideEffect == integrations.SideEffectContain && op.Inverse == "" {
			t.Errorf("%s contains but has no inverse", op.Name)
		}
	}
	reg := integrations.NewRegistry()
	if _, err := reg.EDR("crowdstrike"); err == nil {
		t.Fatal("empty registry returned an EDR")
	}
}
