package workflows_test

import (
	"errors"
	"fmt"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/rampart-soar/rampart/workflows"
)

func TestFailureMessages(t *testing.T) {
	inner := temporal.NewApplicationError("vendor said no", "HTTPError")
	outer := temporal.NewApplicationErrorWithCause("contain failed", "StepFailed", inner)
	if got := workflows.FailureMessages(outer); got != "contain failed: vendor said no" {
		t.Errorf("application errors: %q", got)
	}
	if got := workflows.FailureMessages(fmt.Errorf("wrapped: %w", errors.New("plain"))); got != "wrapped: plain" {
		t.Errorf("a plain error: %q", got)
	}
}

func TestClip(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly ten", 11, "exactly ten"},
		{"éèêëēėęe and more", 9, "éèêëēėęe…"},
	} {
		if got := workflows.Clip(tc.in, tc.n); got != tc.want || len([]rune(got)) > tc.n {
			t.Errorf("Clip(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}
