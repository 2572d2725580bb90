package activities

import (
	"context"
	"errors"
	"strconv"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/rampart-soar/rampart/integrations"
)

// Names of the metrics every call to a vendor reports, with the tags
// integration, operation and outcome ("ok", the vendor's HTTP status, "timeout",
// "cancelled" or "error" for a call that got no answer). The SDK's own activity
// metrics name only the activity (playbook.action), not which vendor failed.
const (
	MetricIntegrationCalls       = "rampart_integration_calls"
	MetricIntegrationCallLatency = "rampart_integration_call_latency"
)

// Names of the metrics every alert's outcome reports once, with the tag
// outcome (contained, responded, no_action, failed): how many, and how long
// after the webhook took the alert.
const (
	MetricAlertOutcomes      = "rampart_alert_outcomes"
	MetricAlertTimeToOutcome = "rampart_alert_time_to_outcome"
)

// reportOutcome counts an alert's outcome and, when the alert's receipt is
// known, how long after it the outcome came.
func reportOutcome(ctx context.Context, outcome string, received, at time.Time) {
	var took *time.Duration
	if !received.IsZero() {
		d := at.Sub(received)
		took = &d
	}
	report(ctx, MetricAlertOutcomes, MetricAlertTimeToOutcome, map[string]string{"outcome": outcome}, took)
}

// report counts one event through the calling activity's metrics handler and
// times it when took is given; outside an activity it reports nothing.
func report(ctx context.Context, counter, timer string, tags map[string]string, took *time.Duration) {
	if !activity.IsActivity(ctx) {
		return
	}
	h := activity.GetMetricsHandler(ctx).WithTags(tags)
	h.Counter(counter).Inc(1)
	if took != nil {
		h.Timer(timer).Record(*took)
	}
}

// MeterEDR reports every call to edr through the calling activity's metrics
// handler (the worker's), beside the SDK's metrics. Outside an activity it
// reports nothing.
func MeterEDR(edr integrations.EDR) integrations.EDR {
	if edr == nil {
		return nil
	}
	return meteredEDR{edr}
}

type meteredEDR struct{ integrations.EDR }

func (m meteredEDR) GetHost(ctx context.Context, id string) (h integrations.Host, err error) {
	defer reportCall(ctx, m.Name(), "get_host", time.Now(), &err)
	return m.EDR.GetHost(ctx, id)
}

func (m meteredEDR) ContainHost(ctx context.Context, id string) (r integrations.ActionReceipt, err error) {
	defer reportCall(ctx, m.Name(), "contain_host", time.Now(), &err)
	return m.EDR.ContainHost(ctx, id)
}

func (m meteredEDR) LiftContainment(ctx context.Context, id string) (r integrations.ActionReceipt, err error) {
	defer reportCall(ctx, m.Name(), "lift_containment", time.Now(), &err)
	return m.EDR.LiftContainment(ctx, id)
}

// reportCall counts a call and records how long it took.
func reportCall(ctx context.Context, integration, operation string, started time.Time, err *error) {
	took := time.Since(started)
	report(ctx, MetricIntegrationCalls, MetricIntegrationCallLatency, map[string]string{
		"integration": integration, "operation": operation, "outcome": callOutcome(ctx, *err),
	}, &took)
}

// callOutcome names how a vendor call ended, in few enough words to label a
// metric with.
func callOutcome(ctx context.Context, err error) string {
	var apiErr *integrations.APIError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &apiErr):
		return strconv.Itoa(apiErr.StatusCode)
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled) || ctx.Err() != nil:
		return "cancelled"
	}
	return "error"
}
