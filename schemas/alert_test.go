package schemas_test

import (
	"bufio"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rampart-soar/rampart/schemas"
)

func sample() schemas.Alert {
	return schemas.Alert{
		ClassUID:   schemas.OCSFDetectionFindingClassUID,
		Source:     "crowdstrike",
		Time:       time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC),
		Finding:    schemas.Finding{UID: "f-1", Title: "MassFileEncryption"},
		Rule:       schemas.Rule{UID: "10307", Name: "MassFileEncryption"},
		SeverityID: 5,
		Device:     schemas.Device{ID: "6a1f0c2e9b7d4e35a8c0f1d2e3b4a5c6", Hostname: "fin-ws-0142", IP: "10.20.4.142"},
		User:       schemas.User{Name: "dana.okafor"},
		File:       schemas.File{SHA256: "4be1f82c6c5e0d3a9b7f2e1d0c8a6b4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b"},
	}
}

func TestFingerprintIsStable(t *testing.T) {
	// The documented recipe, pinned: changing it would split every open alert's
	// duplicates from their original. The value was computed outside Go:
	// sha256("v1\0crowdstrike\010307\0<device id>\0dana.okafor\0\0\0<sha256>\0\0")[:16].
	a := sample()
	if got, want := a.Fingerprint(), "b11f0e2a2daa1741f059293264624a4f"; got != want {
		t.Fatalf("fingerprint = %s, want %s", got, want)
	}
}

func TestFingerprintIgnoresWhatChangesOnResend(t *testing.T) {
	base := sample()
	resent := sample()
	resent.Finding.UID = "f-2"
	resent.Time = resent.Time.Add(time.Minute)
	resent.SeverityID = 4
	resent.Confidence = 10
	resent.Device.Hostname = "FIN-WS-0142"
	if base.Fingerprint() != resent.Fingerprint() {
		t.Fatal("a re-sent detection (new id, time, severity) must keep its fingerprint")
	}
	for name, change := range map[string]func(*schemas.Alert){
		"source": func(a *schemas.Alert) { a.Source = "ocsf" },
		"rule":   func(a *schemas.Alert) { a.Rule.UID = "999" },
		"device": func(a *schemas.Alert) { a.Device.ID = "ffff" },
		"user":   func(a *schemas.Alert) { a.User.Name = "someone.else" },
		"hash":   func(a *schemas.Alert) { a.File.SHA256 = "00" },
		"src_ip": func(a *schemas.Alert) { a.SrcIP = "203.0.113.1" },
	} {
		a := sample()
		change(&a)
		if a.Fingerprint() == base.Fingerprint() {
			t.Errorf("changing %s must change the fingerprint", name)
		}
	}
	// Field boundaries are separated: moving text between fields changes it.
	a, b := sample(), sample()
	a.Rule, b.Rule = schemas.Rule{UID: "ab"}, schemas.Rule{UID: "a"}
	a.Device, b.Device = schemas.Device{ID: "c"}, schemas.Device{ID: "bc"}
	if a.Fingerprint() == b.Fingerprint() {
		t.Fatal("fields must be delimited")
	}
}

func TestEntities(t *testing.T) {
	a := sample()
	a.SrcIP = "10.20.4.142" // same as the device ip: listed once
	a.File.MD5 = "AABB"
	got := a.Entities()
	want := []schemas.Entity{
		{Kind: "device", Value: "6a1f0c2e9b7d4e35a8c0f1d2e3b4a5c6"},
		{Kind: "hostname", Value: "fin-ws-0142"},
		{Kind: "ip", Value: "10.20.4.142"},
		{Kind: "user", Value: "dana.okafor"},
		{Kind: "hash", Value: "4be1f82c6c5e0d3a9b7f2e1d0c8a6b4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b"},
		{Kind: "hash", Value: "aabb"},
	}
	if len(got) != len(want) {
		t.Fatalf("entities = %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("entity %d = %v, want %v", i, got[i], want[i])
		}
	}
}

func TestSeverityNamesRoundTrip(t *testing.T) {
	for _, id := range []int{0, 1, 2, 3, 4, 5, 6, 99} {
		got, ok := schemas.SeverityID(schemas.SeverityName(id))
		if !ok || got != id {
			t.Errorf("severity %d round-trips to %d, %v", id, got, ok)
		}
	}
	if _, ok := schemas.SeverityID("catastrophic"); ok {
		t.Error("unknown severity name accepted")
	}
}

func TestEmbeddedSchemas(t *testing.T) {
	if got := schemas.Sources(); len(got) != 2 || got[0] != "crowdstrike" || got[1] != "ocsf" {
		t.Fatalf("sources = %v", got)
	}
	for _, src := range schemas.Sources() {
		raw, err := schemas.SourceSchema(src)
		if err != nil || !json.Valid(raw) {
			t.Fatalf("%s schema: %v", src, err)
		}
	}
	if !json.Valid(schemas.AlertSchema()) {
		t.Fatal("alert schema is not JSON")
	}
	if _, err := schemas.SourceSchema("nope"); err == nil {
		t.Fatal("missing schema returned no error")
	}
}

