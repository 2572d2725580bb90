// Package integrations is the connector layer: the interfaces an activity calls
// (EDR today; IdP, firewall, threat intel, chat and ticketing later), the operation
// catalogue with each operation's side-effect class, inverse, idempotency and
// throttling, the shared vendor error type, and a registry. Each vendor lives in a
// sub-package with a real HTTP client and a stateful simulator.
//
// It may import the standard library and schemas; vendor packages add what their
// API needs.
// Nothing here knows about Temporal: activities translate errors into retry policy.
package integrations

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/rampart-soar/rampart/schemas"
)

// Side-effect classes.
const (
	SideEffectRead    = schemas.SideEffectRead
	SideEffectNotify  = schemas.SideEffectNotify
	SideEffectContain = schemas.SideEffectContain
)

// Operation describes one integration operation, as declared in
// schemas/integrations/<name>.json.
type Operation struct {
	// Name is integration.operation, as playbooks write it: edr.isolate_host.
	Name       string `json:"name"`
	SideEffect string `json:"side_effect"`
	// Inverse is the operation that undoes this one, for reverts.
	Inverse string `json:"inverse,omitempty"`
	// Idempotency says how a retry is made safe.
	Idempotency string `json:"idempotency"`
	// Throttling says how the vendor signals rate limits.
	Throttling string `json:"throttling"`
	// Input and Output are JSON Schemas (decoded).
	Input  map[string]any `json:"input"`
	Output map[string]any `json:"output"`
	// SimulatedOutput is what a dry run returns instead of calling the vendor.
	SimulatedOutput map[string]any `json:"simulated_output"`
}

// Host statuses an EDR reports, in CrowdStrike's words.
const (
	HostNormal                 = "normal"
	HostContainmentPending     = "containment_pending"
	HostContained              = "contained"
	HostLiftContainmentPending = "lift_containment_pending"
)

// Host is an endpoint as an EDR sees it.
type Host struct {
	ID       string `json:"id"`
	Hostname string `json:"hostname,omitempty"`
	IP       string `json:"ip,omitempty"`
	Platform string `json:"platform,omitempty"`
	Status   string `json:"status"`
}

// ActionReceipt is the vendor's acknowledgement of an asynchronous action.
type ActionReceipt struct {
	// ActionID identifies the vendor-side action or request (a trace id where the
	// vendor has no action id).
	ActionID string `json:"action_id"`
	HostID   string `json:"host_id"`
}

// EDR is an endpoint detection and response tool that can isolate hosts.
type EDR interface {
	// Name is the vendor integration name (crowdstrike).
	Name() string
	GetHost(ctx context.Context, id string) (Host, error)
	ContainHost(ctx context.Context, id string) (ActionReceipt, error)
	LiftContainment(ctx context.Context, id string) (ActionReceipt, error)
}

// APIError is an HTTP error a vendor API answered with.
type APIError struct {
	Integration string
	Operation   string
	StatusCode  int
	// Code and Message come from the vendor's error body.
	Code    string
	Message string
	// RetryAfter is the vendor's throttling hint, zero when it gave none.
	RetryAfter time.Duration
	TraceID    string
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("%s %s: HTTP %d", e.Integration, e.Operation, e.StatusCode)
	if e.Code != "" {
		msg += " " + e.Code
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.TraceID != "" {
		msg += " (trace " + e.TraceID + ")"
	}
	return msg
}

// Throttled reports a rate-limit answer.
func (e *APIError) Throttled() bool { return e.StatusCode == 429 }

// Retryable reports whether the same request may succeed later: timeouts, rate
// limits and server errors. Any other 4xx is the request's fault and final.
func (e *APIError) Retryable() bool {
	return e.StatusCode == 408 || e.StatusCode == 429 || e.StatusCode >= 500
}

// ErrNotFound marks a lookup of something the vendor does not know.
var ErrNotFound = errors.New("not found at vendor")

// Secret is a credential. It prints and marshals as a placeholder so it cannot leak
// into logs or API responses by accident; Reveal gives the value to the one place
// that sends it.
type Secret struct{ value string }

// NewSecret wraps a credential.
func NewSecret(v string) Secret { return Secret{value: v} }

// Reveal returns the credential.
func (s Secret) Reveal() string { return s.value }

// IsZero reports an empty secret.
func (s Secret) IsZero() bool { return s.value == "" }

func (s Secret) String() string {
	if s.value == "" {
		return ""
	}
	return "[redacted]"
}

// GoString keeps %#v from printing the value.
func (s Secret) GoString() string { return s.String() }

// MarshalJSON never writes the value.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + s.String() + `"`), nil }

// MarshalText never writes the value.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// catalogue is the operation declarations, parsed once from the embedded files.
var catalogue = sync.OnceValue(func() map[string]Operation {
	out := map[string]Operation{}
	for name, raw := range schemas.IntegrationOperations() {
		var op Operation
		if err := json.Unmarshal(raw, &op); err != nil || op.Name != name {
			panic(fmt.Sprintf("integrations: declaration %s.json is broken (name %q): %v", name, op.Name, err)) // a build defect
		}
		out[name] = op
	}
	return out
})

// Registry holds the configured integrations by kind and name.
type Registry struct {
	mu   sync.RWMutex
	edrs map[string]EDR
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{edrs: map[string]EDR{}} }

// RegisterEDR adds an EDR under its name.
func (r *Registry) RegisterEDR(e EDR) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.edrs[e.Name()] = e
}

// EDR returns the named EDR.
func (r *Registry) EDR(name string) (EDR, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e, ok := r.edrs[name]
	if !ok {
		return nil, fmt.Errorf("integrations: no EDR named %q is configured", name)
	}
	return e, nil
}

// Operations lists the operation catalogue, sorted by name.
func Operations() []Operation {
	out := make([]Operation, 0, len(catalogue()))
	for _, op := range catalogue() {
		out = append(out, op)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// LookupOperation finds an operation by name.
func LookupOperation(name string) (Operation, bool) {
	op, ok := catalogue()[name]
	return op, ok
}

// Resolve finds the operation an action calls: name itself, or for a revert its
// inverse, called with only the inputs the inverse declares.
func Resolve(name string, inputs map[string]any, revert bool) (Operation, map[string]any, error) {
	op, ok := LookupOperation(name)
	if !ok {
		return Operation{}, nil, fmt.Errorf("unknown integration operation %q", name)
	}
	if !revert {
		return op, inputs, nil
	}
	inverse, ok := LookupOperation(op.Inverse)
	if !ok {
		return Operation{}, nil, fmt.Errorf("%s has no inverse to revert with", name)
	}
	props, _ := inverse.Input["properties"].(map[string]any)
	declared := map[string]any{}
	for k, v := range inputs {
		if _, ok := props[k]; ok {
			declared[k] = v
		}
	}
	return inverse, declared, nil
}
