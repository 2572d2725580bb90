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
	return inventory().upsert(ctx, s, assets)
}

// ReplaceAssets makes the inventory exactly assets: it upserts them and removes,
// in the same transaction, every host not among them, so a host taken off the
// inventory file stops being found (by an IP a new host may since have taken
// over, say). It returns how many it removed.
func (s *Store) ReplaceAssets(ctx context.Context, assets []Asset) (removed int, err error) {
	return inventory().replace(ctx, s, assets)
}

// inventory is the asset inventory as a reference list, keyed by hostname.
func inventory() referenceList[Asset, string] {
	return referenceList[Asset, string]{
		name: "assets",
		normalize: func(a Asset) (Asset, error) {
			n, err := NormalizeAsset(a)
			if err != nil {
				return n, fmt.Errorf("asset %q: %w", a.Hostname, err)
			}
			return n, nil
		},
		conflict: clause.OnConflict{
			Columns:   []clause.Column{{Name: "hostname"}},
			DoUpdates: clause.AssignmentColumns([]string{"device_id", "ip", "criticality", "owner", "protected", "tags_json", "updated_at"}),
		},
		keyColumns: []string{"hostname"},
		key:        func(a Asset) string { return a.Hostname },
		id:         func(a Asset) uint64 { return a.ID },
	}
}

// referenceList is how the inventory and the IOC list are written: rows checked
// and normalized, one per natural key, upserted on that key, and, to replace the
// list, the rows of other keys deleted in the same transaction.
type referenceList[T any, K comparable] struct {
	name       string // in errors
	normalize  func(T) (T, error)
	conflict   clause.OnConflict // the upsert on the natural key
	keyColumns []string
	key        func(T) K
	id         func(T) uint64
}

func (l referenceList[T, K]) upsert(ctx context.Context, s *Store, rows []T) error {
	rows, err := l.normalized(rows)
	if err != nil {
		return err
	}
	if err := s.atomically(ctx, func(db *gorm.DB) error { return l.write(db, rows) }); err != nil {
		return fmt.Errorf("store: upsert %s: %w", l.name, err)
	}
	return nil
}

func (l referenceList[T, K]) replace(ctx context.Context, s *Store, rows []T) (removed int, err error) {
	if rows, err = l.normalized(rows); err != nil {
		return 0, err
	}
	keep := make(map[K]bool, len(rows))
	for _, r := range rows {
		keep[l.key(r)] = true
	}
	err = s.atomically(ctx, func(db *gorm.DB) error {
		if err := l.write(db, rows); err != nil {
			return err
		}
		var stored []T
		if err := db.Select(append([]string{"id"}, l.keyColumns...)).Find(&stored).Error; err != nil {
			return err
		}
		var gone []uint64
		for _, r := range stored {
			if !keep[l.key(r)] {
				gone = append(gone, l.id(r))
			}
		}
		// By id in batches: a list of a hundred thousand would pass any
		// engine's bound-parameter limit in one statement.
		for start := 0; start < len(gone); start += 500 {
			if err := db.Where("id IN ?", gone[start:min(start+500, len(gone))]).Delete(new(T)).Error; err != nil {
				return err
			}
		}
		removed = len(gone)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: replace %s: %w", l.name, err)
	}
	return removed, nil
}

// normalized normalizes the rows in place and returns them with one row per
// key, the last given winning, as one upsert after another would leave them
// (PostgreSQL refuses a statement that upserts one row twice).
func (l referenceList[T, K]) normalized(rows []T) ([]T, error) {
	last := make(map[K]int, len(rows))
	for i := range rows {
		n, err := l.normalize(rows[i])
		if err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		rows[i] = n
		last[l.key(n)] = i
	}
	if len(last) == len(rows) {
		return rows, nil
	}
	out := make([]T, 0, len(last))
	for i, r := range rows {
		if last[l.key(r)] == i {
			out = append(out, r)
		}
	}
	return out, nil
}

func (l referenceList[T, K]) write(db *gorm.DB, rows []T) error {
	if len(rows) == 0 {
		return nil
	}
	return db.Clauses(l.conflict).CreateInBatches(rows, 200).Error
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
		// A feed's wildcard says what a domain indicator means here anyway: the
		// domain and every name under it.
		ioc.Value = strings.TrimSuffix(strings.TrimPrefix(ioc.Value, "*."), ".")
		if _, isIP := schemas.CanonicalIP(ioc.Value); isIP {
			return bad("an IP address, not a domain")
		}
		if strings.ContainsAny(ioc.Value, "/:@ \t*") {
			return bad("not a domain name (a URL belongs under type url)")
		}
		if strings.HasPrefix(ioc.Value, ".") || strings.Contains(ioc.Value, "..") {
			return bad("not a domain name (an empty label)")
		}
		if !strings.Contains(ioc.Value, ".") {
			return bad("a top-level or one-label name: it would match every name under it")
		}
	case IOCURL:
		u, err := url.Parse(ioc.Value)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return bad("not a URL with a scheme and a host")
		}
		ioc.Value = canonicalURL(u)
	}
	return ioc, nil
}

