package ingest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xeipuuv/gojsonschema"
	"golang.org/x/time/rate"

	"github.com/rampart-soar/rampart/schemas"
	"github.com/rampart-soar/rampart/workflows"
)

// SignatureWindow is how far a signature's timestamp may be from now.
const SignatureWindow = 5 * time.Minute

// Starter hands a normalized alert to Temporal: it starts the fingerprint's
// AlertWorkflow, or signals the delivery into its open run. It returns only once
// Temporal has durably accepted the start or the signal.
type Starter interface {
	StartAlert(ctx context.Context, req StartRequest) (StartResult, error)
}

// StartRequest is one delivery: the run's input should it start one, and the
// delivery signalled into an open run.
type StartRequest struct {
	WorkflowID string
	Input      workflows.AlertInput
	Delivery   workflows.Delivery
}

// StartResult says which run holds the alert and whether this delivery started it.
type StartResult struct {
	RunID   string
	Started bool
}

// Accepted is the answer to an accepted delivery.
type Accepted struct {
	AlertID     string `json:"alert_id"`
	WorkflowID  string `json:"workflow_id"`
	Duplicate   bool   `json:"duplicate"`
	Fingerprint string `json:"fingerprint"`
	// PreviousSecret says the delivery was signed with the source's previous
	// secret: its tool has not moved to the new one yet. Not in the answer.
	PreviousSecret bool `json:"-"`
}

// WorkflowID is the AlertWorkflow id for a fingerprint.
func WorkflowID(fingerprint string) string { return "alert/" + fingerprint }

// Options configure a Pipeline.
type Options struct {
	Sources     map[string]*Source
	Starter     Starter
	Limits      Limits
	DedupWindow time.Duration
	// Now is the clock, for tests; time.Now when nil.
	Now func() time.Time
}

// Pipeline accepts webhook deliveries. It is safe for concurrent use.
type Pipeline struct {
	// sources is swapped whole by ReplaceSources, so a delivery sees one set
	// from its first check to its start.
	sources     atomic.Pointer[sourceSet]
	replacing   sync.Mutex                      // one ReplaceSources at a time
	schemas     map[string]*gojsonschema.Schema // by format: every format, so a reload needs no compile
	starter     Starter
	limits      Limits
	dedupWindow time.Duration
	replays     *replayCache
	now         func() time.Time
}

// sourceSet is the configured sources with their rate limiters.
type sourceSet struct {
	byName   map[string]*Source
	limiters map[string]*rate.Limiter // by source; none for a source without a rate limit
}

// NewPipeline compiles every format's schema once.
func NewPipeline(opts Options) (*Pipeline, error) {
	if opts.Starter == nil {
		return nil, errors.New("ingest: no starter")
	}
	p := &Pipeline{
		schemas:     map[string]*gojsonschema.Schema{},
		starter:     opts.Starter,
		limits:      opts.Limits,
		dedupWindow: opts.DedupWindow,
		replays:     newReplayCache(SignatureWindow, 100_000),
		now:         opts.Now,
	}
	if p.limits.MaxBody <= 0 {
		p.limits.MaxBody = DefaultLimits.MaxBody
	}
	if p.limits.MaxDepth <= 0 {
		p.limits.MaxDepth = DefaultLimits.MaxDepth
	}
	if p.now == nil {
		p.now = time.Now
	}
	for _, format := range schemas.Sources() {
		if _, ok := normalizers[format]; !ok {
			return nil, fmt.Errorf("ingest: no normalizer for format %q", format)
		}
		raw, err := schemas.SourceSchema(format)
		if err != nil {
			return nil, err
		}
		s, err := gojsonschema.NewSchema(gojsonschema.NewBytesLoader(raw))
		if err != nil {
			return nil, fmt.Errorf("ingest: compile %s schema: %w", format, err)
		}
		p.schemas[format] = s
	}
	if _, err := p.ReplaceSources(opts.Sources); err != nil {
		return nil, err
	}
	return p, nil
}

// SourceChanges names the sources a ReplaceSources added, removed or changed,
// and those whose secrets changed (a rotation begun or finished). Names only:
// never a secret.
type SourceChanges struct {
	Added, Removed, Changed, Rekeyed []string
}

