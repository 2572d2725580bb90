package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/rampart-soar/rampart/schemas"
)

// UpsertAssets inserts or updates inventory records by hostname.
func (s *Store) UpsertAssets(ctx context.Context, assets []Asset) error {
	assets, err := normalizeAssets(assets)
	if err != nil {
		return err
	}
	if err := s.atomically(ctx, func(db *gorm.DB) error { return upsertAssets(db, assets) }); err != nil {
		return fmt.Errorf("store: upsert assets: %w", err)
	}
	return nil
}

// ReplaceAssets makes the inventory exactly assets: it upserts them and removes,
// in the same transaction, every host not among them, so a host taken off the
// inventory file stops being found (by an IP a new host may since have taken
// over, say). It returns how many it removed.
func (s *Store) ReplaceAssets(ctx context.Context, assets []Asset) (removed int, err error) {
	if assets, err = normalizeAssets(assets); err != nil {
		return 0, err
	}
	keep := make(map[string]bool, len(assets))
	for _, a := range assets {
		keep[a.Hostname] = true
	}
	err = s.atomically(ctx, func(db *gorm.DB) error {
		if err := upsertAssets(db, assets); err != nil {
			return err
		}
		var rows []Asset
		if err := db.Select("id", "hostname").Find(&rows).Error; err != nil {
			return err
		}
		removed, err = deleteUnkept(db, &Asset{}, rows, func(a Asset) (uint64, bool) { return a.ID, keep[a.Hostname] })
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: replace assets: %w", err)
	}
	return removed, nil
}

// normalizeAssets normalizes the records in place and returns them with one
// record per hostname, the last given winning, as one upsert after another would
// leave them (PostgreSQL refuses a statement that upserts one row twice).
func normalizeAssets(assets []Asset) ([]Asset, error) {
	for i := range assets {
		a, err := NormalizeAsset(assets[i])
		if err != nil {
			return nil, fmt.Errorf("store: asset %q: %w", assets[i].Hostname, err)
		}
		assets[i] = a
	}
	return lastOfEach(assets, func(a Asset) string { return a.Hostname }), nil
}

// lastOfEach returns rows with one row per key, the last of each, in the order
// the kept rows were given.
func lastOfEach[T any, K comparable](rows []T, key func(T) K) []T {
	last := make(map[K]int, len(rows))
	for i, r := range rows {
		last[key(r)] = i
	}
	if len(last) == len(rows) {
		return rows
	}
	out := make([]T, 0, len(last))
	for i, r := range rows {
		if last[key(r)] == i {
			out = append(out, r)
		}
	}
	return out
}

func upsertAssets(db *gorm.DB, assets []Asset) error {
	if len(assets) == 0 {
		return nil
	}
	return db.Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "hostname"}},
		DoUpdates: clause.AssignmentColumns([]string{"device_id", "ip", "criticality", "owner", "protected", "tags_json", "updated_at"}),
	}).CreateInBatches(assets, 200).Error
}

// deleteUnkept deletes the rows (read with their keys) that kept says are not
// kept, by id in batches (a list of a hundred thousand would pass any engine's
// bound-parameter limit in one statement), and returns how many it deleted.
func deleteUnkept[T any](db *gorm.DB, model *T, rows []T, kept func(T) (id uint64, keep bool)) (int, error) {
	var ids []uint64
	for _, r := range rows {
		if id, keep := kept(r); !keep {
			ids = append(ids, id)
		}
	}
	for start := 0; start < len(ids); start += 500 {
		batch := ids[start:min(start+500, len(ids))]
		if err := db.Where("id IN ?", batch).Delete(model).Error; err != nil {
			return 0, err
		}
	}
	return len(ids), nil
}

