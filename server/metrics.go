package server

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rampart-soar/rampart/store"
)

// metricsWait bounds what one scrape waits for Temporal and the database: a
// gauge whose source does not answer in time is left out, so that an alert on
// it does not fire on a guess.
const metricsWait = 3 * time.Second

// exposition is Prometheus's text format, written a metric family at a time.
type exposition struct{ strings.Builder }

func (e *exposition) family(name, kind, help string) {
	fmt.Fprintf(e, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, kind)
}

// sample writes one value; labels alternate names and values.
func (e *exposition) sample(name string, value float64, labels ...string) {
	e.WriteString(name)
	for i := 0; i+1 < len(labels); i += 2 {
		sep := ","
		if i == 0 {
			sep = "{"
		}
		fmt.Fprintf(e, "%s%s=%s", sep, labels[i], label(labels[i+1]))
	}
	if len(labels) > 1 {
		e.WriteString("}")
	}
	fmt.Fprintf(e, " %s\n", strconv.FormatFloat(value, 'f', -1, 64))
}

// gauge writes a family of one unlabelled value.
func (e *exposition) gauge(name, help string, value float64) {
	e.family(name, "gauge", help)
	e.sample(name, value)
}

// metrics answers in Prometheus's text format: the webhook deliveries per
// source and outcome, and, when their sources answer, the runs Temporal reports
// stalled, the workers polling the task queue and the approvals waiting.
func (s *Server) metrics(c echo.Context) error {
	var e exposition
	list := s.deliveries.list()
	e.family("rampart_webhook_deliveries_total", "counter",
		"Webhook deliveries this server answered, by source and outcome (accepted, duplicate, or the refusal's error code).")
	for _, src := range list.Sources {
		counts := map[string]int{"accepted": src.Accepted, "duplicate": src.Duplicates}
		for code, n := range src.Refused {
			counts[code] = n
		}
		for _, outcome := range slices.Sorted(maps.Keys(counts)) {
			e.sample("rampart_webhook_deliveries_total", float64(counts[outcome]), "source", src.Name, "outcome", outcome)
		}
	}
	e.family("rampart_webhook_unknown_source_total", "counter", "Webhook deliveries to a source name not configured.")
	e.sample("rampart_webhook_unknown_source_total", float64(list.UnknownSource))
	e.family("rampart_webhook_last_accepted_timestamp_seconds", "gauge", "When a delivery of the source was last accepted.")
	for _, src := range list.Sources {
		if src.LastAcceptedAt != nil {
			e.sample("rampart_webhook_last_accepted_timestamp_seconds", float64(src.LastAcceptedAt.UnixMilli())/1000, "source", src.Name)
		}
	}

	ctx, cancel := context.WithTimeout(c.Request().Context(), metricsWait)
	defer cancel()
	if s.opts.Stalls != nil {
		if _, n, err := s.opts.Stalls.StalledRuns(ctx, 0); s.answered("stalled runs", err) {
			e.gauge("rampart_stalled_runs", "Open runs Temporal reports cannot progress (GET /api/v1/stalled).", float64(n))
		}
	}
	if s.opts.Workers != nil {
		if w, err := s.opts.Workers.Workers(ctx); s.answered("workers", err) {
			e.family("rampart_workers_polling", "gauge", "Workers that polled the task queue for workflow tasks in the last two minutes.")
			e.sample("rampart_workers_polling", float64(w.Polling), "task_queue", w.TaskQueue)
		}
	}
	if s.opts.Approvals != nil {
		if n, err := s.opts.Approvals.CountApprovals(ctx, store.ApprovalPending); s.answered("pending approvals", err) {
			e.gauge("rampart_approvals_pending", "Approvals waiting for a decision.", float64(n))
		}
	}
	c.Response().Header().Set(echo.HeaderContentType, "text/plain; version=0.0.4; charset=utf-8")
	c.Response().WriteHeader(http.StatusOK)
	_, err := io.WriteString(c.Response(), e.String())
	return err
}

// answered says whether a metric's source answered, logging at debug when not.
func (s *Server) answered(what string, err error) bool {
	if err != nil {
		s.log.Debug("metrics: cannot read "+what, "error", err)
	}
	return err == nil
}

// label quotes a Prometheus label value.
func label(v string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(v) + `"`
}
