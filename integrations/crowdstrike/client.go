// Package crowdstrike is Rampart's CrowdStrike Falcon integration: a real HTTP
// client for host containment written from the vendor's documented API (OAuth2
// client credentials, devices-actions v2, devices v2), and a stateful simulator of
// those endpoints for `rampart dev` and the tests.
//
// It may import the standard library and integrations.
package crowdstrike

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rampart-soar/rampart/integrations"
)

// Name is the integration's name.
const Name = "crowdstrike"

// Vendor endpoints.
const (
	pathToken   = "/oauth2/token"
	pathActions = "/devices/entities/devices-actions/v2"
	pathDevices = "/devices/entities/devices/v2"
)

// Falcon action names.
const (
	actionContain = "contain"
	actionLift    = "lift_containment"
)

// Config configures a client.
type Config struct {
	// BaseURL is the cloud's API base, e.g. https://api.crowdstrike.com.
	BaseURL      string
	ClientID     string
	ClientSecret integrations.Secret
	// MemberCID targets a child CID in a Flight Control parent (optional).
	MemberCID  string
	HTTPClient *http.Client
	// Now is the clock, for tests; time.Now when nil.
	Now func() time.Time
}

// Client calls the Falcon API. It is safe for concurrent use.
type Client struct {
	base   *url.URL
	cfg    Config
	http   *http.Client
	now    func() time.Time
	mu     sync.Mutex
	token  string
	expiry time.Time
}

// New validates the config and returns a client.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(cfg.BaseURL, "/"))
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("crowdstrike: base URL %q is not an absolute URL", cfg.BaseURL)
	}
	if cfg.ClientID == "" || cfg.ClientSecret.IsZero() {
		return nil, errors.New("crowdstrike: client id and client secret are required")
	}
	c := &Client{base: u, cfg: cfg, http: cfg.HTTPClient, now: cfg.Now}
	if c.http == nil {
		c.http = &http.Client{Timeout: 30 * time.Second}
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c, nil
}

// Name implements integrations.EDR.
func (c *Client) Name() string { return Name }

// GetHost returns the device's containment status.
func (c *Client) GetHost(ctx context.Context, id string) (integrations.Host, error) {
	q := url.Values{"ids": {id}}
	var body struct {
		Resources []struct {
			DeviceID     string `json:"device_id"`
			Hostname     string `json:"hostname"`
			LocalIP      string `json:"local_ip"`
			PlatformName string `json:"platform_name"`
			Status       string `json:"status"`
		} `json:"resources"`
	}
	if err := c.do(ctx, "get_host", http.MethodGet, pathDevices+"?"+q.Encode(), nil, &body); err != nil {
		var apiErr *integrations.APIError
		if errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusNotFound {
			return integrations.Host{}, fmt.Errorf("crowdstrike: device %s: %w: %w", id, integrations.ErrNotFound, err)
		}
		return integrations.Host{}, err
	}
	for _, r := range body.Resources {
		if r.DeviceID == id {
			return integrations.Host{ID: r.DeviceID, Hostname: r.Hostname, IP: r.LocalIP, Platform: r.PlatformName, Status: r.Status}, nil
		}
	}
	return integrations.Host{}, fmt.Errorf("crowdstrike: device %s: %w", id, integrations.ErrNotFound)
}

// ContainHost asks Falcon to network-contain the device. Containment is
// asynchronous: the host goes containment_pending, then contained.
func (c *Client) ContainHost(ctx context.Context, id string) (integrations.ActionReceipt, error) {
	return c.performAction(ctx, actionContain, id)
}

// LiftContainment asks Falcon to lift the device's containment.
func (c *Client) LiftContainment(ctx context.Context, id string) (integrations.ActionReceipt, error) {
	return c.performAction(ctx, actionLift, id)
}

func (c *Client) performAction(ctx context.Context, action, id string) (integrations.ActionReceipt, error) {
	payload, _ := json.Marshal(map[string][]string{"ids": {id}})
	var body struct {
		Meta struct {
			TraceID string `json:"trace_id"`
		} `json:"meta"`
		Resources []struct {
			ID string `json:"id"`
		} `json:"resources"`
	}
	q := url.Values{"action_name": {action}}
	if err := c.do(ctx, action, http.MethodPost, pathActions+"?"+q.Encode(), payload, &body); err != nil {
		return integrations.ActionReceipt{}, err
	}
	if len(body.Resources) == 0 || body.Resources[0].ID != id {
		return integrations.ActionReceipt{}, fmt.Errorf("crowdstrike %s: device %s not in the affected resources", action, id)
	}
	return integrations.ActionReceipt{ActionID: body.Meta.TraceID, HostID: id}, nil
}

