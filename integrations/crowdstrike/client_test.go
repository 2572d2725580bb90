package crowdstrike

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampart-soar/rampart/integrations"
)

const (
	testID     = "client-id"
	testSecret = "client-secret-0123456789"
	hostID     = "6a1f0c2e9b7d4e35a8c0f1d2e3b4a5c6"
)

func startSim(t *testing.T, opts SimOptions) (*Simulator, *Client) {
	t.Helper()
	opts.ClientID, opts.ClientSecret = testID, testSecret
	if opts.ContainDelay == 0 {
		opts.ContainDelay = 50 * time.Millisecond
	}
	sim := NewSimulator(opts)
	sim.AddHost(SimHost{ID: hostID, Hostname: "fin-ws-0142", IP: "10.20.4.142"})
	if err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	c, err := New(Config{BaseURL: sim.URL(), ClientID: testID, ClientSecret: integrations.NewSecret(testSecret)})
	if err != nil {
		t.Fatal(err)
	}
	return sim, c
}

func countPath(sim *Simulator, path string) int {
	n := 0
	for _, e := range sim.Audit() {
		if e.Path == path {
			n++
		}
	}
	return n
}

func TestContainOverTheWire(t *testing.T) {
	sim, c := startSim(t, SimOptions{})
	ctx := context.Background()
	h, err := c.GetHost(ctx, hostID)
	if err != nil || h.Status != integrations.HostNormal || h.Hostname != "fin-ws-0142" {
		t.Fatalf("host = %+v, %v", h, err)
	}
	receipt, err := c.ContainHost(ctx, hostID)
	if err != nil || receipt.ActionID == "" || receipt.HostID != hostID {
		t.Fatalf("contain = %+v, %v", receipt, err)
	}
	if h, _ := c.GetHost(ctx, hostID); h.Status != integrations.HostContainmentPending {
		t.Fatalf("right after contain: %s", h.Status)
	}
	time.Sleep(80 * time.Millisecond)
	if h, _ := c.GetHost(ctx, hostID); h.Status != integrations.HostContained {
		t.Fatalf("after the delay: %s", h.Status)
	}
	// Containing again is a conflict, as on the real API.
	_, err = c.ContainHost(ctx, hostID)
	var apiErr *integrations.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusConflict || apiErr.Retryable() || apiErr.TraceID == "" {
		t.Fatalf("second contain = %v", err)
	}
	if _, err := c.LiftContainment(ctx, hostID); err != nil {
		t.Fatal(err)
	}
	if sim.ContainCalls(hostID) != 1 || sim.ActionCalls(actionLift, hostID) != 1 {
		t.Fatalf("audit: %d contain, %d lift", sim.ContainCalls(hostID), sim.ActionCalls(actionLift, hostID))
	}
	// One token for all of the above.
	if n := countPath(sim, pathToken); n != 1 {
		t.Fatalf("token requests = %d, want 1 (cached)", n)
	}
}

func TestTokenRefreshAndReauth(t *testing.T) {
	sim, c := startSim(t, SimOptions{TokenTTL: 2 * time.Second})
	ctx := context.Background()
	clock := time.Now()
	c.now = func() time.Time { return clock }
	if _, err := c.GetHost(ctx, hostID); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(3 * time.Second) // past expiry minus margin: refresh before use
	if _, err := c.GetHost(ctx, hostID); err != nil {
		t.Fatal(err)
	}
	if n := countPath(sim, pathToken); n != 2 {
		t.Fatalf("token requests = %d, want 2", n)
	}
	// A token the vendor revoked early: one 401, a new token, the call succeeds.
	sim.mu.Lock()
	sim.tokens = map[string]time.Time{}
	sim.mu.Unlock()
	if _, err := c.GetHost(ctx, hostID); err != nil {
		t.Fatalf("after revocation: %v", err)
	}
	if n := countPath(sim, pathToken); n != 3 {
		t.Fatalf("token requests = %d, want 3", n)
	}
}

func TestBadCredentials(t *testing.T) {
	sim, _ := startSim(t, SimOptions{})
	c, _ := New(Config{BaseURL: sim.URL(), ClientID: testID, ClientSecret: integrations.NewSecret("wrong-secret-0123456789")})
	_, err := c.GetHost(context.Background(), hostID)
	var apiErr *integrations.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusUnauthorized || apiErr.Operation != "token" {
		t.Fatalf("err = %v", err)
	}
	if got := err.Error(); strings.Contains(got, "wrong-secret") {
		t.Fatalf("error leaks the secret: %s", got)
	}
}

