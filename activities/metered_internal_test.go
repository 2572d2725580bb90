package activities

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/rampart-soar/rampart/integrations"
)

func TestCallOutcome(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, c := range []struct {
		ctx  context.Context
		err  error
		want string
	}{
		{context.Background(), nil, "ok"},
		{context.Background(), fmt.Errorf("contain: %w", &integrations.APIError{StatusCode: 429}), "429"},
		{context.Background(), fmt.Errorf("poll: %w", context.DeadlineExceeded), "timeout"},
		{context.Background(), context.Canceled, "cancelled"},
		{cancelled, errors.New("request aborted"), "cancelled"},
		{context.Background(), &net.OpError{Op: "dial", Err: errors.New("connection refused")}, "error"},
	} {
		if got := callOutcome(c.ctx, c.err); got != c.want {
			t.Errorf("callOutcome(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}
