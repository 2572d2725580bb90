// Package workflows holds Rampart's Temporal workflow code and nothing else: the
// AlertWorkflow that takes an alert through detect → enrich → decide → contain, and
// the names and payload types its activities, signals and queries use.
//
// Workflow code is deterministic: no time.Now, rand, map ranging, goroutines or I/O.
// It may import the Temporal workflow SDK and the pure packages (schemas, triage,
// policy); never store, integrations, server or activities, which implement the
// activities named here.
package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/rampart-soar/rampart/policy"
	"github.com/rampart-soar/rampart/schemas"
	"github.com/rampart-soar/rampart/triage"
)

// TaskQueue is the queue Rampart's workers poll.
const TaskQueue = "rampart"

// AlertWorkflowName is the registered workflow type.
const AlertWorkflowName = "AlertWorkflow"

// Message names.
const (
	// DuplicateSignal delivers each webhook delivery of the alert's fingerprint
	// that finds its run open. (Runs started by SignalWithStart also got the
	// delivery that started them, which the run does not count.)
	DuplicateSignal = "alert.delivery"
	// StateQuery returns AlertState.
	StateQuery = "state"
)

// Activity names. The activities package registers its methods under these.
const (
	ActivityDetect           = "alert.detect"
	ActivityLookupAsset      = "enrich.asset"
	ActivityMatchIOCs        = "enrich.iocs"
	ActivityCountPriorAlerts = "enrich.prior_alerts"
	ActivityDecide           = "alert.decide"
	ActivityIsolateHost      = "edr.isolate_host"
	ActivityRecordDuplicates = "alert.record_duplicates"
	ActivityFinish           = "alert.finish"
	ActivitySelectPlaybooks  = "alert.select_playbooks"
	ActivityDecideResponse   = "alert.decide_response"
)

// Stage names, recorded as steps in the store.
const (
	StageReceived = "received"
	StageDetect   = "detect"
	StageEnrich   = "enrich"
	StageDecide   = "decide"
	StageContain  = "contain"
	StageDone     = "done"
)

// Outcomes of an alert.
const (
	OutcomeProcessing = "processing"
	OutcomeContained  = "contained"
	OutcomeResponded  = "responded" // playbooks notified without containing anything
	OutcomeNoAction   = "no_action"
	OutcomeFailed     = "failed"
)

// DefaultDedupWindow is how long a run stays open absorbing duplicates.
const DefaultDedupWindow = 10 * time.Minute

// Search attributes of an AlertWorkflow, registered at every boot and set by the
// webhook's start request. The workflow upserts none: on SQLite a visibility write
// costs more than any of its stages, and the store answers "which alerts were
// contained".
var (
	SearchSource   = temporal.NewSearchAttributeKeyKeyword("RampartSource")
	SearchSeverity = temporal.NewSearchAttributeKeyInt64("RampartSeverity")
)

// OwnTypesQuery is a visibility query's condition matching Rampart's runs: its
// alerts, their playbook runs and timed reverts.
const OwnTypesQuery = "WorkflowType IN ('" + AlertWorkflowName + "', '" + PlaybookWorkflowName + "', '" + RevertWorkflowName + "')"

// SearchAttributeKeys lists the keys above, for registration.
func SearchAttributeKeys() []temporal.SearchAttributeKey {
	return []temporal.SearchAttributeKey{SearchSource, SearchSeverity}
}

// AlertInput starts an AlertWorkflow.
type AlertInput struct {
	Alert schemas.Alert `json:"alert"`
	// DeliveryID identifies the webhook delivery that started the run; its own
	// signal carries the same id and is not counted as a duplicate.
	DeliveryID  string        `json:"delivery_id"`
	ReceivedAt  time.Time     `json:"received_at"`
	DedupWindow time.Duration `json:"dedup_window"`
}

// Delivery is the signal payload of one webhook delivery of the alert.
type Delivery struct {
	DeliveryID string    `json:"delivery_id"`
	ReceivedAt time.Time `json:"received_at"`
	FindingUID string    `json:"finding_uid,omitempty"`
}

// AlertRef names the alert and its run. The alert id is the run id (the one the
// run started with: see runIdentity).
type AlertRef struct {
	AlertID    string `json:"alert_id"`
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
}

