package crowdstrike

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rampart-soar/rampart/integrations"
)

// SimHost is a device the simulator knows.
type SimHost struct {
	ID       string `json:"device_id"`
	Hostname string `json:"hostname"`
	IP       string `json:"local_ip"`
	Platform string `json:"platform_name"`
	Status   string `json:"status"`
}

// AuditEntry records one call the simulator answered.
type AuditEntry struct {
	Time   time.Time `json:"time"`
	Method string    `json:"method"`
	Path   string    `json:"path"`
	Action string    `json:"action,omitempty"`
	IDs    []string  `json:"ids,omitempty"`
	Status int       `json:"status"`
	Fault  string    `json:"fault,omitempty"`
}

// Fault makes the simulator answer the next Count matching calls with an error.
// (POST /_sim/faults takes it as a simFault.)
type Fault struct {
	// Status is the HTTP status to answer: 429 adds X-RateLimit-RetryAfter.
	Status int
	// Count is how many calls fail; 0 means 1.
	Count int
	// Path limits the fault to calls whose path starts with it; empty means every
	// API call but the token endpoint.
	Path string
	// RetryAfter is the 429 reset hint, from the moment of the answer.
	RetryAfter time.Duration
}

// SimOptions configure a simulator.
type SimOptions struct {
	ClientID     string
	ClientSecret string
	// ContainDelay is how long a host stays containment_pending (default 300 ms).
	ContainDelay time.Duration
	// Latency is added to every answer.
	Latency time.Duration
	// TokenTTL is the access tokens' lifetime (default 30 min, as Falcon's).
	TokenTTL time.Duration
}

// Simulator is a stateful fake of the Falcon endpoints Rampart calls: OAuth2 token,
// devices-actions v2 and devices v2, with the vendor's status codes, error body and
// rate-limit headers, injectable faults, and an audit of every call. It serves real
// HTTP so clients are exercised over the wire. Its /_sim/ endpoints show state
// (hosts, audit) and let a person break it on purpose (faults, latency).
type Simulator struct {
	opts SimOptions

	mu      sync.Mutex
	hosts   map[string]*simHost
	tokens  map[string]time.Time
	audit   []AuditEntry
	faults  []Fault
	latency time.Duration

	srv *http.Server
	url string
}

type simHost struct {
	SimHost
	pendingUntil time.Time
}

// NewSimulator returns a simulator with no hosts.
func NewSimulator(opts SimOptions) *Simulator {
	if opts.ContainDelay <= 0 {
		opts.ContainDelay = 300 * time.Millisecond
	}
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = 30 * time.Minute
	}
	return &Simulator{
		opts:    opts,
		hosts:   map[string]*simHost{},
		tokens:  map[string]time.Time{},
		latency: opts.Latency,
	}
}

// Start serves on addr (127.0.0.1:0 picks a port).
func (s *Simulator) Start(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("crowdstrike simulator: %w", err)
	}
	s.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	s.url = "http://" + ln.Addr().String()
	go func() { _ = s.srv.Serve(ln) }()
	return nil
}

// URL is the simulator's base URL once started.
func (s *Simulator) URL() string { return s.url }

// Close stops serving.
func (s *Simulator) Close() error {
	if s.srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}

// AddHost adds or replaces a device; an empty status means normal.
func (s *Simulator) AddHost(h SimHost) {
	if h.Status == "" {
		h.Status = integrations.HostNormal
	}
	h.ID = strings.ToLower(h.ID)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hosts[h.ID] = &simHost{SimHost: h}
}

// Host returns a device's current state.
func (s *Simulator) Host(id string) (SimHost, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.hosts[strings.ToLower(id)]
	if !ok {
		return SimHost{}, false
	}
	s.settle(h)
	return h.SimHost, true
}

// Hosts returns every device, sorted by hostname.
func (s *Simulator) Hosts() []SimHost {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SimHost, 0, len(s.hosts))
	for _, h := range s.hosts {
		s.settle(h)
		out = append(out, h.SimHost)
	}
	slices.SortFunc(out, func(a, b SimHost) int { return strings.Compare(a.Hostname, b.Hostname) })
	return out
}

// Audit returns every call answered so far.
func (s *Simulator) Audit() []AuditEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.audit)
}

// AuditSince returns the calls answered after the first offset ones, and the
// offset to ask with next time: a cheap way to follow the audit as it grows.
func (s *Simulator) AuditSince(offset int) ([]AuditEntry, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if offset >= len(s.audit) {
		return nil, len(s.audit)
	}
	return slices.Clone(s.audit[offset:]), len(s.audit)
}

