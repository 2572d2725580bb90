package ingest

import (
	"cmp"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/rampart-soar/rampart/schemas"
)

// normalizer turns a schema-valid payload into an Alert, or names the fields that
// cannot be normalized.
type normalizer func(body []byte) (schemas.Alert, []FieldError)

var normalizers = map[string]normalizer{
	"ocsf":        normalizeOCSF,
	"crowdstrike": normalizeCrowdStrike,
}

// fieldErrors collects normalization problems.
type fieldErrors []FieldError

func (f *fieldErrors) add(field, format string, args ...any) {
	*f = append(*f, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

// epoch reads a timestamp that may be in seconds or milliseconds.
func epoch(v int64) time.Time {
	if v < 1e11 { // before 1973 in ms, after 5138 in s: the unit is unambiguous
		return time.Unix(v, 0).UTC()
	}
	return time.UnixMilli(v).UTC()
}

// ip validates and canonicalizes an address; empty stays empty.
func ip(errs *fieldErrors, field, v string) string {
	if strings.TrimSpace(v) == "" {
		return ""
	}
	canonical, ok := schemas.CanonicalIP(v)
	if !ok {
		errs.add(field, "%q is not an IP address", strings.TrimSpace(v))
	}
	return canonical
}

// hash validates a hex digest of the given length; all-zero digests (a vendor's
// "none") count as absent.
func hash(errs *fieldErrors, field, v string, length int) string {
	v = strings.ToLower(strings.TrimSpace(v))
	if v == "" || strings.Trim(v, "0") == "" {
		return ""
	}
	if !schemas.IsHexDigest(v, length) {
		errs.add(field, "not a %d-character hex digest", length)
		return ""
	}
	return v
}

// --- OCSF Detection Finding ---

type ocsfEndpoint struct {
	IP       string `json:"ip"`
	Hostname string `json:"hostname"`
	Domain   string `json:"domain"`
}

type ocsfUser struct {
	Name  string `json:"name"`
	UID   string `json:"uid"`
	Email string `json:"email_addr"`
}

type ocsfProcess struct {
	PID     int64  `json:"pid"`
	Name    string `json:"name"`
	CmdLine string `json:"cmd_line"`
	Parent  struct {
		Name string `json:"name"`
	} `json:"parent_process"`
}

type ocsfFile struct {
	Name   string `json:"name"`
	Path   string `json:"path"`
	Hashes []struct {
		AlgorithmID int    `json:"algorithm_id"`
		Value       string `json:"value"`
	} `json:"hashes"`
}

type ocsfRef struct {
	UID  string `json:"uid"`
	Name string `json:"name"`
}

type ocsfFinding struct {
	Time            int64  `json:"time"`
	SeverityID      int    `json:"severity_id"`
	Severity        string `json:"severity"`
	ConfidenceScore int    `json:"confidence_score"`
	Message         string `json:"message"`
	Metadata        struct {
		Product struct {
			Name       string `json:"name"`
			VendorName string `json:"vendor_name"`
		} `json:"product"`
	} `json:"metadata"`
	FindingInfo struct {
		UID      string   `json:"uid"`
		Title    string   `json:"title"`
		Desc     string   `json:"desc"`
		Types    []string `json:"types"`
		Analytic ocsfRef  `json:"analytic"`
		Attacks  []struct {
			Tactic       ocsfRef `json:"tactic"`
			Technique    ocsfRef `json:"technique"`
			SubTechnique ocsfRef `json:"sub_technique"`
		} `json:"attacks"`
	} `json:"finding_info"`
	Device struct {
		UID      string `json:"uid"`
		Hostname string `json:"hostname"`
		Name     string `json:"name"`
		IP       string `json:"ip"`
	} `json:"device"`
	Actor struct {
		User    ocsfUser    `json:"user"`
		Process ocsfProcess `json:"process"`
	} `json:"actor"`
	SrcEndpoint ocsfEndpoint `json:"src_endpoint"`
	DstEndpoint ocsfEndpoint `json:"dst_endpoint"`
	Evidences   []struct {
		SrcEndpoint ocsfEndpoint `json:"src_endpoint"`
		DstEndpoint ocsfEndpoint `json:"dst_endpoint"`
		File        ocsfFile     `json:"file"`
		Process     ocsfProcess  `json:"process"`
		User        ocsfUser     `json:"user"`
		URL         struct {
			URLString string `json:"url_string"`
		} `json:"url"`
	} `json:"evidences"`
	Observables []struct {
		TypeID int    `json:"type_id"`
		Value  string `json:"value"`
	} `json:"observables"`
}

// OCSF observable type ids Rampart reads.
const (
	observableURL = 6
)

// OCSF file hash algorithm ids.
const (
	hashMD5    = 1
	hashSHA1   = 2
	hashSHA256 = 3
)

func normalizeOCSF(body []byte) (schemas.Alert, []FieldError) {
	var f ocsfFinding
	var errs fieldErrors
	if err := json.Unmarshal(body, &f); err != nil {
		return schemas.Alert{}, []FieldError{{Message: "payload does not decode as an OCSF finding: " + err.Error()}}
	}
	fi := f.FindingInfo
	a := schemas.Alert{
		Time:       epoch(f.Time),
		Finding:    schemas.Finding{UID: fi.UID, Title: fi.Title, Desc: fi.Desc},
		Rule:       schemas.Rule{UID: fi.Analytic.UID, Name: fi.Analytic.Name},
		SeverityID: f.SeverityID,
		Severity:   schemas.SeverityName(f.SeverityID),
		Confidence: f.ConfidenceScore,
		Product:    schemas.Product{Name: f.Metadata.Product.Name, Vendor: f.Metadata.Product.VendorName},
		Device: schemas.Device{
			ID:       strings.ToLower(f.Device.UID),
			Hostname: cmp.Or(f.Device.Hostname, f.Device.Name),
			IP:       ip(&errs, "device.ip", f.Device.IP),
		},
		User: schemas.User{Name: f.Actor.User.Name, UID: f.Actor.User.UID, Email: f.Actor.User.Email},
	}
	if f.SeverityID == 99 && f.Severity != "" {
		a.Severity = f.Severity
	}
	if a.Finding.Desc == "" {
		a.Finding.Desc = f.Message
	}
	if a.Rule.UID == "" && a.Rule.Name == "" && len(fi.Types) > 0 {
		a.Rule.UID = fi.Types[0]
	}
	for _, at := range fi.Attacks {
		tech := at.Technique
		if at.SubTechnique.UID != "" {
			tech = at.SubTechnique
		}
		a.Attacks = append(a.Attacks, schemas.Attack{
			Tactic:    schemas.Ref{UID: at.Tactic.UID, Name: at.Tactic.Name},
			Technique: schemas.Ref{UID: tech.UID, Name: tech.Name},
		})
	}
	a.SrcIP = ip(&errs, "src_endpoint.ip", f.SrcEndpoint.IP)
	a.DstIP = ip(&errs, "dst_endpoint.ip", f.DstEndpoint.IP)
	a.Domain = f.DstEndpoint.Domain
	proc := f.Actor.Process
	for i, ev := range f.Evidences {
		at := fmt.Sprintf("evidences.%d", i)
		if a.SrcIP == "" {
			a.SrcIP = ip(&errs, at+".src_endpoint.ip", ev.SrcEndpoint.IP)
		}
		if a.DstIP == "" {
			a.DstIP = ip(&errs, at+".dst_endpoint.ip", ev.DstEndpoint.IP)
		}
		if a.Domain == "" {
			a.Domain = ev.DstEndpoint.Domain
		}
		if a.URL == "" {
			a.URL = ev.URL.URLString
		}
		if a.User == (schemas.User{}) {
			a.User = schemas.User{Name: ev.User.Name, UID: ev.User.UID, Email: ev.User.Email}
		}
		if proc.Name == "" && proc.PID == 0 {
			proc = ev.Process
		}
		if a.File == (schemas.File{}) && (ev.File.Name != "" || len(ev.File.Hashes) > 0) {
			a.File = schemas.File{Name: ev.File.Name, Path: ev.File.Path}
			for j, h := range ev.File.Hashes {
				field := fmt.Sprintf("%s.file.hashes.%d.value", at, j)
				switch h.AlgorithmID {
				case hashMD5:
					a.File.MD5 = hash(&errs, field, h.Value, 32)
				case hashSHA1:
					a.File.SHA1 = hash(&errs, field, h.Value, 40)
				case hashSHA256:
					a.File.SHA256 = hash(&errs, field, h.Value, 64)
				}
			}
		}
	}
	for _, o := range f.Observables {
		if o.TypeID == observableURL && a.URL == "" {
			a.URL = o.Value
		}
	}
	a.Process = schemas.Process{PID: proc.PID, Name: proc.Name, CmdLine: proc.CmdLine, ParentName: proc.Parent.Name}
	return a, errs
}

// --- CrowdStrike Falcon event stream ---

type falconEvent struct {
	Metadata struct {
		EventType         string `json:"eventType"`
		EventCreationTime int64  `json:"eventCreationTime"`
	} `json:"metadata"`
	Event struct {
		AgentID             string          `json:"AgentId"`
		CompositeID         string          `json:"CompositeId"`
		Hostname            string          `json:"Hostname"`
		LocalIP             string          `json:"LocalIP"`
		UserName            string          `json:"UserName"`
		Severity            int             `json:"Severity"`
		SeverityName        string          `json:"SeverityName"`
		Confidence          int             `json:"Confidence"`
		Tactic              string          `json:"Tactic"`
		Technique           string          `json:"Technique"`
		TechniqueID         string          `json:"TechniqueId"`
		Name                string          `json:"Name"`
		Description         string          `json:"Description"`
		PatternID           json.RawMessage `json:"PatternId"`
		FileName            string          `json:"FileName"`
		FilePath            string          `json:"FilePath"`
		CommandLine         string          `json:"CommandLine"`
		ParentImageFileName string          `json:"ParentImageFileName"`
		SHA256              string          `json:"SHA256String"`
		SHA1                string          `json:"SHA1String"`
		MD5                 string          `json:"MD5String"`
		ProcessID           json.RawMessage `json:"ProcessId"`
		ProcessStartTime    int64           `json:"ProcessStartTime"`
		SourceProducts      string          `json:"SourceProducts"`
	} `json:"event"`
}

func normalizeCrowdStrike(body []byte) (schemas.Alert, []FieldError) {
	var f falconEvent
	var errs fieldErrors
	if err := json.Unmarshal(body, &f); err != nil {
		return schemas.Alert{}, []FieldError{{Message: "payload does not decode as a Falcon event: " + err.Error()}}
	}
	e := f.Event
	a := schemas.Alert{
		Finding:    schemas.Finding{UID: e.CompositeID, Title: cmp.Or(e.Name, e.Description)},
		Rule:       schemas.Rule{UID: cmp.Or(rawScalar(e.PatternID), e.Name), Name: e.Name},
		SeverityID: falconSeverity(e.SeverityName, e.Severity),
		Confidence: e.Confidence,
		Product:    schemas.Product{Name: cmp.Or(e.SourceProducts, "Falcon"), Vendor: "CrowdStrike"},
		Device: schemas.Device{
			ID:       strings.ToLower(e.AgentID),
			Hostname: e.Hostname,
			IP:       ip(&errs, "event.LocalIP", e.LocalIP),
		},
		User: schemas.User{Name: e.UserName},
		File: schemas.File{
			Name:   e.FileName,
			Path:   e.FilePath,
			SHA256: hash(&errs, "event.SHA256String", e.SHA256, 64),
			SHA1:   hash(&errs, "event.SHA1String", e.SHA1, 40),
			MD5:    hash(&errs, "event.MD5String", e.MD5, 32),
		},
		Process: schemas.Process{Name: e.FileName, CmdLine: e.CommandLine, ParentName: e.ParentImageFileName},
	}
	a.Severity = schemas.SeverityName(a.SeverityID)
	if e.Description != "" && e.Description != a.Finding.Title {
		a.Finding.Desc = e.Description
	}
	switch {
	case f.Metadata.EventCreationTime > 0:
		a.Time = epoch(f.Metadata.EventCreationTime)
	case e.ProcessStartTime > 0:
		a.Time = epoch(e.ProcessStartTime)
	default:
		errs.add("metadata.eventCreationTime", "the event has no time (metadata.eventCreationTime or event.ProcessStartTime)")
	}
	if pid := rawScalar(e.ProcessID); pid != "" {
		n, err := strconv.ParseInt(pid, 10, 64)
		if err != nil {
			errs.add("event.ProcessId", "%q is not a process id", pid)
		}
		a.Process.PID = n
	}
	if e.Tactic != "" || e.TechniqueID != "" {
		a.Attacks = []schemas.Attack{{
			Tactic:    schemas.Ref{Name: e.Tactic},
			Technique: schemas.Ref{UID: strings.ToUpper(e.TechniqueID), Name: e.Technique},
		}}
	}
	return a, errs
}

// falconSeverity maps Falcon's severity to OCSF. SeverityName is authoritative;
// the number is 1–5 in some streams and 0–100 in others.
func falconSeverity(name string, n int) int {
	if id, ok := schemas.SeverityID(name); ok && id != 0 {
		return id
	}
	switch {
	case n <= 0:
		return 0
	case n <= 5:
		return n
	case n >= 90:
		return 5
	case n >= 70:
		return 4
	case n >= 50:
		return 3
	case n >= 20:
		return 2
	default:
		return 1
	}
}

// rawScalar renders a JSON string or number as text.
func rawScalar(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return strings.TrimSpace(string(raw))
}
