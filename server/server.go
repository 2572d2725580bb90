// Package server is Rampart's HTTP side: webhook ingress (through server/ingest),
// the API over the store and the runs, its access rules (API tokens), Temporal's
// remote codec protocol, health checks, and the embedded web UI. It talks to
// Temporal only through its client and never calls a vendor.
//
// It may import echo, the Temporal client and API types, store (to read), ingest,
// ui and the pure packages; never activities or integrations.
package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/rampart-soar/rampart/server/ingest"
	"github.com/rampart-soar/rampart/server/telemetry"
	"github.com/rampart-soar/rampart/store"
	"github.com/rampart-soar/rampart/ui"
)

// AlertReader is the part of the store the API reads.
type AlertReader interface {
	ListAlerts(ctx context.Context, f store.AlertFilter) ([]store.Alert, string, error)
	GetAlert(ctx context.Context, id string) (*store.AlertDetail, error)
}

// Check is a readiness probe of one dependency.
type Check struct {
	Name  string
	Check func(ctx context.Context) error
}

// Options configure the HTTP server.
type Options struct {
	Pipeline *ingest.Pipeline
	Alerts   AlertReader
	// Playbooks stores playbook versions.
	Playbooks PlaybookStore
	// Approvals is the approval inbox; Control delivers decisions and keeps.
	Approvals ApprovalStore
	Control   WorkflowControl
	// Stalls finds runs Temporal reports cannot progress; with none, alerts
	// are not marked and GET /api/v1/stalled answers 404.
	Stalls StallReader
	// Workers says who polls the task queue; with none, GET /api/v1/workers answers 404.
	Workers WorkerReader
	// Replayer runs shadow replays; Runs starts playbook runs on demand.
	Replayer Replayer
	Runs     PlaybookStarter
	// Tokens authenticate API callers (until ReplaceTokens); with none the API
	// is open. Webhooks authenticate per source instead, and health checks are open.
	Tokens *APITokens
	// Codec serves Temporal's remote codec protocol under /api/v1/codec; none
	// answers 404.
	Codec PayloadCodec
	// Ready lists the dependencies /readyz checks.
	Ready []Check
	// Metrics, when set, times each webhook answer and adds what it keeps —
	// the Temporal SDK's metrics of this process (its client's requests and,
	// in rampart dev, its worker's tasks) among them — to GET /api/v1/metrics.
	Metrics *telemetry.Metrics
	Logger  *slog.Logger
}

// Server is the HTTP server.
type Server struct {
	echo   *echo.Echo
	opts   Options
	log    *slog.Logger
	srv    *http.Server
	listen net.Listener
	// deliveries counts the webhook deliveries per source.
	deliveries *deliveries
	// tokens are the API tokens in force (Options.Tokens until ReplaceTokens).
	tokens   atomic.Pointer[APITokens]
	tokensMu sync.Mutex // one replacement at a time
}

// New builds the routes.
func New(opts Options) *Server {
	s := newServer(opts)
	var sources []ingest.SourceInfo
	if opts.Pipeline != nil {
		sources = opts.Pipeline.Sources()
	}
	s.deliveries = newDeliveries(sources, time.Now())
	s.tokens.Store(opts.Tokens)
	e := s.echo
	e.Use(s.authenticate)
	api := e.Group("/api/v1")
	api.POST(webhookRoute[len("/api/v1"):], s.webhook)
	api.POST(codecRoute[len("/api/v1"):], s.codec)
	api.GET("/alerts", s.listAlerts, wellFormedQuery)
	api.GET("/alerts/:id", s.getAlert)
	api.GET("/alerts/:id/state", s.alertState)
	api.POST("/alerts/:target", s.alertAction)
	api.GET("/stalled", s.listStalled, wellFormedQuery)
	api.GET("/workers", s.listWorkers)
	api.GET("/sources", s.listSources)
	api.GET("/metrics", s.metrics)
	api.GET("/approvals", s.listApprovals, wellFormedQuery)
	api.GET("/approvals/:id", s.getApproval)
	api.POST("/approvals/:target", s.decideApproval)
	api.POST("/playbooks\\:lint", s.lintPlaybook, wellFormedQuery)
	api.GET("/playbooks", s.listPlaybooks)
	api.POST("/playbooks", s.applyPlaybook, wellFormedQuery)
	api.GET("/playbooks/:name", s.getPlaybook)
	api.GET("/playbooks/:name/versions/:version", s.getPlaybookVersion)
	api.POST("/playbooks/:name/versions/:target", s.replayVersion)
	api.POST("/playbooks/:target", s.playbookAction)
	page := echo.WrapHandler(ui.Handler())
	e.GET("/", page)
	e.GET(ui.Prefix+"*", page)
	return s
}

