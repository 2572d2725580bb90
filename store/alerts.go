package store

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/rampart-soar/rampart/schemas"
)

// RecordAlert upserts an alert, its entity index and its run in one transaction.
// Replaying it with the same values changes nothing.
func (s *Store) RecordAlert(ctx context.Context, a *Alert, entities []schemas.Entity, run *Run) error {
	a.EventTime, a.ReceivedAt, a.LastSeenAt = a.EventTime.UTC(), a.ReceivedAt.UTC(), a.LastSeenAt.UTC()
	return s.atomically(ctx, func(tx *gorm.DB) error {
		err := tx.Clauses(clause.OnConflict{
			Columns: []clause.Column{{Name: "id"}},
			DoUpdates: clause.AssignmentColumns([]string{
				"workflow_id", "fingerprint", "source", "finding_uid", "title", "rule_uid",
				"severity_id", "severity", "confidence", "event_time", "received_at",
				"alert_json", "raw_json", "detection_json", "updated_at",
			}),
		}).Create(a).Error
		if err != nil {
			return fmt.Errorf("store: upsert alert: %w", err)
		}
		if len(entities) > 0 {
			rows := make([]AlertEntity, 0, len(entities))
			for _, e := range entities {
				rows = append(rows, AlertEntity{AlertID: a.ID, Kind: e.Kind, Value: e.Value, EventTime: a.EventTime})
			}
			if err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&rows).Error; err != nil {
				return fmt.Errorf("store: alert entities: %w", err)
			}
		}
		if run != nil {
			if err := upsertRun(tx, run); err != nil {
				return err
			}
		}
		return nil
	})
}

// AlertUpdate carries the alert columns a later stage sets; empty fields are left
// unchanged.
type AlertUpdate struct {
	Status         string
	Summary        string
	EnrichmentJSON string
	DecisionJSON   string
	OutcomeAt      *time.Time
}

// UpdateAlert sets the non-empty fields of u.
func (s *Store) UpdateAlert(ctx context.Context, id string, u AlertUpdate) error {
	fields := map[string]any{}
	if u.Status != "" {
		fields["status"] = u.Status
	}
	if u.Summary != "" {
		fields["summary"] = u.Summary
	}
	if u.EnrichmentJSON != "" {
		fields["enrichment_json"] = u.EnrichmentJSON
	}
	if u.DecisionJSON != "" {
		fields["decision_json"] = u.DecisionJSON
	}
	if u.OutcomeAt != nil {
		fields["outcome_at"] = u.OutcomeAt.UTC()
	}
	if len(fields) == 0 {
		return nil
	}
	fields["updated_at"] = time.Now().UTC()
	return s.update(ctx, "alert", id, &Alert{}, "id = ?", fields)
}

// SetDuplicates records how many duplicates an alert absorbed. The count only grows,
// so a late retry of an older write cannot lower it.
func (s *Store) SetDuplicates(ctx context.Context, id string, count int, lastSeen time.Time) error {
	err := s.atomically(ctx, func(db *gorm.DB) error {
		return db.Model(&Alert{}).
			Where("id = ? AND duplicate_count <= ?", id, count).
			Updates(map[string]any{"duplicate_count": count, "last_seen_at": lastSeen.UTC(), "updated_at": time.Now().UTC()}).Error
	})
	if err != nil {
		return fmt.Errorf("store: set duplicates: %w", err)
	}
	return nil
}

// MaxPriorAlerts caps CountPriorAlerts: a hash seen on every host of a fleet should
// cost a bounded lookup, and "100 or more" says all a decision needs. The cost of
// the count grows with the cap (1.8 ms at 1,000 against 0.2 ms at 100 on SQLite,
// store BenchmarkCountPriorAlerts), and every alert of a campaign pays it.
const MaxPriorAlerts = 100

// CountPriorAlerts counts alerts other than excludeID that name any of the entities
// and whose event time lies in [since, until], up to MaxPriorAlerts.
func (s *Store) CountPriorAlerts(ctx context.Context, entities []schemas.Entity, since, until time.Time, excludeID string) (int, error) {
	if len(entities) == 0 {
		return 0, nil
	}
	// Plain SQL, the same text for the same number of entities, so the prepared
	// statement is reused; building it through gorm's subquery API cost more
	// than the query itself on a small table.
	var q strings.Builder
	q.WriteString("SELECT COUNT(*) FROM (SELECT DISTINCT alert_id FROM alert_entities WHERE (")
	args := make([]any, 0, 2*len(entities)+4)
	for i, e := range entities {
		if i > 0 {
			q.WriteString(" OR ")
		}
		q.WriteString("(kind = ? AND value = ?)")
		args = append(args, e.Kind, e.Value)
	}
	q.WriteString(") AND event_time >= ? AND event_time <= ? AND alert_id <> ? LIMIT ?) AS prior")
	args = append(args, since.UTC(), until.UTC(), excludeID, MaxPriorAlerts)
	var n int64
	if err := s.db.WithContext(ctx).Raw(q.String(), args...).Row().Scan(&n); err != nil {
		return 0, fmt.Errorf("store: prior alerts: %w", err)
	}
	return int(n), nil
}

// AlertFilter selects alerts for listing.
type AlertFilter struct {
	Status      string
	SeverityID  *int
	MinSeverity *int
	Source      string
	// Entity keeps alerts naming this value as any of their entities (hostname,
	// device id, IP, user, hash, domain, URL); compared as entities are recorded,
	// trimmed and in lower case.
	Entity string
	// Rule keeps alerts whose title or rule uid is exactly this: every alert of
	// one detection rule.
	Rule string
	// Since keeps alerts received at or after it.
	Since  time.Time
	Limit  int
	Cursor string
}