// ReplaceSources makes sources the pipeline's sources, for a reload of the
// sources file: deliveries already past their source lookup finish with the set
// they began with. A source whose rate limit is unchanged keeps its limiter, so
// a reload does not hand a flooding tool a fresh burst. On an error nothing
// changes.
func (p *Pipeline) ReplaceSources(sources map[string]*Source) (SourceChanges, error) {
	if len(sources) == 0 {
		return SourceChanges{}, errors.New("ingest: no sources")
	}
	p.replacing.Lock()
	defer p.replacing.Unlock()
	next := &sourceSet{byName: sources, limiters: map[string]*rate.Limiter{}}
	prev := p.sources.Load()
	if prev == nil {
		prev = &sourceSet{}
	}
	var changes SourceChanges
	for name, src := range sources {
		if name != src.Name {
			return SourceChanges{}, fmt.Errorf("ingest: source %q is named %q", name, src.Name)
		}
		if _, ok := p.schemas[src.Format]; !ok {
			return SourceChanges{}, fmt.Errorf("ingest: source %s: no format %q", name, src.Format)
		}
		old, known := prev.byName[name]
		switch {
		case !known:
			changes.Added = append(changes.Added, name)
		case old.Format != src.Format || old.Auth != src.Auth || old.RateLimit != src.RateLimit:
			changes.Changed = append(changes.Changed, name)
		}
		if known && !slices.EqualFunc(old.secrets, src.secrets, bytes.Equal) {
			changes.Rekeyed = append(changes.Rekeyed, name)
		}
		if rl := src.RateLimit; rl.PerSecond > 0 {
			if lim := prev.limiters[name]; lim != nil && old.RateLimit == rl { // a limiter only for a source it had
				next.limiters[name] = lim
			} else {
				next.limiters[name] = rate.NewLimiter(rate.Limit(rl.PerSecond), max(rl.Burst, 1))
			}
		}
	}
	for name := range prev.byName {
		if _, kept := sources[name]; !kept {
			changes.Removed = append(changes.Removed, name)
		}
	}
	for _, names := range [][]string{changes.Added, changes.Removed, changes.Changed, changes.Rekeyed} {
		slices.Sort(names)
	}
	p.sources.Store(next)
	return changes, nil
}

// Delivery is one webhook request as the pipeline sees it.
type Delivery struct {
	Source string
	Header http.Header
	Body   io.Reader
	// ContentLength is the declared length, -1 when unknown.
	ContentLength int64
}

// Accept authenticates, validates and normalizes a delivery and starts or signals
// its AlertWorkflow. A refused delivery returns an *Error; a Temporal failure
// returns an *Error with status 503, and the sender should retry.
func (p *Pipeline) Accept(ctx context.Context, d Delivery) (Accepted, error) {
	set := p.sources.Load()
	src, ok := set.byName[d.Source]
	if !ok {
		return Accepted{}, &Error{Status: http.StatusNotFound, Code: "unknown_source", Message: fmt.Sprintf("no webhook source named %q", d.Source)}
	}
	if err := checkContentType(d.Header.Get("Content-Type")); err != nil {
		return Accepted{}, err
	}
	signedWith := 0 // which of the source's secrets: 1 is the previous one
	if src.Auth == AuthBearer {
		i, err := verifyBearer(src.secrets, d.Header.Get("Authorization"))
		if err != nil {
			return Accepted{}, err
		}
		signedWith = i
	} else if d.Header.Get(SignatureHeader) == "" {
		return Accepted{}, errUnauthorized("missing_signature", "missing "+SignatureHeader+" header")
	}
	body, err := p.readBody(d)
	if err != nil {
		return Accepted{}, err
	}
	now := p.now()
	replayKey := ""
	if src.Auth == AuthHMAC {
		key, i, err := verifyHMAC(src.secrets, d.Header.Get(SignatureHeader), body, now, SignatureWindow)
		if err != nil {
			return Accepted{}, err
		}
		signedWith = i
		replayKey = src.Name + "/" + key
		if !p.replays.reserve(replayKey, now) {
			return Accepted{}, errUnauthorized("replayed_request", "this signature was already used for an accepted delivery")
		}
	}
	// Only an authenticated delivery spends the source's rate: nobody else can
	// crowd it out. A refused one may be sent again as it is.
	var accepted Accepted
	err = admit(set.limiters[src.Name], src, now)
	if err == nil {
		accepted, err = p.accept(ctx, src, body, now, replayKey)
	}
	if err != nil && replayKey != "" {
		p.replays.release(replayKey)
	}
	accepted.PreviousSecret = err == nil && signedWith == 1
	return accepted, err
}

// admit spends one delivery of the source's rate limit, or says when to retry;
// lim is nil for a source without one.
func admit(lim *rate.Limiter, src *Source, now time.Time) error {
	if lim == nil {
		return nil
	}
	r := lim.ReserveN(now, 1)
	if delay := r.DelayFrom(now); delay > 0 {
		r.CancelAt(now)
		return &Error{Status: http.StatusTooManyRequests, Code: "rate_limited", RetryAfter: delay,
			Message: fmt.Sprintf("source %s is over its rate limit (%g a second, %d at once): retry after %s; this delivery was not accepted",
				src.Name, src.RateLimit.PerSecond, src.RateLimit.Burst, delay.Round(time.Millisecond))}
	}
	return nil
}

