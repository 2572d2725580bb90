package activities

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/rampart-soar/rampart/integrations"
	"github.com/rampart-soar/rampart/workflows"
)

// TestScrubbingSecrets: values are replaced wherever they sit in a decoded JSON
// value, a longer secret before one it contains, and an error keeps its type and
// retry behaviour without a cause that could still hold the value.
func TestScrubbingSecrets(t *testing.T) {
	used := hideSecrets([]usedSecret{{"short", "abc"}, {"long", "abcdef"}})
	got := used.scrub(map[string]any{"abcdef": []any{"abcdef abc", 3, map[string]any{"k": "xabcx"}}, "n": nil})
	want := map[string]any{"[secret long]": []any{"[secret long] [secret short]", 3, map[string]any{"k": "x[secret short]x"}}, "n": nil}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("scrub = %#v", got)
	}
	plain := errors.New("GET /devices?ids=abcdef: connection refused")
	if err := used.scrubError(plain); err.Error() != "GET /devices?ids=[secret long]: connection refused" {
		t.Fatalf("plain error = %v", err)
	}
	throttled := temporal.NewApplicationErrorWithOptions("limit for abc", workflows.ErrTypeHTTP429, temporal.ApplicationErrorOptions{
		NextRetryDelay: 7 * time.Second, Cause: errors.New("limit for abc")})
	var appErr *temporal.ApplicationError
	if err := used.scrubError(throttled); !errors.As(err, &appErr) || appErr.Message() != "limit for [secret short]" ||
		appErr.Type() != workflows.ErrTypeHTTP429 || appErr.NextRetryDelay() != 7*time.Second || appErr.NonRetryable() || appErr.Unwrap() != nil {
		t.Fatalf("application error = %v", err)
	}
	if clean := errors.New("nothing secret"); used.scrubError(clean) != clean {
		t.Fatal("an error without a secret should pass as it is")
	}
}

// TestClassifyNotFound: a vendor that answers without the device it was asked
// about has answered; only a failure to get an answer is worth retrying.
func TestClassifyNotFound(t *testing.T) {
	var appErr *temporal.ApplicationError
	err := classify(fmt.Errorf("crowdstrike: device x: %w", integrations.ErrNotFound))
	if !errors.As(err, &appErr) || !appErr.NonRetryable() || appErr.Type() != workflows.ErrTypeHTTP4xx {
		t.Fatalf("not found = %v", err)
	}
	network := errors.New("dial tcp 127.0.0.1:1: connection refused")
	if classify(network) != network {
		t.Fatal("a network error should be left to the retry policy")
	}
}