// do sends an authenticated request, refreshing the token once if it was rejected.
func (c *Client) do(ctx context.Context, op, method, path string, payload []byte, out any) error {
	for attempt := 0; ; attempt++ {
		token, err := c.bearer(ctx)
		if err != nil {
			return err
		}
		var body io.Reader
		if payload != nil {
			body = bytes.NewReader(payload)
		}
		req, err := http.NewRequestWithContext(ctx, method, c.base.String()+path, body)
		if err != nil {
			return fmt.Errorf("crowdstrike %s: %w", op, err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Accept", "application/json")
		if payload != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := c.http.Do(req)
		if err != nil {
			return fmt.Errorf("crowdstrike %s: %w", op, err)
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
		_ = resp.Body.Close()
		if err != nil {
			return fmt.Errorf("crowdstrike %s: read response: %w", op, err)
		}
		if resp.StatusCode == http.StatusUnauthorized && attempt == 0 {
			c.invalidate(token) // expired or revoked early: fetch a new one, once
			continue
		}
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return c.apiError(op, resp, data)
		}
		if out != nil && len(data) > 0 {
			if err := json.Unmarshal(data, out); err != nil {
				return fmt.Errorf("crowdstrike %s: decode response: %w", op, err)
			}
		}
		return nil
	}
}

// bearer returns a cached token, fetching a new one a minute before expiry.
func (c *Client) bearer(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && c.now().Before(c.expiry) {
		return c.token, nil
	}
	form := url.Values{"client_id": {c.cfg.ClientID}, "client_secret": {c.cfg.ClientSecret.Reveal()}}
	if c.cfg.MemberCID != "" {
		form.Set("member_cid", c.cfg.MemberCID)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base.String()+pathToken, strings.NewReader(form.Encode()))
	if err != nil {
		return "", fmt.Errorf("crowdstrike token: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("crowdstrike token: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	if err != nil {
		return "", fmt.Errorf("crowdstrike token: read response: %w", err)
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		return "", c.apiError("token", resp, data)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if err := json.Unmarshal(data, &tok); err != nil || tok.AccessToken == "" {
		return "", errors.New("crowdstrike token: response has no access_token")
	}
	lifetime := time.Duration(tok.ExpiresIn) * time.Second
	if lifetime <= 0 {
		lifetime = 30 * time.Minute
	}
	margin := min(time.Minute, lifetime/10)
	c.token, c.expiry = tok.AccessToken, c.now().Add(lifetime-margin)
	return c.token, nil
}

func (c *Client) invalidate(token string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token == token {
		c.token = ""
	}
}

// apiError parses Falcon's error body {meta, errors:[{code, message}]} and the
// throttling header.
func (c *Client) apiError(op string, resp *http.Response, data []byte) error {
	e := &integrations.APIError{
		Integration: Name,
		Operation:   op,
		StatusCode:  resp.StatusCode,
		TraceID:     resp.Header.Get("X-Cs-Traceid"),
	}
	var body struct {
		Errors []struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if json.Unmarshal(data, &body) == nil && len(body.Errors) > 0 {
		msgs := make([]string, 0, len(body.Errors))
		for _, er := range body.Errors {
			msgs = append(msgs, er.Message)
		}
		e.Message = strings.Join(msgs, "; ")
		if c := body.Errors[0].Code; c != 0 && c != resp.StatusCode {
			e.Code = strconv.Itoa(body.Errors[0].Code)
		}
	} else if len(data) > 0 && len(data) < 512 {
		e.Message = strings.TrimSpace(string(data))
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		e.RetryAfter = RetryAfter(resp.Header.Get("X-RateLimit-RetryAfter"), c.now())
	}
	return e
}

// RetryAfter reads X-RateLimit-RetryAfter. Falcon documents it as an absolute epoch
// time; whether in seconds or milliseconds varies, so the unit is told by magnitude.
// The result is the wait from now, zero when the header is absent, bad or past.
func RetryAfter(header string, now time.Time) time.Duration {
	v, err := strconv.ParseInt(strings.TrimSpace(header), 10, 64)
	if err != nil || v <= 0 {
		return 0
	}
	var at time.Time
	if v > 1e12 {
		at = time.UnixMilli(v)
	} else {
		at = time.Unix(v, 0)
	}
	if d := at.Sub(now); d > 0 {
		return d
	}
	return 0
}
