package server

import (
	"errors"
	"math"
	"net/http"
	"strconv"

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
// Unknown errors become a 500 with a generic message; their text is logged, not
// sent, since it may name internals.
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
		s.log.Error("request failed", "method", c.Request().Method, "path", c.Path(), "error", err)
		body.Error = ingest.Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"}
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(body.Error.Status)
		return
	}
	_ = c.JSON(body.Error.Status, body)
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
