package triage_test

import (
	"slices"
	"testing"

	"github.com/rampart-soar/rampart/schemas"
	"github.com/rampart-soar/rampart/triage"
)

func TestDetectMapsTechniquesToTactics(t *testing.T) {
	attack := triage.NewAttack()
	tests := []struct {
		name       string
		attacks    []schemas.Attack
		tactics    []string
		stage      int
		unknown    []string
		firstNamed schemas.Attack
	}{
		{
			name:       "technique id only",
			attacks:    []schemas.Attack{{Technique: schemas.Ref{UID: "T1486"}}},
			tactics:    []string{"Impact"},
			stage:      14,
			firstNamed: schemas.Attack{Tactic: schemas.Ref{UID: "TA0040", Name: "Impact"}, Technique: schemas.Ref{UID: "T1486", Name: "Data Encrypted for Impact"}},
		},
		{
			name:       "tactic name from a vendor, sub-technique",
			attacks:    []schemas.Attack{{Tactic: schemas.Ref{Name: "credential access"}, Technique: schemas.Ref{UID: "t1003.001"}}},
			tactics:    []string{"Credential Access"},
			stage:      8,
			firstNamed: schemas.Attack{Tactic: schemas.Ref{UID: "TA0006", Name: "Credential Access"}, Technique: schemas.Ref{UID: "t1003.001", Name: "LSASS Memory"}},
		},
		{
			name: "multi-tactic technique with the source's tactic keeps only that one",
			attacks: []schemas.Attack{
				{Tactic: schemas.Ref{UID: "TA0001"}, Technique: schemas.Ref{UID: "T1078"}},
				{Technique: schemas.Ref{UID: "T1059.001"}},
			},
			tactics:    []string{"Initial Access", "Execution"},
			stage:      4,
			firstNamed: schemas.Attack{Tactic: schemas.Ref{UID: "TA0001", Name: "Initial Access"}, Technique: schemas.Ref{UID: "T1078", Name: "Valid Accounts"}},
		},
		{
			name:       "unknown sub-technique falls back to its parent; unknown id reported",
			attacks:    []schemas.Attack{{Technique: schemas.Ref{UID: "T1059.999"}}, {Technique: schemas.Ref{UID: "T9999"}}},
			tactics:    []string{"Execution"},
			stage:      4,
			unknown:    []string{"T9999"},
			firstNamed: schemas.Attack{Tactic: schemas.Ref{UID: "TA0002", Name: "Execution"}, Technique: schemas.Ref{UID: "T1059.999", Name: "Command and Scripting Interpreter"}},
		},
		{
			name:       "a vendor category that is no ATT&CK tactic",
			attacks:    []schemas.Attack{{Tactic: schemas.Ref{Name: "Malware"}, Technique: schemas.Ref{Name: "PUP"}}},
			stage:      0,
			firstNamed: schemas.Attack{Tactic: schemas.Ref{Name: "Malware"}, Technique: schemas.Ref{Name: "PUP"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := schemas.Alert{Attacks: tt.attacks}
			d, named := attack.Detect(&a)
			if !slices.Equal(d.Tactics, tt.tactics) || d.Stage != tt.stage || !slices.Equal(d.UnknownTechniques, tt.unknown) {
				t.Fatalf("detection = %+v", d)
			}
			if named[0] != tt.firstNamed {
				t.Fatalf("named attack = %+v, want %+v", named[0], tt.firstNamed)
			}
		})
	}
}

func TestDetectFeatures(t *testing.T) {
	attack := triage.NewAttack()
	a := schemas.Alert{
		SrcIP:   "203.0.113.66",
		Device:  schemas.Device{Hostname: "h"},
		Process: schemas.Process{Name: "powershell.exe", CmdLine: "powershell.exe -nop -enc SQBFAFgA"},
		File:    schemas.File{MD5: "aa"},
		Attacks: []schemas.Attack{{Technique: schemas.Ref{UID: "T1041"}}, {Technique: schemas.Ref{UID: "T1110.003"}}},
	}
	d, _ := attack.Detect(&a)
	f := d.Features
	if !f.ExternalSource || !f.EncodedCommand || f.LOLBin || !f.HasFileHash || !f.HasDevice || !f.HighImpact || !f.CredentialAccess {
		t.Fatalf("features = %+v", f)
	}
	if f.Entities != 3 {
		t.Fatalf("entities = %d, want 3", f.Entities)
	}
	b := schemas.Alert{SrcIP: "10.1.2.3", Process: schemas.Process{Name: "RUNDLL32.EXE"}}
	d, _ = attack.Detect(&b)
	if d.Features.ExternalSource || !d.Features.LOLBin || d.Features.HasDevice || d.Stage != 0 {
		t.Fatalf("features = %+v", d.Features)
	}
}
