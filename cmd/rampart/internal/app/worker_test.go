package app

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"google.golang.org/grpc"

	"github.com/rampart-soar/rampart/activities"
	"github.com/rampart-soar/rampart/cmd/rampart/internal/embedded"
)

// refusal makes Temporal answer a worker's polls as if its namespace had gone,
// from the moment refuse is called (polls in flight included).
type refusal struct {
	mu      sync.Mutex
	on      bool
	cancels []context.CancelFunc
}

func (r *refusal) intercept(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if !strings.HasSuffix(method, "/PollWorkflowTaskQueue") && !strings.HasSuffix(method, "/PollActivityTaskQueue") {
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	gone := serviceerror.ToStatus(serviceerror.NewNamespaceNotFound("default")).Err()
	r.mu.Lock()
	if r.on {
		r.mu.Unlock()
		return gone
	}
	ctx, cancel := context.WithCancel(ctx)
	r.cancels = append(r.cancels, cancel)
	r.mu.Unlock()
	err := invoker(ctx, method, req, reply, cc, opts...)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.on {
		return gone
	}
	return err
}

func (r *refusal) refuse() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.on = true
	for _, cancel := range r.cancels {
		cancel()
	}
}

// The SDK gives up on a worker whose polls Temporal refuses for good after two
// minutes of refusals (proxies sometimes answer oddly for a while), so this test
// takes that long.
func TestAWorkerTemporalStopsForGoodSaysSo(t *testing.T) {
	var r refusal
	w := startTestWorker(t, "doomed", grpc.WithChainUnaryInterceptor(r.intercept))
	stopped := make(chan error, 1)
	go func() { stopped <- w.Failed() }()
	select {
	case err := <-stopped:
		t.Fatalf("the worker failed before Temporal refused it: %v", err)
	case <-time.After(time.Second):
	}

	r.refuse()
	select {
	case err := <-stopped:
		var gone *serviceerror.NamespaceNotFound
		if !errors.As(err, &gone) || !strings.Contains(err.Error(), "stopped polling task queue doomed") {
			t.Fatalf("fatal error = %v", err)
		}
	case <-time.After(3 * time.Minute): // the SDK retries such a poll for two minutes first
		t.Fatal("a worker whose namespace is gone did not report it")
	}
}

func TestAStoppedWorkerHasNoFatalError(t *testing.T) {
	w := startTestWorker(t, "calm")
	w.Stop()
	w.Stop() // a second stop is harmless
	if err := w.Failed(); err != nil {
		t.Fatalf("Failed after Stop = %v", err)
	}
}

// testTemporal starts an embedded Temporal server for the test and answers its
// frontend address; -short skips the test.
func testTemporal(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a Temporal server")
	}
	srv, err := embedded.Start(context.Background(), embedded.Options{DataDir: t.TempDir(), Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	return srv.FrontendAddress()
}

// startTestWorker starts a worker on taskQueue of the test's Temporal, its client
// dialled with dial; both stop when the test ends.
func startTestWorker(t *testing.T, taskQueue string, dial ...grpc.DialOption) *Worker {
	t.Helper()
	c, err := client.Dial(client.Options{
		HostPort: testTemporal(t), Namespace: "default",
		ConnectionOptions: client.ConnectionOptions{DialOptions: dial},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	w, err := StartWorker(c, taskQueue, &activities.Activities{}, worker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return w
}