// NormalizeAsset puts an inventory record's keys in the form alerts give them, so
// that a lookup is an equality: hostname and device id trimmed and lower-cased,
// the IP canonical (CanonicalIP). It refuses a record without a hostname, with an
// IP that is not one, or with a criticality rules and playbooks do not compare
// against.
func NormalizeAsset(a Asset) (Asset, error) {
	a.Hostname = schemas.EntityValue(a.Hostname)
	a.DeviceID = schemas.EntityValue(a.DeviceID)
	a.Criticality = strings.ToLower(strings.TrimSpace(a.Criticality))
	if a.Hostname == "" {
		return a, errors.New("no hostname")
	}
	switch a.Criticality {
	case "", "low", "medium", "high", "critical":
	default:
		return a, fmt.Errorf("criticality %q is not low, medium, high or critical", a.Criticality)
	}
	if strings.TrimSpace(a.IP) != "" {
		ip, ok := schemas.CanonicalIP(a.IP)
		if !ok {
			return a, fmt.Errorf("ip %q is not an IP address", strings.TrimSpace(a.IP))
		}
		a.IP = ip
	}
	return a, nil
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
		{"ip", canonicalIPOrEmpty(ip)},
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

func canonicalIPOrEmpty(v string) string {
	ip, _ := schemas.CanonicalIP(v)
	return ip
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

// hashLengths is the digest length of each hash IOC type, in hex characters.
var hashLengths = map[string]int{IOCSHA256: 64, IOCSHA1: 40, IOCMD5: 32}

// emptyDigests are the digests of zero bytes. Feeds list them by mistake, and one
// would match every empty file an EDR reports: a containment on each.
var emptyDigests = map[string]bool{
	"d41d8cd98f00b204e9800998ecf8427e":                                 true, // MD5
	"da39a3ee5e6b4b0d3255bfef95601890afd80709":                         true, // SHA-1
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855": true, // SHA-256
}

// everyHostHas reports an address that names no adversary because every host
// has or uses it: unspecified, loopback, multicast, the limited broadcast.
func everyHostHas(ip string) bool {
	addr, err := netip.ParseAddr(ip)
	return err == nil && (addr.IsUnspecified() || addr.IsLoopback() || addr.IsMulticast() ||
		addr == netip.AddrFrom4([4]byte{255, 255, 255, 255}))
}

// NormalizeIOC checks an indicator's value against its type and puts it in the
// form alerts' entities hold (hashes and names in lower case, IPs canonical), so
// that matching is an equality. An indicator that could never match, a truncated
// hash or a URL listed as a domain, is refused rather than loaded to sit idle; so
// is one that would match on every host, the empty file's digest or 127.0.0.1.
func NormalizeIOC(ioc IOC) (IOC, error) {
	ioc.Type = strings.ToLower(strings.TrimSpace(ioc.Type))
	ioc.Value = schemas.EntityValue(ioc.Value)
	if _, known := iocKinds[ioc.Type]; !known {
		return ioc, fmt.Errorf("unknown IOC type %q (one of sha256, sha1, md5, ipv4, ipv6, domain, url)", ioc.Type)
	}
	if ioc.Value == "" {
		return ioc, fmt.Errorf("%s IOC with an empty value", ioc.Type)
	}
	bad := func(format string, args ...any) (IOC, error) {
		return ioc, fmt.Errorf("%s %q: %s", ioc.Type, ioc.Value, fmt.Sprintf(format, args...))
	}
	switch ioc.Type {
	case IOCSHA256, IOCSHA1, IOCMD5:
		if n := hashLengths[ioc.Type]; !schemas.IsHexDigest(ioc.Value, n) {
			return bad("not a %d-character hex digest", n)
		}
		if emptyDigests[ioc.Value] {
			return bad("the digest of empty input: it would match every empty file")
		}
	case IOCIPv4, IOCIPv6:
		ip, ok := schemas.CanonicalIP(ioc.Value)
		if !ok {
			return bad("not an IP address (a range never matches: list addresses)")
		}
		if v4 := !strings.Contains(ip, ":"); v4 != (ioc.Type == IOCIPv4) {
			return bad("an address of the other family")
		}
		if everyHostHas(ip) {
			return bad("a loopback, unspecified, multicast or broadcast address: every host has it")
		}
		ioc.Value = ip
	case IOCDomain:
		if _, isIP := schemas.CanonicalIP(ioc.Value); isIP {
			return bad("an IP address, not a domain")
		}
		if strings.ContainsAny(ioc.Value, "/:@ \t") {
			return bad("not a domain name (a URL belongs under type url)")
		}
	case IOCURL:
		u, err := url.Parse(ioc.Value)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return bad("not a URL with a scheme and a host")
		}
	}
	return ioc, nil
}

// UpsertIOCs inserts or updates indicators by (type, value).
func (s *Store) UpsertIOCs(ctx context.Context, iocs []IOC) error {
	iocs, err := normalizeIOCs(iocs)
	if err != nil {
		return err
	}
	if err := s.atomically(ctx, func(db *gorm.DB) error { return upsertIOCs(db, iocs) }); err != nil {
		return fmt.Errorf("store: upsert iocs: %w", err)
	}
	return nil
}

// ReplaceIOCs makes the indicator list exactly iocs: it upserts them and removes,
// in the same transaction, every indicator not among them. An indicator taken
// off the list (a false positive, most often) must stop matching: left in the
// store it would go on driving containment. It returns how many it removed.
func (s *Store) ReplaceIOCs(ctx context.Context, iocs []IOC) (removed int, err error) {
	if iocs, err = normalizeIOCs(iocs); err != nil {
		return 0, err
	}
	keep := make(map[iocKey]bool, len(iocs))
	for _, ioc := range iocs {
		keep[iocKey{ioc.Type, ioc.Value}] = true
	}
	err = s.atomically(ctx, func(db *gorm.DB) error {
		if err := upsertIOCs(db, iocs); err != nil {
			return err
		}
		var rows []IOC
		if err := db.Select("id", "type", "value").Find(&rows).Error; err != nil {
			return err
		}
		removed, err = deleteUnkept(db, &IOC{}, rows, func(r IOC) (uint64, bool) { return r.ID, keep[iocKey{r.Type, r.Value}] })
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: replace iocs: %w", err)
	}
	return removed, nil
}

// normalizeIOCs normalizes the indicators in place and returns them with one per
// (type, value), the last given winning (see normalizeAssets).
func normalizeIOCs(iocs []IOC) ([]IOC, error) {
	now := time.Now().UTC()
	for i := range iocs {
		ioc, err := NormalizeIOC(iocs[i])
		if err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		iocs[i] = ioc
		iocs[i].UpdatedAt = now
	}
	return lastOfEach(iocs, func(i IOC) iocKey { return iocKey{i.Type, i.Value} }), nil
}

// iocKey is an indicator's natural key.
type iocKey struct{ typ, value string }

func upsertIOCs(db *gorm.DB, iocs []IOC) error {
	if len(iocs) == 0 {
		return nil
	}
	return db.Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "type"}, {Name: "value"}},
		DoUpdates: clause.AssignmentColumns([]string{"source", "confidence", "description", "updated_at"}),
	}).CreateInBatches(iocs, 200).Error
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
