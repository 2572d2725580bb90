package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	namespacepb "go.temporal.io/api/namespace/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/rampart-soar/rampart/activities"
	"github.com/rampart-soar/rampart/cmd/rampart/internal/codec"
	"github.com/rampart-soar/rampart/cmd/rampart/internal/reconcile"
	"github.com/rampart-soar/rampart/server/telemetry"
	"github.com/rampart-soar/rampart/store"
	"github.com/rampart-soar/rampart/workflows"
)

// DialTemporal connects to Temporal, retrying until ctx ends: in docker compose the
// cluster may still be starting when Rampart does. Payloads and failure messages
// are encrypted with keys; the client's workers and the webhook starter share its
// converters. The SDK reports its metrics, the client's and its workers', to
// metrics when given.
func DialTemporal(ctx context.Context, address, namespace string, keys *codec.Keyring, metrics *telemetry.Metrics, log *slog.Logger) (client.Client, error) {
	if keys == nil {
		return nil, errors.New("dial temporal: no payload keys")
	}
	opts := client.Options{
		HostPort:         address,
		Namespace:        namespace,
		Logger:           sdklog.NewStructuredLogger(log.With("component", "temporal-sdk")),
		DataConverter:    keys.DataConverter(),
		FailureConverter: keys.FailureConverter(),
	}
	if metrics != nil {
		opts.MetricsHandler = metrics.Handler()
	}
	var c client.Client
	err := retryWhile(ctx, func(err error) bool {
		log.Warn("temporal not reachable yet", "address", address, "error", err)
		return true
	}, func() (err error) {
		c, err = client.DialContext(ctx, opts)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dial temporal at %s: %w", address, err)
	}
	return c, nil
}

// EnsureNamespace registers the namespace if it does not exist and sets its
// retention, on every boot: retention is also how long a closed alert's workflow id
// keeps its history.
func EnsureNamespace(ctx context.Context, c client.Client, namespace string, retention time.Duration) error {
	svc := c.WorkflowService()
	desc, err := svc.DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: namespace})
	var notFound *serviceerror.NamespaceNotFound
	switch {
	case errors.As(err, &notFound):
		_, err = svc.RegisterNamespace(ctx, &workflowservice.RegisterNamespaceRequest{
			Namespace:                        namespace,
			WorkflowExecutionRetentionPeriod: durationpb.New(retention),
		})
		var exists *serviceerror.NamespaceAlreadyExists
		if err != nil && !errors.As(err, &exists) {
			return fmt.Errorf("register namespace %s: %w", namespace, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("describe namespace %s: %w", namespace, err)
	}
	if desc.GetConfig().GetWorkflowExecutionRetentionTtl().AsDuration() == retention {
		return nil
	}
	_, err = svc.UpdateNamespace(ctx, &workflowservice.UpdateNamespaceRequest{
		Namespace: namespace,
		Config:    &namespacepb.NamespaceConfig{WorkflowExecutionRetentionTtl: durationpb.New(retention)},
	})
	if err != nil {
		return fmt.Errorf("set retention of %s: %w", namespace, err)
	}
	return nil
}

// EnsureSearchAttributes registers the workflows' search attributes that the
// namespace lacks, and waits until the server accepts them. Safe to run on every
// boot and from many processes.
func EnsureSearchAttributes(ctx context.Context, c client.Client, namespace string) error {
	op := c.OperatorService()
	var have *operatorservice.ListSearchAttributesResponse
	// A namespace registered a moment ago reaches every service's cache within
	// seconds.
	err := retryWhile(ctx, isError[*serviceerror.NamespaceNotFound], func() (err error) {
		have, err = op.ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
		return err
	})
	if err != nil {
		return fmt.Errorf("list search attributes: %w", err)
	}
	missing := map[string]enumspb.IndexedValueType{}
	for name, typ := range searchAttributeTypes() {
		if _, ok := have.GetCustomAttributes()[name]; !ok {
			missing[name] = typ
		}
	}
	if len(missing) == 0 {
		return nil
	}
	_, err = op.AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{Namespace: namespace, SearchAttributes: missing})
	if err != nil && !isError[*serviceerror.AlreadyExists](err) {
		return fmt.Errorf("add search attributes: %w", err)
	}
	// The server checks search attributes against caches that refresh every few
	// seconds: a start carrying one just added is refused until then, and so is a
	// visibility query naming it.
	query := make([]string, 0, len(missing))
	for _, name := range slices.Sorted(maps.Keys(missing)) {
		query = append(query, name+" IS NOT NULL")
	}
	err = retryWhile(ctx, isError[*serviceerror.InvalidArgument], func() error {
		_, err := c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: namespace, Query: strings.Join(query, " AND ")})
		return err
	})
	if err != nil {
		return fmt.Errorf("search attributes added but not accepted yet: %w", err)
	}
	return nil
}

