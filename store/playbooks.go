package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Playbook is a named playbook: its latest version and whether it runs.
type Playbook struct {
	Name          string `gorm:"primaryKey;size:64"`
	LatestVersion int    `gorm:"not null"`
	Enabled       bool   `gorm:"not null"`
	Priority      int    `gorm:"not null;default:100"`
	Description   string `gorm:"type:text"`
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// PlaybookVersion is one immutable version of a playbook.
type PlaybookVersion struct {
	Name    string `gorm:"primaryKey;size:64"`
	Version int    `gorm:"primaryKey"`
	// Hash is the SHA-256 of the canonical definition: the same definition applied
	// again is not a new version.
	Hash string `gorm:"size:64;not null"`
	// Source is the file as applied; DefinitionJSON the parsed model.
	Source         string `gorm:"type:text;not null"`
	DefinitionJSON string `gorm:"type:text;not null"`
	CreatedAt      time.Time
}

// ApplyResult says what ApplyPlaybook did.
type ApplyResult struct {
	Version int
	Created bool // false: the definition equals the latest version's
}

// ApplyPlaybook stores a definition as the next version of its playbook, unless it
// equals the latest one. enabled applies only when the playbook is new; later
// changes go through SetPlaybookEnabled.
func (s *Store) ApplyPlaybook(ctx context.Context, name, hash, source, definitionJSON string, priority int, description string, enabled bool) (ApplyResult, error) {
	var res ApplyResult
	err := s.atomically(ctx, func(tx *gorm.DB) error {
		var pb Playbook
		err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Where("name = ?", name).Take(&pb).Error
		switch {
		case errors.Is(err, gorm.ErrRecordNotFound):
			pb = Playbook{Name: name, Enabled: enabled}
		case err != nil:
			return fmt.Errorf("store: playbook %s: %w", name, err)
		default:
			var latest PlaybookVersion
			if err := tx.Where("name = ? AND version = ?", name, pb.LatestVersion).Take(&latest).Error; err != nil {
				return fmt.Errorf("store: playbook %s v%d: %w", name, pb.LatestVersion, err)
			}
			if latest.Hash == hash {
				res = ApplyResult{Version: latest.Version}
				return nil
			}
		}
		res = ApplyResult{Version: pb.LatestVersion + 1, Created: true}
		if err := tx.Create(&PlaybookVersion{Name: name, Version: res.Version, Hash: hash, Source: source, DefinitionJSON: definitionJSON}).Error; err != nil {
			return fmt.Errorf("store: playbook %s v%d: %w", name, res.Version, err)
		}
		pb.LatestVersion, pb.Priority, pb.Description = res.Version, priority, description
		return tx.Save(&pb).Error
	})
	return res, err
}

// ListPlaybooks returns every playbook by name.
func (s *Store) ListPlaybooks(ctx context.Context) ([]Playbook, error) {
	var out []Playbook
	if err := s.db.WithContext(ctx).Order("name").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("store: list playbooks: %w", err)
	}
	return out, nil
}

// GetPlaybook returns a playbook and its versions' numbers, newest first.
func (s *Store) GetPlaybook(ctx context.Context, name string) (Playbook, []PlaybookVersion, error) {
	var pb Playbook
	if err := s.db.WithContext(ctx).Where("name = ?", name).Take(&pb).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return Playbook{}, nil, ErrNotFound
		}
		return Playbook{}, nil, fmt.Errorf("store: playbook %s: %w", name, err)
	}
	var versions []PlaybookVersion
	err := s.db.WithContext(ctx).Select("name", "version", "hash", "created_at").
		Where("name = ?", name).Order("version DESC").Find(&versions).Error
	if err != nil {
		return Playbook{}, nil, fmt.Errorf("store: playbook %s versions: %w", name, err)
	}
	return pb, versions, nil
}

// GetPlaybookVersion returns one version; version 0 means the latest.
func (s *Store) GetPlaybookVersion(ctx context.Context, name string, version int) (PlaybookVersion, error) {
	db := s.db.WithContext(ctx)
	if version == 0 {
		var pb Playbook
		if err := db.Where("name = ?", name).Take(&pb).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return PlaybookVersion{}, ErrNotFound
			}
			return PlaybookVersion{}, fmt.Errorf("store: playbook %s: %w", name, err)
		}
		version = pb.LatestVersion
	}
	var v PlaybookVersion
	if err := db.Where("name = ? AND version = ?", name, version).Take(&v).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return PlaybookVersion{}, ErrNotFound
		}
		return PlaybookVersion{}, fmt.Errorf("store: playbook %s v%d: %w", name, version, err)
	}
	return v, nil
}

// SetPlaybookEnabled turns a playbook on or off.
func (s *Store) SetPlaybookEnabled(ctx context.Context, name string, enabled bool) error {
	return s.update(ctx, "playbook", name, &Playbook{}, "name = ?", map[string]any{"enabled": enabled, "updated_at": time.Now().UTC()})
}

// EnabledPlaybooks returns the latest version of every enabled playbook, in
// priority order (then name).
func (s *Store) EnabledPlaybooks(ctx context.Context) ([]PlaybookVersion, error) {
	var out []PlaybookVersion
	err := s.db.WithContext(ctx).Model(&PlaybookVersion{}).
		Joins("JOIN playbooks ON playbooks.name = playbook_versions.name AND playbooks.latest_version = playbook_versions.version").
		Where("playbooks.enabled = ?", true).
		Order("playbooks.priority, playbooks.name").
		Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("store: enabled playbooks: %w", err)
	}
	return out, nil
}
