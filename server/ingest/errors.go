package ingest

import (
	"fmt"
	"net/http"
	"time"
)

// Error is a refused delivery: an HTTP status, a stable code and a message, plus
// the failing fields for invalid payloads.
type Error struct {
	Status  int          `json:"-"`
	Code    string       `json:"code"`
	Message string       `json:"message"`
	Details []FieldError `json:"details,omitempty"`
	// RetryAfter, when set, is sent as the Retry-After header.
	RetryAfter time.Duration `json:"-"`
}

// FieldError names one failing field by its dotted path (event.AgentId,
// finding_info.attacks.0.technique.uid; empty for the document itself).
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (e *Error) Error() string {
	if len(e.Details) > 0 {
		return fmt.Sprintf("%d %s: %s (%d field errors)", e.Status, e.Code, e.Message, len(e.Details))
	}
	return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message)
}

func errUnauthorized(code, msg string) *Error {
	return &Error{Status: http.StatusUnauthorized, Code: code, Message: msg}
}

func errBadRequest(code, msg string, details ...FieldError) *Error {
	return &Error{Status: http.StatusBadRequest, Code: code, Message: msg, Details: details}
}