// searchAttributeTypes is the workflows' search attributes by name.
func searchAttributeTypes() map[string]enumspb.IndexedValueType {
	out := map[string]enumspb.IndexedValueType{}
	for _, key := range workflows.SearchAttributeKeys() {
		out[key.GetName()] = key.GetValueType()
	}
	return out
}

// retryWhile calls try, pausing longer each time, for as long as it fails with an
// error transient accepts and ctx lasts. It returns try's last error.
func retryWhile(ctx context.Context, transient func(error) bool, try func() error) error {
	for delay := 100 * time.Millisecond; ; delay = min(delay*2, 2*time.Second) {
		err := try()
		if err == nil || !transient(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
	}
}

// isError reports whether err is, or wraps, an error of type T.
func isError[T error](err error) bool {
	var target T
	return errors.As(err, &target)
}

// PrepareTemporal sets retention and search attributes.
func PrepareTemporal(ctx context.Context, c client.Client, cfg *Config) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := EnsureNamespace(ctx, c, cfg.Namespace, cfg.Retention); err != nil {
		return err
	}
	return EnsureSearchAttributes(ctx, c, cfg.Namespace)
}

// StartWorker registers the workflows and activities on the task queue and starts
// polling. Production keeps the SDK's default panic policy (block the workflow
// task, so a fixed worker can resume it); tests pass worker.FailWorkflow.
func StartWorker(c client.Client, taskQueue string, acts *activities.Activities, opts worker.Options) (*Worker, error) {
	fatal := make(chan error, 1)
	also := opts.OnFatalError
	opts.OnFatalError = func(err error) {
		if also != nil {
			also(err)
		}
		select {
		case fatal <- fmt.Errorf("the worker stopped polling task queue %s: %w", taskQueue, err):
		default:
		}
	}
	w := worker.New(c, taskQueue, opts)
	workflows.Register(w)
	acts.Register(w)
	if err := w.Start(); err != nil {
		return nil, fmt.Errorf("start worker: %w", err)
	}
	return &Worker{Worker: w, Fatal: fatal, stopped: make(chan struct{})}, nil
}

// Worker is a started worker. Fatal receives the error Temporal stopped it
// with for good (its namespace gone, say): it polls no more, so a process that
// kept running would look alive and take no work.
type Worker struct {
	worker.Worker
	Fatal   <-chan error
	stopped chan struct{}
	once    sync.Once
}

// Stop stops the worker (waiting for its tasks in hand) once, however often called.
func (w *Worker) Stop() {
	w.once.Do(func() {
		w.Worker.Stop()
		if w.stopped != nil {
			close(w.stopped)
		}
	})
}

// Failed waits for the worker's fatal error; it answers nil once the worker
// was stopped without one.
func (w *Worker) Failed() error {
	select {
	case err := <-w.Fatal:
		return err
	case <-w.stopped:
		return nil
	}
}

// StartReconciler sweeps, in the background until stop returns, for runs that
// ended in Temporal without recording their end (see package reconcile). Every
// worker process runs one: sweeps are idempotent, and the store records each end
// once however many find it.
func StartReconciler(c client.Client, st *store.Store, cfg *Config, log *slog.Logger) (stop func()) {
	r := &reconcile.Reconciler{
		Temporal: c, Store: st, Failures: cfg.Payloads.FailureConverter(),
		Every: cfg.ReconcileEvery, Lookback: cfg.Retention, Log: log,
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}
