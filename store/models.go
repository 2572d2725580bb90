package store

import "time"

// Alert statuses.
const (
	AlertProcessing = "processing"
	AlertContained  = "contained"
	AlertResponded  = "responded" // playbooks notified without containing anything
	AlertNoAction   = "no_action"
	AlertFailed     = "failed"
)

// Run and step statuses.
const (
	StatusRunning   = "running"
	StatusSucceeded = "succeeded"
	StatusCompleted = "completed"
	StatusSkipped   = "skipped"
	StatusFailed    = "failed"
	StatusPending   = "pending"
	// StatusCancelled is a step that was under way when its run was cancelled.
	StatusCancelled = "cancelled"
	// StatusUnconfirmed is an action the vendor accepted but had not confirmed done
	// when the run gave up waiting: the host may yet reach the wanted state.
	StatusUnconfirmed = "unconfirmed"
)

// Alert is one alert occurrence: the first delivery of a fingerprint that started a
// workflow run. Its ID is that run's Temporal run id, so a duplicate delivered while
// the run is open resolves to the same alert.
//
// Indexes are few on purpose: every one is another b-tree page written per alert.
// The list reads newest first by received_at and filters the pages it walks.
type Alert struct {
	ID             string    `gorm:"primaryKey;size:64"`
	WorkflowID     string    `gorm:"size:128;not null"`
	Fingerprint    string    `gorm:"size:64;not null"`
	Source         string    `gorm:"size:64;not null"`
	FindingUID     string    `gorm:"size:512"`
	Title          string    `gorm:"type:text"`
	RuleUID        string    `gorm:"size:512"`
	SeverityID     int       `gorm:"not null"`
	Severity       string    `gorm:"size:32"`
	Confidence     int       `gorm:"not null"`
	Status         string    `gorm:"size:32;not null"`
	Summary        string    `gorm:"type:text;not null;default:''"` // why the alert ended as it did, in a line
	EventTime      time.Time `gorm:"not null"`
	ReceivedAt     time.Time `gorm:"not null;index"`
	DuplicateCount int       `gorm:"not null;default:0"`
	LastSeenAt     time.Time `gorm:"not null"`
	// OutcomeAt is when the alert's outcome (contained, responded, no_action,
	// failed) was recorded, by the run's clock; nil while it is processing.
	OutcomeAt *time.Time
	// JSON documents, kept as text so SQLite and PostgreSQL store them alike.
	AlertJSON      string `gorm:"type:text;not null"`
	RawJSON        string `gorm:"type:text"`
	DetectionJSON  string `gorm:"type:text"`
	EnrichmentJSON string `gorm:"type:text"`
	DecisionJSON   string `gorm:"type:text"`
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// MaxEntityValue is the longest entity value alert_entities holds: the size of
// AlertEntity.Value's column.
const MaxEntityValue = 512

// AlertEntity indexes an alert by each entity it names, for "prior alerts about the
// same host/user/IP" lookups. Its one index is both the natural key and a covering
// index for the lookup, so counting never visits the table.
type AlertEntity struct {
	Kind      string    `gorm:"size:32;not null;uniqueIndex:idx_entity_lookup,priority:1"`
	Value     string    `gorm:"size:512;not null;uniqueIndex:idx_entity_lookup,priority:2"`
	EventTime time.Time `gorm:"not null;uniqueIndex:idx_entity_lookup,priority:3"`
	AlertID   string    `gorm:"size:64;not null;uniqueIndex:idx_entity_lookup,priority:4"`
}

// Run is one Temporal workflow run Rampart started.
type Run struct {
	ID           string `gorm:"primaryKey;size:64"` // Temporal run id
	WorkflowID   string `gorm:"size:128;not null"`
	WorkflowType string `gorm:"size:64;not null"`
	AlertID      string `gorm:"size:64"`
	Status       string `gorm:"size:32;not null"`
	Stage        string `gorm:"size:32"`
	Error        string `gorm:"type:text"`
	StartedAt    time.Time
	CompletedAt  *time.Time // the stages finished
	ClosedAt     *time.Time // the workflow closed (after its dedup window)
	DedupUntil   *time.Time
	// Playbook runs: the playbook and version the run is pinned to, whether it was
	// a dry run, and its result (status, message, outputs, actions) as JSON.
	Playbook        string `gorm:"size:64;index"`
	PlaybookVersion int
	DryRun          bool
	ResultJSON      string `gorm:"type:text"`
	// RequestedBy and RequestReason say who started a run on demand, and why;
	// empty for runs an alert's triggers started.
	RequestedBy   string `gorm:"size:128"`
	RequestReason string `gorm:"type:text"`
	UpdatedAt     time.Time
}

// Step is one named stage of a run. (run_id, name) is its natural key.
type Step struct {
	ID         uint64 `gorm:"primaryKey;autoIncrement"`
	RunID      string `gorm:"size:64;not null;uniqueIndex:idx_step_run_name,priority:1"`
	Name       string `gorm:"size:64;not null;uniqueIndex:idx_step_run_name,priority:2"`
	Seq        int    `gorm:"not null"`
	Status     string `gorm:"size:32;not null"`
	StartedAt  time.Time
	FinishedAt *time.Time
	InputJSON  string `gorm:"type:text"`
	OutputJSON string `gorm:"type:text"`
	Error      string `gorm:"type:text"`
	// Note says what became of the run after a failure the step handled.
	Note      string `gorm:"type:text"`
	UpdatedAt time.Time
}

// Action is one side-effecting integration call. IdempotencyKey (workflow id, run
// id and step) makes a retried or replayed activity find the earlier call instead of
// acting again.
type Action struct {
	ID             uint64 `gorm:"primaryKey;autoIncrement"`
	IdempotencyKey string `gorm:"size:256;not null;uniqueIndex"`
	AlertID        string `gorm:"size:64;index"`
	RunID          string `gorm:"size:64"`
	WorkflowID     string `gorm:"size:128"`
	Step           string `gorm:"size:64"`
	Integration    string `gorm:"size:64;not null"`
	Operation      string `gorm:"size:64;not null"`
	Target         string `gorm:"size:512"`
	VendorID       string `gorm:"size:256"`
	Status         string `gorm:"size:32;not null"`
	VendorStatus   string `gorm:"size:64"`
	Attempts       int    `gorm:"not null;default:0"`
	VendorCalls    int    `gorm:"not null;default:0"`
	Error          string `gorm:"type:text"`
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Asset is an inventory record. Hostname (lower-cased) is its natural key.
type Asset struct {
	ID          uint64 `gorm:"primaryKey;autoIncrement"`
	Hostname    string `gorm:"size:255;not null;uniqueIndex"`
	DeviceID    string `gorm:"size:128;index"`
	IP          string `gorm:"size:64;index"`
	Criticality string `gorm:"size:32"`
	Owner       string `gorm:"size:255"`
	Protected   bool   `gorm:"not null;default:false"`
	TagsJSON    string `gorm:"type:text"`
	UpdatedAt   time.Time
}

// IOC is a threat indicator. (type, value) is its natural key; values are stored
// lower-cased.
type IOC struct {
	ID          uint64 `gorm:"primaryKey;autoIncrement"`
	Type        string `gorm:"size:32;not null;uniqueIndex:idx_ioc_type_value,priority:1"`
	Value       string `gorm:"size:512;not null;uniqueIndex:idx_ioc_type_value,priority:2"`
	Source      string `gorm:"size:128"`
	Confidence  int    `gorm:"not null;default:0"`
	Description string `gorm:"type:text"`
	UpdatedAt   time.Time
}

// TableName keeps "iocs" rather than gorm's "io_cs".
func (IOC) TableName() string { return "iocs" }

func allModels() []any {
	return []any{&Alert{}, &AlertEntity{}, &Run{}, &Step{}, &Action{}, &Asset{}, &IOC{}, &Blob{}, &Playbook{}, &PlaybookVersion{}, &Approval{}}
}
