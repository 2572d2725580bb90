package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xeipuuv/gojsonschema"

	"github.com/rampart-soar/rampart/schemas"
)

const (
	hmacSecret   = "test-hmac-secret-0123456789"
	bearerSecret = "test-bearer-token-0123456789"
)

var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// fakeStarter records starts; a fingerprint seen before reports Started=false, as
// SignalWithStart does for an open workflow.
type fakeStarter struct {
	mu   sync.Mutex
	reqs []StartRequest
	runs map[string]string
	err  error
}

func (f *fakeStarter) StartAlert(_ context.Context, req StartRequest) (StartResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return StartResult{}, f.err
	}
	f.reqs = append(f.reqs, req)
	if f.runs == nil {
		f.runs = map[string]string{}
	}
	if run, ok := f.runs[req.WorkflowID]; ok {
		return StartResult{RunID: run}, nil
	}
	run := fmt.Sprintf("run-%d", len(f.runs)+1)
	f.runs[req.WorkflowID] = run
	return StartResult{RunID: run, Started: true}, nil
}

func testSources(t testing.TB) map[string]*Source {
	t.Helper()
	doc := fmt.Sprintf(`
sources:
  ocsf: {auth: hmac, secret: %q}
  crowdstrike: {auth: hmac, secret: %q}
  falcon-eu: {auth: bearer, format: crowdstrike, secret: %q}
`, hmacSecret, hmacSecret, bearerSecret)
	s, err := ParseSources([]byte(doc), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newTestPipeline(t testing.TB, starter Starter) *Pipeline {
	t.Helper()
	p, err := NewPipeline(Options{Sources: testSources(t), Starter: starter, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func example(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "examples", "alerts", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func signed(source string, body []byte, at time.Time) Delivery {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set(SignatureHeader, Sign([]byte(hmacSecret), at, body))
	return Delivery{Source: source, Header: h, Body: bytes.NewReader(body), ContentLength: int64(len(body))}
}

func wantError(t *testing.T, err error, status int, code string) *Error {
	t.Helper()
	var ie *Error
	if !errors.As(err, &ie) {
		t.Fatalf("error = %v, want *Error %d %s", err, status, code)
	}
	if ie.Status != status || ie.Code != code {
		t.Fatalf("error = %d %s (%s), want %d %s", ie.Status, ie.Code, ie.Message, status, code)
	}
	return ie
}

func TestAcceptSignedDelivery(t *testing.T) {
	starter := &fakeStarter{}
	p := newTestPipeline(t, starter)
	body := example(t, "crowdstrike-ransomware.json")
	got, err := p.Accept(context.Background(), signed("crowdstrike", body, now))
	if err != nil {
		t.Fatal(err)
	}
	if got.AlertID != "run-1" || got.Duplicate || got.WorkflowID != "alert/"+got.Fingerprint {
		t.Fatalf("accepted = %+v", got)
	}
	req := starter.reqs[0]
	if req.Input.DeliveryID == "" || req.Input.DeliveryID != req.Delivery.DeliveryID {
		t.Fatal("the start's delivery id must match its own signal's")
	}
	if !req.Input.ReceivedAt.Equal(now) || req.Input.Alert.Source != "crowdstrike" || !json.Valid(req.Input.Alert.Raw) {
		t.Fatalf("start input = %+v", req.Input)
	}
	// The same detection re-sent a minute later (new signature) is a duplicate.
	later := now.Add(time.Minute)
	p.now = func() time.Time { return later }
	dup, err := p.Accept(context.Background(), signed("crowdstrike", body, later))
	if err != nil {
		t.Fatal(err)
	}
	if !dup.Duplicate || dup.AlertID != "run-1" || dup.WorkflowID != got.WorkflowID {
		t.Fatalf("duplicate = %+v", dup)
	}
}

func TestSignatureVerification(t *testing.T) {
	body := example(t, "ocsf-password-spray.json")
	header := func(v string) Delivery {
		d := signed("ocsf", body, now)
		if v == "" {
			d.Header.Del(SignatureHeader)
		} else {
			d.Header.Set(SignatureHeader, v)
		}
		return d
	}
	good := Sign([]byte(hmacSecret), now, body)
	_, goodV1, _ := strings.Cut(good, ",")
	tests := []struct {
		name string
		d    Delivery
		code string
	}{
		{"valid", header(good), ""},
		{"valid among rotated and unknown schemes", header("t=" + fmt.Sprint(now.Unix()) + ",v0=abc,v1=" + strings.Repeat("ab", 32) + "," + goodV1), ""},
		{"wrong secret", header(Sign([]byte("some-other-secret-value"), now, body)), "invalid_signature"},
		{"body changed", func() Delivery {
			d := header(good)
			d.Body = bytes.NewReader(append(bytes.Clone(body), ' '))
			return d
		}(), "invalid_signature"},
		{"stale timestamp", header(Sign([]byte(hmacSecret), now.Add(-6*time.Minute), body)), "stale_signature"},
		{"timestamp from the future", header(Sign([]byte(hmacSecret), now.Add(6*time.Minute), body)), "stale_signature"},
		{"missing header", header(""), "missing_signature"},
		{"no timestamp", header(goodV1), "malformed_signature"},
		{"bad hex", header("t=" + fmt.Sprint(now.Unix()) + ",v1=zz"), "malformed_signature"},
		{"garbage", header("sha256=deadbeef"), "malformed_signature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newTestPipeline(t, &fakeStarter{}) // fresh replay cache per case
			_, err := p.Accept(context.Background(), tt.d)
			if tt.code == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantError(t, err, http.StatusUnauthorized, tt.code)
		})
	}
}

func TestReplayedSignatureIsRefused(t *testing.T) {
	starter := &fakeStarter{}
	p := newTestPipeline(t, starter)
	body := example(t, "ocsf-password-spray.json")
	d := signed("ocsf", body, now)
	sig := d.Header.Get(SignatureHeader)
	if _, err := p.Accept(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	replay := signed("ocsf", body, now)
	replay.Header.Set(SignatureHeader, sig)
	_, err := p.Accept(context.Background(), replay)
	wantError(t, err, http.StatusUnauthorized, "replayed_request")
	if len(starter.reqs) != 1 {
		t.Fatalf("replay reached the workflow engine: %d starts", len(starter.reqs))
	}
}

// TestReplayToAnotherReplicaKeepsItsDeliveryID: a second server replica has not
// seen the signature, so it accepts the replay; the delivery id it hands the run
// is the first one's, which the run and Temporal deduplicate.
func TestReplayToAnotherReplicaKeepsItsDeliveryID(t *testing.T) {
	first, second := &fakeStarter{}, &fakeStarter{}
	body := example(t, "ocsf-password-spray.json")
	d := signed("ocsf", body, now)
	if _, err := newTestPipeline(t, first).Accept(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	replay := signed("ocsf", body, now)
	replay.Header.Set(SignatureHeader, d.Header.Get(SignatureHeader))
	if _, err := newTestPipeline(t, second).Accept(context.Background(), replay); err != nil {
		t.Fatal(err)
	}
	id := first.reqs[0].Input.DeliveryID
	if id == "" || second.reqs[0].Input.DeliveryID != id || second.reqs[0].Delivery.DeliveryID != id {
		t.Fatalf("delivery ids %q and %+v", id, second.reqs[0])
	}
	// Another signing of the same body is another delivery.
	again := newTestPipeline(t, first)
	if _, err := again.Accept(context.Background(), signed("ocsf", body, now.Add(time.Second))); err != nil {
		t.Fatal(err)
	}
	if first.reqs[1].Input.DeliveryID == id {
		t.Fatal("a new signature kept the old delivery id")
	}
}

func TestFailedDeliveryMayBeRetriedWithTheSameSignature(t *testing.T) {
	starter := &fakeStarter{err: errors.New("temporal unavailable")}
	p := newTestPipeline(t, starter)
	body := example(t, "ocsf-password-spray.json")
	_, err := p.Accept(context.Background(), signed("ocsf", body, now))
	wantError(t, err, http.StatusServiceUnavailable, "workflow_unavailable")
	starter.err = nil
	if _, err := p.Accept(context.Background(), signed("ocsf", body, now)); err != nil {
		t.Fatalf("retry after a 503 refused: %v", err)
	}
}

func TestRateLimitPerSource(t *testing.T) {
	sources, err := ParseSources([]byte(fmt.Sprintf(`
sources:
  ocsf: {secret: %q, rate_limit: {per_second: 0.5, burst: 2}}
  crowdstrike: {secret: %q, rate_limit: {per_second: 2.5}}
`, hmacSecret, hmacSecret)), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	if got := sources["crowdstrike"].RateLimit; got != (RateLimit{PerSecond: 2.5, Burst: 3}) {
		t.Fatalf("burst defaults to per_second rounded up: %+v", got)
	}
	clock := now
	starter := &fakeStarter{}
	p, err := NewPipeline(Options{Sources: sources, Starter: starter, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	body := example(t, "ocsf-password-spray.json")
	// Each delivery is signed a second apart, so none is a replay of another;
	// the clock they arrive by stands still.
	send := func(source string, signedAt time.Time) error {
		_, err := p.Accept(context.Background(), signed(source, body, signedAt))
		return err
	}
	// Deliveries that fail authentication spend nothing.
	for range 5 {
		bad := signed("ocsf", body, clock)
		bad.Header.Set(SignatureHeader, Sign([]byte("not-the-secret-0123456789"), clock, body))
		_, err := p.Accept(context.Background(), bad)
		wantError(t, err, http.StatusUnauthorized, "invalid_signature")
	}
	for i := range 2 {
		if err := send("ocsf", clock.Add(-time.Duration(i+1)*time.Second)); err != nil {
			t.Fatalf("delivery %d within the burst: %v", i, err)
		}
	}
	limited := signed("ocsf", body, clock)
	_, err = p.Accept(context.Background(), limited)
	ie := wantError(t, err, http.StatusTooManyRequests, "rate_limited")
	if ie.RetryAfter <= 0 || ie.RetryAfter > 2*time.Second || !strings.Contains(ie.Message, "not accepted") {
		t.Fatalf("refusal = %+v", ie)
	}
	if len(starter.reqs) != 2 {
		t.Fatalf("%d starts, want the 2 within the burst", len(starter.reqs))
	}
	// Another source has its own budget.
	if _, err := p.Accept(context.Background(), signed("crowdstrike", example(t, "crowdstrike-pup.json"), clock)); err != nil {
		t.Fatalf("another source: %v", err)
	}
	// Once the rate allows, the refused delivery is accepted as it was signed.
	clock = clock.Add(ie.RetryAfter)
	limited.Body = bytes.NewReader(body)
	if _, err := p.Accept(context.Background(), limited); err != nil {
		t.Fatalf("the refused delivery sent again after Retry-After: %v", err)
	}
}

func TestBearerAuth(t *testing.T) {
	body := example(t, "crowdstrike-pup.json")
	for name, c := range map[string]struct {
		header string
		code   string
	}{
		"valid":   {"Bearer " + bearerSecret, ""},
		"wrong":   {"Bearer " + bearerSecret + "x", "invalid_token"},
		"missing": {"", "missing_token"},
		"basic":   {"Basic " + bearerSecret, "missing_token"},
	} {
		t.Run(name, func(t *testing.T) {
			p := newTestPipeline(t, &fakeStarter{})
			h := http.Header{"Content-Type": {"application/json"}}
			if c.header != "" {
				h.Set("Authorization", c.header)
			}
			got, err := p.Accept(context.Background(), Delivery{Source: "falcon-eu", Header: h, Body: bytes.NewReader(body), ContentLength: -1})
			if c.code == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got.AlertID == "" {
					t.Fatal("no alert id")
				}
				return
			}
			wantError(t, err, http.StatusUnauthorized, c.code)
		})
	}
}

func TestLimitsAndMediaType(t *testing.T) {
	big := append([]byte(`{"pad":"`), bytes.Repeat([]byte("a"), 1<<20)...)
	big = append(big, `"}`...)
	deep := []byte(strings.Repeat(`{"a":`, 33) + "1" + strings.Repeat("}", 33))
	okDepth := []byte(strings.Repeat(`{"a":`, 32) + "1" + strings.Repeat("}", 32))
	tests := []struct {
		name        string
		body        []byte
		contentType string
		length      int64
		status      int
		code        string
	}{
		{"declared too large", big, "application/json", int64(len(big)), 413, "body_too_large"},
		{"streamed too large", big, "application/json", -1, 413, "body_too_large"},
		{"text/plain", []byte(`{}`), "text/plain", 2, 415, "unsupported_media_type"},
		{"no content type", []byte(`{}`), "", 2, 415, "unsupported_media_type"},
		{"latin1 charset", []byte(`{}`), "application/json; charset=iso-8859-1", 2, 415, "unsupported_media_type"},
		{"bad media type", []byte(`{}`), "application/json;;", 2, 415, "unsupported_media_type"},
		{"too deep", deep, "application/json", int64(len(deep)), 400, "too_deep"},
		{"depth at the limit reaches the schema", okDepth, "application/vnd.ocsf+json; charset=utf-8", int64(len(okDepth)), 400, "schema_violation"},
		{"truncated JSON", []byte(`{"class_uid": 2004,`), "application/json", -1, 400, "invalid_json"},
		{"array", []byte(`[1,2]`), "application/json", -1, 400, "invalid_json"},
		{"empty", nil, "application/json", 0, 400, "invalid_json"},
		{"trailing garbage", []byte(`{} {}`), "application/json", -1, 400, "invalid_json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newTestPipeline(t, &fakeStarter{})
			d := signed("ocsf", tt.body, now)
			d.ContentLength = tt.length
			if tt.contentType == "" {
				d.Header.Del("Content-Type")
			} else {
				d.Header.Set("Content-Type", tt.contentType)
			}
			_, err := p.Accept(context.Background(), d)
			wantError(t, err, tt.status, tt.code)
		})
	}
}

func TestUnknownSource(t *testing.T) {
	p := newTestPipeline(t, &fakeStarter{})
	_, err := p.Accept(context.Background(), signed("splunk", []byte(`{}`), now))
	wantError(t, err, http.StatusNotFound, "unknown_source")
}

func TestSchemaViolationListsEveryFailingField(t *testing.T) {
	p := newTestPipeline(t, &fakeStarter{})
	body := []byte(`{
		"class_uid": 2001,
		"severity_id": "high",
		"time": 1795162200000,
		"metadata": {},
		"finding_info": {"title": "x", "attacks": "T1110"}
	}`)
	_, err := p.Accept(context.Background(), signed("ocsf", body, now))
	ie := wantError(t, err, http.StatusBadRequest, "schema_violation")
	fields := map[string]bool{}
	for _, d := range ie.Details {
		fields[d.Field] = true
	}
	for _, f := range []string{"class_uid", "severity_id", "metadata.version", "finding_info.uid", "finding_info.attacks"} {
		if !fields[f] {
			t.Errorf("no error for %s in %+v", f, ie.Details)
		}
	}
	cs := []byte(`{"metadata":{"eventType":"AuthActivityAuditEvent"},"event":{"AgentId":"nothex","SHA256String":"abc","ProcessId":"12x"}}`)
	_, err = p.Accept(context.Background(), signed("crowdstrike", cs, now))
	ie = wantError(t, err, http.StatusBadRequest, "schema_violation")
	fields = map[string]bool{}
	for _, d := range ie.Details {
		fields[d.Field] = true
	}
	for _, f := range []string{"metadata.eventType", "event.CompositeId", "event.AgentId", "event.SHA256String", "event.ProcessId"} {
		if !fields[f] {
			t.Errorf("no error for %s in %+v", f, ie.Details)
		}
	}
}

func TestNormalizationErrorsNameTheField(t *testing.T) {
	p := newTestPipeline(t, &fakeStarter{})
	body := bytes.Replace(example(t, "crowdstrike-ransomware.json"), []byte(`"10.20.4.142"`), []byte(`"10.20.4.999"`), 1)
	_, err := p.Accept(context.Background(), signed("crowdstrike", body, now))
	ie := wantError(t, err, http.StatusBadRequest, "invalid_payload")
	if len(ie.Details) != 1 || ie.Details[0].Field != "event.LocalIP" {
		t.Fatalf("details = %+v", ie.Details)
	}
	noTime := []byte(`{"metadata":{"eventType":"DetectionSummaryEvent"},"event":{"Hostname":"h","CompositeId":"c"}}`)
	_, err = p.Accept(context.Background(), signed("crowdstrike", noTime, now))
	ie = wantError(t, err, http.StatusBadRequest, "invalid_payload")
	if ie.Details[0].Field != "metadata.eventCreationTime" {
		t.Fatalf("details = %+v", ie.Details)
	}
}

func TestParseSources(t *testing.T) {
	env := map[string]string{"RAMPART_WEBHOOK_SECRET_FALCON_EU": "secret-from-the-environment"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	s, err := ParseSources([]byte(`
sources:
  falcon-eu: {auth: bearer, format: crowdstrike, secret: short}
  ocsf: {secret: "file-secret-0123456789"}
`), lookup)
	if err != nil {
		t.Fatal(err)
	}
	if s["falcon-eu"].Secret() != "secret-from-the-environment" || s["ocsf"].Auth != AuthHMAC || s["ocsf"].Format != "ocsf" {
		t.Fatalf("sources = %v %v", s["falcon-eu"], s["ocsf"])
	}
	if strings.Contains(fmt.Sprint(s["ocsf"]), "file-secret") {
		t.Fatal("a source prints its secret")
	}
	for doc, want := range map[string]string{
		`sources: {x: {secret: "0123456789abcdef", format: splunk}}`:                            "unknown format",
		`sources: {ocsf: {secret: short}}`:                                                      "at least 16 bytes",
		`sources: {ocsf: {secret: "0123456789abcdef", auth: basic}}`:                            "hmac or bearer",
		`sources: {ocsf: {secret: "0123456789abcdef", rate_limit: {burst: 5}}}`:                 "per_second > 0",
		`sources: {ocsf: {secret: "0123456789abcdef", rate_limit: {per_second: 1, burst: -1}}}`: "burst >= 0",
		`sources: {Bad Name: {secret: "0123456789abcdef"}}`:                                     "not a valid source name",
		`sources: {}`: "no sources",
		`: [`:         "sources",
	} {
		if _, err := ParseSources([]byte(doc), lookup); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", doc, err, want)
		}
	}
}

// TestSecretRotation: during a rotation the source's previous secret is accepted
// beside the new one, and the answer's Accepted says which signed it (for the
// server to count); any other secret is refused, with hmac and bearer alike.
func TestSecretRotation(t *testing.T) {
	const oldSecret, newSecret = "old-secret-0123456789abcdef", "new-secret-0123456789abcdef"
	env := map[string]string{
		"RAMPART_WEBHOOK_SECRET_OCSF":               newSecret,
		"RAMPART_WEBHOOK_SECRET_OCSF_PREVIOUS":      oldSecret,
		"RAMPART_WEBHOOK_SECRET_FALCON_EU_PREVIOUS": "old-token-0123456789abcdef",
	}
	sources, err := ParseSources([]byte(`
sources:
  ocsf: {secret: "file-secret-0123456789"}
  falcon-eu: {auth: bearer, format: crowdstrike, secret: "new-token-0123456789abcdef"}
  crowdstrike: {secret: "`+hmacSecret+`", previous_secret: "file-previous-0123456789"}
`), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPipeline(Options{Sources: sources, Starter: &fakeStarter{}, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	for _, info := range p.Sources() {
		if !info.PreviousSecret {
			t.Errorf("%s does not say it accepts a previous secret", info.Name)
		}
	}
	ocsf, falcon := example(t, "ocsf-dc-credential-dumping.json"), example(t, "crowdstrike-ransomware.json")
	hmacDelivery := func(source, secret string, body []byte, at time.Time) Delivery {
		d := signed(source, body, at)
		d.Header.Set(SignatureHeader, Sign([]byte(secret), at, body))
		return d
	}
	bearerDelivery := func(token string) Delivery {
		h := http.Header{}
		h.Set("Content-Type", "application/json")
		h.Set("Authorization", "Bearer "+token)
		return Delivery{Source: "falcon-eu", Header: h, Body: bytes.NewReader(falcon), ContentLength: int64(len(falcon))}
	}
	for _, c := range []struct {
		name     string
		d        Delivery
		previous bool
	}{
		{"hmac, new secret", hmacDelivery("ocsf", newSecret, ocsf, now), false},
		{"hmac, previous secret", hmacDelivery("ocsf", oldSecret, ocsf, now.Add(time.Second)), true},
		{"hmac, previous secret from the file", hmacDelivery("crowdstrike", "file-previous-0123456789", falcon, now), true},
		{"bearer, new token", bearerDelivery("new-token-0123456789abcdef"), false},
		{"bearer, previous token", bearerDelivery("old-token-0123456789abcdef"), true},
	} {
		acc, err := p.Accept(context.Background(), c.d)
		if err != nil || acc.PreviousSecret != c.previous {
			t.Errorf("%s: %+v, %v; want previous_secret %v", c.name, acc, err, c.previous)
		}
	}
	// The file's secret lost to the environment's, and is no previous secret.
	_, err = p.Accept(context.Background(), hmacDelivery("ocsf", "file-secret-0123456789", ocsf, now.Add(2*time.Second)))
	wantError(t, err, http.StatusUnauthorized, "invalid_signature")
	_, err = p.Accept(context.Background(), bearerDelivery("file-secret-0123456789"))
	wantError(t, err, http.StatusUnauthorized, "invalid_token")

	for doc, want := range map[string]string{
		`sources: {ocsf: {secret: "0123456789abcdef", previous_secret: short}}`:              "previous_secret must be at least 16 bytes",
		`sources: {ocsf: {secret: "0123456789abcdef", previous_secret: "0123456789abcdef"}}`: "previous_secret is the secret itself",
	} {
		if _, err := ParseSources([]byte(doc), func(string) (string, bool) { return "", false }); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", doc, err, want)
		}
	}
}

// TestSecretsFromFiles reads a source's secrets from the files the _FILE
// variables name, anew at every load: a mounted secret rotated in place is
// what the next reload uses.
func TestSecretsFromFiles(t *testing.T) {
	dir := t.TempDir()
	current, previous := filepath.Join(dir, "current"), filepath.Join(dir, "previous")
	write := func(path, value string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(value), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{
		"RAMPART_WEBHOOK_SECRET_OCSF_FILE":          current,
		"RAMPART_WEBHOOK_SECRET_OCSF_PREVIOUS_FILE": previous,
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	const doc = `sources: {ocsf: {secret: "in-the-sources-file-0123"}, crowdstrike: {secret: "crowdstrike-secret-0123"}}`
	load := func() map[string]*Source {
		t.Helper()
		sources, err := ParseSources([]byte(doc), lookup)
		if err != nil {
			t.Fatal(err)
		}
		return sources
	}
	write(current, "mounted-secret-0123456789\n")
	write(previous, "mounted-previous-0123456789\r\n")
	sources := load()
	if got := sources["ocsf"].secrets; len(got) != 2 || string(got[0]) != "mounted-secret-0123456789" || string(got[1]) != "mounted-previous-0123456789" {
		t.Fatalf("secrets from the files: %q", got)
	}
	if sources["crowdstrike"].Secret() != "crowdstrike-secret-0123" {
		t.Fatal("a source without variables lost its secret from the sources file")
	}
	write(current, "rotated-in-place-0123456789")
	delete(env, "RAMPART_WEBHOOK_SECRET_OCSF_PREVIOUS_FILE")
	if got := load()["ocsf"].secrets; len(got) != 1 || string(got[0]) != "rotated-in-place-0123456789" {
		t.Fatalf("secrets after the file changed: %q", got)
	}

	env["RAMPART_WEBHOOK_SECRET_OCSF"] = "from-the-variable-0123456789"
	if _, err := ParseSources([]byte(doc), lookup); err == nil || !strings.Contains(err.Error(), "set RAMPART_WEBHOOK_SECRET_OCSF or RAMPART_WEBHOOK_SECRET_OCSF_FILE, not both") {
		t.Fatalf("both set: %v", err)
	}
	delete(env, "RAMPART_WEBHOOK_SECRET_OCSF")
	env["RAMPART_WEBHOOK_SECRET_OCSF_FILE"] = filepath.Join(dir, "missing")
	if _, err := ParseSources([]byte(doc), lookup); err == nil || !strings.Contains(err.Error(), "RAMPART_WEBHOOK_SECRET_OCSF_FILE: open") {
		t.Fatalf("a missing file: %v", err)
	}

	for doc, want := range map[string]string{
		`sources: {a-b: {format: ocsf, secret: "0123456789abcdef"}, a_b: {format: ocsf, secret: "0123456789abcdef"}}`:   "a-b and a_b would share the variable RAMPART_WEBHOOK_SECRET_A_B",
		`sources: {ocsf: {secret: "0123456789abcdef"}, ocsf_previous: {format: ocsf, secret: "0123456789abcdef"}}`:      "ocsf_previous would take ocsf's _PREVIOUS variable",
		`sources: {ocsf: {secret: "0123456789abcdef"}, ocsf-previous-file: {format: ocsf, secret: "0123456789abcdef"}}`: "ocsf-previous-file would take ocsf's _PREVIOUS_FILE variable",
	} {
		if _, err := ParseSources([]byte(doc), func(string) (string, bool) { return "", false }); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", doc, err, want)
		}
	}
}

// TestReplaceSources reloads the sources under a running pipeline: a rotation
// begun, a source added and one removed, a rate limit kept (its bucket with it)
// and one changed (a new bucket); a set with a mistake changes nothing.
func TestReplaceSources(t *testing.T) {
	const oldSecret, newSecret = "old-secret-0123456789abcdef", "new-secret-0123456789abcdef"
	parse := func(doc string) map[string]*Source {
		t.Helper()
		s, err := ParseSources([]byte(doc), func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	p, err := NewPipeline(Options{Starter: &fakeStarter{}, Now: func() time.Time { return now }, Sources: parse(`
sources:
  ocsf: {secret: ` + oldSecret + `, rate_limit: {per_second: 0.001, burst: 1}}
  crowdstrike: {secret: ` + hmacSecret + `, rate_limit: {per_second: 0.001, burst: 1}}
  retired: {format: ocsf, secret: ` + hmacSecret + `}
`)})
	if err != nil {
		t.Fatal(err)
	}
	ocsf, falcon := example(t, "ocsf-dc-credential-dumping.json"), example(t, "crowdstrike-ransomware.json")
	at := now
	send := func(source, secret string, body []byte) (Accepted, error) {
		at = at.Add(time.Second) // each signature new, so none is a replay
		d := signed(source, body, at)
		d.Header.Set(SignatureHeader, Sign([]byte(secret), at, body))
		return p.Accept(context.Background(), d)
	}
	// Each bucket spent before the reload.
	if _, err := send("ocsf", oldSecret, ocsf); err != nil {
		t.Fatal(err)
	}
	if _, err := send("crowdstrike", hmacSecret, falcon); err != nil {
		t.Fatal(err)
	}

	changes, err := p.ReplaceSources(parse(`
sources:
  ocsf: {secret: ` + newSecret + `, previous_secret: ` + oldSecret + `, rate_limit: {per_second: 0.001, burst: 1}}
  crowdstrike: {secret: ` + hmacSecret + `, rate_limit: {per_second: 0.001, burst: 2}}
  falcon-eu: {auth: bearer, format: crowdstrike, secret: ` + bearerSecret + `}
`))
	want := SourceChanges{Added: []string{"falcon-eu"}, Removed: []string{"retired"}, Changed: []string{"crowdstrike"}, Rekeyed: []string{"ocsf"}}
	if err != nil || !reflect.DeepEqual(changes, want) {
		t.Fatalf("changes %+v, %v; want %+v", changes, err, want)
	}
	var names []string
	for _, info := range p.Sources() {
		names = append(names, info.Name)
	}
	if !slices.Equal(names, []string{"crowdstrike", "falcon-eu", "ocsf"}) || !p.Sources()[2].PreviousSecret {
		t.Fatalf("sources after the reload: %+v", p.Sources())
	}
	// ocsf kept its rate limit and its spent bucket, whichever secret signs.
	_, err = send("ocsf", newSecret, ocsf)
	wantError(t, err, http.StatusTooManyRequests, "rate_limited")
	_, err = send("ocsf", "not-the-secret-0123456789", ocsf)
	wantError(t, err, http.StatusUnauthorized, "invalid_signature")
	// crowdstrike's limit changed: a new bucket.
	if _, err := send("crowdstrike", hmacSecret, falcon); err != nil {
		t.Fatalf("crowdstrike under its new limit: %v", err)
	}
	_, err = send("retired", hmacSecret, ocsf)
	wantError(t, err, http.StatusNotFound, "unknown_source")
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Authorization", "Bearer "+bearerSecret)
	if _, err := p.Accept(context.Background(), Delivery{Source: "falcon-eu", Header: h, Body: bytes.NewReader(falcon), ContentLength: -1}); err != nil {
		t.Fatalf("the added source: %v", err)
	}

	// No sources, or a source whose name and key differ: refused, nothing changes.
	if _, err := p.ReplaceSources(nil); err == nil {
		t.Fatal("an empty set was taken")
	}
	bad := parse(`sources: {ocsf: {secret: ` + hmacSecret + `}}`)
	bad["other"] = bad["ocsf"]
	if _, err := p.ReplaceSources(bad); err == nil || !strings.Contains(err.Error(), `"other" is named "ocsf"`) {
		t.Fatalf("a mismatched set: %v", err)
	}
	if len(p.Sources()) != 3 {
		t.Fatalf("a refused reload changed the sources: %+v", p.Sources())
	}
	// A rotation finished: the old secret is refused from now on.
	changes, err = p.ReplaceSources(parse(`sources: {ocsf: {secret: ` + newSecret + `}}`))
	if err != nil || !slices.Equal(changes.Rekeyed, []string{"ocsf"}) || !slices.Equal(changes.Changed, []string{"ocsf"}) {
		t.Fatalf("rotation finished: %+v, %v", changes, err)
	}
	_, err = send("ocsf", oldSecret, ocsf)
	wantError(t, err, http.StatusUnauthorized, "invalid_signature")
	if acc, err := send("ocsf", newSecret, ocsf); err != nil || acc.PreviousSecret {
		t.Fatalf("the new secret: %+v, %v", acc, err)
	}
}

// normalized returns the alert a delivery normalizes to.
func normalized(t *testing.T, source string, body []byte) schemas.Alert {
	t.Helper()
	p := newTestPipeline(t, &fakeStarter{})
	a, err := p.Normalize(p.sources.Load().byName[source], body)
	if err != nil {
		t.Fatalf("normalize %s: %v", source, err)
	}
	return a
}

func TestNormalizeCrowdStrike(t *testing.T) {
	a := normalized(t, "crowdstrike", example(t, "crowdstrike-ransomware.json"))
	want := schemas.Alert{
		ClassUID:   2004,
		Source:     "crowdstrike",
		Time:       time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC),
		Finding:    schemas.Finding{UID: "1a2b3c4d5e6f70818293a4b5c6d7e8f9:ind:6a1f0c2e9b7d4e35a8c0f1d2e3b4a5c6:52214-10307-4121", Title: "MassFileEncryption", Desc: "A process encrypted many user files in a short time, consistent with ransomware."},
		Rule:       schemas.Rule{UID: "10307", Name: "MassFileEncryption"},
		SeverityID: 5, Severity: "Critical", Confidence: 95,
		Product: schemas.Product{Name: "Falcon Insight", Vendor: "CrowdStrike"},
		Attacks: []schemas.Attack{{Tactic: schemas.Ref{Name: "Impact"}, Technique: schemas.Ref{UID: "T1486", Name: "Data Encrypted for Impact"}}},
		Device:  schemas.Device{ID: "6a1f0c2e9b7d4e35a8c0f1d2e3b4a5c6", Hostname: "fin-ws-0142", IP: "10.20.4.142"},
		User:    schemas.User{Name: "dana.okafor"},
		File: schemas.File{Name: "winupdsvc.exe", Path: `\Device\HarddiskVolume3\Users\dana.okafor\AppData\Local\Temp\winupdsvc.exe`,
			SHA256: "4be1f82c6c5e0d3a9b7f2e1d0c8a6b4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b", MD5: "5f2b9c7e1a3d4c6b8e0f1a2b3c4d5e6f"},
		Process: schemas.Process{PID: 48213991, Name: "winupdsvc.exe", CmdLine: `winupdsvc.exe --encrypt C:\Users --note README_RESTORE.txt`, ParentName: "explorer.exe"},
	}
	a.Raw = nil
	assertAlert(t, a, want)

	min := normalized(t, "crowdstrike", readTestdata(t, "crowdstrike-minimal.json"))
	if min.Time != time.Unix(1795158000, 0).UTC() || min.SeverityID != 3 || min.Rule.UID != "SuspiciousScript" || min.Device.ID != "" || min.Device.Hostname != "eng-ws-0077" {
		t.Fatalf("minimal event = %+v", min)
	}
	pup := normalized(t, "crowdstrike", example(t, "crowdstrike-pup.json"))
	if pup.SeverityID != 2 || pup.Process.PID != 7781 {
		t.Fatalf("string ProcessId / named severity: %+v", pup)
	}
}

func TestNormalizeOCSF(t *testing.T) {
	a := normalized(t, "ocsf", example(t, "ocsf-dc-credential-dumping.json"))
	a.Raw = nil
	assertAlert(t, a, schemas.Alert{
		ClassUID: 2004, Source: "ocsf",
		Time:       time.Date(2026, 11, 20, 8, 10, 0, 0, time.UTC),
		Finding:    schemas.Finding{UID: "edr-7f3c2a1b9e8d", Title: "Credential dumping from LSASS", Desc: "LSASS memory read by an unsigned binary on a domain controller"},
		Rule:       schemas.Rule{UID: "edr-lsass-read", Name: "LSASS memory read"},
		SeverityID: 5, Severity: "Critical", Confidence: 85,
		Product: schemas.Product{Name: "EndpointSensor", Vendor: "Example"},
		Attacks: []schemas.Attack{{Tactic: schemas.Ref{UID: "TA0006"}, Technique: schemas.Ref{UID: "T1003.001"}}},
		Device:  schemas.Device{ID: "b7c4e2a9d1f3406e8a5b6c7d8e9f0a1b", Hostname: "dc-01", IP: "10.30.0.10"},
		User:    schemas.User{Name: "svc-backup", UID: "S-1-5-21-1004", Email: "svc-backup@corp.example"},
		File:    schemas.File{Name: "dumpert.exe", Path: `C:\ProgramData\dumpert.exe`, SHA256: "c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2"},
		Process: schemas.Process{PID: 6620, Name: "dumpert.exe", CmdLine: `dumpert.exe -o C:\ProgramData\d.bin`, ParentName: "cmd.exe"},
	})

	ev := normalized(t, "ocsf", readTestdata(t, "ocsf-evidences.json"))
	ev.Raw = nil
	assertAlert(t, ev, schemas.Alert{
		ClassUID: 2004, Source: "ocsf",
		Time:       time.Unix(1795162200, 0).UTC(),
		Finding:    schemas.Finding{UID: "mail-42", Title: "Malicious link clicked"},
		Rule:       schemas.Rule{UID: "Phishing/Link"},
		SeverityID: 99, Severity: "Vendor-Severe",
		Product: schemas.Product{Name: "MailGateway", Vendor: "Example"},
		Attacks: []schemas.Attack{{Tactic: schemas.Ref{UID: "TA0001", Name: "Initial Access"}, Technique: schemas.Ref{UID: "T1566.002", Name: "Spearphishing Link"}}},
		User:    schemas.User{Name: "lee.marsh", Email: "lee.marsh@corp.example"},
		SrcIP:   "10.20.8.77", DstIP: "198.51.100.200",
		Domain:  "login-microsoft-verify.example",
		URL:     "https://login-microsoft-verify.example/o365",
		File:    schemas.File{Name: "invoice.html", MD5: "8f14e45fceea167a5a36dedd4bea2543"},
		Process: schemas.Process{PID: 4120, Name: "outlook.exe", CmdLine: "OUTLOOK.EXE", ParentName: "explorer.exe"},
	})
}

func assertAlert(t *testing.T, got, want schemas.Alert) {
	t.Helper()
	g, _ := json.MarshalIndent(got, "", " ")
	w, _ := json.MarshalIndent(want, "", " ")
	if !bytes.Equal(g, w) {
		t.Fatalf("normalized alert:\n%s\nwant:\n%s", g, w)
	}
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestNormalizedAlertsMatchTheAlertSchema normalizes every payload at hand — the
// examples, the fixtures, the vendors' own samples in ../shared/contracts and a
// slice of the labelled scenario week — and validates each Alert against
// schemas/alert.schema.json.
func TestNormalizedAlertsMatchTheAlertSchema(t *testing.T) {
	schema, err := gojsonschema.NewSchema(gojsonschema.NewBytesLoader(schemas.AlertSchema()))
	if err != nil {
		t.Fatal(err)
	}
	type payload struct {
		name, source string
		body         []byte
	}
	var payloads []payload
	for _, name := range []string{"crowdstrike-ransomware.json", "crowdstrike-pup.json", "ocsf-dc-credential-dumping.json", "ocsf-password-spray.json"} {
		payloads = append(payloads, payload{name, strings.SplitN(name, "-", 2)[0], example(t, name)})
	}
	for _, name := range []string{"crowdstrike-minimal.json", "ocsf-evidences.json"} {
		payloads = append(payloads, payload{name, strings.SplitN(name, "-", 2)[0], readTestdata(t, name)})
	}
	contracts := filepath.Join("..", "..", "..", "shared", "contracts")
	for _, c := range []struct{ path, source string }{
		{"crowdstrike/event-stream-EppDetectionSummaryEvent.ndjson", "crowdstrike"},
		{"ocsf/samples/detection_finding-sechub-guardduty.ocsf.json", "ocsf"},
		{"ocsf/samples/detection_finding-okta.ocsf.json", "ocsf"},
	} {
		if b, err := os.ReadFile(filepath.Join(contracts, c.path)); err == nil {
			payloads = append(payloads, payload{c.path, c.source, bytes.TrimSpace(b)})
		}
	}
	if f, err := os.ReadFile(filepath.Join("..", "..", "..", "shared", "scenarios", "week1.ndjson")); err == nil {
		for i, line := range bytes.Split(f, []byte("\n")) {
			if i%40 != 0 || len(line) == 0 {
				continue
			}
			var r struct {
				Source  string          `json:"source"`
				Payload json.RawMessage `json:"payload"`
			}
			if err := json.Unmarshal(line, &r); err != nil {
				t.Fatal(err)
			}
			payloads = append(payloads, payload{fmt.Sprintf("scenario line %d", i+1), r.Source, r.Payload})
		}
	}
	for _, pl := range payloads {
		a := normalized(t, pl.source, pl.body)
		doc, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		res, err := schema.Validate(gojsonschema.NewBytesLoader(doc))
		if err != nil {
			t.Fatal(err)
		}
		if !res.Valid() {
			t.Errorf("%s: normalized alert violates alert.schema.json: %v", pl.name, res.Errors())
		}
	}
	t.Logf("validated %d normalized alerts", len(payloads))
}

// FuzzAccept: whatever the body, a delivery is accepted or refused with a 4xx, and
// never panics.
func FuzzAccept(f *testing.F) {
	f.Add([]byte(`{"metadata":{"eventType":"DetectionSummaryEvent"},"event":{"Hostname":"h","CompositeId":"c","ProcessStartTime":1}}`), "crowdstrike")
	f.Add([]byte(`{"class_uid":2004,"time":1,"severity_id":1,"metadata":{"version":"1"},"finding_info":{"uid":"u","title":"t"}}`), "ocsf")
	f.Add([]byte(`{"a":[[[[[[["x"]]]]]]]}`), "ocsf")
	f.Add([]byte("\xff\xfe"), "crowdstrike")
	p := newTestPipeline(f, &fakeStarter{})
	f.Fuzz(func(t *testing.T, body []byte, source string) {
		p.replays = newReplayCache(SignatureWindow, 1000)
		_, err := p.Accept(context.Background(), signed(source, body, now))
		var ie *Error
		if err != nil && (!errors.As(err, &ie) || ie.Status < 400 || ie.Status > 499) {
			t.Fatalf("body %q: %v", body, err)
		}
	})
}

func BenchmarkAccept(b *testing.B) {
	p := newTestPipeline(b, benchStarter{})
	body := example(b, "crowdstrike-ransomware.json")
	sig := Sign([]byte(hmacSecret), now, body)
	h := http.Header{"Content-Type": {"application/json"}, SignatureHeader: {sig}}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		p.replays = newReplayCache(SignatureWindow, 10) // the same signature each round
		if _, err := p.Accept(context.Background(), Delivery{Source: "crowdstrike", Header: h, Body: bytes.NewReader(body), ContentLength: int64(len(body))}); err != nil {
			b.Fatal(err)
		}
	}
}

type benchStarter struct{}

func (benchStarter) StartAlert(context.Context, StartRequest) (StartResult, error) {
	return StartResult{RunID: "run", Started: true}, nil
}

// BenchmarkBaselineDecodeAndSign is the floor any signed JSON webhook pays: the
// HMAC check and one decode of the body into a generic document. BenchmarkAccept
// is reported against it (docs/BENCHMARKS.md).
func BenchmarkBaselineDecodeAndSign(b *testing.B) {
	body := example(b, "crowdstrike-ransomware.json")
	sig := Sign([]byte(hmacSecret), now, body)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := verifyHMAC([][]byte{[]byte(hmacSecret)}, sig, body, now, SignatureWindow); err != nil {
			b.Fatal(err)
		}
		var doc map[string]any
		if err := json.Unmarshal(body, &doc); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzNormalizeFieldValues: a delivery shaped like the examples, its entity and
// ATT&CK fields holding anything, is refused with a 4xx or accepted as an Alert
// that alert.schema.json accepts: normalizing and fingerprinting never panic or
// fail the server.
func FuzzNormalizeFieldValues(f *testing.F) {
	f.Add("fin-ws-0142", "10.20.4.142", "6a1f0c2e9b7d4e35a8c0f1d2e3b4a5c6", "T1486", "dana.okafor", int64(1795161600000), 90)
	f.Add("", "::ffff:10.0.0.1", "", "TA0001", "a@b", int64(-1), -5)
	f.Add("h\x00st", "999.1.1.1", "x", "T1003.001.7", "\xff", int64(1)<<62, 1<<30)
	starter := &fakeStarter{}
	p := newTestPipeline(f, starter)
	cs, ocsf := example(f, "crowdstrike-ransomware.json"), example(f, "ocsf-dc-credential-dumping.json")
	schema, err := gojsonschema.NewSchema(gojsonschema.NewBytesLoader(schemas.AlertSchema()))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, host, ip, id, technique, user string, at int64, severity int) {
		set := func(doc map[string]any, value any, path ...string) {
			for _, k := range path[:len(path)-1] {
				doc = doc[k].(map[string]any)
			}
			doc[path[len(path)-1]] = value
		}
		var c, o map[string]any
		if json.Unmarshal(cs, &c) != nil || json.Unmarshal(ocsf, &o) != nil {
			t.Fatal("examples do not decode")
		}
		for _, v := range []struct {
			path  []string
			value any
		}{
			{[]string{"event", "Hostname"}, host}, {[]string{"event", "LocalIP"}, ip}, {[]string{"event", "AgentId"}, id},
			{[]string{"event", "TechniqueId"}, technique}, {[]string{"event", "UserName"}, user},
			{[]string{"metadata", "eventCreationTime"}, at}, {[]string{"event", "Severity"}, severity},
		} {
			set(c, v.value, v.path...)
		}
		for _, v := range []struct {
			path  []string
			value any
		}{
			{[]string{"device", "hostname"}, host}, {[]string{"device", "ip"}, ip}, {[]string{"device", "uid"}, id},
			{[]string{"actor", "user", "email_addr"}, user}, {[]string{"time"}, at}, {[]string{"severity_id"}, severity},
		} {
			set(o, v.value, v.path...)
		}
		o["finding_info"].(map[string]any)["attacks"].([]any)[0].(map[string]any)["technique"] = map[string]any{"uid": technique}
		for source, doc := range map[string]map[string]any{"crowdstrike": c, "ocsf": o} {
			body, _ := json.Marshal(doc)
			p.replays = newReplayCache(SignatureWindow, 1000)
			starter.reqs = nil
			_, err := p.Accept(context.Background(), signed(source, body, now))
			var ie *Error
			if err != nil && (!errors.As(err, &ie) || ie.Status < 400 || ie.Status > 499) {
				t.Fatalf("%s %s: %v", source, body, err)
			}
			if err != nil {
				continue
			}
			alert, _ := json.Marshal(starter.reqs[0].Input.Alert)
			if res, err := schema.Validate(gojsonschema.NewBytesLoader(alert)); err != nil || !res.Valid() {
				t.Fatalf("%s %s: the alert %s violates alert.schema.json: %v %v", source, body, alert, err, res.Errors())
			}
		}
	})
}
