package server_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rampart-soar/rampart/server"
	"github.com/rampart-soar/rampart/store"
	"github.com/rampart-soar/rampart/store/storetest"
	"github.com/rampart-soar/rampart/workflows"
)

const (
	anaToken = "ana-token-0123456789abcdef0123456789"
	boToken  = "bo-token-0123456789abcdef0123456789ab"
)

func TestNewAPITokensRefusesWeakOrAmbiguousTokens(t *testing.T) {
	for _, c := range []struct {
		tokens map[string]string
		want   string
	}{
		{map[string]string{"ana": "short"}, "shorter than 32"},
		{map[string]string{"ana": anaToken, "bo": anaToken}, "are the same"},
		{map[string]string{"ana smith": anaToken}, "name"},
		{map[string]string{"": anaToken}, "name"},
	} {
		if _, err := server.NewAPITokens(c.tokens); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err = %v, want %q", c.tokens, err, c.want)
		}
	}
	tokens, err := server.NewAPITokens(map[string]string{"ana": anaToken, "bo": boToken})
	if err != nil || tokens.Len() != 2 {
		t.Fatalf("%v %v", tokens, err)
	}
	for token, want := range map[string]string{anaToken: "ana", boToken: "bo", anaToken + "x": "", "": "", anaToken[:31]: ""} {
		if got, ok := tokens.Identify(token); got != want || ok != (want != "") {
			t.Errorf("Identify(%q) = %q %v, want %q", token, got, ok, want)
		}
	}
	if empty, err := server.NewAPITokens(nil); err != nil || empty.Len() != 0 {
		t.Fatalf("no tokens: %v %v", empty, err)
	}
}

