// Package activities implements the activities workflows/ names: the one bridge from
// workflow code to the store and the integrations. Activities are idempotent: store
// writes are upserts on natural keys, and side-effecting calls are keyed so a retry
// or replay finds the earlier call instead of acting twice.
//
// It may import workflows (for names and payload types), store, integrations and the
// pure packages; never server.
package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/rampart-soar/rampart/integrations"
	"github.com/rampart-soar/rampart/policy"
	"github.com/rampart-soar/rampart/store"
	"github.com/rampart-soar/rampart/triage"
	"github.com/rampart-soar/rampart/workflows"
)

// Decider decides whether to contain. policy.ContainRule is one; playbooks will be
// another.
type Decider interface {
	Evaluate(env policy.Env) (policy.Verdict, error)
}

// Activities holds the dependencies every activity needs.
type Activities struct {
	Store   *store.Store
	EDR     integrations.EDR
	Decider Decider
	Attack  *triage.Attack
	// PollInterval is how often containment is re-checked (default 1 s).
	PollInterval time.Duration
	// Secrets resolves secrets.<name> in playbook actions; without it none is configured.
	Secrets Secrets
	Logger  *slog.Logger

	unimplementedWarned sync.Map // operation → true, once warned about
}

// Registry is the part of a Temporal worker activities register with.
type Registry interface {
	RegisterActivityWithOptions(a any, options activity.RegisterOptions)
}

// Register registers every activity under the name workflows/ calls it by.
func (a *Activities) Register(r Registry) {
	for name, fn := range map[string]any{
		workflows.ActivityDetect:           a.Detect,
		workflows.ActivityLookupAsset:      a.LookupAsset,
		workflows.ActivityMatchIOCs:        a.MatchIOCs,
		workflows.ActivityCountPriorAlerts: a.CountPriorAlerts,
		workflows.ActivityDecide:           a.Decide,
		workflows.ActivityIsolateHost:      a.IsolateHost,
		workflows.ActivityRecordDuplicates: a.RecordDuplicates,
		workflows.ActivityFinish:           a.Finish,
		workflows.ActivitySelectPlaybooks:  a.SelectPlaybooks,
		workflows.ActivityDecideResponse:   a.DecideResponse,
		workflows.ActivityPlaybookAction:   a.PlaybookAction,
		workflows.ActivityPlaybookRecord:   a.PlaybookRecord,
	} {
		r.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name})
	}
}

func (a *Activities) logger() *slog.Logger {
	if a.Logger != nil {
		return a.Logger
	}
	return slog.Default()
}

// stepSeq orders the stages in the store.
var stepSeq = map[string]int{
	workflows.StageDetect:  1,
	workflows.StageEnrich:  2,
	workflows.StageDecide:  3,
	workflows.StageContain: 4,
}

// saveStep records one stage of a run; st may be a transaction.
func saveStep(ctx context.Context, st *store.Store, ref workflows.AlertRef, name, status string, started time.Time, finished *time.Time, input, output any, stepErr string) error {
	return st.SaveStep(ctx, &store.Step{
		RunID:      ref.RunID,
		Name:       name,
		Seq:        stepSeq[name],
		Status:     status,
		StartedAt:  started,
		FinishedAt: finished,
		InputJSON:  jsonText(input),
		OutputJSON: jsonText(output),
		Error:      stepErr,
	})
}

// jsonText renders v for a text column; nil renders as "".
func jsonText(v any) string {
	if v == nil {
		return ""
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf(`{"error":%q}`, err.Error())
	}
	return string(b)
}

// storeFailure marks an error of the store's as such. It stays retryable; a run
// whose activity still meets it after its retries waits for the store and runs
// the activity again (the action's idempotency key keeps that safe).
func storeFailure(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "store: ") {
		msg = "store: " + msg
	}
	return temporal.NewApplicationErrorWithOptions(msg, workflows.ErrTypeStore, temporal.ApplicationErrorOptions{Cause: err})
}

// classify turns an integration error into the retry behaviour its class calls for:
// 4xx other than 408/429 is final, 429 waits for the vendor's reset hint, 5xx and
// network errors retry with backoff.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var apiErr *integrations.APIError
	if !errors.As(err, &apiErr) {
		if errors.Is(err, integrations.ErrNotFound) { // the vendor answered, and does not know it: asking again will not help
			return temporal.NewApplicationErrorWithOptions(err.Error(), workflows.ErrTypeHTTP4xx, temporal.ApplicationErrorOptions{NonRetryable: true})
		}
		return err // network, timeout, decoding: retry with backoff
	}
	switch {
	case apiErr.Throttled():
		opts := temporal.ApplicationErrorOptions{Cause: err}
		if apiErr.RetryAfter > 0 {
			opts.NextRetryDelay = apiErr.RetryAfter
		}
		return temporal.NewApplicationErrorWithOptions(err.Error(), workflows.ErrTypeHTTP429, opts)
	case apiErr.Retryable():
		return temporal.NewApplicationErrorWithOptions(err.Error(), workflows.ErrTypeHTTP5xx, temporal.ApplicationErrorOptions{Cause: err})
	default:
		return temporal.NewApplicationErrorWithOptions(err.Error(), workflows.ErrTypeHTTP4xx, temporal.ApplicationErrorOptions{Cause: err, NonRetryable: true})
	}
}