func TestThrottlingAndServerErrors(t *testing.T) {
	sim, c := startSim(t, SimOptions{})
	ctx := context.Background()
	sim.InjectFault(Fault{Status: 429, RetryAfter: 3 * time.Second, Path: pathActions})
	_, err := c.ContainHost(ctx, hostID)
	var apiErr *integrations.APIError
	if !errors.As(err, &apiErr) || !apiErr.Throttled() || !apiErr.Retryable() {
		t.Fatalf("err = %v", err)
	}
	if apiErr.RetryAfter < time.Second || apiErr.RetryAfter > 4*time.Second {
		t.Fatalf("retry after = %v, want about 3s", apiErr.RetryAfter)
	}
	sim.InjectFault(Fault{Status: 503, Count: 2})
	for range 2 {
		if _, err := c.GetHost(ctx, hostID); !errors.As(err, &apiErr) || apiErr.StatusCode != 503 || !apiErr.Retryable() {
			t.Fatalf("err = %v", err)
		}
	}
	if _, err := c.GetHost(ctx, hostID); err != nil {
		t.Fatalf("after the faults: %v", err)
	}
	if _, err := c.GetHost(ctx, "ffffffffffffffffffffffffffffffff"); !errors.Is(err, integrations.ErrNotFound) {
		t.Fatalf("unknown device: %v", err)
	}
	_, err = c.ContainHost(ctx, "ffffffffffffffffffffffffffffffff")
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 || apiErr.Retryable() || apiErr.Message == "" {
		t.Fatalf("contain unknown device: %v", err)
	}
}

func TestLatencyIsHonouredAndContextCancels(t *testing.T) {
	sim, c := startSim(t, SimOptions{})
	sim.SetLatency(300 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.GetHost(ctx, hostID); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
}

func TestRetryAfterUnits(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	for header, want := range map[string]time.Duration{
		strconv.FormatInt(now.Unix()+5, 10):         5 * time.Second,
		strconv.FormatInt(now.UnixMilli()+1500, 10): 1500 * time.Millisecond,
		strconv.FormatInt(now.Unix()-5, 10):         0,
		"":                                          0,
		"soon":                                      0,
	} {
		if got := RetryAfter(header, now); got != want {
			t.Errorf("RetryAfter(%q) = %v, want %v", header, got, want)
		}
	}
}

func TestConcurrentCallsShareOneToken(t *testing.T) {
	sim, c := startSim(t, SimOptions{Latency: 20 * time.Millisecond})
	var failed atomic.Int32
	done := make(chan struct{})
	for range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			if _, err := c.GetHost(context.Background(), hostID); err != nil {
				failed.Add(1)
			}
		}()
	}
	for range 8 {
		<-done
	}
	if failed.Load() != 0 || countPath(sim, pathToken) != 1 {
		t.Fatalf("failures %d, token requests %d", failed.Load(), countPath(sim, pathToken))
	}
}

func TestNewValidatesConfig(t *testing.T) {
	for _, cfg := range []Config{
		{BaseURL: "", ClientID: "a", ClientSecret: integrations.NewSecret("b")},
		{BaseURL: "not a url", ClientID: "a", ClientSecret: integrations.NewSecret("b")},
		{BaseURL: "https://api.crowdstrike.com", ClientID: "a"},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("config %+v accepted", cfg)
		}
	}
}

// TestControlEndpoints: a person breaks the simulator on purpose over HTTP (a
// queued fault, added latency), and a bad request says what it wants.
func TestControlEndpoints(t *testing.T) {
	sim, c := startSim(t, SimOptions{})
	post := func(path, body string) int {
		t.Helper()
		resp, err := http.Post(sim.URL()+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	for _, c := range []struct{ path, body string }{
		{"/_sim/faults", `{"status":200}`},
		{"/_sim/faults", `{"status":429,"retry_after":"soon"}`},
		{"/_sim/faults", `not json`},
		{"/_sim/latency", `{"latency":"-1s"}`},
		{"/_sim/latency", `{}`},
	} {
		if code := post(c.path, c.body); code != http.StatusBadRequest {
			t.Errorf("POST %s %s = %d, want 400", c.path, c.body, code)
		}
	}
	if code := post("/_sim/faults", `{"status":429,"retry_after":"2s","path":"`+pathActions+`"}`); code != http.StatusAccepted {
		t.Fatalf("fault: %d", code)
	}
	ctx := context.Background()
	if _, err := c.GetHost(ctx, hostID); err != nil { // another path: not faulted
		t.Fatalf("read while the contain call is faulted: %v", err)
	}
	_, err := c.ContainHost(ctx, hostID)
	var apiErr *integrations.APIError
	if !errors.As(err, &apiErr) || !apiErr.Throttled() || apiErr.RetryAfter < time.Second || apiErr.RetryAfter > 3*time.Second {
		t.Fatalf("contain under a 429 fault: %v", err)
	}
	audit := sim.Audit()
	if last := audit[len(audit)-1]; last.Status != 429 || last.Fault == "" {
		t.Fatalf("audit = %+v", last)
	}
	if _, err := c.ContainHost(ctx, hostID); err != nil {
		t.Fatalf("once the fault is spent: %v", err)
	}
	if code := post("/_sim/latency", `{"latency":"300ms"}`); code != http.StatusAccepted {
		t.Fatalf("latency: %d", code)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := c.GetHost(short, hostID); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("under 300 ms of latency: %v", err)
	}
}
