package server

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rampart-soar/rampart/server/ingest"
)

// SourceList is how this server's webhook sources have fared since it started:
// a tool whose deliveries are refused (a rotated secret, a changed payload)
// shows here, not only in the tool's own logs. Each server counts its own
// deliveries; GET /api/v1/metrics exports the counts for a collector to add up.
type SourceList struct {
	Since   time.Time        `json:"since"`
	Sources []SourceDelivery `json:"sources"`
	// UnknownSource counts deliveries to a source name not configured.
	UnknownSource int `json:"unknown_source"`
}

// SourceDelivery is one source and its deliveries.
type SourceDelivery struct {
	ingest.SourceInfo
	// Accepted counts the alerts the source's deliveries started, Duplicates
	// the deliveries folded into an open alert, Refused the others by error code.
	Accepted       int            `json:"accepted"`
	Duplicates     int            `json:"duplicates"`
	Refused        map[string]int `json:"refused"`
	LastAcceptedAt *time.Time     `json:"last_accepted_at,omitempty"`
	LastRefusal    *Refusal       `json:"last_refusal,omitempty"`
	// PreviousSecretUsed counts the accepted deliveries (alerts and duplicates)
	// signed with the source's previous secret, the last at PreviousSecretLastAt:
	// once the tool has moved to the new secret it stops growing, and the
	// previous secret can go.
	PreviousSecretUsed   int        `json:"previous_secret_used,omitempty"`
	PreviousSecretLastAt *time.Time `json:"previous_secret_last_at,omitempty"`
}

// Refusal is a delivery the server did not accept, as it answered it.
type Refusal struct {
	At      time.Time `json:"at"`
	Status  int       `json:"status"`
	Code    string    `json:"code"`
	Message string    `json:"message"`
}

// refusalWarnEvery spaces the log's warnings about one source's refusals of one
// kind: a tool retrying with a stale secret would otherwise fill the log.
const refusalWarnEvery = time.Minute

// deliveries counts the webhook deliveries of this server per source.
type deliveries struct {
	mu      sync.Mutex
	since   time.Time
	sources map[string]*sourceCounts
	unknown int
}

type sourceCounts struct {
	SourceDelivery
	warned map[string]*warning // by refusal code
}

// warning is when a refusal of one code was last logged, and how many of that
// code went unlogged since.
type warning struct {
	at    time.Time
	quiet int
}

func newDeliveries(sources []ingest.SourceInfo, now time.Time) *deliveries {
	d := &deliveries{since: now}
	d.reconfigure(sources, nil)
	return d
}

func (d *deliveries) accepted(source string, a ingest.Accepted, at time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.sources[source]
	if s == nil {
		return
	}
	if a.Duplicate {
		s.Duplicates++
	} else {
		s.Accepted++
	}
	s.LastAcceptedAt = &at
	if a.PreviousSecret {
		s.PreviousSecretUsed++
		s.PreviousSecretLastAt = &at
	}
}

// refused counts a refusal and says whether to log it, with how many refusals
// of its kind went unlogged before it; a refusal logged elsewhere (fixable
// false) is only counted.
func (d *deliveries) refused(source string, r Refusal, fixable bool) (warn bool, unlogged int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.sources[source]
	if s == nil {
		d.unknown++
		return false, 0
	}
	s.Refused[r.Code]++
	s.LastRefusal = &r
	if !fixable {
		return false, 0
	}
	w := s.warned[r.Code]
	if w != nil && r.At.Sub(w.at) < refusalWarnEvery {
		w.quiet++
		return false, 0
	}
	if w != nil {
		unlogged = w.quiet
	}
	s.warned[r.Code] = &warning{at: r.At}
	return true, unlogged
}

// known says whether source is configured.
func (d *deliveries) known(source string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.sources[source]
	return ok
}

