package server

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rampart-soar/rampart/schemas"
	"github.com/rampart-soar/rampart/server/ingest"
	"github.com/rampart-soar/rampart/store"
	"github.com/rampart-soar/rampart/workflows"
)

// AlertSummary is an alert in a list.
type AlertSummary struct {
	ID             string    `json:"id"`
	WorkflowID     string    `json:"workflow_id"`
	Source         string    `json:"source"`
	Title          string    `json:"title"`
	FindingUID     string    `json:"finding_uid"`
	Rule           string    `json:"rule,omitempty"`
	SeverityID     int       `json:"severity_id"`
	Severity       string    `json:"severity"`
	Confidence     int       `json:"confidence"`
	Hostname       string    `json:"hostname,omitempty"` // the host the alert is about
	User           string    `json:"user,omitempty"`     // the user it is about
	Status         string    `json:"status"`
	Summary        string    `json:"summary,omitempty"` // why the alert ended as it did, in a line
	Fingerprint    string    `json:"fingerprint"`
	EventTime      time.Time `json:"event_time"`
	ReceivedAt     time.Time `json:"received_at"`
	LastSeenAt     time.Time `json:"last_seen_at"`
	DuplicateCount int       `json:"duplicate_count"`
	// Timings say how fast the alert moved; absent until there is something to time.
	Timings *AlertTimings `json:"timings,omitempty"`
	// Stalled says a run of the alert cannot progress (GET /api/v1/stalled).
	Stalled bool `json:"stalled,omitempty"`
}

// AlertList is a page of alerts.
type AlertList struct {
	Alerts     []AlertSummary `json:"alerts"`
	NextCursor string         `json:"next_cursor,omitempty"`
}

// AlertReceived is the status of an alert Temporal has accepted and no worker
// has recorded yet (no worker running, or a backlog): the store does not know it,
// so only GET /api/v1/alerts/{id} answers it.
const AlertReceived = "received"

// AlertDetail is one alert with everything recorded about its run.
type AlertDetail struct {
	AlertSummary
	Alert      json.RawMessage `json:"alert"`
	Raw        json.RawMessage `json:"raw,omitempty"`
	Detection  json.RawMessage `json:"detection,omitempty"`
	Enrichment json.RawMessage `json:"enrichment,omitempty"`
	Decision   json.RawMessage `json:"decision,omitempty"`
	// EnrichmentSummary and DecisionSummary say the two in a line, for a reader.
	EnrichmentSummary string       `json:"enrichment_summary,omitempty"`
	DecisionSummary   string       `json:"decision_summary,omitempty"`
	Run               *RunView     `json:"run,omitempty"`
	Steps             []StepView   `json:"steps"`
	Actions           []ActionView `json:"actions"`
	// Playbooks are the playbook runs the alert started, with their steps.
	Playbooks []PlaybookRunView `json:"playbooks"`
	// Approvals are those the runs asked for, oldest first: pending ones to
	// decide, decided ones with who and why.
	Approvals []ApprovalView `json:"approvals"`
	Temporal  TemporalRef    `json:"temporal"`
	// StalledRuns are the alert's runs Temporal reports cannot progress.
	StalledRuns []StalledRun `json:"stalled_runs,omitempty"`
}

// AlertTimings say how fast an alert moved, in milliseconds, and in a line.
type AlertTimings struct {
	// ReportDelayMS runs from the event to Rampart receiving the alert: how late
	// the source reported it. Absent when the event time is unknown or after receipt
	// (a source whose clock runs ahead).
	ReportDelayMS *int64 `json:"report_delay_ms,omitempty"`
	// TimeToOutcomeMS runs from receipt to the run's outcome (contained, closed,
	// no action, failed), approvals waited on included: for a contained alert, its
	// time to contain. Absent while the run has not reached one.
	TimeToOutcomeMS *int64 `json:"time_to_outcome_ms,omitempty"`
	Summary         string `json:"summary"`
}

