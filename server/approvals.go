package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rampart-soar/rampart/store"
	"github.com/rampart-soar/rampart/workflows"
)

// ApprovalStore is the part of the store the approval inbox reads.
type ApprovalStore interface {
	GetApproval(ctx context.Context, id string) (store.Approval, error)
	ListApprovals(ctx context.Context, status string, limit int) ([]store.Approval, error)
	CountApprovals(ctx context.Context, status string) (int64, error)
	OldestApproval(ctx context.Context, status string) (at time.Time, ok bool, err error)
	PendingApprovalsFor(ctx context.Context, alertIDs []string) ([]store.Approval, error)
	AlertHeadlines(ctx context.Context, ids []string) (map[string]store.AlertHeadline, error)
}

// WorkflowControl is what the API asks of running workflows.
type WorkflowControl interface {
	// DecideApproval delivers a decision through the run's decide Update and
	// returns once the run has accepted it. ErrRejected wraps a refusal.
	DecideApproval(ctx context.Context, workflowID, runID string, a workflows.Approval) error
	// KeepAction cancels a pending timed revert; k says who keeps the action.
	KeepAction(ctx context.Context, revertWorkflowID string, k workflows.Actor) error
	// Query asks a run (runID empty: the latest of workflowID) for its state
	// through the named query handler, decoding the answer into out.
	// ErrRunNotFound means Temporal no longer has the run, ErrNoAnswer that no
	// worker answered in time.
	Query(ctx context.Context, workflowID, runID, name string, out any) error
	// AcceptedAlert finds the open AlertWorkflow run whose run id is alertID:
	// an alert Temporal holds that no worker has recorded yet. ErrRunNotFound
	// when there is none.
	AcceptedAlert(ctx context.Context, alertID string) (AcceptedRun, error)
}

// AcceptedRun is what Temporal knows of an alert before a worker records it.
type AcceptedRun struct {
	WorkflowID string
	Source     string
	SeverityID int
	StartedAt  time.Time
	// Waiting says what the alert waits for: a worker, or its turn.
	Waiting string
}

// ErrNoAnswer means no worker answered a query in time: none is running, or all
// are too busy.
var ErrNoAnswer = errors.New("no worker answered")

// ErrRunNotFound means Temporal has no such run (never started, or past the
// namespace's retention).
var ErrRunNotFound = errors.New("run not found")

// ErrRejected means the workflow refused a request (its validator said no, or
// it is no longer running).
var ErrRejected = errors.New("rejected by the run")

// ApprovalView is an approval in the API.
type ApprovalView struct {
	ID          string          `json:"id"`
	Status      string          `json:"status"`
	AlertID     string          `json:"alert_id,omitempty"`
	Alert       *ApprovalAlert  `json:"alert,omitempty"`
	Playbook    string          `json:"playbook"`
	Step        string          `json:"step"`
	Operation   string          `json:"operation"`
	Inputs      json.RawMessage `json:"inputs,omitempty"`
	ArgsHash    string          `json:"args_hash"`
	Approvers   json.RawMessage `json:"approvers,omitempty"`
	RequestedAt time.Time       `json:"requested_at"`
	Deadline    *time.Time      `json:"deadline,omitempty"`
	DecidedBy   string          `json:"decided_by,omitempty"`
	DecidedAt   *time.Time      `json:"decided_at,omitempty"`
	Reason      string          `json:"reason,omitempty"`
	WorkflowID  string          `json:"workflow_id"`
	RunID       string          `json:"run_id"`
}

// ApprovalAlert is what an approval shows of its alert, so an analyst knows what
// is at stake (the action's inputs name hosts by the vendor's ids): the store's
// AlertHeadline, field for field, with JSON names.
type ApprovalAlert struct {
	Title      string `json:"title"`
	Severity   string `json:"severity"`
	SeverityID int    `json:"severity_id"`
	Status     string `json:"status"`
	Hostname   string `json:"hostname,omitempty"`
	User       string `json:"user,omitempty"`
}

func approvalView(a store.Approval) ApprovalView {
	return ApprovalView{ID: a.ID, Status: a.Status, AlertID: a.AlertID, Playbook: a.Playbook, Step: a.Step,
		Operation: a.Operation, Inputs: rawJSON(a.InputsJSON), ArgsHash: a.ArgsHash, Approvers: rawJSON(a.ApproversJSON),
		RequestedAt: a.RequestedAt, Deadline: a.Deadline, DecidedBy: a.DecidedBy, DecidedAt: a.DecidedAt, Reason: a.Reason,
		WorkflowID: a.WorkflowID, RunID: a.RunID}
}

var approvalStatuses = []string{store.ApprovalPending, store.ApprovalApproved, store.ApprovalDenied, store.ApprovalExpired, store.ApprovalCancelled}