// reconfigure follows a reload of the sources: a kept source keeps its counts
// under its new settings, a new one starts at zero, a removed one goes (its
// deliveries count as to an unknown source from now on). A source with new
// secrets (rekeyed) counts its previous-secret deliveries anew: the old count
// was of another secret.
func (d *deliveries) reconfigure(sources []ingest.SourceInfo, rekeyed []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	next := make(map[string]*sourceCounts, len(sources))
	for _, info := range sources {
		s := d.sources[info.Name]
		if s == nil {
			s = &sourceCounts{SourceDelivery: SourceDelivery{Refused: map[string]int{}}, warned: map[string]*warning{}}
		}
		s.SourceInfo = info
		if slices.Contains(rekeyed, info.Name) {
			s.PreviousSecretUsed, s.PreviousSecretLastAt = 0, nil
		}
		next[info.Name] = s
	}
	d.sources = next
}

// list copies the counts.
func (d *deliveries) list() SourceList {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := SourceList{Since: d.since, Sources: make([]SourceDelivery, 0, len(d.sources)), UnknownSource: d.unknown}
	for _, s := range d.sources {
		c := s.SourceDelivery
		c.Refused = make(map[string]int, len(s.Refused))
		for code, n := range s.Refused {
			c.Refused[code] = n
		}
		out.Sources = append(out.Sources, c)
	}
	slices.SortFunc(out.Sources, func(a, b SourceDelivery) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// countDelivery records a webhook delivery's outcome, and warns of a refusal
// the sender can fix (anything but a 5xx, which is logged as an error, and a
// 429, which is logged already), at most once a minute per source and kind.
func (s *Server) countDelivery(source string, accepted ingest.Accepted, err error, took time.Duration) {
	now := time.Now()
	if err == nil {
		s.deliveries.accepted(source, accepted, now)
		outcome := "accepted"
		if accepted.Duplicate {
			outcome = "duplicate"
		}
		s.timeAnswer(source, outcome, took)
		return
	}
	r := Refusal{At: now, Status: http.StatusInternalServerError, Code: "internal", Message: "the delivery could not be handled"}
	var ie *ingest.Error
	if errors.As(err, &ie) {
		r.Status, r.Code, r.Message = ie.Status, ie.Code, ie.Message
	}
	s.timeAnswer(source, r.Code, took)
	fixable := r.Status < 500 && r.Status != http.StatusTooManyRequests
	if warn, unlogged := s.deliveries.refused(source, r, fixable); warn {
		s.log.Warn("webhook refused", "source", source, "status", r.Status, "code", r.Code, "message", r.Message,
			"unlogged_before", unlogged)
	}
}

// MetricWebhookAnswer times a webhook's answer, by source and outcome, for
// the tools that send alerts and give up after a timeout of their own.
const MetricWebhookAnswer = "rampart_webhook_answer_latency"

// timeAnswer records how long a configured source's delivery took to answer;
// deliveries to an unknown source are only counted, so that no request can make
// a series of its own.
func (s *Server) timeAnswer(source, outcome string, took time.Duration) {
	if s.opts.Metrics == nil || !s.deliveries.known(source) {
		return
	}
	s.opts.Metrics.Handler().WithTags(map[string]string{"source": source, "outcome": outcome}).
		Timer(MetricWebhookAnswer).Record(took)
}

// ReloadSources makes sources the webhook sources, as a hang-up does with the
// sources file: a secret is rotated, a source added or removed, without
// dropping a delivery. On an error nothing changes.
func (s *Server) ReloadSources(sources map[string]*ingest.Source) (ingest.SourceChanges, error) {
	if s.opts.Pipeline == nil {
		return ingest.SourceChanges{}, errors.New("this server takes no webhooks")
	}
	changes, err := s.opts.Pipeline.ReplaceSources(sources)
	if err != nil {
		return changes, err
	}
	s.deliveries.reconfigure(s.opts.Pipeline.Sources(), changes.Rekeyed)
	return changes, nil
}

func (s *Server) listSources(c echo.Context) error {
	return c.JSON(http.StatusOK, s.deliveries.list())
}
