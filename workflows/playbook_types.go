package workflows

import (
	"time"

	"github.com/rampart-soar/rampart/playbook"
	"github.com/rampart-soar/rampart/schemas"
	"github.com/rampart-soar/rampart/triage"
)

// PlaybookWorkflowName is the registered type of the playbook interpreter.
const PlaybookWorkflowName = "PlaybookWorkflow"

// Playbook message names.
const (
	// PlaybookStateQuery returns PlaybookState: where the run is and its variables.
	PlaybookStateQuery = "playbook.state"
	// ApprovalUpdate answers a pending approval (validated: the step must be waiting).
	ApprovalUpdate = "decide"
	// KeepSignal cancels the pending reverts of the run's actions (an analyst keeps
	// the containment).
	KeepSignal = "playbook.keep"
	// EventSignal wakes wait-until steps to re-evaluate their condition; the alert
	// workflow forwards each duplicate delivery.
	EventSignal = "playbook.event"
)

// Playbook activity names.
const (
	ActivityPlaybookAction = "playbook.action"
	ActivityPlaybookRecord = "playbook.record"
)

// Step statuses, as expressions see them in steps.<id>.status.
const (
	StepPending   = "pending"
	StepSucceeded = "succeeded"
	StepFailed    = "failed"
	StepSkipped   = "skipped"
)

// Run statuses of a playbook run.
const (
	RunSucceeded = "succeeded"
	RunFailed    = "failed"
)

// PinnedPlaybook is a playbook definition as it was when the run started: a run
// never sees a later version.
type PinnedPlaybook struct {
	Definition playbook.Playbook `json:"definition"`
	Version    int               `json:"version"`
	Hash       string            `json:"hash"`
}

// PlaybookInput starts a PlaybookWorkflow.
type PlaybookInput struct {
	Playbook PinnedPlaybook `json:"playbook"`
	// Callees are the pinned definitions `call` steps may start, by name.
	Callees    map[string]PinnedPlaybook `json:"callees,omitempty"`
	Alert      schemas.Alert             `json:"alert"`
	Detection  triage.Detection          `json:"detection"`
	Enrichment triage.Enrichment         `json:"enrichment"`
	Inputs     map[string]any            `json:"inputs,omitempty"`
	// DryRun records contain and notify actions instead of running them, whatever
	// the playbook's own mode.
	DryRun bool `json:"dry_run,omitempty"`
	// StepBudget bounds the steps one run executes (goto loops); 0 means
	// playbook.MaxSteps.
	StepBudget int `json:"step_budget,omitempty"`
	// AlertID is the alert the run responds to.
	AlertID string `json:"alert_id"`
}

// PlaybookRef names one playbook run.
type PlaybookRef struct {
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
	AlertID    string `json:"alert_id"`
	Playbook   string `json:"playbook"`
	Version    int    `json:"version"`
}

// StepRecord is one step's outcome, for the store.
type StepRecord struct {
	// Name is the step id, with the foreach iteration in brackets when inside one.
	Name       string         `json:"name"`
	Seq        int            `json:"seq"`
	Kind       string         `json:"kind"`
	Status     string         `json:"status"`
	StartedAt  time.Time      `json:"started_at"`
	FinishedAt time.Time      `json:"finished_at"`
	Input      map[string]any `json:"input,omitempty"`
	Output     any            `json:"output,omitempty"`
	Error      string         `json:"error,omitempty"`
}

// ActionInput asks the action activity to run one integration operation.
type ActionInput struct {
	Ref       PlaybookRef    `json:"ref"`
	Step      string         `json:"step"`
	Operation string         `json:"operation"`
	Inputs    map[string]any `json:"inputs"`
	DryRun    bool           `json:"dry_run"`
	// IdempotencyKey is workflow id + run id + step (+ iteration): one action per
	// decision, however often the activity runs.
	IdempotencyKey string `json:"idempotency_key"`
	// Revert runs the inverse of Operation with the same inputs (those it declares).
	Revert bool `json:"revert,omitempty"`
	// Record holds steps finished since the last action, written by this activity
	// so control steps cost no round trip of their own.
	Record []StepRecord `json:"record,omitempty"`
}

// ActionOutput is an action's result.
type ActionOutput struct {
	Output map[string]any `json:"output"`
	// Simulated: a dry run recorded the call instead of making it.
	Simulated bool `json:"simulated,omitempty"`
}

// RecordInput writes steps (and, at the end, the run's outcome) to the store.
type RecordInput struct {
	Ref     PlaybookRef     `json:"ref"`
	Steps   []StepRecord    `json:"steps,omitempty"`
	Result  *PlaybookResult `json:"result,omitempty"`
	Started *time.Time      `json:"started,omitempty"`
}

// PlaybookResult is a finished run.
type PlaybookResult struct {
	Status  string         `json:"status"`
	Message string         `json:"message,omitempty"`
	Outputs map[string]any `json:"outputs,omitempty"`
	Steps   int            `json:"steps"`
}

// Approval is the argument of the decide Update.
type Approval struct {
	Step     string `json:"step"`
	Approved bool   `json:"approved"`
	By       string `json:"by"`
	Reason   string `json:"reason,omitempty"`
}

// PendingApproval is an approval a step waits for.
type PendingApproval struct {
	Step      string         `json:"step"`
	Operation string         `json:"operation"`
	Inputs    map[string]any `json:"inputs"`
	Approvers []string       `json:"approvers"`
	Since     time.Time      `json:"since"`
	Deadline  time.Time      `json:"deadline,omitzero"`
}

// PlaybookState is what the state query returns.
type PlaybookState struct {
	Playbook  string            `json:"playbook"`
	Version   int               `json:"version"`
	Position  []string          `json:"position"`
	Steps     int               `json:"steps"`
	Vars      map[string]any    `json:"vars"`
	Approvals []PendingApproval `json:"approvals,omitempty"`
	Status    string            `json:"status,omitempty"`
}
