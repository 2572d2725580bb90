package server

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/labstack/echo/v4"
)

// WorkerReader says which workers poll Rampart's task queue.
type WorkerReader interface {
	Workers(ctx context.Context) (WorkersView, error)
}

// WorkersView is who polls a task queue for workflow tasks, as Temporal
// remembers it (for some minutes after a worker's last poll).
type WorkersView struct {
	TaskQueue string `json:"task_queue"`
	// Polling counts the workers that polled lately; with none, accepted alerts
	// wait in Temporal until one runs.
	Polling int          `json:"polling"`
	Workers []WorkerView `json:"workers"`
}

// WorkerView is one worker, most recent poll first.
type WorkerView struct {
	Identity string    `json:"identity"`
	LastPoll time.Time `json:"last_poll"`
	Polling  bool      `json:"polling"`
}

// recentPoll is how long after a worker's last poll of a task queue it still
// counts as polling: an idle worker's long poll lasts about a minute.
const recentPoll = 2 * time.Minute

// Workers implements WorkerReader for the configured task queue.
func (t *TemporalControl) Workers(ctx context.Context) (WorkersView, error) {
	return t.workersOf(ctx, t.TaskQueue)
}

func (t *TemporalControl) workersOf(ctx context.Context, taskQueue string) (WorkersView, error) {
	d, err := t.Client.DescribeTaskQueue(ctx, taskQueue, enumspb.TASK_QUEUE_TYPE_WORKFLOW)
	if err != nil {
		return WorkersView{}, fmt.Errorf("describe task queue %s: %w", taskQueue, err)
	}
	last := map[string]time.Time{} // a worker polls with several pollers, under one identity
	for _, p := range d.GetPollers() {
		if at := p.GetLastAccessTime().AsTime(); at.After(last[p.GetIdentity()]) {
			last[p.GetIdentity()] = at
		}
	}
	view := WorkersView{TaskQueue: taskQueue, Workers: make([]WorkerView, 0, len(last))}
	for identity, at := range last {
		w := WorkerView{Identity: identity, LastPoll: at, Polling: time.Since(at) < recentPoll}
		if w.Polling {
			view.Polling++
		}
		view.Workers = append(view.Workers, w)
	}
	slices.SortFunc(view.Workers, func(a, b WorkerView) int {
		return cmp.Or(b.LastPoll.Compare(a.LastPoll), cmp.Compare(a.Identity, b.Identity))
	})
	return view, nil
}

// whoPolls says what an alert whose workflow task is queued waits for: a worker
// to start, when none has polled its task queue lately, or its turn in a
// backlog. "" when Temporal cannot say.
func (t *TemporalControl) whoPolls(ctx context.Context, taskQueue string) string {
	view, err := t.workersOf(ctx, taskQueue)
	switch {
	case err != nil:
		return ""
	case view.Polling > 0:
		return fmt.Sprintf("waiting in task queue %s, which %d worker(s) poll: a backlog", taskQueue, view.Polling)
	case len(view.Workers) == 0:
		return fmt.Sprintf("waiting for a worker: none has polled task queue %s lately (is `rampart worker` running?)", taskQueue)
	default:
		return fmt.Sprintf("waiting for a worker: none has polled task queue %s since %s (is `rampart worker` running?)",
			taskQueue, view.Workers[0].LastPoll.UTC().Format(time.RFC3339))
	}
}

func (s *Server) listWorkers(c echo.Context) error {
	if s.opts.Workers == nil {
		return apiError(http.StatusNotFound, "not_found", "this server does not look for workers")
	}
	view, err := s.opts.Workers.Workers(c.Request().Context())
	if err != nil {
		return apiError(http.StatusServiceUnavailable, "temporal_unavailable", "cannot ask Temporal who polls: "+err.Error())
	}
	return c.JSON(http.StatusOK, view)
}
