// Package runs starts playbook runs on demand: a chosen playbook version on a
// recorded alert, with its recorded detection and enrichment, live or as a dry
// run. The run is a PlaybookWorkflow on the worker like any other, recorded under
// the alert.
//
// It may import store (to read), activities (to pin definitions), server (for
// the request types), workflows, the Temporal client and the pure packages.
package runs

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/rampart-soar/rampart/activities"
	"github.com/rampart-soar/rampart/schemas"
	"github.com/rampart-soar/rampart/server"
	"github.com/rampart-soar/rampart/store"
	"github.com/rampart-soar/rampart/triage"
	"github.com/rampart-soar/rampart/workflows"
)

// Recorded is what an alert's run saw: the alert, its detection and enrichment.
type Recorded struct {
	Alert      schemas.Alert
	Detection  triage.Detection
	Enrichment triage.Enrichment
}

// FromStore decodes an alert's recorded input.
func FromStore(a *store.Alert) (Recorded, error) {
	var r Recorded
	for what, into := range map[string]struct {
		text string
		v    any
	}{"alert": {a.AlertJSON, &r.Alert}, "detection": {a.DetectionJSON, &r.Detection}, "enrichment": {a.EnrichmentJSON, &r.Enrichment}} {
		if into.text == "" {
			continue
		}
		if err := json.Unmarshal([]byte(into.text), into.v); err != nil {
			return Recorded{}, fmt.Errorf("alert %s: recorded %s: %w", a.ID, what, err)
		}
	}
	return r, nil
}

// Store is what starting a run reads.
type Store interface {
	activities.PlaybookVersions
	GetAlert(ctx context.Context, id string) (*store.AlertDetail, error)
}

// Starter implements server.PlaybookStarter.
type Starter struct {
	Client    client.Client
	Store     Store
	TaskQueue string
}

// StartPlaybook starts req's playbook version (latest when 0) on the alert and
// returns once Temporal has accepted the run.
func (s *Starter) StartPlaybook(ctx context.Context, req server.RunRequest) (server.RunStarted, error) {
	d, err := s.Store.GetAlert(ctx, req.AlertID)
	if err != nil {
		return server.RunStarted{}, err
	}
	pinned, callees, err := activities.PinVersion(ctx, s.Store, req.Playbook, req.Version)
	if err != nil {
		return server.RunStarted{}, err
	}
	rec, err := FromStore(&d.Alert)
	if err != nil {
		return server.RunStarted{}, err
	}
	id := fmt.Sprintf("%s/manual-%d", workflows.PlaybookRunID(req.AlertID, req.Playbook), time.Now().UnixNano())
	run, err := s.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: s.TaskQueue}, workflows.PlaybookWorkflowName,
		workflows.PlaybookInput{Playbook: pinned, Callees: callees, Alert: rec.Alert, Detection: rec.Detection,
			Enrichment: rec.Enrichment, DryRun: req.DryRun, AlertID: req.AlertID,
			RequestedBy: &workflows.Actor{By: req.By, Reason: req.Reason}})
	if err != nil {
		return server.RunStarted{}, fmt.Errorf("start %s: %w", id, err)
	}
	return server.RunStarted{WorkflowID: id, RunID: run.GetRunID(), Playbook: req.Playbook, Version: pinned.Version, DryRun: req.DryRun}, nil
}
