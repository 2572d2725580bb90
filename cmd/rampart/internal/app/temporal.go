package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	namespacepb "go.temporal.io/api/namespace/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/rampart-soar/rampart/activities"
	"github.com/rampart-soar/rampart/workflows"
)

// DataConverter is the one converter clients, workers and the webhook starter share.
func DataConverter() converter.DataConverter { return converter.GetDefaultDataConverter() }

// DialTemporal connects to Temporal, retrying until ctx ends: in docker compose the
// cluster may still be starting when Rampart does.
func DialTemporal(ctx context.Context, address, namespace string, log *slog.Logger) (client.Client, error) {
	opts := client.Options{
		HostPort:      address,
		Namespace:     namespace,
		Logger:        sdklog.NewStructuredLogger(log.With("component", "temporal-sdk")),
		DataConverter: DataConverter(),
	}
	delay := 200 * time.Millisecond
	for {
		c, err := client.DialContext(ctx, opts)
		if err == nil {
			return c, nil
		}
		log.Warn("temporal not reachable yet", "address", address, "error", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("dial temporal at %s: %w", address, err)
		case <-time.After(delay):
		}
		delay = min(delay*2, 5*time.Second)
	}
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
// namespace lacks. Safe to run on every boot and from many processes.
func EnsureSearchAttributes(ctx context.Context, c client.Client, namespace string) error {
	op := c.OperatorService()
	var have *operatorservice.ListSearchAttributesResponse
	for delay := 100 * time.Millisecond; ; delay = min(delay*2, 2*time.Second) {
		var err error
		have, err = op.ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
		var notFound *serviceerror.NamespaceNotFound
		if err == nil {
			break
		}
		if !errors.As(err, &notFound) {
			return fmt.Errorf("list search attributes: %w", err)
		}
		// A namespace registered a moment ago reaches every service's cache
		// within seconds.
		select {
		case <-ctx.Done():
			return fmt.Errorf("list search attributes: %w", err)
		case <-time.After(delay):
		}
	}
	missing := map[string]enumspb.IndexedValueType{}
	for _, key := range workflows.SearchAttributeKeys() {
		if _, ok := have.GetCustomAttributes()[key.GetName()]; !ok {
			missing[key.GetName()] = key.GetValueType()
		}
	}
	if len(missing) == 0 {
		return nil
	}
	_, err := op.AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{Namespace: namespace, SearchAttributes: missing})
	var exists *serviceerror.AlreadyExists
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("add search attributes: %w", err)
	}
	return nil
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
func StartWorker(c client.Client, taskQueue string, acts *activities.Activities, opts worker.Options) (worker.Worker, error) {
	w := worker.New(c, taskQueue, opts)
	workflows.Register(w)
	acts.Register(w)
	if err := w.Start(); err != nil {
		return nil, fmt.Errorf("start worker: %w", err)
	}
	return w, nil
}
