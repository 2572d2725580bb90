package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/rampart-soar/rampart/schemas"
)

// UpsertAssets inserts or updates inventory records by hostname.
func (s *Store) UpsertAssets(ctx context.Context, assets []Asset) error {
	if len(assets) == 0 {
		return nil
	}
	for i := range assets {
		assets[i].Hostname = schemas.EntityValue(assets[i].Hostname)
		assets[i].DeviceID = schemas.EntityValue(assets[i].DeviceID)
		if assets[i].Hostname == "" {
			return errors.New("store: asset without hostname")
		}
	}
	err := s.atomically(ctx, func(db *gorm.DB) error {
		return db.Clauses(clause.OnConflict{
			Columns:   []clause.Column{{Name: "hostname"}},
			DoUpdates: clause.AssignmentColumns([]string{"device_id", "ip", "criticality", "owner", "protected", "tags_json", "updated_at"}),
		}).CreateInBatches(assets, 200).Error
	})
	if err != nil {
		return fmt.Errorf("store: upsert assets: %w", err)
	}
	return nil
}

// Tags decodes the asset's tags.
func (a *Asset) Tags() []string {
	var tags []string
	_ = json.Unmarshal([]byte(a.TagsJSON), &tags)
	return tags
}

// FindAsset looks an asset up by device id, then hostname, then IP (the first key
// given that matches wins). It returns ErrNotFound when none matches.
func (s *Store) FindAsset(ctx context.Context, deviceID, hostname, ip string) (Asset, error) {
	db := s.db.WithContext(ctx)
	for _, by := range []struct{ col, val string }{
		{"device_id", schemas.EntityValue(deviceID)},
		{"hostname", schemas.EntityValue(hostname)},
		{"ip", strings.TrimSpace(ip)},
	} {
		if by.val == "" {
			continue
		}
		var a Asset
		err := db.Where(by.col+" = ?", by.val).Order("id").Take(&a).Error
		if err == nil {
			return a, nil
		}
		if !errors.Is(err, gorm.ErrRecordNotFound) {
			return Asset{}, fmt.Errorf("store: find asset: %w", err)
		}
	}
	return Asset{}, ErrNotFound
}

// IOC types.
const (
	IOCSHA256 = "sha256"
	IOCSHA1   = "sha1"
	IOCMD5    = "md5"
	IOCIPv4   = "ipv4"
	IOCIPv6   = "ipv6"
	IOCDomain = "domain"
	IOCURL    = "url"
)

// iocKinds maps each IOC type to the alert entity kind it matches.
var iocKinds = map[string]string{
	IOCSHA256: schemas.EntityHash, IOCSHA1: schemas.EntityHash, IOCMD5: schemas.EntityHash,
	IOCIPv4: schemas.EntityIP, IOCIPv6: schemas.EntityIP,
	IOCDomain: schemas.EntityDomain, IOCURL: schemas.EntityURL,
}

// ValidIOCType reports whether t is an IOC type Rampart matches.
func ValidIOCType(t string) bool { _, ok := iocKinds[t]; return ok }

// UpsertIOCs inserts or updates indicators by (type, value).
func (s *Store) UpsertIOCs(ctx context.Context, iocs []IOC) error {
	if len(iocs) == 0 {
		return nil
	}
	now := time.Now().UTC()
	for i := range iocs {
		iocs[i].Type = strings.ToLower(strings.TrimSpace(iocs[i].Type))
		iocs[i].Value = schemas.EntityValue(iocs[i].Value) // matched against the alerts' entities
		iocs[i].UpdatedAt = now
		if !ValidIOCType(iocs[i].Type) {
			return fmt.Errorf("store: unknown IOC type %q", iocs[i].Type)
		}
	}
	err := s.atomically(ctx, func(db *gorm.DB) error {
		return db.Clauses(clause.OnConflict{
			Columns:   []clause.Column{{Name: "type"}, {Name: "value"}},
			DoUpdates: clause.AssignmentColumns([]string{"source", "confidence", "description", "updated_at"}),
		}).CreateInBatches(iocs, 200).Error
	})
	if err != nil {
		return fmt.Errorf("store: upsert iocs: %w", err)
	}
	return nil
}

// MatchIOCs returns the indicators on the list that equal one of the entities, of a
// type that fits the entity's kind (a hash never matches an IP).
func (s *Store) MatchIOCs(ctx context.Context, entities []schemas.Entity) ([]IOC, error) {
	values := make([]string, 0, len(entities))
	want := map[string]map[string]bool{} // value → entity kinds
	for _, e := range entities {
		if want[e.Value] == nil {
			want[e.Value] = map[string]bool{}
			values = append(values, e.Value)
		}
		want[e.Value][e.Kind] = true
	}
	if len(values) == 0 {
		return nil, nil
	}
	var rows []IOC
	if err := s.db.WithContext(ctx).Where("value IN ?", values).Order("type, value").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("store: match iocs: %w", err)
	}
	out := rows[:0]
	for _, r := range rows {
		if want[r.Value][iocKinds[r.Type]] {
			out = append(out, r)
		}
	}
	return out, nil
}
