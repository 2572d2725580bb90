package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

func upsertRun(tx *gorm.DB, r *Run) error {
	r.StartedAt = r.StartedAt.UTC()
	err := tx.Clauses(clause.OnConflict{
		Columns: []clause.Column{{Name: "id"}},
		DoUpdates: clause.AssignmentColumns([]string{"workflow_id", "workflow_type", "alert_id", "started_at", "dedup_until",
			"playbook", "playbook_version", "dry_run", "requested_by", "request_reason", "updated_at"}),
	}).Create(r).Error
	if err != nil {
		return fmt.Errorf("store: upsert run: %w", err)
	}
	return nil
}

// RunUpdate carries the run columns a later stage sets; zero fields are unchanged.
type RunUpdate struct {
	Status      string
	Stage       string
	Error       string
	CompletedAt *time.Time
	ClosedAt    *time.Time
	ResultJSON  string
}

// UpdateRun sets the non-zero fields of u.
func (s *Store) UpdateRun(ctx context.Context, id string, u RunUpdate) error {
	fields := map[string]any{"updated_at": time.Now().UTC()}
	if u.Status != "" {
		fields["status"] = u.Status
	}
	if u.Stage != "" {
		fields["stage"] = u.Stage
	}
	if u.Error != "" {
		fields["error"] = u.Error
	}
	if u.CompletedAt != nil {
		fields["completed_at"] = u.CompletedAt.UTC()
	}
	if u.ClosedAt != nil {
		fields["closed_at"] = u.ClosedAt.UTC()
	}
	if u.ResultJSON != "" {
		fields["result_json"] = u.ResultJSON
	}
	return s.update(ctx, "run", id, &Run{}, "id = ?", fields)
}

// SaveStep upserts a step by (run id, name). Empty input/output/error leave the
// stored ones in place, so a "finished" write need not repeat the "started" one.
func (s *Store) SaveStep(ctx context.Context, st *Step) error {
	st.StartedAt = st.StartedAt.UTC()
	if st.FinishedAt != nil {
		t := st.FinishedAt.UTC()
		st.FinishedAt = &t
	}
	update := []string{"status", "seq", "started_at", "finished_at", "updated_at"}
	if st.InputJSON != "" {
		update = append(update, "input_json")
	}
	if st.OutputJSON != "" {
		update = append(update, "output_json")
	}
	if st.Error != "" {
		update = append(update, "error")
	}
	if st.Note != "" {
		update = append(update, "note")
	}
	err := s.atomically(ctx, func(db *gorm.DB) error {
		return db.Clauses(clause.OnConflict{
			Columns:   []clause.Column{{Name: "run_id"}, {Name: "name"}},
			DoUpdates: clause.AssignmentColumns(update),
		}).Create(st).Error
	})
	if err != nil {
		return fmt.Errorf("store: save step: %w", err)
	}
	return nil
}

// StepStartedAt returns when a step started, or ErrNotFound.
func (s *Store) StepStartedAt(ctx context.Context, runID, name string) (time.Time, error) {
	var st Step
	err := s.db.WithContext(ctx).Select("started_at").Where("run_id = ? AND name = ?", runID, name).Take(&st).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return time.Time{}, ErrNotFound
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("store: step: %w", err)
	}
	return st.StartedAt, nil
}

// SaveRun upserts a run by id; later calls change its status and times through
// UpdateRun.
func (s *Store) SaveRun(ctx context.Context, r *Run) error {
	return s.atomically(ctx, func(db *gorm.DB) error { return upsertRun(db, r) })
}

// Blob is a large value kept out of the rows that refer to it, by content hash.
type Blob struct {
	ID        string `gorm:"primaryKey;size:64"` // hex SHA-256 of Content
	Size      int    `gorm:"not null"`
	Content   []byte `gorm:"not null"`
	CreatedAt time.Time
}

// SaveBlob stores content once and returns its reference, "blob:<sha256>".
func (s *Store) SaveBlob(ctx context.Context, content []byte) (string, error) {
	sum := sha256.Sum256(content)
	id := hex.EncodeToString(sum[:])
	err := s.atomically(ctx, func(db *gorm.DB) error {
		return db.Clauses(clause.OnConflict{DoNothing: true}).Create(&Blob{ID: id, Size: len(content), Content: content}).Error
	})
	if err != nil {
		return "", fmt.Errorf("store: save blob: %w", err)
	}
	return "blob:" + id, nil
}

// GetBlob returns the content behind a "blob:<sha256>" reference.
func (s *Store) GetBlob(ctx context.Context, ref string) ([]byte, error) {
	id, ok := strings.CutPrefix(ref, "blob:")
	if !ok {
		return nil, fmt.Errorf("store: %q is not a blob reference", ref)
	}
	var b Blob
	if err := s.db.WithContext(ctx).Where("id = ?", id).Take(&b).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, ErrNotFound
		}
		return nil, fmt.Errorf("store: get blob: %w", err)
	}
	return b.Content, nil
}

// RunSteps returns a run's steps in order.
func (s *Store) RunSteps(ctx context.Context, runID string) ([]Step, error) {
	var steps []Step
	if err := s.db.WithContext(ctx).Where("run_id = ?", runID).Order("seq, id").Find(&steps).Error; err != nil {
		return nil, fmt.Errorf("store: run steps: %w", err)
	}
	return steps, nil
}

// PlaybookRun is a playbook run with its steps.
type PlaybookRun struct {
	Run   Run
	Steps []Step
}

// AlertPlaybookRuns returns the playbook runs an alert started, in start order,
// with their steps.
func (s *Store) AlertPlaybookRuns(ctx context.Context, alertID string) ([]PlaybookRun, error) {
	var runs []Run
	err := s.db.WithContext(ctx).Where("alert_id = ? AND playbook <> ''", alertID).Order("started_at, id").Find(&runs).Error
	if err != nil {
		return nil, fmt.Errorf("store: playbook runs: %w", err)
	}
	out := make([]PlaybookRun, len(runs))
	for i, r := range runs {
		steps, err := s.RunSteps(ctx, r.ID)
		if err != nil {
			return nil, err
		}
		out[i] = PlaybookRun{Run: r, Steps: steps}
	}
	return out, nil
}
