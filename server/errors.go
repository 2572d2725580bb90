package server

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rampart-soar/rampart/server/ingest"
)

// errorBody is the one error shape every endpoint answers with:
// {"error": {"code": "...", "message": "...", "details": [...]}}.
type errorBody struct {
	Error ingest.Error `json:"error"`
}

func apiError(status int, code, msg string) error {
	return &ingest.Error{Status: status, Code: code, Message: msg}
}

// handleError renders any error a handler or echo returns in the one error shape.
// Unknown errors become a 503 naming the dependency when one is down (the
// database, Temporal), else a 500 with a generic message; their text is logged,
// not sent, since it may name internals.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	var (
		ie *ingest.Error
		he *echo.HTTPError
	)
	body := errorBody{}
	switch {
	case errors.As(err, &ie):
		body.Error = *ie
		if ie.RetryAfter > 0 {
			c.Response().Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(ie.RetryAfter.Seconds()))))
		}
	case errors.As(err, &he):
		body.Error = ingest.Error{Status: he.Code, Code: codeFor(he.Code), Message: http.StatusText(he.Code)}
		if msg, ok := he.Message.(string); ok && msg != "" {
			body.Error.Message = msg
		}
	default:
		if down := s.unavailable(c.Request().Context()); down != "" {
			// Not Rampart's fault but a dependency's outage: say so, and when to try again.
			s.log.Warn("request failed: a dependency is unavailable", "method", c.Request().Method, "path", c.Path(),
				"unavailable", down, "error", err)
			body.Error = ingest.Error{Status: http.StatusServiceUnavailable, Code: "unavailable",
				Message: down + " is unavailable: try again shortly (GET /readyz says more)"}
			c.Response().Header().Set("Retry-After", strconv.Itoa(int(unavailableRetry.Seconds())))
			break
		}
		s.log.Error("request failed", "method", c.Request().Method, "path", c.Path(), "error", err)
		body.Error = ingest.Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"}
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(body.Error.Status)
		return
	}
	_ = c.JSON(body.Error.Status, body)
}

// unavailableRetry is how long a caller is asked to wait when a dependency is down.
const unavailableRetry = 5 * time.Second

// unavailable names the first dependency /readyz checks that does not answer now,
// or "" when all do.
func (s *Server) unavailable(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	for _, ch := range s.opts.Ready {
		if ch.Check(ctx) != nil {
			return ch.Name
		}
	}
	return ""
}

func codeFor(status int) string {
	switch status {
	case http.StatusNotFound:
		return "not_found"
	case http.StatusMethodNotAllowed:
		return "method_not_allowed"
	case http.StatusRequestEntityTooLarge:
		return "body_too_large"
	case http.StatusUnsupportedMediaType:
		return "unsupported_media_type"
	case http.StatusServiceUnavailable:
		return "unavailable"
	default:
		if status >= 500 {
			return "internal"
		}
		return "bad_request"
	}
}
