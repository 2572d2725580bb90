package server

import (
	"context"
	"io"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rampart-soar/rampart/server/telemetry"
	"github.com/rampart-soar/rampart/store"
)

// metricsWait bounds what one scrape waits for Temporal and the database: a
// gauge whose source does not answer in time is left out, so that an alert on
// it does not fire on a guess.
const metricsWait = 3 * time.Second

// metrics answers in Prometheus's text format: the webhook deliveries per
// source and outcome, and, when their sources answer, the runs Temporal reports
// stalled, the workers polling the task queue and the approvals waiting; then
// what Options.Metrics keeps: the webhook's answer times, the Temporal SDK's
// metrics of this process and, in rampart dev, its calls to vendors.
func (s *Server) metrics(c echo.Context) error {
	var e telemetry.Exposition
	list := s.deliveries.list()
	e.Family("rampart_webhook_deliveries_total", "counter",
		"Webhook deliveries this server answered, by source and outcome (accepted, duplicate, or the refusal's error code).")
	for _, src := range list.Sources {
		counts := map[string]int{"accepted": src.Accepted, "duplicate": src.Duplicates}
		for code, n := range src.Refused {
			counts[code] = n
		}
		for _, outcome := range slices.Sorted(maps.Keys(counts)) {
			e.Sample("rampart_webhook_deliveries_total", float64(counts[outcome]), "source", src.Name, "outcome", outcome)
		}
	}
	e.Family("rampart_webhook_unknown_source_total", "counter", "Webhook deliveries to a source name not configured.")
	e.Sample("rampart_webhook_unknown_source_total", float64(list.UnknownSource))
	rotating := slices.DeleteFunc(slices.Clone(list.Sources), func(src SourceDelivery) bool { return !src.PreviousSecret })
	if len(rotating) > 0 { // only while a secret is being rotated
		e.Family("rampart_webhook_previous_secret_total", "counter",
			"Accepted webhook deliveries signed with the source's previous secret, by source: while it grows, a tool has not moved to the new secret.")
		for _, src := range rotating {
			e.Sample("rampart_webhook_previous_secret_total", float64(src.PreviousSecretUsed), "source", src.Name)
		}
	}
	e.Family("rampart_webhook_last_accepted_timestamp_seconds", "gauge", "When a delivery of the source was last accepted.")
	for _, src := range list.Sources {
		if src.LastAcceptedAt != nil {
			e.Sample("rampart_webhook_last_accepted_timestamp_seconds", float64(src.LastAcceptedAt.UnixMilli())/1000, "source", src.Name)
		}
	}

	ctx, cancel := context.WithTimeout(c.Request().Context(), metricsWait)
	defer cancel()
	if s.opts.Stalls != nil {
		if _, n, err := s.opts.Stalls.StalledRuns(ctx, 0); s.answered("stalled runs", err) {
			e.Gauge("rampart_stalled_runs", "Open runs Temporal reports cannot progress (GET /api/v1/stalled).", float64(n))
		}
	}
	if s.opts.Workers != nil {
		if w, err := s.opts.Workers.Workers(ctx); s.answered("workers", err) {
			e.Family("rampart_workers_polling", "gauge", "Workers that polled the task queue for workflow tasks in the last two minutes.")
			e.Sample("rampart_workers_polling", float64(w.Polling), "task_queue", w.TaskQueue)
		}
	}
	if s.opts.Approvals != nil {
		if n, err := s.opts.Approvals.CountApprovals(ctx, store.ApprovalPending); s.answered("pending approvals", err) {
			e.Gauge("rampart_approvals_pending", "Approvals waiting for a decision.", float64(n))
		}
		if at, ok, err := s.opts.Approvals.OldestApproval(ctx, store.ApprovalPending); s.answered("oldest pending approval", err) {
			age := 0.0
			if ok {
				age = max(time.Since(at).Seconds(), 0)
			}
			e.Gauge("rampart_approvals_oldest_pending_age_seconds",
				"How long the oldest approval waiting for a decision has waited; 0 when none waits.", age)
		}
	}
	if s.opts.Metrics != nil {
		s.opts.Metrics.Write(&e)
	}
	return writeExposition(c, &e)
}

// opsMetrics answers the SDK's metrics alone: the worker's /metrics.
func (s *Server) opsMetrics(c echo.Context) error {
	var e telemetry.Exposition
	if s.opts.Metrics != nil {
		s.opts.Metrics.Write(&e)
	}
	return writeExposition(c, &e)
}

func writeExposition(c echo.Context, e *telemetry.Exposition) error {
	c.Response().Header().Set(echo.HeaderContentType, telemetry.ContentType)
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
