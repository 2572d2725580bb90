package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

func upsertRun(tx *gorm.DB, r *Run) error {
	r.StartedAt = r.StartedAt.UTC()
	err := tx.Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "id"}},
		DoUpdates: clause.AssignmentColumns([]string{"workflow_id", "workflow_type", "alert_id", "started_at", "dedup_until", "updated_at"}),
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
	res := s.db.WithContext(ctx).Model(&Run{}).Where("id = ?", id).Updates(fields)
	if res.Error != nil {
		return fmt.Errorf("store: update run: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("store: update run %s: %w", id, ErrNotFound)
	}
	return nil
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
	err := s.db.WithContext(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "run_id"}, {Name: "name"}},
		DoUpdates: clause.AssignmentColumns(update),
	}).Create(st).Error
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