// runIdentity is the run's workflow id and the run id its records go under: the
// id the execution started with, which a reset keeps. A run reset in Temporal
// replays its first run's history, whose child workflow ids, records and action
// keys name that id; under its own new id it would fail its replay, write to an
// alert the store does not have, and key its actions anew.
func runIdentity(ctx workflow.Context) (workflowID, runID string) {
	info := workflow.GetInfo(ctx)
	runID = info.OriginalRunID
	if runID == "" {
		runID = info.WorkflowExecution.RunID
	}
	return info.WorkflowExecution.ID, runID
}

// DetectInput records the alert and runs the detect stage.
type DetectInput struct {
	Ref        AlertRef      `json:"ref"`
	Alert      schemas.Alert `json:"alert"`
	ReceivedAt time.Time     `json:"received_at"`
	StartedAt  time.Time     `json:"started_at"`
	DedupUntil time.Time     `json:"dedup_until"`
}

// DetectOutput is the detect stage's result.
type DetectOutput struct {
	Detection triage.Detection `json:"detection"`
	Attacks   []schemas.Attack `json:"attacks"`
}

// EnrichInput is what each enrichment lookup reads.
type EnrichInput struct {
	Ref   AlertRef      `json:"ref"`
	Alert schemas.Alert `json:"alert"`
}

// DecideInput records the enrichment and decides how to respond: by choosing the
// playbooks that respond or, with none enabled, by decide.contain_when
// (ActivityDecideResponse; runs recorded before it call ActivitySelectPlaybooks and
// ActivityDecide in turn).
type DecideInput struct {
	Ref            AlertRef          `json:"ref"`
	Alert          schemas.Alert     `json:"alert"`
	Detection      triage.Detection  `json:"detection"`
	Enrichment     triage.Enrichment `json:"enrichment"`
	EnrichStarted  time.Time         `json:"enrich_started"`
	EnrichFinished time.Time         `json:"enrich_finished"`
	DecideStarted  time.Time         `json:"decide_started"`
	// Contain is the isolation the contain rule would ask for. When the rule says
	// contain, the decision's transaction claims its action, so the isolate
	// activity's first attempt can call the vendor without a write of its own.
	Contain *ContainInput `json:"contain,omitempty"`
}

// ContainInput asks the EDR to isolate a host.
type ContainInput struct {
	Ref      AlertRef `json:"ref"`
	DeviceID string   `json:"device_id"`
	Hostname string   `json:"hostname,omitempty"`
	// IdempotencyKey is workflow id + run id + step: one decision, one action.
	IdempotencyKey string    `json:"idempotency_key"`
	StartedAt      time.Time `json:"started_at"`
	// Claimed says the decision claimed the action under IdempotencyKey itself,
	// just now: no attempt has called the vendor for it before this activity's
	// first.
	Claimed bool `json:"claimed,omitempty"`
}

// ContainOutput is the recorded result of the isolate action.
type ContainOutput struct {
	Integration    string `json:"integration"`
	Operation      string `json:"operation"`
	Target         string `json:"target"`
	VendorActionID string `json:"vendor_action_id,omitempty"`
	// Status is the vendor's final host status ("contained").
	Status string `json:"status"`
	// AlreadyContained: the host was contained before this action asked.
	AlreadyContained bool `json:"already_contained,omitempty"`
}

// DuplicatesInput records the duplicate count.
type DuplicatesInput struct {
	AlertID  string    `json:"alert_id"`
	Count    int       `json:"count"`
	LastSeen time.Time `json:"last_seen"`
}

// SelectOutput is the selection: the matching playbooks in priority order, pinned,
// with every playbook their calls reach.
type SelectOutput struct {
	// Configured is false when no playbook is enabled at all: the alert is then
	// decided by decide.contain_when.
	Configured bool                      `json:"configured"`
	Playbooks  []PinnedPlaybook          `json:"playbooks,omitempty"`
	Callees    map[string]PinnedPlaybook `json:"callees,omitempty"`
	// Triggers says, per enabled playbook considered, whether its trigger matched.
	Triggers []TriggerResult `json:"triggers,omitempty"`
}

// ResponseDecision is how an alert is answered: by the selected playbooks when
// any is enabled, else by the contain rule's verdict.
type ResponseDecision struct {
	Selection SelectOutput `json:"selection"`
	// Verdict is set when no playbook is enabled (Selection.Configured is false).
	Verdict *policy.Verdict `json:"verdict,omitempty"`
	// ClaimedAction is the idempotency key of the isolation (DecideInput.Contain)
	// the decision claimed in its own transaction, when it claimed one.
	ClaimedAction string `json:"claimed_action,omitempty"`
}

