package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Approval statuses.
const (
	ApprovalPending  = "pending"
	ApprovalApproved = "approved"
	ApprovalDenied   = "denied"
	ApprovalExpired  = "expired"
	// ApprovalCancelled: the step stopped waiting (its branch was cancelled).
	ApprovalCancelled = "cancelled"
)

// Approval mirrors an approval a playbook step waits for, for the inbox. The
// workflow holds the truth; this row is written by its activities.
type Approval struct {
	ID         string `gorm:"primaryKey;size:64"`
	AlertID    string `gorm:"size:64;index"`
	WorkflowID string `gorm:"size:160;not null"`
	RunID      string `gorm:"size:64;not null"`
	Playbook   string `gorm:"size:64;not null"`
	Step       string `gorm:"size:128;not null"`
	Operation  string `gorm:"size:128;not null"`
	// InputsJSON are the action's inputs, secrets redacted; ArgsHash binds the
	// approval to exactly them.
	InputsJSON    string `gorm:"type:text"`
	ArgsHash      string `gorm:"size:64;not null"`
	ApproversJSON string `gorm:"type:text"`
	Status        string `gorm:"size:16;not null;index"`
	RequestedAt   time.Time
	Deadline      *time.Time
	DecidedBy     string `gorm:"size:128"`
	DecidedAt     *time.Time
	Reason        string `gorm:"type:text"`
	UpdatedAt     time.Time
}

// SaveApproval upserts an approval by id. A decided approval stays decided: a
// late "pending" write (a retried activity) does not reopen it.
func (s *Store) SaveApproval(ctx context.Context, a *Approval) error {
	a.RequestedAt = a.RequestedAt.UTC()
	return s.atomically(ctx, func(tx *gorm.DB) error {
		var cur Approval
		err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Where("id = ?", a.ID).Take(&cur).Error
		switch {
		case errors.Is(err, gorm.ErrRecordNotFound):
			if err := tx.Create(a).Error; err != nil {
				return fmt.Errorf("store: save approval: %w", err)
			}
			return nil
		case err != nil:
			return fmt.Errorf("store: save approval: %w", err)
		case cur.Status != ApprovalPending && a.Status == ApprovalPending:
			return nil
		}
		if err := tx.Model(&Approval{}).Where("id = ?", a.ID).Select("*").Omit("requested_at").Updates(a).Error; err != nil {
			return fmt.Errorf("store: save approval: %w", err)
		}
		return nil
	})
}

// GetApproval returns one approval.
func (s *Store) GetApproval(ctx context.Context, id string) (Approval, error) {
	var a Approval
	if err := s.db.WithContext(ctx).Where("id = ?", id).Take(&a).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return Approval{}, ErrNotFound
		}
		return Approval{}, fmt.Errorf("store: get approval: %w", err)
	}
	return a, nil
}

// PendingApprovalsFor returns the pending approvals of the given alerts, oldest
// first.
func (s *Store) PendingApprovalsFor(ctx context.Context, alertIDs []string) ([]Approval, error) {
	if len(alertIDs) == 0 {
		return nil, nil
	}
	var out []Approval
	err := s.db.WithContext(ctx).Where("status = ? AND alert_id IN ?", ApprovalPending, alertIDs).
		Order("requested_at, id").Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("store: pending approvals: %w", err)
	}
	return out, nil
}

// CountApprovals counts the approvals with the given status (all when empty).
func (s *Store) CountApprovals(ctx context.Context, status string) (int64, error) {
	q := s.db.WithContext(ctx).Model(&Approval{})
	if status != "" {
		q = q.Where("status = ?", status)
	}
	var n int64
	if err := q.Count(&n).Error; err != nil {
		return 0, fmt.Errorf("store: count approvals: %w", err)
	}
	return n, nil
}

// OldestApproval is when the oldest approval with status was requested; ok is
// false when there is none.
func (s *Store) OldestApproval(ctx context.Context, status string) (at time.Time, ok bool, err error) {
	var row Approval
	err = s.db.WithContext(ctx).Select("requested_at").Where("status = ?", status).Order("requested_at").Limit(1).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("store: oldest approval: %w", err)
	}
	return row.RequestedAt.UTC(), true, nil
}

// ListApprovals returns approvals, newest first, with the given status (any when
// empty), at most limit.
func (s *Store) ListApprovals(ctx context.Context, status string, limit int) ([]Approval, error) {
	q := s.db.WithContext(ctx).Order("requested_at DESC, id")
	if status != "" {
		q = q.Where("status = ?", status)
	}
	if limit > 0 {
		q = q.Limit(limit)
	}
	var out []Approval
	if err := q.Find(&out).Error; err != nil {
		return nil, fmt.Errorf("store: list approvals: %w", err)
	}
	return out, nil
}
