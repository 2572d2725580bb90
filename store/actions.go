package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// ClaimAction returns the action recorded under a.IdempotencyKey, inserting a first
// if none exists. created says whether this call inserted it. Every call counts one
// attempt, so the row shows how often the activity ran.
func (s *Store) ClaimAction(ctx context.Context, a *Action) (got Action, created bool, err error) {
	if a.Status == "" {
		a.Status = StatusPending
	}
	a.Attempts = 1
	err = s.atomically(ctx, func(db *gorm.DB) error {
		res := db.Clauses(clause.OnConflict{DoNothing: true}).Create(a)
		if res.Error != nil {
			return fmt.Errorf("store: claim action: %w", res.Error)
		}
		created = res.RowsAffected == 1
		if !created {
			err := db.Model(&Action{}).Where("idempotency_key = ?", a.IdempotencyKey).
				Updates(map[string]any{"attempts": gorm.Expr("attempts + 1"), "updated_at": time.Now().UTC()}).Error
			if err != nil {
				return fmt.Errorf("store: count attempt: %w", err)
			}
		}
		got, err = getAction(db, a.IdempotencyKey)
		return err
	})
	return got, created, err
}

// EndAction settles the action under key when its run gave up on it: an action
// the vendor never accepted (pending) becomes failed; one it accepted but never
// confirmed (running) becomes unconfirmed, since nothing will look at it again. A
// finished action keeps its status; with no row, nothing changes.
func (s *Store) EndAction(ctx context.Context, key string) error {
	return s.atomically(ctx, func(db *gorm.DB) error {
		return endActions(db, "idempotency_key = ?", key)
	})
}

// endActions settles, as EndAction says, the actions where (with args) selects.
func endActions(db *gorm.DB, where string, args ...any) error {
	now := time.Now().UTC()
	for _, end := range [][2]string{{StatusPending, StatusFailed}, {StatusRunning, StatusUnconfirmed}} {
		err := db.Model(&Action{}).Where(where+" AND status = ?", append(args, end[0])...).
			Updates(map[string]any{"status": end[1], "updated_at": now}).Error
		if err != nil {
			return fmt.Errorf("store: end action: %w", err)
		}
	}
	return nil
}

// GetAction returns the action recorded under an idempotency key.
func (s *Store) GetAction(ctx context.Context, key string) (Action, error) {
	return getAction(s.db.WithContext(ctx), key)
}

func getAction(db *gorm.DB, key string) (Action, error) {
	var a Action
	if err := db.Where("idempotency_key = ?", key).Take(&a).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return Action{}, ErrNotFound
		}
		return Action{}, fmt.Errorf("store: get action: %w", err)
	}
	return a, nil
}

// ActionUpdate carries the action columns an attempt sets; zero fields are unchanged.
type ActionUpdate struct {
	Status       string
	VendorID     string
	VendorStatus string
	Error        string
	// VendorCall counts one side-effecting call to the vendor.
	VendorCall bool
	// ClearError empties a previous attempt's error.
	ClearError bool
}

// UpdateAction sets the non-zero fields of u on the action with key.
func (s *Store) UpdateAction(ctx context.Context, key string, u ActionUpdate) error {
	fields := map[string]any{"updated_at": time.Now().UTC()}
	if u.Status != "" {
		fields["status"] = u.Status
	}
	if u.VendorID != "" {
		fields["vendor_id"] = u.VendorID
	}
	if u.VendorStatus != "" {
		fields["vendor_status"] = u.VendorStatus
	}
	if u.Error != "" {
		fields["error"] = u.Error
	} else if u.ClearError {
		fields["error"] = ""
	}
	if u.VendorCall {
		fields["vendor_calls"] = gorm.Expr("vendor_calls + 1")
	}
	return s.update(ctx, "action", key, &Action{}, "idempotency_key = ?", fields)
}
