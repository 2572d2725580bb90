// Package triage is the room for understanding an alert: the detect stage's ATT&CK
// mapping and detection features today; scoring, baselines and correlation later.
//
// It is pure: it imports only the standard library and schemas, does no I/O, and is
// deterministic, so workflow code and activities can both call it.
package triage

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"

	"github.com/rampart-soar/rampart/schemas"
)

// Detection is the output of the detect stage: where the alert sits in ATT&CK and the
// features later stages (decide, playbooks) read. Expressions see it as `detect`.
type Detection struct {
	// Tactics are tactic names in kill-chain order, without repeats.
	Tactics []string `json:"tactics" expr:"tactics"`
	// TacticIDs are the matching tactic ids (TA0002…).
	TacticIDs []string `json:"tactic_ids" expr:"tactic_ids"`
	// Techniques are technique ids as the source gave them.
	Techniques []string `json:"techniques" expr:"techniques"`
	// UnknownTechniques are ids missing from Rampart's ATT&CK table.
	UnknownTechniques []string `json:"unknown_techniques,omitempty" expr:"unknown_techniques"`
	// Stage is the kill-chain ordinal of the furthest tactic (1 reconnaissance … 14
	// impact), 0 when no tactic is known.
	Stage     int      `json:"stage" expr:"stage"`
	StageName string   `json:"stage_name,omitempty" expr:"stage_name"`
	Features  Features `json:"features" expr:"features"`
}

// Features are cheap signals computed from the alert alone.
type Features struct {
	// ExternalSource: src_ip is a public (routable, non-private) address.
	ExternalSource bool `json:"external_source" expr:"external_source"`
	// EncodedCommand: the command line carries an encoded PowerShell payload.
	EncodedCommand bool `json:"encoded_command" expr:"encoded_command"`
	// LOLBin: the process is a living-off-the-land binary often abused by attackers.
	LOLBin bool `json:"lolbin" expr:"lolbin"`
	// HasFileHash: a file hash is present, so IOC matching can work on it.
	HasFileHash bool `json:"has_file_hash" expr:"has_file_hash"`
	// HasDevice: the alert names an endpoint (id, hostname or ip).
	HasDevice bool `json:"has_device" expr:"has_device"`
	// HighImpact: a tactic of impact or exfiltration is present.
	HighImpact bool `json:"high_impact" expr:"high_impact"`
	// CredentialAccess: a credential-access tactic is present.
	CredentialAccess bool `json:"credential_access" expr:"credential_access"`
	// Entities is the number of distinct entities the alert names.
	Entities int `json:"entities" expr:"entities"`
}

// lolbins are Windows binaries commonly abused to run attacker code.
var lolbins = []string{
	"certutil.exe", "mshta.exe", "regsvr32.exe", "rundll32.exe", "wmic.exe",
	"bitsadmin.exe", "msiexec.exe", "cscript.exe", "wscript.exe", "installutil.exe",
	"vssadmin.exe", "psexesvc.exe", "psexec.exe",
}

// Detect maps the alert's ATT&CK references to named tactics and techniques and
// computes its detection features. It returns the alert's attacks with names filled
// in, for the store and the API.
func (a *Attack) Detect(alert *schemas.Alert) (Detection, []schemas.Attack) {
	d := Detection{}
	attacks := make([]schemas.Attack, 0, len(alert.Attacks))
	stages := map[string]Tactic{}
	addTactic := func(t Tactic) { stages[t.ID] = t }

	for _, at := range alert.Attacks {
		out := at
		if at.Tactic.UID != "" || at.Tactic.Name != "" {
			if t, ok := a.Tactic(cmp.Or(at.Tactic.UID, at.Tactic.Name)); ok {
				out.Tactic = schemas.Ref{UID: t.ID, Name: t.Name}
				addTactic(t)
			}
		}
		if id := at.Technique.UID; id != "" {
			if !slices.Contains(d.Techniques, id) {
				d.Techniques = append(d.Techniques, id)
			}
			if tech, ok := a.Technique(id); ok {
				if out.Technique.Name == "" {
					out.Technique.Name = tech.Name
				}
				for _, tid := range tech.Tactics {
					// A technique serving several tactics only adds them all when the
					// source named no tactic of its own.
					if out.Tactic.UID == "" || out.Tactic.UID == tid {
						if t, ok := a.Tactic(tid); ok {
							addTactic(t)
							if out.Tactic.UID == "" {
								out.Tactic = schemas.Ref{UID: t.ID, Name: t.Name}
							}
						}
					}
				}
			} else if !slices.Contains(d.UnknownTechniques, id) {
				d.UnknownTechniques = append(d.UnknownTechniques, id)
			}
		}
		attacks = append(attacks, out)
	}

	ordered := make([]Tactic, 0, len(stages))
	for _, t := range tactics { // matrix order, not map order
		if s, ok := stages[t.ID]; ok {
			ordered = append(ordered, s)
		}
	}
	for _, t := range ordered {
		d.Tactics = append(d.Tactics, t.Name)
		d.TacticIDs = append(d.TacticIDs, t.ID)
		d.Stage, d.StageName = t.Stage, t.Name
	}

	f := &d.Features
	f.ExternalSource = isPublicIP(alert.SrcIP)
	cmd := strings.ToLower(alert.Process.CmdLine)
	f.EncodedCommand = strings.Contains(cmd, "powershell") &&
		(strings.Contains(cmd, " -enc") || strings.Contains(cmd, " -e ") || strings.Contains(cmd, "frombase64string"))
	f.LOLBin = slices.Contains(lolbins, strings.ToLower(cmp.Or(alert.Process.Name, alert.File.Name)))
	f.HasFileHash = alert.FileHash() != ""
	f.HasDevice = alert.Device != (schemas.Device{})
	f.HighImpact = slices.Contains(d.TacticIDs, "TA0040") || slices.Contains(d.TacticIDs, "TA0010")
	f.CredentialAccess = slices.Contains(d.TacticIDs, "TA0006")
	f.Entities = len(alert.Entities())
	return d, attacks
}

// isPublicIP reports whether s is a globally routable unicast address.
func isPublicIP(s string) bool {
	ip, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil {
		return false
	}
	return ip.IsGlobalUnicast() && !ip.IsPrivate()
}