// iocCandidates lists the values the entities may hit on the IOC list, each
// with the entity kinds it stands for.
func iocCandidates(entities []schemas.Entity) (values []string, kinds map[string]map[string]bool) {
	kinds = map[string]map[string]bool{}
	add := func(value, kind string) {
		if kinds[value] == nil {
			kinds[value] = map[string]bool{}
			values = append(values, value)
		}
		kinds[value][kind] = true
	}
	// A domain and its parents down to two labels: a list naming a top-level
	// domain is refused on load (NormalizeIOC).
	addDomain := func(d string) {
		for d = strings.TrimSuffix(d, "."); strings.Contains(d, "."); d = d[strings.IndexByte(d, '.')+1:] {
			add(d, schemas.EntityDomain)
		}
	}
	for _, e := range entities {
		add(e.Value, e.Kind)
		switch e.Kind {
		case schemas.EntityDomain:
			addDomain(e.Value)
		case schemas.EntityURL:
			u, err := url.Parse(e.Value)
			if err != nil || u.Hostname() == "" {
				continue
			}
			add(canonicalURL(u), schemas.EntityURL)
			if ip, isIP := schemas.CanonicalIP(u.Hostname()); isIP {
				add(ip, schemas.EntityIP)
			} else {
				addDomain(u.Hostname())
			}
		}
	}
	return values, kinds
}

// canonicalURL writes a URL as URL indicators are kept, so that one written
// another way still matches: no default port, no fragment, "/" for an empty
// path. (Case is already folded, as for every indicator.)
func canonicalURL(u *url.URL) string {
	c := *u
	if port := c.Port(); (port == "80" && c.Scheme == "http") || (port == "443" && c.Scheme == "https") {
		c.Host = strings.TrimSuffix(c.Host, ":"+port) // an IPv6 host keeps its brackets
	}
	c.Fragment, c.RawFragment = "", ""
	if c.Path == "" && c.Opaque == "" {
		c.Path = "/"
	}
	return c.String()
}

// UpsertIOCs inserts or updates indicators by (type, value).
func (s *Store) UpsertIOCs(ctx context.Context, iocs []IOC) error {
	return indicators().upsert(ctx, s, iocs)
}

// ReplaceIOCs makes the indicator list exactly iocs: it upserts them and removes,
// in the same transaction, every indicator not among them. An indicator taken
// off the list (a false positive, most often) must stop matching: left in the
// store it would go on driving containment. It returns how many it removed.
func (s *Store) ReplaceIOCs(ctx context.Context, iocs []IOC) (removed int, err error) {
	return indicators().replace(ctx, s, iocs)
}

// iocKey is an indicator's natural key.
type iocKey struct{ typ, value string }

// indicators is the IOC list as a reference list, keyed by (type, value).
func indicators() referenceList[IOC, iocKey] {
	now := time.Now().UTC()
	return referenceList[IOC, iocKey]{
		name: "iocs",
		normalize: func(ioc IOC) (IOC, error) {
			n, err := NormalizeIOC(ioc)
			n.UpdatedAt = now
			return n, err
		},
		conflict: clause.OnConflict{
			Columns:   []clause.Column{{Name: "type"}, {Name: "value"}},
			DoUpdates: clause.AssignmentColumns([]string{"source", "confidence", "description", "updated_at"}),
		},
		keyColumns: []string{"type", "value"},
		key:        func(ioc IOC) iocKey { return iocKey{ioc.Type, ioc.Value} },
		id:         func(ioc IOC) uint64 { return ioc.ID },
	}
}

// MatchIOCs returns the indicators on the list that one of the entities hits, of
// a type that fits the entity's kind (a hash never matches an IP): an indicator
// equal to the entity; a domain indicator hit by that domain or any name under
// it (evil.example by cdn.evil.example), in a domain entity or a URL's host; an
// IP indicator by a URL whose host is that address.
func (s *Store) MatchIOCs(ctx context.Context, entities []schemas.Entity) ([]IOC, error) {
	values, want := iocCandidates(entities)
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
