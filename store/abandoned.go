package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// RunEnd is how a run ended that never recorded its own end: Temporal closed
// its workflow (terminated, cancelled, timed out, or failed while the store was
// away), so no activity of the run was left to write it.
type RunEnd struct {
	RunID  string
	At     time.Time
	Reason string // why it ended, as a person reads it
}

// RunsAmong returns the runs the store has among ids, open or closed.
func (s *Store) RunsAmong(ctx context.Context, ids []string) ([]Run, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var runs []Run
	if err := s.db.WithContext(ctx).Where("id IN ?", ids).Find(&runs).Error; err != nil {
		return nil, fmt.Errorf("store: runs: %w", err)
	}
	return runs, nil
}

// EndAbandonedRun records end for a run whose workflow closed without saying so,
// in one transaction: the run closes, failed with the reason unless its stages
// had finished; its unfinished steps are cancelled; its unsettled actions end as
// EndAction ends them; its pending approvals are cancelled; and the alert it
// was processing fails with the reason. It reports false, changing nothing, when
// the run is unknown or already closed (the run itself, or another process's
// sweep, got there first).
func (s *Store) EndAbandonedRun(ctx context.Context, end RunEnd) (ended bool, err error) {
	at, now := end.At.UTC(), time.Now().UTC()
	err = s.atomically(ctx, func(db *gorm.DB) error {
		var run Run
		if err := db.Where("id = ? AND closed_at IS NULL", end.RunID).Take(&run).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return nil
			}
			return fmt.Errorf("store: abandoned run: %w", err)
		}
		// The closing write decides which of two concurrent sweeps records the end.
		res := db.Model(&Run{}).Where("id = ? AND closed_at IS NULL", run.ID).
			Updates(map[string]any{"closed_at": at, "updated_at": now})
		if res.Error != nil {
			return fmt.Errorf("store: close run: %w", res.Error)
		}
		if ended = res.RowsAffected == 1; !ended {
			return nil
		}
		// Each write: what it ends, where (the run's id, then the statuses it
		// ends), and what it sets.
		type write struct {
			what     string
			model    any
			where    string
			statuses []string
			fields   map[string]any
		}
		writes := []write{
			{"run", &Run{}, "id = ?", []string{StatusRunning},
				map[string]any{"status": StatusFailed, "error": end.Reason}},
			{"steps", &Step{}, "run_id = ?", []string{StatusRunning, StatusPending},
				map[string]any{"status": StatusCancelled, "finished_at": at, "note": end.Reason}},
			{"approvals", &Approval{}, "run_id = ?", []string{ApprovalPending},
				map[string]any{"status": ApprovalCancelled, "decided_at": at, "reason": end.Reason}},
		}
		if run.Playbook == "" && run.AlertID == run.ID { // the run that processed the alert
			writes = append(writes, write{"alert", &Alert{}, "id = ?", []string{AlertProcessing},
				map[string]any{"status": AlertFailed, "summary": "failed: " + end.Reason}})
		}
		for _, w := range writes {
			w.fields["updated_at"] = now
			err := db.Model(w.model).Where(w.where+" AND status IN ?", run.ID, w.statuses).Updates(w.fields).Error
			if err != nil {
				return fmt.Errorf("store: end abandoned %s: %w", w.what, err)
			}
		}
		return endActions(db, "run_id = ?", run.ID)
	})
	return ended, err
}

// EndAbandonedRevert records that the timed revert step (a step name ending in
// workflows.RevertStepSuffix) of the playbook run with workflow id
// playbookWorkflowID will not run: its workflow closed before recording an end
// (terminated or cancelled in Temporal). A pending revert step is cancelled with
// the reason, and its inverse action, if it had begun, ends as EndAction ends
// it. It reports false, changing nothing, when no such revert is pending.
func (s *Store) EndAbandonedRevert(ctx context.Context, playbookWorkflowID, step string, at time.Time, reason string) (ended bool, err error) {
	now := time.Now().UTC()
	err = s.atomically(ctx, func(db *gorm.DB) error {
		runs := db.Session(&gorm.Session{NewDB: true}).Model(&Run{}).Select("id").Where("workflow_id = ?", playbookWorkflowID)
		res := db.Model(&Step{}).Where("name = ? AND status = ? AND run_id IN (?)", step, StatusPending, runs).
			Updates(map[string]any{"status": StatusCancelled, "finished_at": at.UTC(), "note": reason, "updated_at": now})
		if res.Error != nil {
			return fmt.Errorf("store: end abandoned revert: %w", res.Error)
		}
		if ended = res.RowsAffected > 0; !ended {
			return nil
		}
		return endActions(db, "step = ? AND run_id IN (?)", step, runs)
	})
	return ended, err
}
