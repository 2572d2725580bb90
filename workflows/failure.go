package workflows

import (
	"errors"
	"strings"

	"go.temporal.io/sdk/temporal"
)

// FailureMessages is a Temporal failure as a person reads it: each application
// error's own words, outermost first, without Temporal's "(type: …, retryable:
// …)". The reconciler and the API use it on failures read from a history.
func FailureMessages(err error) string {
	var words []string
	for ; err != nil; err = errors.Unwrap(err) {
		var app *temporal.ApplicationError
		if !errors.As(err, &app) {
			words = append(words, err.Error())
			break
		}
		if app.Message() != "" {
			words = append(words, app.Message())
		}
		err = app
	}
	return strings.Join(words, ": ")
}

// Clip shortens free text (a termination reason, a failure's message) to at
// most n characters, marking the cut.
func Clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