// accept starts or signals the alert's run. signature is the signed delivery's
// replay key, empty for a bearer-token source.
func (p *Pipeline) accept(ctx context.Context, src *Source, body []byte, now time.Time, signature string) (Accepted, error) {
	alert, err := p.Normalize(src, body)
	if err != nil {
		return Accepted{}, err
	}
	fingerprint := alert.Fingerprint()
	deliveryID := newID()
	if signature != "" {
		// The same signed request replayed to another server replica, whose
		// replay cache has not seen it, carries the same delivery id: the run
		// does not count the delivery that started it again, and Temporal drops
		// a signal whose request id it has had.
		sum := sha256.Sum256([]byte(signature))
		deliveryID = hex.EncodeToString(sum[:16])
	}
	req := StartRequest{
		WorkflowID: WorkflowID(fingerprint),
		Input: workflows.AlertInput{
			Alert:       alert,
			DeliveryID:  deliveryID,
			ReceivedAt:  now.UTC(),
			DedupWindow: p.dedupWindow,
		},
		Delivery: workflows.Delivery{DeliveryID: deliveryID, ReceivedAt: now.UTC(), FindingUID: alert.Finding.UID},
	}
	res, err := p.starter.StartAlert(ctx, req)
	if err != nil {
		return Accepted{}, &Error{Status: http.StatusServiceUnavailable, Code: "workflow_unavailable",
			Message: "the alert could not be handed to the workflow engine; retry the delivery", RetryAfter: 5 * time.Second}
	}
	return Accepted{AlertID: res.RunID, WorkflowID: req.WorkflowID, Duplicate: !res.Started, Fingerprint: fingerprint}, nil
}

// Normalize validates a body against its source's schema and normalizes it.
func (p *Pipeline) Normalize(src *Source, body []byte) (schemas.Alert, error) {
	if err := checkDepth(body, p.limits.MaxDepth); err != nil {
		return schemas.Alert{}, errBadRequest("too_deep", err.Error())
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return schemas.Alert{}, errBadRequest("invalid_json", "body must be a JSON object")
	}
	doc, err := decodeDocument(trimmed)
	if err != nil {
		return schemas.Alert{}, errBadRequest("invalid_json", describeJSONError(trimmed))
	}
	result, err := p.schemas[src.Format].Validate(gojsonschema.NewRawLoader(doc))
	if err != nil {
		return schemas.Alert{}, errBadRequest("invalid_json", err.Error())
	}
	if !result.Valid() {
		details := make([]FieldError, 0, len(result.Errors()))
		for _, e := range result.Errors() {
			details = append(details, FieldError{Field: fieldPath(e), Message: e.Description()})
		}
		return schemas.Alert{}, errBadRequest("schema_violation",
			fmt.Sprintf("payload does not match the %s schema", src.Format), details...)
	}
	alert, fieldErrs := normalizers[src.Format](trimmed)
	if len(fieldErrs) > 0 {
		return schemas.Alert{}, errBadRequest("invalid_payload", "payload fields could not be normalized", fieldErrs...)
	}
	alert.Source = src.Name
	alert.ClassUID = schemas.OCSFDetectionFindingClassUID
	alert.Raw = json.RawMessage(trimmed)
	return alert, nil
}

func (p *Pipeline) readBody(d Delivery) ([]byte, error) {
	tooLarge := &Error{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large",
		Message: fmt.Sprintf("body exceeds %d bytes", p.limits.MaxBody)}
	if d.ContentLength > p.limits.MaxBody {
		return nil, tooLarge
	}
	body, err := io.ReadAll(io.LimitReader(d.Body, p.limits.MaxBody+1))
	if err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			return nil, tooLarge
		}
		return nil, errBadRequest("unreadable_body", "the request body could not be read")
	}
	if int64(len(body)) > p.limits.MaxBody {
		return nil, tooLarge
	}
	return body, nil
}

func checkContentType(header string) *Error {
	unsupported := &Error{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type",
		Message: "Content-Type must be application/json"}
	if header == "" {
		return unsupported
	}
	mt, params, err := mime.ParseMediaType(header)
	if err != nil {
		return unsupported
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return unsupported
	}
	if mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")) {
		return nil
	}
	return unsupported
}

// fieldPath renders a schema error's location; a missing property is named as the
// field itself rather than its parent.
func fieldPath(e gojsonschema.ResultError) string {
	field := e.Field()
	if field == "(root)" {
		field = ""
	}
	if e.Type() == "required" {
		if prop, ok := e.Details()["property"].(string); ok {
			if field == "" {
				return prop
			}
			return field + "." + prop
		}
	}
	return field
}

// decodeDocument decodes a JSON document as gojsonschema reads it (numbers as
// json.Number), refusing anything after it: the one pass that both checks the
// syntax and feeds the schema, where a bytes loader would decode it again.
func decodeDocument(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON document")
	}
	return doc, nil
}

// describeJSONError locates a syntax error for the sender.
func describeJSONError(data []byte) string {
	var v any
	err := json.Unmarshal(data, &v)
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return fmt.Sprintf("invalid JSON at byte %d: %s", syn.Offset, syn.Error())
	}
	if err != nil {
		return "invalid JSON: " + err.Error()
	}
	return "invalid JSON"
}

func newID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(errors.New("crypto/rand failed")) // the OS has no entropy: nothing sensible to do
	}
	return hex.EncodeToString(b)
}