// listApprovals serves GET /api/v1/approvals?status=pending&limit=50.
func (s *Server) listApprovals(c echo.Context) error {
	status := c.QueryParam("status")
	if status != "" && !slices.Contains(approvalStatuses, status) {
		return apiError(http.StatusBadRequest, "invalid_query", "status is one of "+strings.Join(approvalStatuses, ", "))
	}
	limit, err := intParam(c, "limit", 50, 1, 500)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	rows, err := s.opts.Approvals.ListApprovals(ctx, status, limit)
	if err != nil {
		return err
	}
	total, err := s.opts.Approvals.CountApprovals(ctx, status)
	if err != nil {
		return err
	}
	out, err := s.approvalViews(ctx, rows...)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"approvals": out, "total": total})
}

func (s *Server) getApproval(c echo.Context) error {
	a, err := s.approval(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	views, err := s.approvalViews(c.Request().Context(), a)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, views[0])
}

// approvalViews gives approvals their alerts' headlines.
func (s *Server) approvalViews(ctx context.Context, rows ...store.Approval) ([]ApprovalView, error) {
	ids := make([]string, 0, len(rows))
	for _, a := range rows {
		if a.AlertID != "" {
			ids = append(ids, a.AlertID)
		}
	}
	alerts, err := s.opts.Approvals.AlertHeadlines(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]ApprovalView, 0, len(rows))
	for _, a := range rows {
		v := approvalView(a)
		if h, ok := alerts[a.AlertID]; ok {
			headline := ApprovalAlert(h)
			v.Alert = &headline
		}
		out = append(out, v)
	}
	return out, nil
}

func (s *Server) approval(ctx context.Context, id string) (store.Approval, error) {
	a, err := s.opts.Approvals.GetApproval(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return a, apiError(http.StatusNotFound, "not_found", "no such approval")
	}
	return a, err
}