// NewOps serves what an operator probes on a process that has no API, a
// worker: /healthz, /readyz over ready, and /metrics with the Temporal SDK's
// metrics (its task latencies and failures, pollers and slots, requests).
// They are open, as the API server's health checks are: they say nothing
// about alerts and take no input. Any other path is a JSON 404.
func NewOps(ready []Check, sdk *telemetry.Metrics, log *slog.Logger) *Server {
	s := newServer(Options{Ready: ready, Metrics: sdk, Logger: log})
	s.echo.GET("/metrics", s.opsMetrics)
	return s
}

// newServer is a server with its health checks and nothing else yet: errors
// answered in the one JSON shape, panics recovered, requests logged.
func newServer(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	s := &Server{echo: e, opts: opts, log: opts.Logger}
	e.HTTPErrorHandler = s.handleError
	e.Use(middleware.Recover(), s.accessLog)
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	return s
}

// wellFormedQuery refuses a query string that does not parse: the routes that
// read one would otherwise drop what they cannot read (a cursor, a filter) and
// answer as if it had not been given.
func wellFormedQuery(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if _, err := url.ParseQuery(c.Request().URL.RawQuery); err != nil {
			return apiError(http.StatusBadRequest, "invalid_query", "the query string does not parse: "+err.Error())
		}
		return next(c)
	}
}

// Handler is the server's http.Handler, for tests.
func (s *Server) Handler() http.Handler { return s.echo }

// Listen binds the address; Serve then serves on it. Split so a caller can print the
// bound address (port 0) before serving.
func (s *Server) Listen(addr string) (net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s.listen = ln
	s.srv = &http.Server{
		Handler:           s.echo,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	return ln.Addr(), nil
}

// Serve serves until Shutdown.
func (s *Server) Serve() error {
	if err := s.srv.Serve(s.listen); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops accepting and waits for in-flight requests.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.srv == nil {
		return nil
	}
	return s.srv.Shutdown(ctx)
}

// accessLog logs every request at debug, and every API request that changes
// something (applies or toggles a playbook, decides an approval, keeps a
// containment, starts a run or a replay) at info with who made it: the audit
// trail. Webhook deliveries log their own line.
func (s *Server) accessLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		// The error handler writes the answer after this returns; read its status
		// from the error.
		status := c.Response().Status
		var (
			he *echo.HTTPError
			ie *ingest.Error
		)
		switch {
		case errors.As(err, &he):
			status = he.Code
		case errors.As(err, &ie):
			status = ie.Status
		case err != nil:
			status = http.StatusInternalServerError
		}
		// Headers, bodies and query strings are never logged: they carry
		// signatures and tokens.
		method := c.Request().Method
		attrs := []any{"method", method, "path", c.Request().URL.Path, "status", status,
			"duration_ms", time.Since(start).Milliseconds()}
		if who, ok := identity(c); ok {
			attrs = append(attrs, "identity", who)
		}
		// The codec only reads, however often a history viewer asks it.
		if method != http.MethodGet && method != http.MethodHead && c.Path() != codecRoute && guarded(c) {
			s.log.Info("api change", attrs...)
			return err
		}
		s.log.Debug("http", attrs...)
		return err
	}
}

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 3*time.Second)
	defer cancel()
	checks := map[string]string{}
	ready := true
	for _, ch := range s.opts.Ready {
		if err := ch.Check(ctx); err != nil {
			checks[ch.Name] = "unavailable: " + err.Error()
			ready = false
		} else {
			checks[ch.Name] = "ok"
		}
	}
	status, code := "ready", http.StatusOK
	if !ready {
		status, code = "not_ready", http.StatusServiceUnavailable
	}
	return c.JSON(code, map[string]any{"status": status, "checks": checks})
}

func (s *Server) webhook(c echo.Context) error {
	req := c.Request()
	ctx, cancel := context.WithTimeout(req.Context(), 15*time.Second)
	defer cancel()
	started := time.Now()
	accepted, err := s.opts.Pipeline.Accept(ctx, ingest.Delivery{
		Source:        c.Param("source"),
		Header:        req.Header,
		Body:          req.Body,
		ContentLength: req.ContentLength,
	})
	s.countDelivery(c.Param("source"), accepted, err, time.Since(started))
	if err != nil {
		var ie *ingest.Error
		if errors.As(err, &ie) {
			switch {
			case ie.Status >= 500:
				s.log.Error("webhook not accepted", "source", c.Param("source"), "code", ie.Code)
			case ie.Status == http.StatusTooManyRequests:
				s.log.Warn("webhook not accepted", "source", c.Param("source"), "code", ie.Code, "retry_after", ie.RetryAfter)
			}
		}
		return err // handleError answers in the one error shape
	}
	s.log.Info("alert accepted", "source", c.Param("source"), "alert_id", accepted.AlertID,
		"workflow_id", accepted.WorkflowID, "duplicate", accepted.Duplicate)
	return c.JSON(http.StatusAccepted, accepted)
}