// alertTimings times a recorded alert by its outcome's time or, for an alert
// recorded before alerts kept one, its run's completion (r nil: none known).
func alertTimings(a *store.Alert, r *store.Run) *AlertTimings {
	var t AlertTimings
	var said []string
	outcomeAt := a.OutcomeAt
	if outcomeAt == nil && r != nil {
		outcomeAt = r.CompletedAt
	}
	if outcomeAt != nil && !outcomeAt.Before(a.ReceivedAt) {
		took := outcomeAt.Sub(a.ReceivedAt)
		t.TimeToOutcomeMS = new(took.Milliseconds())
		said = append(said, fmt.Sprintf("%s %s after receipt", strings.ReplaceAll(a.Status, "_", " "), SpokenDuration(took)))
	}
	if !a.EventTime.IsZero() && !a.EventTime.After(a.ReceivedAt) {
		late := a.ReceivedAt.Sub(a.EventTime)
		t.ReportDelayMS = new(late.Milliseconds())
		said = append(said, fmt.Sprintf("reported %s after the event", SpokenDuration(late)))
	}
	if len(said) == 0 {
		return nil
	}
	t.Summary = strings.Join(said, " · ")
	return &t
}

// SpokenDuration says d the way a person would, as precisely as matters at its
// size: 850 ms, 2.4 s, 3 min 5 s, 2 h 10 min, 6 days 4 h.
func SpokenDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%d min %d s", d/time.Minute, d%time.Minute/time.Second)
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h %d min", d/time.Hour, d%time.Hour/time.Minute)
	default:
		return fmt.Sprintf("%d days %d h", d/(24*time.Hour), d%(24*time.Hour)/time.Hour)
	}
}

// PlaybookRunView is one playbook run of an alert.
type PlaybookRunView struct {
	Playbook   string          `json:"playbook"`
	Version    int             `json:"version"`
	DryRun     bool            `json:"dry_run,omitempty"`
	WorkflowID string          `json:"workflow_id"`
	RunID      string          `json:"run_id"`
	Run        RunView         `json:"run"`
	Result     json.RawMessage `json:"result,omitempty"`
	Steps      []StepView      `json:"steps"`
	// Note says how the run was started when not by a trigger in earnest: a dry
	// run, and who started it on demand and why.
	Note string `json:"note,omitempty"`
}

// TemporalRef names the alert's workflow execution.
type TemporalRef struct {
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
}

// RunView is a workflow run.
type RunView struct {
	Status      string     `json:"status"`
	Stage       string     `json:"stage,omitempty"`
	Error       string     `json:"error,omitempty"`
	StartedAt   time.Time  `json:"started_at"`
	CompletedAt *time.Time `json:"completed_at,omitempty"`
	ClosedAt    *time.Time `json:"closed_at,omitempty"`
	DedupUntil  *time.Time `json:"dedup_until,omitempty"`
	// RequestedBy and RequestReason: who started a playbook run on demand, and why.
	RequestedBy   string `json:"requested_by,omitempty"`
	RequestReason string `json:"request_reason,omitempty"`
}

// StepView is one stage of a run.
type StepView struct {
	Name       string          `json:"name"`
	Status     string          `json:"status"`
	StartedAt  time.Time       `json:"started_at"`
	FinishedAt *time.Time      `json:"finished_at,omitempty"`
	DurationMS *int64          `json:"duration_ms,omitempty"`
	Input      json.RawMessage `json:"input,omitempty"`
	Output     json.RawMessage `json:"output,omitempty"`
	Error      string          `json:"error,omitempty"`
	// Note is what the record says beyond status and error, for a reader: who
	// kept a revert, and why.
	Note string `json:"note,omitempty"`
}