// TestScenarioDuplicatesShareTheirOriginalsFingerprint replays the labelled week's
// duplicates: each must fingerprint like an alert sent shortly before it, and no
// attack alert may fold into a benign one within the dedup window. The payloads are
// fingerprinted from their raw fields the way the normalizers fill the model.
func TestScenarioDuplicatesShareTheirOriginalsFingerprint(t *testing.T) {
	f, err := os.Open("../../shared/scenarios/week1.ndjson")
	if err != nil {
		t.Skip("../shared/scenarios not present")
	}
	defer f.Close()
	type row struct {
		Seq     int             `json:"seq"`
		Time    time.Time       `json:"time"`
		Source  string          `json:"source"`
		Payload json.RawMessage `json:"payload"`
		Truth   struct {
			Kind string `json:"kind"`
		} `json:"truth"`
	}
	type seen struct {
		at   time.Time
		kind string
	}
	last := map[string]seen{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var dups, attacks int
	for sc.Scan() {
		var r row
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		a := scenarioAlert(t, r.Source, r.Payload)
		fp := a.Fingerprint()
		prev, ok := last[fp]
		switch r.Truth.Kind {
		case "duplicate":
			dups++
			if !ok || r.Time.Sub(prev.at) > 10*time.Minute {
				t.Errorf("seq %d: duplicate has no original within the dedup window", r.Seq)
			}
		case "attack":
			attacks++
			if ok && prev.kind == "benign" && r.Time.Sub(prev.at) <= 10*time.Minute {
				t.Errorf("seq %d: attack alert would fold into a benign alert", r.Seq)
			}
		}
		if r.Truth.Kind != "duplicate" {
			last[fp] = seen{at: r.Time, kind: r.Truth.Kind}
		}
	}
	if dups == 0 || attacks == 0 {
		t.Fatalf("scenario read %d duplicates and %d attacks", dups, attacks)
	}
}

// scenarioAlert fills the fingerprinted fields from a scenario payload.
func scenarioAlert(t *testing.T, source string, payload json.RawMessage) schemas.Alert {
	a := schemas.Alert{Source: source}
	switch source {
	case "crowdstrike":
		var p struct {
			Event struct {
				AgentID, Hostname, UserName, Name, SHA256String string
			} `json:"event"`
		}
		if err := json.Unmarshal(payload, &p); err != nil {
			t.Fatal(err)
		}
		e := p.Event
		a.Rule.UID, a.Device.ID, a.User.Name, a.File.SHA256 = e.Name, e.AgentID, e.UserName, e.SHA256String
	case "ocsf":
		var p struct {
			FindingInfo struct {
				Analytic struct{ UID string } `json:"analytic"`
			} `json:"finding_info"`
			Device      struct{ UID string }                `json:"device"`
			Actor       struct{ User struct{ UID string } } `json:"actor"`
			SrcEndpoint struct{ IP string }                 `json:"src_endpoint"`
			DstEndpoint struct{ IP string }                 `json:"dst_endpoint"`
		}
		if err := json.Unmarshal(payload, &p); err != nil {
			t.Fatal(err)
		}
		a.Rule.UID, a.Device.ID, a.User.UID = p.FindingInfo.Analytic.UID, p.Device.UID, p.Actor.User.UID
		a.SrcIP, a.DstIP = p.SrcEndpoint.IP, p.DstEndpoint.IP
	}
	return a
}

func TestCanonicalIP(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.1":           "10.0.0.1",
		" 10.0.0.1 ":         "10.0.0.1",
		"::ffff:10.0.0.1":    "10.0.0.1", // IPv4-mapped: the IPv4 address
		"2001:DB8:0:0::0001": "2001:db8::1",
		"fe80::1":            "fe80::1",
	} {
		if got, ok := schemas.CanonicalIP(in); !ok || got != want {
			t.Errorf("CanonicalIP(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "10.0.0.300", "10.0.0.0/8", "010.0.0.1", "host.example", "1.2.3.4:80"} {
		if got, ok := schemas.CanonicalIP(in); ok {
			t.Errorf("CanonicalIP(%q) = %q, accepted", in, got)
		}
	}
}

func TestIsHexDigest(t *testing.T) {
	md5 := "8f14e45fceea167a5a36dedd4bea2543"
	if !schemas.IsHexDigest(md5, 32) {
		t.Error("an MD5 digest refused")
	}
	for _, c := range []struct {
		v string
		n int
	}{{md5, 40}, {md5[:31], 32}, {strings.ToUpper(md5), 32}, {md5[:31] + "g", 32}, {"", 1}} {
		if schemas.IsHexDigest(c.v, c.n) {
			t.Errorf("IsHexDigest(%q, %d) accepted", c.v, c.n)
		}
	}
}
