package workflows

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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
	// KeepSignal, carrying an Actor, cancels a pending revert of an action (an
	// analyst keeps the containment).
	KeepSignal = "playbook.keep"
	// EventSignal wakes wait-until steps to re-evaluate their condition; the alert
	// workflow forwards each duplicate delivery.
	EventSignal = "playbook.event"
)

// Actor says who did something to runs from outside, and why: who kept an
// action (the KeepSignal's payload, recorded on the revert's step), or who started
// a run on demand.
type Actor struct {
	By     string `json:"by,omitempty"`
	Reason string `json:"reason,omitempty"`
}

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
	// StepCancelled: the step was under way when its branch was cancelled (a
	// parallel step joined on another branch).
	StepCancelled = "cancelled"
)

// Run statuses of a playbook run.
const (
	RunRunning   = "running"
	RunSucceeded = "succeeded"
	RunFailed    = "failed"
)

// PinnedPlaybook is a playbook definition as it was when the run started: a run
// never sees a later version.
type PinnedPlaybook struct {
	Definition playbook.Playbook `json:"definition"`
	Version    int               `json:"version"`
	Hash       string            `json:"hash"`
	// ZeroOutputs are, per action step id, the zero value of its operation's
	// output: a failed or skipped action's output (see Playbook.ZeroOutputs).
	ZeroOutputs map[string]any `json:"zero_outputs,omitempty"`
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
	// RequestedBy says who started the run on demand, and why; nil when the
	// alert's triggers started it.
	RequestedBy *Actor `json:"requested_by,omitempty"`
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
	// Note says where the run went after the step failed, when its on_error
	// handled the failure: the reader of a failed step should not have to guess
	// whether it stopped the playbook.
	Note string `json:"note,omitempty"`
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
	// ApprovedBy names who approved the action, when its step asked.
	ApprovedBy string `json:"approved_by,omitempty"`
	// Record holds steps finished since the last action, written by this activity
	// so control steps cost no round trip of their own.
	Record []StepRecord `json:"record,omitempty"`
}

// ActionOutput is an action's result.
type ActionOutput struct {
	Output map[string]any `json:"output"`
	// SideEffect is the operation's class: read, notify or contain.
	SideEffect string `json:"side_effect,omitempty"`
	// Simulated: a dry run recorded the call instead of making it.
	Simulated bool `json:"simulated,omitempty"`
}

// RecordInput writes steps (and, at the end, the run's outcome) to the store.
type RecordInput struct {
	Ref     PlaybookRef     `json:"ref"`
	Steps   []StepRecord    `json:"steps,omitempty"`
	Result  *PlaybookResult `json:"result,omitempty"`
	Started *time.Time      `json:"started,omitempty"`
	DryRun  bool            `json:"dry_run,omitempty"` // with Started
	// RequestedBy is who started the run on demand (with Started).
	RequestedBy *Actor `json:"requested_by,omitempty"`
	// Approval is an approval requested, escalated or decided.
	Approval *PendingApproval `json:"approval,omitempty"`
}

// PlaybookResult is a finished run.
type PlaybookResult struct {
	Status  string         `json:"status"`
	Message string         `json:"message,omitempty"`
	Outputs map[string]any `json:"outputs,omitempty"`
	Steps   int            `json:"steps"`
	// Actions are the contain and notify operations the run called or, in a dry
	// run, would have called, in order (a called playbook's included).
	Actions []PerformedAction `json:"actions,omitempty"`
}

// PerformedAction is one side-effecting operation of a run.
type PerformedAction struct {
	Step       string         `json:"step"`
	Operation  string         `json:"operation"`
	SideEffect string         `json:"side_effect"` // contain or notify
	Inputs     map[string]any `json:"inputs,omitempty"`
	Simulated  bool           `json:"simulated,omitempty"`
}

// Approval is the argument of the decide Update.
type Approval struct {
	Step     string `json:"step"`
	Approved bool   `json:"approved"`
	By       string `json:"by"`
	Reason   string `json:"reason,omitempty"`
	// ArgsHash, when set, must equal the pending approval's: a decision taken on
	// other arguments than the step now has does not count.
	ArgsHash string `json:"args_hash,omitempty"`
}

// PendingApproval is an approval a step waits for, and, once decided, its outcome.
type PendingApproval struct {
	// ID names the approval in the store and the API (see ApprovalID).
	ID        string         `json:"id"`
	Step      string         `json:"step"`
	Operation string         `json:"operation"`
	Inputs    map[string]any `json:"inputs"`
	// ArgsHash is the SHA-256 of the operation and its inputs.
	ArgsHash  string    `json:"args_hash"`
	Approvers []string  `json:"approvers"`
	Since     time.Time `json:"since"`
	Deadline  time.Time `json:"deadline,omitzero"`
	// Status is pending, approved, denied, expired or cancelled (the step stopped
	// waiting: its branch was cancelled).
	Status    string    `json:"status"`
	DecidedBy string    `json:"decided_by,omitempty"`
	DecidedAt time.Time `json:"decided_at,omitzero"`
	Reason    string    `json:"reason,omitempty"`
}

// Approval statuses.
const (
	ApprovalPending   = "pending"
	ApprovalApproved  = "approved"
	ApprovalDenied    = "denied"
	ApprovalExpired   = "expired"
	ApprovalCancelled = "cancelled"
)

// ApprovalID names the approval of one step of one run.
func ApprovalID(workflowID, runID, step string) string {
	sum := sha256.Sum256([]byte(workflowID + "\x00" + runID + "\x00" + step))
	return "ap-" + hex.EncodeToString(sum[:12])
}

// ArgsHash binds an approval to an operation and its exact inputs.
func ArgsHash(operation string, inputs map[string]any) string {
	b, _ := json.Marshal(map[string]any{"operation": operation, "inputs": inputs}) // maps marshal in key order
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
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
	// Waiting says, while the run waits out a store outage, since when and why.
	Waiting string `json:"waiting,omitempty"`
}