// ActionCalls counts accepted (202) calls of an action for a device.
func (s *Simulator) ActionCalls(action, id string) int {
	n := 0
	for _, e := range s.Audit() {
		if e.Action == action && e.Status == http.StatusAccepted && slices.Contains(e.IDs, strings.ToLower(id)) {
			n++
		}
	}
	return n
}

// ContainCalls counts accepted contain calls for a device.
func (s *Simulator) ContainCalls(id string) int { return s.ActionCalls(actionContain, id) }

// InjectFault queues a fault.
func (s *Simulator) InjectFault(f Fault) {
	if f.Count <= 0 {
		f.Count = 1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, f)
}

// SetLatency changes the delay added to every answer.
func (s *Simulator) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// settle moves a pending host on once its delay has passed. Callers hold s.mu.
func (s *Simulator) settle(h *simHost) {
	if h.pendingUntil.IsZero() || time.Now().Before(h.pendingUntil) {
		return
	}
	switch h.Status {
	case integrations.HostContainmentPending:
		h.Status = integrations.HostContained
	case integrations.HostLiftContainmentPending:
		h.Status = integrations.HostNormal
	}
	h.pendingUntil = time.Time{}
}

// Handler serves the simulated API.
func (s *Simulator) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+pathToken, s.handleToken)
	mux.HandleFunc("POST "+pathActions, s.authed(s.handleAction))
	mux.HandleFunc("GET "+pathDevices, s.authed(s.handleDevices))
	mux.HandleFunc("GET /_sim/hosts", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, s.Hosts()) })
	mux.HandleFunc("GET /_sim/audit", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, s.Audit()) })
	mux.HandleFunc("POST /_sim/faults", func(w http.ResponseWriter, r *http.Request) {
		var f simFault
		err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&f)
		fault, ok := f.fault()
		if err != nil || !ok {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": `body must be a fault: {"status": 4xx or 5xx, "count": n, "path": "/devices/…", "retry_after": "2s"}`})
			return
		}
		s.InjectFault(fault)
		writeJSON(w, http.StatusAccepted, f)
	})
	mux.HandleFunc("POST /_sim/latency", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Latency string `json:"latency"`
		}
		err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<10)).Decode(&body)
		d, perr := time.ParseDuration(body.Latency)
		if err != nil || perr != nil || d < 0 {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": `body must be {"latency": "300ms"}`})
			return
		}
		s.SetLatency(d)
		writeJSON(w, http.StatusAccepted, body)
	})
	return mux
}

// simFault is a Fault as POST /_sim/faults takes it: the reset hint as a
// duration ("2s"), for people typing curl.
type simFault struct {
	Status     int    `json:"status"`
	Count      int    `json:"count,omitempty"`
	Path       string `json:"path,omitempty"`
	RetryAfter string `json:"retry_after,omitempty"`
}

func (f simFault) fault() (Fault, bool) {
	out := Fault{Status: f.Status, Count: f.Count, Path: f.Path}
	if f.RetryAfter != "" {
		d, err := time.ParseDuration(f.RetryAfter)
		if err != nil || d < 0 {
			return out, false
		}
		out.RetryAfter = d
	}
	return out, f.Status >= 400 && f.Status <= 599 && f.Count >= 0
}

type falconRecorder struct {
	http.ResponseWriter
	status int
}