// ErrBadCursor is returned for a cursor this store did not issue.
var ErrBadCursor = errors.New("invalid cursor")

// ListAlerts returns alerts newest first (by receive time) and the cursor of the next
// page, empty on the last one.
func (s *Store) ListAlerts(ctx context.Context, f AlertFilter) ([]Alert, string, error) {
	if f.Limit <= 0 || f.Limit > 200 {
		f.Limit = 50
	}
	q := s.db.WithContext(ctx).Model(&Alert{}).Omit("raw_json")
	if f.Status != "" {
		q = q.Where("status = ?", f.Status)
	}
	if f.SeverityID != nil {
		q = q.Where("severity_id = ?", *f.SeverityID)
	}
	if f.MinSeverity != nil {
		q = q.Where("severity_id >= ?", *f.MinSeverity)
	}
	if f.Source != "" {
		q = q.Where("source = ?", f.Source)
	}
	if f.Rule != "" {
		q = q.Where("title = ? OR rule_uid = ?", f.Rule, f.Rule)
	}
	if !f.Since.IsZero() {
		q = q.Where("received_at >= ?", f.Since.UTC())
	}
	if v := schemas.EntityValue(f.Entity); v != "" {
		// Every kind named, so the lookup walks the entity index (kind, value, …).
		q = q.Where("id IN (?)", s.db.Model(&AlertEntity{}).Select("alert_id").
			Where("kind IN ? AND value = ?", schemas.EntityKinds(), v))
	}
	if f.Cursor != "" {
		t, id, err := decodeCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		q = q.Where("received_at < ? OR (received_at = ? AND id < ?)", t, t, id)
	}
	var rows []Alert
	if err := q.Order("received_at DESC, id DESC").Limit(f.Limit + 1).Find(&rows).Error; err != nil {
		return nil, "", fmt.Errorf("store: list alerts: %w", err)
	}
	next := ""
	if len(rows) > f.Limit {
		rows = rows[:f.Limit]
		last := rows[len(rows)-1]
		next = encodeCursor(last.ReceivedAt, last.ID)
	}
	return rows, next, nil
}

func encodeCursor(t time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(t.UTC().Format(time.RFC3339Nano) + "|" + id))
}

func decodeCursor(c string) (time.Time, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, "", ErrBadCursor
	}
	ts, id, ok := strings.Cut(string(b), "|")
	if !ok || id == "" {
		return time.Time{}, "", ErrBadCursor
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return time.Time{}, "", ErrBadCursor
	}
	return t.UTC(), id, nil
}

// AlertDetail is an alert with everything recorded about its run.
type AlertDetail struct {
	Alert   Alert
	Run     *Run
	Steps   []Step
	Actions []Action
	// Playbooks are the playbook runs the alert started.
	Playbooks []PlaybookRun
	// Approvals are those its playbook runs asked for, oldest first, decided or
	// not: the alert's audit of who allowed what.
	Approvals []Approval
}

// GetAlert returns an alert with its run, steps (in stage order), actions,
// playbook runs and approvals.
func (s *Store) GetAlert(ctx context.Context, id string) (*AlertDetail, error) {
	d := &AlertDetail{}
	// One snapshot: the alert, its run and its steps read while an activity records
	// the outcome would otherwise show a run completed beside an alert in progress.
	err := s.readConsistently(ctx, func(tx *Store) error {
		db := tx.db.WithContext(ctx)
		if err := db.Where("id = ?", id).Take(&d.Alert).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return ErrNotFound
			}
			return fmt.Errorf("store: get alert: %w", err)
		}
		var run Run
		switch err := db.Where("id = ?", id).Take(&run).Error; {
		case err == nil:
			d.Run = &run
		case !errors.Is(err, gorm.ErrRecordNotFound):
			return fmt.Errorf("store: get run: %w", err)
		}
		steps, err := tx.RunSteps(ctx, id)
		if err != nil {
			return err
		}
		d.Steps = steps
		if err := db.Where("alert_id = ?", id).Order("id").Find(&d.Actions).Error; err != nil {
			return fmt.Errorf("store: get actions: %w", err)
		}
		if d.Playbooks, err = tx.AlertPlaybookRuns(ctx, id); err != nil {
			return err
		}
		if err := db.Where("alert_id = ?", id).Order("requested_at, id").Find(&d.Approvals).Error; err != nil {
			return fmt.Errorf("store: get approvals: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// AlertHeadline is what a view of something else (an approval) shows of the alert
// behind it: enough to know what is at stake without opening the alert.
type AlertHeadline struct {
	Title      string
	Severity   string
	SeverityID int
	Status     string
	Hostname   string
	User       string
}

// AlertHeadlines returns the headlines of the given alerts by id; an unknown id
// is left out.
func (s *Store) AlertHeadlines(ctx context.Context, ids []string) (map[string]AlertHeadline, error) {
	out := make(map[string]AlertHeadline, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	var rows []Alert
	err := s.db.WithContext(ctx).Select("id", "title", "severity", "severity_id", "status", "alert_json").
		Where("id IN ?", ids).Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("store: alert headlines: %w", err)
	}
	for _, r := range rows {
		hostname, user := r.Subject()
		out[r.ID] = AlertHeadline{Title: r.Title, Severity: r.Severity, SeverityID: r.SeverityID,
			Status: r.Status, Hostname: hostname, User: user}
	}
	return out, nil
}

// Subject is the host and the user the alert is about, read from the recorded
// alert (AlertJSON must have been selected); a record that does not parse has
// neither.
func (a *Alert) Subject() (hostname, user string) {
	var subject struct {
		Device schemas.Device `json:"device"`
		User   schemas.User   `json:"user"`
	}
	_ = json.Unmarshal([]byte(a.AlertJSON), &subject)
	return subject.Device.Hostname, subject.User.Name
}
