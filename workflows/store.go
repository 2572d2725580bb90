package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// Store calls are local activities. A first try retries in the worker for up to a
// minute (storeOptions). When the store stays unreachable longer — a database
// restarted, failed over, or down for the night — the run waits for it on durable
// timers and tries once after each wait (storeRetryOptions), for up to
// storeOutageLimit. An accepted alert is then recorded and decided when the store
// is back, instead of failing with its record lost; and each wait adds a handful of
// events to the history, where retrying the local activity for hours would add
// some with every attempt.
var (
	storeOptions = workflow.LocalActivityOptions{
		StartToCloseTimeout:    15 * time.Second,
		ScheduleToCloseTimeout: time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    200 * time.Millisecond,
			BackoffCoefficient: 2,
			MaximumInterval:    30 * time.Second,
		},
	}
	storeRetryOptions = workflow.LocalActivityOptions{
		StartToCloseTimeout: 15 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 1},
	}
)

// How long a run waits between tries while the store is down, and in all.
const (
	storeFirstWait   = 30 * time.Second
	storeMaxWait     = 5 * time.Minute
	storeOutageLimit = 72 * time.Hour
)

// versionStoreOutage marks runs that wait out a store outage (and try a failed
// enrichment lookup again). It is asked only when a store call has failed, so runs
// that never met an outage record no marker.
const (
	versionStoreOutage = "store-outage-wait"
	storeOutageWait    = 1
)

// storeCall runs a store activity, waiting out an outage.
func storeCall(ctx workflow.Context, activity string, in, out any) error {
	err := workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, storeOptions), activity, in).Get(ctx, out)
	return awaitStoreLocal(ctx, err, activity, in, out)
}

// awaitStoreLocal carries on a store call whose first try ended with err, waiting
// out an outage (awaitStore).
func awaitStoreLocal(ctx workflow.Context, err error, activity string, in, out any) error {
	rctx := workflow.WithLocalActivityOptions(ctx, storeRetryOptions)
	return awaitStore(ctx, err, activity, storeMayRecover, func() error {
		return workflow.ExecuteLocalActivity(rctx, activity, in).Get(ctx, out)
	})
}

// actionCall runs an action activity. When the activity could not write to the
// store past its retries (its claim of the action, or its record), it waits out
// the outage and runs the activity again; the action's idempotency key makes that
// safe: the vendor is asked at most once.
func actionCall(ctx workflow.Context, options workflow.ActivityOptions, activity string, in, out any) error {
	return actionCallAgain(ctx, options, activity, in, in, out)
}

// actionCallAgain is actionCall running the activity with first the first time and
// with again after a wait: a first run's input may claim what only a first run
// can (ContainInput.Claimed).
func actionCallAgain(ctx workflow.Context, options workflow.ActivityOptions, activity string, first, again, out any) error {
	actx := workflow.WithActivityOptions(ctx, options)
	run := func(in any) func() error {
		return func() error { return workflow.ExecuteActivity(actx, activity, in).Get(ctx, out) }
	}
	return awaitStore(ctx, run(first)(), activity, isStoreFailure, run(again))
}

// storeWaitKey keys, in a run's context, the text its state query shows while the
// run waits for the store.
type storeWaitKey struct{}

func withStoreWait(ctx workflow.Context, note *string) workflow.Context {
	return workflow.WithValue(ctx, storeWaitKey{}, note)
}

// awaitStore carries on a call whose first try ended with err: while mayRecover
// says a later try may not meet the failure, it waits (30 s, doubling up to 5 min)
// and tries again, until the call succeeds or storeOutageLimit has passed. It
// returns the last try's error. Meanwhile the run's state says what it waits for.
func awaitStore(ctx workflow.Context, err error, activity string, mayRecover func(error) bool, again func() error) error {
	if !mayRecover(err) || workflow.GetVersion(ctx, versionStoreOutage, workflow.DefaultVersion, storeOutageWait) < storeOutageWait {
		return err
	}
	log := workflow.GetLogger(ctx)
	since := workflow.Now(ctx)
	giveUp := since.Add(storeOutageLimit)
	note, _ := ctx.Value(storeWaitKey{}).(*string)
	if note == nil {
		note = new(string)
	}
	var said string // this wait's note; another branch's wait may have replaced it
	defer func() {
		if *note == said {
			*note = ""
		}
	}()
	for wait := storeFirstWait; mayRecover(err); wait = min(2*wait, storeMaxWait) {
		if !workflow.Now(ctx).Add(wait).Before(giveUp) {
			log.Error("the store stayed unavailable: giving up", "activity", activity, "after", storeOutageLimit, "error", err)
			return err
		}
		log.Warn("the store is unavailable: waiting to try again", "activity", activity, "wait", wait, "error", err)
		said = fmt.Sprintf("%s: waiting for the store since %s (%s); next try at %s", activity,
			since.UTC().Format(time.RFC3339), storeTrouble(err), workflow.Now(ctx).Add(wait).UTC().Format(time.RFC3339))
		*note = said
		if serr := workflow.Sleep(ctx, wait); serr != nil {
			return serr // the run was cancelled
		}
		err = again()
	}
	return err
}

// storeTrouble is what a failed store call met, as a person reads it.
func storeTrouble(err error) string {
	if _, timedOut := rootError(err).(*temporal.TimeoutError); timedOut {
		return "no answer in time"
	}
	return rootMessage(err)
}

// isStoreFailure says an activity failed because it could not use the store.
func isStoreFailure(err error) bool {
	var appErr *temporal.ApplicationError
	return errors.As(err, &appErr) && appErr.Type() == ErrTypeStore
}

// storeMayRecover says a store call's failure may pass: not a final answer, a
// panic (the same code would panic again) or the run's cancellation.
func storeMayRecover(err error) bool {
	var (
		appErr   *temporal.ApplicationError
		panicErr *temporal.PanicError
		canceled *temporal.CanceledError
	)
	switch {
	case err == nil, errors.As(err, &panicErr), errors.As(err, &canceled):
		return false
	case errors.As(err, &appErr):
		return !appErr.NonRetryable()
	}
	return true
}