func TestAPITokensGuardTheAPIButNotWebhooksOrHealth(t *testing.T) {
	st := storetest.SQLite(t)
	ctx := context.Background()
	at := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	if err := st.SaveApproval(ctx, &store.Approval{
		ID: "ap-0", AlertID: "alert-1", WorkflowID: "playbook/alert-1/malware", RunID: "run-1", Playbook: "malware",
		Step: "isolate", Operation: "edr.isolate_host", InputsJSON: `{}`, ArgsHash: "hash-1",
		Status: store.ApprovalPending, RequestedAt: at,
	}); err != nil {
		t.Fatal(err)
	}
	tokens, err := server.NewAPITokens(map[string]string{"ana": anaToken, "bo": boToken})
	if err != nil {
		t.Fatal(err)
	}
	ctl := &control{}
	var logs bytes.Buffer
	h := newServerFrom(t, starter{}, server.Options{Alerts: st, Playbooks: st, Approvals: st, Control: ctl, Tokens: tokens,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	bearer := func(token string) map[string]string {
		return map[string]string{"Authorization": "Bearer " + token, "Content-Type": "application/json"}
	}

	for _, c := range []struct {
		method, path string
		header       map[string]string
	}{
		{http.MethodGet, "/api/v1/alerts", nil},
		{http.MethodGet, "/api/v1/alerts", bearer("not-a-token-of-this-server-0123456789")},
		{http.MethodGet, "/api/v1/alerts", map[string]string{"Authorization": anaToken}},
		{http.MethodGet, "/api/v1/alerts", map[string]string{"Authorization": "Basic " + anaToken}},
		{http.MethodGet, "/api/v1/approvals/ap-0", nil},
		{http.MethodPost, "/api/v1/approvals/ap-0:decide", map[string]string{"Content-Type": "application/json"}},
		{http.MethodGet, "/api/v1/playbooks", nil},
		{http.MethodGet, "/api/v1/no-such-route", nil},
	} {
		code, out := do(t, h, c.method, c.path, []byte(`{"decision":"approve","by":"ana"}`), c.header)
		if code != http.StatusUnauthorized || errCode(out) != "unauthorized" {
			t.Errorf("%s %s %v: %d %v, want 401 unauthorized", c.method, c.path, c.header, code, out)
		}
	}
	if len(ctl.decisions) != 0 {
		t.Fatalf("an unauthenticated decision reached the run: %+v", ctl.decisions)
	}
	if code, out := do(t, h, http.MethodGet, "/api/v1/alerts", nil, bearer(anaToken)); code != 200 {
		t.Fatalf("with a token: %d %v", code, out)
	}
	if code, out := do(t, h, http.MethodGet, "/api/v1/alerts", nil, map[string]string{"Authorization": "bearer  " + boToken}); code != 200 {
		t.Fatalf("scheme case and spacing: %d %v", code, out)
	}
	// Webhooks answer to their source's secret, health checks to anyone.
	if code, out := do(t, h, http.MethodGet, "/healthz", nil, nil); code != 200 {
		t.Fatalf("healthz: %d %v", code, out)
	}
	body := []byte(`{"metadata":{}}`)
	if code, out := do(t, h, http.MethodPost, "/api/v1/webhooks/crowdstrike", body, map[string]string{"Content-Type": "application/json"}); code != 401 || errCode(out) == "unauthorized" {
		t.Fatalf("unsigned webhook: %d %v, want the webhook's own refusal", code, out)
	}

	// The token says who decides: someone else's name is refused, none is filled in.
	code, out := do(t, h, http.MethodPost, "/api/v1/approvals/ap-0:decide", []byte(`{"decision":"approve","by":"bo"}`), bearer(anaToken))
	if code != http.StatusForbidden || errCode(out) != "forbidden" || len(ctl.decisions) != 0 {
		t.Fatalf("decide as someone else: %d %v %+v", code, out, ctl.decisions)
	}
	code, out = do(t, h, http.MethodPost, "/api/v1/approvals/ap-0:decide", []byte(`{"decision":"approve","reason":"confirmed"}`), bearer(anaToken))
	if code != 200 || out["decided_by"] != "ana" {
		t.Fatalf("decide: %d %v", code, out)
	}
	want := workflows.Approval{Step: "isolate", Approved: true, By: "ana", Reason: "confirmed", ArgsHash: "hash-1"}
	if len(ctl.decisions) != 1 || ctl.decisions[0] != want {
		t.Fatalf("the run got %+v, want %+v", ctl.decisions, want)
	}

	// The audit trail: every change asked of the API, refused or not, with who
	// asked; never a token.
	for _, line := range []string{
		`msg="api change" method=POST path=/api/v1/approvals/ap-0:decide status=401 duration_ms=\d+\n`,
		`msg="api change" method=POST path=/api/v1/approvals/ap-0:decide status=403 duration_ms=\d+ identity=ana\n`,
		`msg="api change" method=POST path=/api/v1/approvals/ap-0:decide status=200 duration_ms=\d+ identity=ana\n`,
	} {
		if !regexp.MustCompile(line).MatchString(logs.String()) {
			t.Errorf("the log lacks %s:\n%s", line, logs.String())
		}
	}
	if strings.Contains(logs.String(), "token-0123") || strings.Contains(logs.String(), `msg="api change" method=GET`) {
		t.Errorf("the log shows a token or a read as a change:\n%s", logs.String())
	}
}

func TestOpenAPIAnswersThisMachineAndItsOwnPagesOnly(t *testing.T) {
	st := storetest.SQLite(t)
	open := newServerFrom(t, starter{}, server.Options{Alerts: st, Playbooks: st})
	jsonBody := map[string]string{"Content-Type": "application/json"}
	for _, c := range []struct {
		method, host, origin string
		status               int
		code                 string
	}{
		{http.MethodGet, "127.0.0.1:8080", "", 200, ""},
		{http.MethodGet, "localhost:8080", "", 200, ""},
		{http.MethodGet, "[::1]:8080", "", 200, ""},
		// A name that resolves to 127.0.0.1 only for the attacker's page (DNS rebinding).
		{http.MethodGet, "rebind.attacker.example:8080", "", 403, "forbidden_host"},
		{http.MethodGet, "10.0.0.5:8080", "", 403, "forbidden_host"},
		// A form another site posts through the analyst's browser.
		{http.MethodPost, "127.0.0.1:8080", "https://attacker.example", 403, "cross_origin"},
		{http.MethodPost, "127.0.0.1:8080", "http://127.0.0.1:9999", 403, "cross_origin"},
		{http.MethodPost, "127.0.0.1:8080", "null", 403, "cross_origin"},
		// The UI's own page, and the CLI (no Origin).
		{http.MethodPost, "127.0.0.1:8080", "http://127.0.0.1:8080", 404, "not_found"},
		{http.MethodPost, "127.0.0.1:8080", "", 404, "not_found"},
	} {
		path := "/api/v1/alerts"
		if c.method == http.MethodPost {
			path = "/api/v1/playbooks/nope:disable"
		}
		header := map[string]string{"Host": c.host, "Content-Type": jsonBody["Content-Type"]}
		if c.origin != "" {
			header["Origin"] = c.origin
		}
		code, out := do(t, open, c.method, path, nil, header)
		if code != c.status || (c.code != "" && errCode(out) != c.code) {
			t.Errorf("%s %s Host %s Origin %q: %d %v, want %d %s", c.method, path, c.host, c.origin, code, out, c.status, c.code)
		}
	}
	// Webhooks authenticate by signature, under any name.
	if code, out := do(t, open, http.MethodPost, "/api/v1/webhooks/crowdstrike", []byte(`{}`), map[string]string{"Host": "rampart.soc.example", "Content-Type": "application/json"}); code != 401 {
		t.Fatalf("webhook under another name: %d %v", code, out)
	}
	// With tokens, the token decides: any name, any origin.
	tokens, err := server.NewAPITokens(map[string]string{"ana": anaToken})
	if err != nil {
		t.Fatal(err)
	}
	guarded := newServerFrom(t, starter{}, server.Options{Alerts: st, Playbooks: st, Tokens: tokens})
	header := map[string]string{"Host": "rampart.soc.example", "Origin": "https://rampart.soc.example", "Authorization": "Bearer " + anaToken}
	if code, out := do(t, guarded, http.MethodGet, "/api/v1/alerts", nil, header); code != 200 {
		t.Fatalf("with a token under another name: %d %v", code, out)
	}
}

// TestReplaceTokens rotates the API tokens of a running server: a new holder's
// token works at once, a rekeyed holder's old token does not, and a replacement
// that would leave no token is refused, the API staying guarded.
func TestReplaceTokens(t *testing.T) {
	tokens := func(byName map[string]string) *server.APITokens {
		t.Helper()
		tk, err := server.NewAPITokens(byName)
		if err != nil {
			t.Fatal(err)
		}
		return tk
	}
	st := storetest.SQLite(t)
	srv := server.New(server.Options{Alerts: st, Tokens: tokens(map[string]string{"ana": anaToken, "cy": "cy-token-0123456789abcdef0123456789ab"})})
	h := srv.Handler()
	status := func(token string) int {
		t.Helper()
		code, _ := do(t, h, http.MethodGet, "/api/v1/alerts", nil, map[string]string{"Authorization": "Bearer " + token})
		return code
	}
	if status(anaToken) != 200 || status(boToken) != 401 {
		t.Fatal("before the replacement")
	}
	const anaRotated = "ana-rotated-0123456789abcdef0123456789"
	changes, err := srv.ReplaceTokens(tokens(map[string]string{"ana": anaRotated, "bo": boToken}))
	want := server.TokenChanges{Added: []string{"bo"}, Removed: []string{"cy"}, Rekeyed: []string{"ana"}}
	if err != nil || !reflect.DeepEqual(changes, want) {
		t.Fatalf("changes = %+v, %v; want %+v", changes, err, want)
	}
	if status(anaToken) != 401 || status(anaRotated) != 200 || status(boToken) != 200 || status("cy-token-0123456789abcdef0123456789ab") != 401 {
		t.Fatal("after the replacement")
	}
	if _, err := srv.ReplaceTokens(tokens(nil)); err == nil || !strings.Contains(err.Error(), "no API token would be left") {
		t.Fatalf("emptying: %v", err)
	}
	if status(anaRotated) != 200 || status("") != 401 {
		t.Fatal("an emptying replacement opened the API or dropped its tokens")
	}

	// An open API may be given tokens, and is then guarded.
	open := server.New(server.Options{Alerts: st})
	if changes, err := open.ReplaceTokens(tokens(map[string]string{"ana": anaToken})); err != nil || !reflect.DeepEqual(changes.Added, []string{"ana"}) {
		t.Fatalf("guarding an open API: %+v, %v", changes, err)
	}
	if code, _ := do(t, open.Handler(), http.MethodGet, "/api/v1/alerts", nil, nil); code != 401 {
		t.Fatalf("without a token after guarding: %d", code)
	}
}