// TriggerResult is one playbook's trigger evaluated on the alert.
type TriggerResult struct {
	Playbook string `json:"playbook"`
	Version  int    `json:"version"`
	Matched  bool   `json:"matched"`
	Error    string `json:"error,omitempty"`
	// Stopped: an earlier playbook with stop_on_match matched first.
	Stopped bool `json:"stopped,omitempty"`
}

// PlaybookRunState is one playbook run an alert started.
type PlaybookRunState struct {
	Playbook   string            `json:"playbook"`
	Version    int               `json:"version"`
	WorkflowID string            `json:"workflow_id"`
	Status     string            `json:"status"` // running, succeeded, failed
	Message    string            `json:"message,omitempty"`
	Actions    []PerformedAction `json:"actions,omitempty"`
}

// FinishInput records an alert's outcome, and later its close.
type FinishInput struct {
	Ref     AlertRef `json:"ref"`
	Outcome string   `json:"outcome"`
	Error   string   `json:"error,omitempty"`
	// FailedStage is the stage whose step failed, if any.
	FailedStage string `json:"failed_stage,omitempty"`
	// SkipContain records the contain step as skipped, with this reason.
	SkipContain string `json:"skip_contain,omitempty"`
	// Playbooks, when set, are recorded as the contain step's outcome; the step
	// started at RespondStarted.
	Playbooks      []PlaybookRunState `json:"playbooks,omitempty"`
	RespondStarted time.Time          `json:"respond_started,omitzero"`
	At             time.Time          `json:"at"`
	// Closed marks the end of the dedup window: the workflow is about to close.
	Closed bool `json:"closed,omitempty"`
	// ReceivedAt is when the webhook took the alert: the outcome's metrics
	// time the alert from it.
	ReceivedAt time.Time `json:"received_at,omitzero"`
	Duplicates int       `json:"duplicates"`
	LastSeen   time.Time `json:"last_seen"`
}

// AlertState is what the state query returns.
type AlertState struct {
	Stage    string          `json:"stage"`
	Outcome  string          `json:"outcome"`
	Decision *policy.Verdict `json:"decision,omitempty"`
	Action   *ContainOutput  `json:"action,omitempty"`
	// Playbooks are the playbook runs the alert started.
	Playbooks  []PlaybookRunState `json:"playbooks,omitempty"`
	Duplicates int                `json:"duplicates"`
	LastSeen   time.Time          `json:"last_seen"`
	DedupUntil time.Time          `json:"dedup_until"`
	Error      string             `json:"error,omitempty"`
	// Waiting says, while the run waits out a store outage, since when and why.
	Waiting string `json:"waiting,omitempty"`
}

// AlertResult is the workflow's result.
type AlertResult struct {
	AlertID    string         `json:"alert_id"`
	Outcome    string         `json:"outcome"`
	Action     *ContainOutput `json:"action,omitempty"`
	Duplicates int            `json:"duplicates"`
}

// Registry is the part of a Temporal worker workflows register with.
type Registry interface {
	RegisterWorkflowWithOptions(w any, options workflow.RegisterOptions)
}

// Register registers Rampart's workflows under their stable names.
func Register(r Registry) {
	r.RegisterWorkflowWithOptions(AlertWorkflow, workflow.RegisterOptions{Name: AlertWorkflowName})
	r.RegisterWorkflowWithOptions(PlaybookWorkflow, workflow.RegisterOptions{Name: PlaybookWorkflowName})
	r.RegisterWorkflowWithOptions(RevertWorkflow, workflow.RegisterOptions{Name: RevertWorkflowName})
}

// IdempotencyKey is the key of a run's action at one step.
func IdempotencyKey(ref AlertRef, step string) string {
	return stepKey(ref.WorkflowID, ref.RunID, step)
}

// ActionKey is the idempotency key of a playbook run's action step (or of its
// revert): workflow id + run id + step, one action per step of a run.
func ActionKey(ref PlaybookRef, step string) string { return stepKey(ref.WorkflowID, ref.RunID, step) }

func stepKey(workflowID, runID, step string) string { return workflowID + "/" + runID + "/" + step }
