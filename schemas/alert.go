package schemas

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/netip"
	"strings"
	"time"
)

// OCSFDetectionFindingClassUID is the OCSF class every Alert belongs to.
const OCSFDetectionFindingClassUID = 2004

// Alert is Rampart's normalized alert: a documented subset of the OCSF Detection
// Finding (class_uid 2004), flattened so playbook expressions read naturally
// (alert.device.hostname rather than alert.device.hostname under three levels of
// evidences). alert.schema.json describes it field by field, with the OCSF attribute
// each one comes from. The expr tags are the names expressions use; they match JSON.
type Alert struct {
	// ClassUID is always 2004 (Detection Finding).
	ClassUID int `json:"class_uid" expr:"class_uid"`
	// Source is the webhook source that delivered the alert (ocsf, crowdstrike…).
	Source string `json:"source" expr:"source"`
	// Time is when the detection happened (OCSF time), not when Rampart received it.
	Time time.Time `json:"time" expr:"time"`
	// Finding identifies the vendor's finding (OCSF finding_info).
	Finding Finding `json:"finding" expr:"finding"`
	// Rule is the analytic or detection rule that fired (OCSF finding_info.analytic).
	Rule Rule `json:"rule,omitzero" expr:"rule"`
	// SeverityID is the OCSF severity: 0 unknown, 1 informational, 2 low, 3 medium,
	// 4 high, 5 critical, 6 fatal, 99 other.
	SeverityID int    `json:"severity_id" expr:"severity_id"`
	Severity   string `json:"severity" expr:"severity"`
	// Confidence is the vendor's confidence score, 0–100 (OCSF confidence_score).
	Confidence int `json:"confidence" expr:"confidence"`
	// Product is the tool that produced the finding (OCSF metadata.product).
	Product Product `json:"product,omitzero" expr:"product"`
	// Attacks are the MITRE ATT&CK tactics and techniques (OCSF finding_info.attacks).
	Attacks []Attack `json:"attacks,omitempty" expr:"attacks"`

	Device  Device  `json:"device,omitzero" expr:"device"`
	User    User    `json:"user,omitzero" expr:"user"`
	SrcIP   string  `json:"src_ip,omitempty" expr:"src_ip"`
	DstIP   string  `json:"dst_ip,omitempty" expr:"dst_ip"`
	File    File    `json:"file,omitzero" expr:"file"`
	Domain  string  `json:"domain,omitempty" expr:"domain"`
	URL     string  `json:"url,omitempty" expr:"url"`
	Process Process `json:"process,omitzero" expr:"process"`

	// Raw is the payload exactly as the source sent it.
	Raw json.RawMessage `json:"raw,omitempty" expr:"-"`
}

// Finding is the vendor's finding identity.
type Finding struct {
	UID   string `json:"uid" expr:"uid"`
	Title string `json:"title" expr:"title"`
	Desc  string `json:"desc,omitempty" expr:"desc"`
}

// Rule is the detection rule or analytic.
type Rule struct {
	UID  string `json:"uid,omitempty" expr:"uid"`
	Name string `json:"name,omitempty" expr:"name"`
}

// Product is the reporting tool.
type Product struct {
	Name   string `json:"name,omitempty" expr:"name"`
	Vendor string `json:"vendor_name,omitempty" expr:"vendor_name"`
}

// Attack is one ATT&CK tactic/technique pair.
type Attack struct {
	Tactic    Ref `json:"tactic,omitzero" expr:"tactic"`
	Technique Ref `json:"technique,omitzero" expr:"technique"`
}

// Ref is an ATT&CK object: its id (TA0002, T1059.001) and name.
type Ref struct {
	UID  string `json:"uid,omitempty" expr:"uid"`
	Name string `json:"name,omitempty" expr:"name"`
}

// Device is the endpoint the finding is about. ID is the EDR's agent/device id
// (OCSF device.uid), the handle containment actions need.
type Device struct {
	ID       string `json:"id,omitempty" expr:"id"`
	Hostname string `json:"hostname,omitempty" expr:"hostname"`
	IP       string `json:"ip,omitempty" expr:"ip"`
}

// User is the account involved (OCSF actor.user).
type User struct {
	Name  string `json:"name,omitempty" expr:"name"`
	UID   string `json:"uid,omitempty" expr:"uid"`
	Email string `json:"email,omitempty" expr:"email"`
}

// File is a file involved in the finding, with its hashes.
type File struct {
	Name   string `json:"name,omitempty" expr:"name"`
	Path   string `json:"path,omitempty" expr:"path"`
	SHA256 string `json:"sha256,omitempty" expr:"sha256"`
	SHA1   string `json:"sha1,omitempty" expr:"sha1"`
	MD5    string `json:"md5,omitempty" expr:"md5"`
}

// Process is the process involved.
type Process struct {
	PID        int64  `json:"pid,omitempty" expr:"pid"`
	Name       string `json:"name,omitempty" expr:"name"`
	CmdLine    string `json:"cmd_line,omitempty" expr:"cmd_line"`
	ParentName string `json:"parent_name,omitempty" expr:"parent_name"`
}

