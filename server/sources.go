package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
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
	// warned is when a refusal of each code was last logged; quiet, how many
	// refusals of that code went unlogged since.
	warned map[string]time.Time
	quiet  map[string]int
}

func newDeliveries(sources []ingest.SourceInfo, now time.Time) *deliveries {
	d := &deliveries{since: now, sources: map[string]*sourceCounts{}}
	for _, s := range sources {
		d.sources[s.Name] = &sourceCounts{SourceDelivery: SourceDelivery{SourceInfo: s, Refused: map[string]int{}},
			warned: map[string]time.Time{}, quiet: map[string]int{}}
	}
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
}

// refused counts a refusal and says whether to log it, with how many refusals
// of its kind went unlogged before it.
func (d *deliveries) refused(source string, r Refusal) (warn bool, unlogged int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.sources[source]
	if s == nil {
		d.unknown++
		return false, 0
	}
	s.Refused[r.Code]++
	s.LastRefusal = &r
	if last, ok := s.warned[r.Code]; ok && r.At.Sub(last) < refusalWarnEvery {
		s.quiet[r.Code]++
		return false, 0
	}
	unlogged = s.quiet[r.Code]
	s.warned[r.Code], s.quiet[r.Code] = r.At, 0
	return true, unlogged
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
func (s *Server) countDelivery(source string, accepted ingest.Accepted, err error) {
	now := time.Now()
	if err == nil {
		s.deliveries.accepted(source, accepted, now)
		return
	}
	r := Refusal{At: now, Status: http.StatusInternalServerError, Code: "internal", Message: "the delivery could not be handled"}
	var ie *ingest.Error
	if errors.As(err, &ie) {
		r.Status, r.Code, r.Message = ie.Status, ie.Code, ie.Message
	}
	warn, unlogged := s.deliveries.refused(source, r)
	if warn && r.Status < 500 && r.Status != http.StatusTooManyRequests {
		s.log.Warn("webhook refused", "source", source, "status", r.Status, "code", r.Code, "message", r.Message,
			"unlogged_before", unlogged)
	}
}

func (s *Server) listSources(c echo.Context) error {
	return c.JSON(http.StatusOK, s.deliveries.list())
}

// metrics answers in Prometheus's text format: the webhook deliveries per
// source and outcome, and the runs Temporal reports stalled (left out when
// Temporal does not answer, so an alert on them does not fire on a guess).
func (s *Server) metrics(c echo.Context) error {
	list := s.deliveries.list()
	var b strings.Builder
	b.WriteString("# HELP rampart_webhook_deliveries_total Webhook deliveries this server answered, by source and outcome (accepted, duplicate, or the refusal's error code).\n")
	b.WriteString("# TYPE rampart_webhook_deliveries_total counter\n")
	for _, src := range list.Sources {
		counts := map[string]int{"accepted": src.Accepted, "duplicate": src.Duplicates}
		for code, n := range src.Refused {
			counts[code] = n
		}
		outcomes := make([]string, 0, len(counts))
		for outcome := range counts {
			outcomes = append(outcomes, outcome)
		}
		slices.Sort(outcomes)
		for _, outcome := range outcomes {
			fmt.Fprintf(&b, "rampart_webhook_deliveries_total{source=%s,outcome=%s} %d\n", label(src.Name), label(outcome), counts[outcome])
		}
	}
	b.WriteString("# HELP rampart_webhook_unknown_source_total Webhook deliveries to a source name not configured.\n")
	b.WriteString("# TYPE rampart_webhook_unknown_source_total counter\n")
	fmt.Fprintf(&b, "rampart_webhook_unknown_source_total %d\n", list.UnknownSource)
	b.WriteString("# HELP rampart_webhook_last_accepted_timestamp_seconds When a delivery of the source was last accepted.\n")
	b.WriteString("# TYPE rampart_webhook_last_accepted_timestamp_seconds gauge\n")
	for _, src := range list.Sources {
		if src.LastAcceptedAt != nil {
			fmt.Fprintf(&b, "rampart_webhook_last_accepted_timestamp_seconds{source=%s} %s\n", label(src.Name),
				strconv.FormatFloat(float64(src.LastAcceptedAt.UnixMilli())/1000, 'f', 3, 64))
		}
	}
	if n, ok := s.stalledCount(c.Request().Context()); ok {
		b.WriteString("# HELP rampart_stalled_runs Open runs Temporal reports cannot progress (GET /api/v1/stalled).\n")
		b.WriteString("# TYPE rampart_stalled_runs gauge\n")
		fmt.Fprintf(&b, "rampart_stalled_runs %d\n", n)
	}
	c.Response().Header().Set(echo.HeaderContentType, "text/plain; version=0.0.4; charset=utf-8")
	c.Response().WriteHeader(http.StatusOK)
	_, err := io.WriteString(c.Response(), b.String())
	return err
}

// stalledCount counts the stalled runs, when this server looks for them and
// Temporal answers in time.
func (s *Server) stalledCount(ctx context.Context) (int, bool) {
	if s.opts.Stalls == nil {
		return 0, false
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	_, n, err := s.opts.Stalls.StalledRuns(ctx, 0)
	if err != nil {
		s.log.Debug("metrics: cannot count stalled runs", "error", err)
		return 0, false
	}
	return n, true
}

// label quotes a Prometheus label value.
func label(v string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(v) + `"`
}
