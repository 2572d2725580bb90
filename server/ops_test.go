package server_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rampart-soar/rampart/server"
	"github.com/rampart-soar/rampart/server/telemetry"
)

// get answers a GET's status, content type and body.
func get(h http.Handler, path string) (int, string, string) {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.Host = "127.0.0.1:8080"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Header().Get("Content-Type"), rec.Body.String()
}

func TestOpsServesAWorkersProbesAndSDKMetrics(t *testing.T) {
	sdk := telemetry.NewMetrics()
	sdk.Handler().WithTags(map[string]string{"activity_type": "IsolateHost"}).Counter("temporal_activity_execution_failed").Inc(1)
	temporalDown := errors.New("connection refused")
	ready := []server.Check{
		{Name: "database", Check: func(context.Context) error { return nil }},
		{Name: "temporal", Check: func(context.Context) error { return temporalDown }},
	}
	h := server.NewOps(ready, sdk, nil).Handler()

	if code, out := do(t, h, http.MethodGet, "/healthz", nil, nil); code != 200 || out["status"] != "ok" {
		t.Errorf("healthz: %d %v", code, out)
	}
	code, out := do(t, h, http.MethodGet, "/readyz", nil, nil)
	checks, _ := out["checks"].(map[string]any)
	if code != http.StatusServiceUnavailable || out["status"] != "not_ready" || checks["database"] != "ok" ||
		!strings.Contains(checks["temporal"].(string), "connection refused") {
		t.Errorf("readyz with Temporal down: %d %v", code, out)
	}
	temporalDown = nil
	if code, out := do(t, h, http.MethodGet, "/readyz", nil, nil); code != 200 || out["status"] != "ready" {
		t.Errorf("readyz: %d %v", code, out)
	}

	code, ctype, body := get(h, "/metrics")
	if code != 200 || ctype != telemetry.ContentType ||
		!strings.Contains(body, `temporal_activity_execution_failed_total{activity_type="IsolateHost"} 1`) {
		t.Errorf("metrics: %d %s\n%s", code, ctype, body)
	}
	// The worker serves no API: anything else is a JSON 404 or 405.
	for _, path := range []string{"/api/v1/alerts", "/api/v1/metrics", "/"} {
		if code, out := do(t, h, http.MethodGet, path, nil, nil); code != 404 || errCode(out) == "" {
			t.Errorf("GET %s: %d %v", path, code, out)
		}
	}
	if code, out := do(t, h, http.MethodPost, "/metrics", []byte("{}"), nil); code != 405 || errCode(out) == "" {
		t.Errorf("POST /metrics: %d %v", code, out)
	}
}

func TestAPIMetricsCarryTheSDKs(t *testing.T) {
	sdk := telemetry.NewMetrics()
	sdk.Handler().WithTags(map[string]string{"operation": "SignalWithStartWorkflowExecution"}).Counter("temporal_request").Inc(3)
	code, _, body := get(server.New(server.Options{Metrics: sdk}).Handler(), "/api/v1/metrics")
	if code != 200 || !strings.Contains(body, "rampart_webhook_unknown_source_total 0") ||
		!strings.Contains(body, `temporal_request_total{operation="SignalWithStartWorkflowExecution"} 3`) {
		t.Errorf("API metrics: %d\n%s", code, body)
	}
	if code, _, body := get(server.New(server.Options{}).Handler(), "/api/v1/metrics"); code != 200 || strings.Contains(body, "temporal_") {
		t.Errorf("API metrics without the SDK's: %d\n%s", code, body)
	}
}