func (r *falconRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (s *Simulator) handleToken(w http.ResponseWriter, r *http.Request) {
	s.pause()
	rec := &falconRecorder{ResponseWriter: w}
	defer func() { s.record(r, rec.status, "", nil, "") }()
	if err := r.ParseForm(); err != nil {
		falconError(rec, http.StatusBadRequest, "invalid form body")
		return
	}
	id, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if subtle.ConstantTimeCompare([]byte(id), []byte(s.opts.ClientID)) != 1 ||
		subtle.ConstantTimeCompare([]byte(secret), []byte(s.opts.ClientSecret)) != 1 {
		falconError(rec, http.StatusUnauthorized, "access denied, invalid client credentials")
		return
	}
	token := randomHex(24)
	s.mu.Lock()
	s.tokens[token] = time.Now().Add(s.opts.TokenTTL)
	s.mu.Unlock()
	writeJSON(rec, http.StatusCreated, map[string]any{
		"access_token": token,
		"token_type":   "bearer",
		"expires_in":   int(s.opts.TokenTTL.Seconds()),
	})
}

// authed checks the bearer token, applies latency and queued faults, and records
// the call in the audit.
func (s *Simulator) authed(next func(http.ResponseWriter, *http.Request) (action string, ids []string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.pause()
		rec := &falconRecorder{ResponseWriter: w}
		w = rec
		w.Header().Set("X-Cs-Traceid", randomHex(16))
		w.Header().Set("X-Ratelimit-Limit", "6000")
		w.Header().Set("X-Ratelimit-Remaining", "5999")
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		s.mu.Lock()
		expiry, known := s.tokens[token]
		s.mu.Unlock()
		if !ok || !known || time.Now().After(expiry) {
			falconError(w, http.StatusUnauthorized, "access denied, authorization failed")
			s.record(r, rec.status, "", nil, "")
			return
		}
		if f, ok := s.takeFault(r.URL.Path); ok {
			if f.Status == http.StatusTooManyRequests {
				w.Header().Set("X-Ratelimit-Remaining", "0")
				w.Header().Set("X-Ratelimit-Retryafter", strconv.FormatInt(time.Now().Add(f.RetryAfter).Unix(), 10))
			}
			falconError(w, f.Status, http.StatusText(f.Status))
			s.record(r, rec.status, r.URL.Query().Get("action_name"), nil, "injected")
			return
		}
		action, ids := next(w, r)
		s.record(r, rec.status, action, ids, "")
	}
}

func (s *Simulator) handleAction(w http.ResponseWriter, r *http.Request) (string, []string) {
	action := r.URL.Query().Get("action_name")
	var body struct {
		IDs []string `json:"ids"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&body); err != nil || len(body.IDs) == 0 {
		falconError(w, http.StatusBadRequest, "ids is required")
		return action, nil
	}
	ids := make([]string, len(body.IDs))
	for i, id := range body.IDs {
		ids[i] = strings.ToLower(id)
	}
	var from, to string
	switch action {
	case actionContain:
		from, to = integrations.HostNormal, integrations.HostContainmentPending
	case actionLift:
		from, to = integrations.HostContained, integrations.HostLiftContainmentPending
	default:
		falconError(w, http.StatusBadRequest, "unsupported action_name "+strconv.Quote(action))
		return action, ids
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		h, ok := s.hosts[id]
		if !ok {
			falconError(w, http.StatusNotFound, "device "+id+" not found")
			return action, ids
		}
		s.settle(h)
		if h.Status != from {
			falconError(w, http.StatusConflict, fmt.Sprintf("device %s is %s: %s not allowed", id, h.Status, action))
			return action, ids
		}
	}
	resources := make([]map[string]string, 0, len(ids))
	for _, id := range ids {
		h := s.hosts[id]
		h.Status, h.pendingUntil = to, time.Now().Add(s.opts.ContainDelay)
		resources = append(resources, map[string]string{"id": id, "path": ""})
	}
	writeJSON(w, http.StatusAccepted, map[string]any{
		"meta":      map[string]any{"query_time": 0.01, "trace_id": w.Header().Get("X-Cs-Traceid")},
		"resources": resources,
		"errors":    []any{},
	})
	return action, ids
}

func (s *Simulator) handleDevices(w http.ResponseWriter, r *http.Request) (string, []string) {
	ids := r.URL.Query()["ids"]
	if len(ids) == 0 {
		falconError(w, http.StatusBadRequest, "ids is required")
		return "", nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var found []SimHost
	for _, id := range ids {
		if h, ok := s.hosts[strings.ToLower(id)]; ok {
			s.settle(h)
			found = append(found, h.SimHost)
		}
	}
	if len(found) == 0 {
		falconError(w, http.StatusNotFound, "no devices found for the given ids")
		return "", ids
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"meta":      map[string]any{"trace_id": w.Header().Get("X-Cs-Traceid")},
		"resources": found,
		"errors":    []any{},
	})
	return "", ids
}

func (s *Simulator) takeFault(path string) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.faults {
		f := &s.faults[i]
		if f.Path != "" && !strings.HasPrefix(path, f.Path) {
			continue
		}
		out := *f
		f.Count--
		if f.Count <= 0 {
			s.faults = slices.Delete(s.faults, i, i+1)
		}
		return out, true
	}
	return Fault{}, false
}

func (s *Simulator) pause() {
	s.mu.Lock()
	d := s.latency
	s.mu.Unlock()
	if d > 0 {
		time.Sleep(d)
	}
}

func (s *Simulator) record(r *http.Request, status int, action string, ids []string, fault string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.audit = append(s.audit, AuditEntry{
		Time: time.Now().UTC(), Method: r.Method, Path: r.URL.Path,
		Action: action, IDs: ids, Status: status, Fault: fault,
	})
}

// falconError writes Falcon's error envelope.
func falconError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{
		"meta":      map[string]any{"trace_id": w.Header().Get("X-Cs-Traceid")},
		"resources": []any{},
		"errors":    []map[string]any{{"code": status, "message": msg}},
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(errors.New("crypto/rand failed")) // the OS has no entropy: nothing sensible to do
	}
	return hex.EncodeToString(b)
}