// SeverityName is the OCSF caption of a severity_id.
func SeverityName(id int) string {
	switch id {
	case 1:
		return "Informational"
	case 2:
		return "Low"
	case 3:
		return "Medium"
	case 4:
		return "High"
	case 5:
		return "Critical"
	case 6:
		return "Fatal"
	case 99:
		return "Other"
	default:
		return "Unknown"
	}
}

// SeverityID parses an OCSF severity caption (case-insensitive); ok is false for an
// unknown word.
func SeverityID(name string) (id int, ok bool) {
	for _, id := range []int{0, 1, 2, 3, 4, 5, 6, 99} {
		if strings.EqualFold(name, SeverityName(id)) {
			return id, true
		}
	}
	return 0, false
}

// FileHash is the strongest hash the alert carries.
func (a *Alert) FileHash() string {
	switch {
	case a.File.SHA256 != "":
		return a.File.SHA256
	case a.File.SHA1 != "":
		return a.File.SHA1
	default:
		return a.File.MD5
	}
}

// Fingerprint identifies "the same alert again" for deduplication. It is the first
// 128 bits, hex, of SHA-256 over these fields, each lower-cased and NUL-separated:
//
//	"v1", source, rule (rule.uid, else rule.name, else finding.title),
//	device (device.id, else device.hostname, else device.ip),
//	user (user.uid, else user.name, else user.email),
//	src_ip, dst_ip, file hash (sha256, else sha1, else md5), domain, url
//
// Times, finding ids and severities are left out on purpose: a tool re-sending the
// same detection gives it a new id and timestamp, and that is exactly a duplicate.
func (a *Alert) Fingerprint() string {
	parts := []string{
		"v1",
		a.Source,
		firstNonEmpty(a.Rule.UID, a.Rule.Name, a.Finding.Title),
		firstNonEmpty(a.Device.ID, a.Device.Hostname, a.Device.IP),
		firstNonEmpty(a.User.UID, a.User.Name, a.User.Email),
		a.SrcIP,
		a.DstIP,
		a.FileHash(),
		a.Domain,
		a.URL,
	}
	h := sha256.New()
	for i, p := range parts {
		if i > 0 {
			h.Write([]byte{0})
		}
		h.Write([]byte(strings.ToLower(strings.TrimSpace(p))))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Entity is one typed indicator the alert is about.
type Entity struct {
	Kind  string `json:"kind"`
	Value string `json:"value"`
}

// Entity kinds, shared by the store's entity index and the IOC list.
const (
	EntityDevice   = "device"
	EntityHostname = "hostname"
	EntityUser     = "user"
	EntityIP       = "ip"
	EntityHash     = "hash"
	EntityDomain   = "domain"
	EntityURL      = "url"
)

// EntityKinds lists every entity kind.
func EntityKinds() []string {
	return []string{EntityDevice, EntityHostname, EntityUser, EntityIP, EntityHash, EntityDomain, EntityURL}
}

// Entities lists the alert's entities, de-duplicated, in a fixed order. Values are
// lower-cased so lookups are case-insensitive.
func (a *Alert) Entities() []Entity {
	var out []Entity
	seen := map[Entity]bool{}
	add := func(kind, value string) {
		e := Entity{Kind: kind, Value: EntityValue(value)}
		if e.Value == "" || seen[e] {
			return
		}
		seen[e] = true
		out = append(out, e)
	}
	add(EntityDevice, a.Device.ID)
	add(EntityHostname, a.Device.Hostname)
	add(EntityIP, a.Device.IP)
	add(EntityUser, firstNonEmpty(a.User.Name, a.User.Email, a.User.UID))
	add(EntityIP, a.SrcIP)
	add(EntityIP, a.DstIP)
	add(EntityHash, a.File.SHA256)
	add(EntityHash, a.File.SHA1)
	add(EntityHash, a.File.MD5)
	add(EntityDomain, a.Domain)
	add(EntityURL, a.URL)
	return out
}

// EntityValue is a value as entities hold it, and as a lookup by entity must
// give it: trimmed, in lower case.
func EntityValue(v string) string { return strings.ToLower(strings.TrimSpace(v)) }

// CanonicalIP is an IP address as alerts hold it, so that an address written
// another way (IPv6 with leading zeros or upper case, IPv4-mapped IPv6) still
// matches: parsed, unmapped, in netip's canonical text. ok is false when v is
// not an IP address.
func CanonicalIP(v string) (ip string, ok bool) {
	addr, err := netip.ParseAddr(strings.TrimSpace(v))
	if err != nil {
		return "", false
	}
	return addr.Unmap().String(), true
}

// IsHexDigest reports whether v, already in lower case, is a hex digest of n
// characters (32 MD5, 40 SHA-1, 64 SHA-256).
func IsHexDigest(v string, n int) bool {
	if len(v) != n {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func firstNonEmpty(values ...string) string {
	for _, v := range values {
		if strings.TrimSpace(v) != "" {
			return v
		}
	}
	return ""
}