// ActionView is one integration action.
type ActionView struct {
	Integration    string `json:"integration"`
	Operation      string `json:"operation"`
	Target         string `json:"target"`
	Status         string `json:"status"`
	VendorID       string `json:"vendor_id,omitempty"`
	VendorStatus   string `json:"vendor_status,omitempty"`
	IdempotencyKey string `json:"idempotency_key"`
	Attempts       int    `json:"attempts"`
	VendorCalls    int    `json:"vendor_calls"`
	Error          string `json:"error,omitempty"`
	// Note explains what the counts alone would not: an action that succeeded
	// with no call, because the target already was as wanted.
	Note      string    `json:"note,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// actionNote is an action's note. An action succeeds with no call to the vendor
// only when the target already was in (or moving to) the wanted state, another
// alert's action on the same host having asked first, say.
func actionNote(a *store.Action) string {
	if a.Status == store.StatusSucceeded && a.VendorCalls == 0 {
		return "no call needed: the target was already " + cmp.Or(a.VendorStatus, "as wanted")
	}
	return ""
}

// maxRuleFilter bounds the rule filter: a title or rule uid, not a document.
const maxRuleFilter = 1024

var alertStatuses = []string{store.AlertProcessing, store.AlertContained, store.AlertResponded, store.AlertNoAction, store.AlertFailed}

func (s *Server) listAlerts(c echo.Context) error {
	f := store.AlertFilter{Status: c.QueryParam("status"), Source: c.QueryParam("source"), Cursor: c.QueryParam("cursor"),
		Entity: c.QueryParam("entity"), Rule: strings.TrimSpace(c.QueryParam("rule"))}
	if f.Status != "" && !slices.Contains(alertStatuses, f.Status) {
		return apiError(http.StatusBadRequest, "invalid_query", "status must be one of "+strings.Join(alertStatuses, ", "))
	}
	for _, p := range []struct {
		name, value string
		max         int
	}{{"entity", f.Entity, store.MaxEntityValue}, {"rule", f.Rule, maxRuleFilter}} {
		if len(p.value) > p.max {
			return apiError(http.StatusBadRequest, "invalid_query", p.name+" is at most "+strconv.Itoa(p.max)+" bytes")
		}
	}
	var err error
	if f.Limit, err = intParam(c, "limit", 50, 1, 200); err != nil {
		return err
	}
	if v := c.QueryParam("severity"); v != "" {
		id, err := severityParam("severity", v)
		if err != nil {
			return err
		}
		f.SeverityID = &id
	}
	if v := c.QueryParam("min_severity"); v != "" {
		id, err := severityParam("min_severity", v)
		if err != nil {
			return err
		}
		f.MinSeverity = &id
	}
	rows, next, err := s.opts.Alerts.ListAlerts(c.Request().Context(), f)
	if errors.Is(err, store.ErrBadCursor) {
		return apiError(http.StatusBadRequest, "invalid_query", "cursor is not one this API issued")
	}
	if err != nil {
		return err
	}
	out := AlertList{Alerts: make([]AlertSummary, 0, len(rows)), NextCursor: next}
	for i := range rows {
		out.Alerts = append(out.Alerts, summary(&rows[i]))
	}
	if err := s.sayWhoIsWaited(c.Request().Context(), out.Alerts); err != nil {
		return err
	}
	s.markStalled(c.Request().Context(), out.Alerts)
	return c.JSON(http.StatusOK, out)
}

// sayWhoIsWaited gives an alert still in progress whose playbook waits for an
// approval the summary an analyst needs in a list: what waits for them. It is read
// here, not stored, because the wait ends in ways no alert write sees.
func (s *Server) sayWhoIsWaited(ctx context.Context, alerts []AlertSummary) error {
	if s.opts.Approvals == nil {
		return nil
	}
	var ids []string
	for _, a := range alerts {
		if a.Status == store.AlertProcessing && a.Summary == "" {
			ids = append(ids, a.ID)
		}
	}
	pending, err := s.opts.Approvals.PendingApprovalsFor(ctx, ids)
	if err != nil {
		return err
	}
	sayWhatWaits(alerts, pending)
	return nil
}

// sayWhatWaits gives each alert still in progress with no summary of its own
// the pending approvals among approvals that are its.
func sayWhatWaits(alerts []AlertSummary, approvals []store.Approval) {
	waits := map[string][]string{}
	for _, p := range approvals {
		if p.Status == store.ApprovalPending {
			waits[p.AlertID] = append(waits[p.AlertID], fmt.Sprintf("%s (%s · %s)", p.Operation, p.Playbook, p.Step))
		}
	}
	for i := range alerts {
		if w := waits[alerts[i].ID]; len(w) > 0 && alerts[i].Status == store.AlertProcessing && alerts[i].Summary == "" {
			alerts[i].Summary = "waiting for approval: " + strings.Join(w, ", ")
		}
	}
}

// AlertStateView is where an alert's run and its playbook runs are now, as the
// runs themselves answer.
type AlertStateView struct {
	AlertID    string               `json:"alert_id"`
	WorkflowID string               `json:"workflow_id"`
	RunID      string               `json:"run_id"`
	State      workflows.AlertState `json:"state"`
	Playbooks  []PlaybookStateView  `json:"playbooks"`
}

// PlaybookStateView is one playbook run's live position and variables, or why
// it could not be asked.
type PlaybookStateView struct {
	Playbook   string                   `json:"playbook"`
	WorkflowID string                   `json:"workflow_id"`
	RunID      string                   `json:"run_id"`
	State      *workflows.PlaybookState `json:"state,omitempty"`
	Error      string                   `json:"error,omitempty"`
}

// stateQueryTimeout bounds a state query: with no worker running, Temporal
// would hold the request until the client's own deadline.
const stateQueryTimeout = 10 * time.Second

// alertState serves GET /api/v1/alerts/{id}/state: the alert workflow's state
// query, and the position and variables of each playbook run it recorded
// (started by its triggers or on demand).
func (s *Server) alertState(c echo.Context) error {
	if s.opts.Control == nil {
		return apiError(http.StatusServiceUnavailable, "temporal_unavailable", "this server has no Temporal connection to ask the runs")
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), stateQueryTimeout)
	defer cancel()
	id := c.Param("id")
	d, accepted, err := s.findAlert(ctx, id)
	var answered *ingest.Error
	if err != nil && !errors.As(err, &answered) {
		// The store failed (it is down, say): a run still open can be found, and
		// asked, through Temporal alone.
		run, aerr := s.opts.Control.AcceptedAlert(ctx, id)
		if aerr != nil {
			return err
		}
		accepted, err = &run, nil
	}
	if err != nil {
		return err
	}
	out := AlertStateView{AlertID: id, RunID: id, Playbooks: []PlaybookStateView{}}
	var playbooks []store.PlaybookRun
	if d != nil {
		out.WorkflowID, playbooks = d.Alert.WorkflowID, d.Playbooks
	} else {
		out.WorkflowID = accepted.WorkflowID
	}
	err = s.opts.Control.Query(ctx, out.WorkflowID, id, workflows.StateQuery, &out.State)
	switch {
	case errors.Is(err, ErrRunNotFound):
		return apiError(http.StatusNotFound, "run_not_found", "Temporal no longer has this alert's run (past the namespace's retention)")
	case errors.Is(err, ErrNoAnswer):
		return apiError(http.StatusServiceUnavailable, "no_answer", "no worker answered the state query: is a worker running?")
	case err != nil:
		return apiError(http.StatusServiceUnavailable, "temporal_unavailable", "state query failed: "+err.Error())
	}
	views := make([]PlaybookStateView, 0, len(playbooks))
	for _, p := range playbooks {
		views = append(views, PlaybookStateView{Playbook: p.Run.Playbook, WorkflowID: p.Run.WorkflowID, RunID: p.Run.ID})
	}
	if d == nil {
		// Not recorded (yet, or the store is down): the runs the alert's own state names.
		for _, p := range out.State.Playbooks {
			views = append(views, PlaybookStateView{Playbook: p.Playbook, WorkflowID: p.WorkflowID})
		}
	}
	for _, v := range views {
		var st workflows.PlaybookState
		if err := s.opts.Control.Query(ctx, v.WorkflowID, v.RunID, workflows.PlaybookStateQuery, &st); err != nil {
			v.Error = err.Error()
		} else {
			v.State = &st
		}
		out.Playbooks = append(out.Playbooks, v)
	}
	return c.JSON(http.StatusOK, out)
}

// findAlert returns the alert as recorded or, when the store does not know it,
// as the run Temporal holds: accepted, and waiting for a worker to record it.
// Exactly one of the two is set when err is nil.
func (s *Server) findAlert(ctx context.Context, id string) (*store.AlertDetail, *AcceptedRun, error) {
	notFound := apiError(http.StatusNotFound, "not_found", "no such alert")
	if len(id) > 64 {
		return nil, nil, notFound
	}
	d, err := s.opts.Alerts.GetAlert(ctx, id)
	switch {
	case err == nil:
		return d, nil, nil
	case !errors.Is(err, store.ErrNotFound):
		return nil, nil, err
	case s.opts.Control == nil:
		return nil, nil, notFound
	}
	run, err := s.opts.Control.AcceptedAlert(ctx, id)
	switch {
	case errors.Is(err, ErrRunNotFound):
		return nil, nil, notFound
	case err != nil:
		// Not in the store, and Temporal cannot say whether it holds it.
		return nil, nil, apiError(http.StatusServiceUnavailable, "temporal_unavailable",
			"the alert is not recorded and Temporal could not be asked: "+err.Error())
	}
	return nil, &run, nil
}

func (s *Server) getAlert(c echo.Context) error {
	id := c.Param("id")
	d, run, err := s.findAlert(c.Request().Context(), id)
	if err != nil {
		return err
	}
	if run != nil {
		out := AlertDetail{
			AlertSummary: AlertSummary{ID: id, WorkflowID: run.WorkflowID, Source: run.Source, SeverityID: run.SeverityID,
				Severity: schemas.SeverityName(run.SeverityID), Status: AlertReceived, ReceivedAt: run.StartedAt, LastSeenAt: run.StartedAt,
				Summary: run.Waiting},
			Steps: []StepView{}, Actions: []ActionView{}, Playbooks: []PlaybookRunView{}, Approvals: []ApprovalView{},
			Temporal: TemporalRef{WorkflowID: run.WorkflowID, RunID: id},
		}
		s.explainStalls(c.Request().Context(), &out)
		return c.JSON(http.StatusOK, out)
	}
	a := &d.Alert
	out := AlertDetail{
		AlertSummary:      summary(a),
		Alert:             rawJSON(a.AlertJSON),
		Raw:               rawJSON(a.RawJSON),
		Detection:         rawJSON(a.DetectionJSON),
		Enrichment:        rawJSON(a.EnrichmentJSON),
		Decision:          rawJSON(a.DecisionJSON),
		EnrichmentSummary: explainEnrichment(a.EnrichmentJSON),
		DecisionSummary:   explainDecision(a.DecisionJSON),
		Actions:           make([]ActionView, 0, len(d.Actions)),
		Temporal:          TemporalRef{WorkflowID: a.WorkflowID, RunID: a.ID},
	}
	if r := d.Run; r != nil {
		v := runView(r)
		out.Run = &v
	}
	out.Timings = alertTimings(a, d.Run)
	out.Steps = stepViews(d.Steps)
	out.Playbooks = make([]PlaybookRunView, 0, len(d.Playbooks))
	for _, p := range d.Playbooks {
		out.Playbooks = append(out.Playbooks, PlaybookRunView{
			Playbook: p.Run.Playbook, Version: p.Run.PlaybookVersion, DryRun: p.Run.DryRun,
			WorkflowID: p.Run.WorkflowID, RunID: p.Run.ID, Run: runView(&p.Run),
			Result: rawJSON(p.Run.ResultJSON), Steps: stepViews(p.Steps), Note: runNote(&p.Run),
		})
	}
	out.Approvals = make([]ApprovalView, 0, len(d.Approvals))
	for _, ap := range d.Approvals {
		out.Approvals = append(out.Approvals, approvalView(ap))
	}
	for _, ac := range d.Actions {
		out.Actions = append(out.Actions, ActionView{
			Integration: ac.Integration, Operation: ac.Operation, Target: ac.Target, Status: ac.Status,
			VendorID: ac.VendorID, VendorStatus: ac.VendorStatus, IdempotencyKey: ac.IdempotencyKey,
			Attempts: ac.Attempts, VendorCalls: ac.VendorCalls, Error: ac.Error, Note: actionNote(&ac),
			CreatedAt: ac.CreatedAt, UpdatedAt: ac.UpdatedAt,
		})
	}
	one := []AlertSummary{out.AlertSummary}
	sayWhatWaits(one, d.Approvals)
	out.AlertSummary = one[0]
	s.explainStalls(c.Request().Context(), &out)
	return c.JSON(http.StatusOK, out)
}

func runView(r *store.Run) RunView {
	return RunView{Status: r.Status, Stage: r.Stage, Error: r.Error, StartedAt: r.StartedAt,
		CompletedAt: r.CompletedAt, ClosedAt: r.ClosedAt, DedupUntil: r.DedupUntil,
		RequestedBy: r.RequestedBy, RequestReason: r.RequestReason}
}

func stepViews(steps []store.Step) []StepView {
	out := make([]StepView, 0, len(steps))
	for _, st := range steps {
		v := StepView{Name: st.Name, Status: st.Status, StartedAt: st.StartedAt, FinishedAt: st.FinishedAt,
			Input: rawJSON(st.InputJSON), Output: rawJSON(st.OutputJSON), Error: st.Error, Note: stepNote(st)}
		if st.FinishedAt != nil {
			ms := st.FinishedAt.Sub(st.StartedAt).Milliseconds()
			v.DurationMS = &ms
		}
		out = append(out, v)
	}
	return out
}

func summary(a *store.Alert) AlertSummary {
	hostname, user := a.Subject()
	return AlertSummary{
		Hostname: hostname, User: user,
		ID: a.ID, WorkflowID: a.WorkflowID, Source: a.Source, Title: a.Title, FindingUID: a.FindingUID,
		Rule: a.RuleUID, SeverityID: a.SeverityID, Severity: a.Severity, Confidence: a.Confidence,
		Status: a.Status, Summary: a.Summary, Fingerprint: a.Fingerprint, EventTime: a.EventTime, ReceivedAt: a.ReceivedAt,
		LastSeenAt: a.LastSeenAt, DuplicateCount: a.DuplicateCount, Timings: alertTimings(a, nil),
	}
}

func rawJSON(s string) json.RawMessage {
	if s == "" {
		return nil
	}
	return json.RawMessage(s)
}

func intParam(c echo.Context, name string, def, lo, hi int) (int, error) {
	v := c.QueryParam(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, apiError(http.StatusBadRequest, "invalid_query", name+" must be an integer from "+strconv.Itoa(lo)+" to "+strconv.Itoa(hi))
	}
	return n, nil
}

// severityParam accepts an OCSF severity id or its name (high, Critical…).
func severityParam(name, v string) (int, error) {
	if n, err := strconv.Atoi(v); err == nil {
		if n == 0 || schemas.SeverityName(n) != "Unknown" {
			return n, nil
		}
	} else if id, ok := schemas.SeverityID(v); ok {
		return id, nil
	}
	return 0, apiError(http.StatusBadRequest, "invalid_query", name+" must be an OCSF severity id (0-6, 99) or name (low, medium, high, critical…)")
}