// Decision is the body of POST /api/v1/approvals/{id}:decide.
type Decision struct {
	Decision string `json:"decision"` // approve or deny
	// By names who decides; with API tokens it is the token's name and may be
	// left out.
	By     string `json:"by,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// decideApproval serves POST /api/v1/approvals/{id}:decide. The decision reaches
// the run as a validated Update bound to the arguments the approval was asked
// for; the answer comes once the run has accepted it.
func (s *Server) decideApproval(c echo.Context) error {
	id, action, ok := strings.Cut(c.Param("target"), ":")
	if !ok || action != "decide" {
		return apiError(http.StatusNotFound, "not_found", "use POST /api/v1/approvals/{id}:decide")
	}
	var d Decision
	if err := decodeJSON(c, &d); err != nil {
		return err
	}
	if d.Decision != "approve" && d.Decision != "deny" {
		return apiError(http.StatusBadRequest, "invalid_body", `decision is "approve" or "deny"`)
	}
	var err error
	if d.By, err = actor(c, d.By, d.Reason, "decides"); err != nil {
		return err
	}
	ctx := c.Request().Context()
	a, err := s.approval(ctx, id)
	if err != nil {
		return err
	}
	if a.Status != store.ApprovalPending {
		return apiError(http.StatusConflict, "already_decided", "the approval is "+a.Status)
	}
	err = s.opts.Control.DecideApproval(ctx, a.WorkflowID, a.RunID, workflows.Approval{
		Step: a.Step, Approved: d.Decision == "approve", By: d.By, Reason: d.Reason, ArgsHash: a.ArgsHash,
	})
	if errors.Is(err, ErrRejected) {
		return apiError(http.StatusConflict, "rejected", err.Error())
	}
	if err != nil {
		return err
	}
	s.log.Info("approval decided", "approval_id", a.ID, "decision", d.Decision, "by", d.By)
	view := approvalView(a)
	view.Status, view.DecidedBy, view.Reason = store.ApprovalApproved, d.By, d.Reason
	if d.Decision == "deny" {
		view.Status = store.ApprovalDenied
	}
	now := time.Now().UTC()
	view.DecidedAt = &now
	return c.JSON(http.StatusOK, view)
}

// actor names who acts on a request: the API token's holder or, while the API is
// open, the name the body gives (required then). A body naming someone other than
// the token's holder is refused rather than corrected, so a mistaken script fails
// loudly. does says what the name is for, in errors ("decides").
func actor(c echo.Context, by, reason, does string) (string, error) {
	by = strings.TrimSpace(by)
	if who, ok := identity(c); ok {
		if by != "" && by != who {
			return "", apiError(http.StatusForbidden, "forbidden", fmt.Sprintf("by is %q but your API token is %q's: leave by out or give the same name", by, who))
		}
		by = who
	}
	switch {
	case by == "":
		return "", apiError(http.StatusBadRequest, "invalid_body", "by is required: who "+does+" (without an API token nothing else says so)")
	case len(by) > 128 || len(reason) > 4096:
		return "", apiError(http.StatusBadRequest, "invalid_body", "by names who "+does+" (at most 128 characters); reason is at most 4096")
	}
	return by, nil
}

// alertAction serves POST /api/v1/alerts/{id}:keep and :run.
func (s *Server) alertAction(c echo.Context) error {
	id, action, _ := strings.Cut(c.Param("target"), ":")
	switch action {
	case "keep":
		return s.keepAlert(c, id)
	case "run":
		return s.runPlaybook(c, id)
	}
	return apiError(http.StatusNotFound, "not_found", "use POST /api/v1/alerts/{id}:keep or :run")
}

// keepAlert cancels every timed revert the alert's playbooks scheduled and that
// is still pending, so the containment stays until someone lifts it. The body,
// {"by", "reason"}, says who keeps it and why (by comes from the API token when
// there is one, and the body may then be left out); the reverts record both.
func (s *Server) keepAlert(c echo.Context, id string) error {
	var k workflows.Actor
	if c.Request().ContentLength != 0 {
		if err := decodeJSON(c, &k); err != nil {
			return err
		}
	}
	var err error
	if k.By, err = actor(c, k.By, k.Reason, "keeps the actions"); err != nil {
		return err
	}
	ctx := c.Request().Context()
	d, err := s.opts.Alerts.GetAlert(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return apiError(http.StatusNotFound, "not_found", "no such alert")
	}
	if err != nil {
		return err
	}
	kept := []string{}
	for _, run := range d.Playbooks {
		for _, st := range run.Steps {
			step, isRevert := strings.CutSuffix(st.Name, workflows.RevertStepSuffix)
			if !isRevert || st.Status != store.StatusPending {
				continue
			}
			err := s.opts.Control.KeepAction(ctx, workflows.RevertWorkflowID(run.Run.WorkflowID, step), k)
			if errors.Is(err, ErrRejected) {
				continue // the revert ran or was kept meanwhile
			}
			if err != nil {
				return err
			}
			kept = append(kept, run.Run.Playbook+"/"+step)
		}
	}
	if len(kept) > 0 {
		s.log.Info("actions kept", "alert_id", id, "kept", kept, "by", k.By)
	}
	return c.JSON(http.StatusOK, map[string]any{"alert_id": id, "kept": kept, "by": k.By})
}

// PlaybookStarter starts a playbook run on demand.
type PlaybookStarter interface {
	StartPlaybook(ctx context.Context, req RunRequest) (RunStarted, error)
}

// RunRequest asks for a run of a playbook version (0: the latest) on an alert.
// By and Reason say who asks and why (by is the API token's holder when there
// is one); the run records them.
type RunRequest struct {
	AlertID  string `json:"-"`
	Playbook string `json:"playbook"`
	Version  int    `json:"version,omitempty"`
	DryRun   bool   `json:"dry_run,omitempty"`
	By       string `json:"by,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

// RunStarted names the run started.
type RunStarted struct {
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
	Playbook   string `json:"playbook"`
	Version    int    `json:"version"`
	DryRun     bool   `json:"dry_run"`
}

// runPlaybook starts a playbook version on a recorded alert, live or as a dry
// run; 202 once Temporal has the run. Its steps appear under the alert.
func (s *Server) runPlaybook(c echo.Context, alertID string) error {
	var req RunRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Playbook == "" {
		return apiError(http.StatusBadRequest, "invalid_body", `name the playbook: {"playbook": "...", "version": n, "dry_run": true, "by": "..."}`)
	}
	if req.Version < 0 {
		return apiError(http.StatusBadRequest, "invalid_body", "version is a number from 1, or 0 or absent for the latest")
	}
	var err error
	if req.By, err = actor(c, req.By, req.Reason, "runs the playbook"); err != nil {
		return err
	}
	req.AlertID = alertID
	ctx := c.Request().Context()
	if _, err := s.opts.Alerts.GetAlert(ctx, alertID); errors.Is(err, store.ErrNotFound) {
		return apiError(http.StatusNotFound, "not_found", "no such alert")
	} else if err != nil {
		return err
	}
	if _, err := s.opts.Playbooks.GetPlaybookVersion(ctx, req.Playbook, req.Version); errors.Is(err, store.ErrNotFound) {
		return apiError(http.StatusNotFound, "not_found", "no such playbook version")
	} else if err != nil {
		return err
	}
	started, err := s.opts.Runs.StartPlaybook(ctx, req)
	if err != nil {
		return err
	}
	s.log.Info("playbook run started", "alert_id", alertID, "playbook", req.Playbook, "version", started.Version,
		"dry_run", req.DryRun, "workflow_id", started.WorkflowID, "by", req.By)
	return c.JSON(http.StatusAccepted, started)
}

// requireJSON refuses a body that is not declared JSON.
func requireJSON(c echo.Context) error {
	if mt := c.Request().Header.Get("Content-Type"); !strings.HasPrefix(mt, "application/json") {
		return apiError(http.StatusUnsupportedMediaType, "unsupported_media_type", "send application/json")
	}
	return nil
}

// decodeJSON reads a small JSON body strictly: unknown fields are an error.
func decodeJSON(c echo.Context, v any) error {
	if err := requireJSON(c); err != nil {
		return err
	}
	dec := json.NewDecoder(io.LimitReader(c.Request().Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return apiError(http.StatusBadRequest, "invalid_body", "the body is not the expected JSON: "+err.Error())
	}
	return nil
}
