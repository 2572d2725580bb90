package triage

import "strings"

// Tactic is a MITRE ATT&CK Enterprise tactic. Stage is its position in the
// Enterprise matrix (reconnaissance 1 … impact 14), used as a kill-chain ordinal.
type Tactic struct {
	ID    string
	Name  string
	Stage int
}

// tactics is the full ATT&CK Enterprise tactic list (v15), in matrix order.
var tactics = []Tactic{
	{"TA0043", "Reconnaissance", 1},
	{"TA0042", "Resource Development", 2},
	{"TA0001", "Initial Access", 3},
	{"TA0002", "Execution", 4},
	{"TA0003", "Persistence", 5},
	{"TA0004", "Privilege Escalation", 6},
	{"TA0005", "Defense Evasion", 7},
	{"TA0006", "Credential Access", 8},
	{"TA0007", "Discovery", 9},
	{"TA0008", "Lateral Movement", 10},
	{"TA0009", "Collection", 11},
	{"TA0011", "Command and Control", 12},
	{"TA0010", "Exfiltration", 13},
	{"TA0040", "Impact", 14},
}

// Technique is an ATT&CK technique with the tactics it serves.
type Technique struct {
	ID      string
	Name    string
	Tactics []string // tactic ids
}

// techniques is a compact table: the techniques Rampart's examples and the common
// endpoint, identity and network detections use. An id missing here is reported as
// unknown at the detect stage rather than guessed.
var techniques = []Technique{
	{"T1003", "OS Credential Dumping", []string{"TA0006"}},
	{"T1003.001", "LSASS Memory", []string{"TA0006"}},
	{"T1021", "Remote Services", []string{"TA0008"}},
	{"T1021.001", "Remote Desktop Protocol", []string{"TA0008"}},
	{"T1021.002", "SMB/Windows Admin Shares", []string{"TA0008"}},
	{"T1027", "Obfuscated Files or Information", []string{"TA0005"}},
	{"T1036", "Masquerading", []string{"TA0005"}},
	{"T1041", "Exfiltration Over C2 Channel", []string{"TA0010"}},
	{"T1046", "Network Service Discovery", []string{"TA0007"}},
	{"T1047", "Windows Management Instrumentation", []string{"TA0002"}},
	{"T1053", "Scheduled Task/Job", []string{"TA0002", "TA0003", "TA0004"}},
	{"T1055", "Process Injection", []string{"TA0004", "TA0005"}},
	{"T1059", "Command and Scripting Interpreter", []string{"TA0002"}},
	{"T1059.001", "PowerShell", []string{"TA0002"}},
	{"T1059.003", "Windows Command Shell", []string{"TA0002"}},
	{"T1068", "Exploitation for Privilege Escalation", []string{"TA0004"}},
	{"T1070", "Indicator Removal", []string{"TA0005"}},
	{"T1071", "Application Layer Protocol", []string{"TA0011"}},
	{"T1078", "Valid Accounts", []string{"TA0001", "TA0003", "TA0004", "TA0005"}},
	{"T1105", "Ingress Tool Transfer", []string{"TA0011"}},
	{"T1110", "Brute Force", []string{"TA0006"}},
	{"T1110.001", "Password Guessing", []string{"TA0006"}},
	{"T1110.003", "Password Spraying", []string{"TA0006"}},
	{"T1114", "Email Collection", []string{"TA0009"}},
	{"T1114.003", "Email Forwarding Rule", []string{"TA0009"}},
	{"T1133", "External Remote Services", []string{"TA0001", "TA0003"}},
	{"T1190", "Exploit Public-Facing Application", []string{"TA0001"}},
	{"T1204", "User Execution", []string{"TA0002"}},
	{"T1204.002", "Malicious File", []string{"TA0002"}},
	{"T1486", "Data Encrypted for Impact", []string{"TA0040"}},
	{"T1489", "Service Stop", []string{"TA0040"}},
	{"T1490", "Inhibit System Recovery", []string{"TA0040"}},
	{"T1543.003", "Windows Service", []string{"TA0003", "TA0004"}},
	{"T1547.001", "Registry Run Keys / Startup Folder", []string{"TA0003", "TA0004"}},
	{"T1562.001", "Disable or Modify Tools", []string{"TA0005"}},
	{"T1566", "Phishing", []string{"TA0001"}},
	{"T1566.001", "Spearphishing Attachment", []string{"TA0001"}},
	{"T1566.002", "Spearphishing Link", []string{"TA0001"}},
	{"T1569.002", "Service Execution", []string{"TA0002"}},
	{"T1570", "Lateral Tool Transfer", []string{"TA0008"}},
	{"T1621", "Multi-Factor Authentication Request Generation", []string{"TA0006"}},
}

// Attack is the lookup table over tactics and techniques. It is built once and only
// read afterwards, so it is safe for concurrent use.
type Attack struct {
	tacticByID   map[string]Tactic
	tacticByName map[string]Tactic
	techniques   map[string]Technique
}

// NewAttack builds the ATT&CK lookup table.
func NewAttack() *Attack {
	a := &Attack{
		tacticByID:   make(map[string]Tactic, len(tactics)),
		tacticByName: make(map[string]Tactic, len(tactics)),
		techniques:   make(map[string]Technique, len(techniques)),
	}
	for _, t := range tactics {
		a.tacticByID[t.ID] = t
		a.tacticByName[normalizeName(t.Name)] = t
	}
	for _, t := range techniques {
		a.techniques[t.ID] = t
	}
	return a
}

// Tactic finds a tactic by id (TA0002) or by name ("Execution", case-insensitive).
func (a *Attack) Tactic(idOrName string) (Tactic, bool) {
	if t, ok := a.tacticByID[strings.ToUpper(strings.TrimSpace(idOrName))]; ok {
		return t, true
	}
	t, ok := a.tacticByName[normalizeName(idOrName)]
	return t, ok
}

// Technique finds a technique by id. A sub-technique missing from the table falls
// back to its parent (T1059.005 → T1059) for the tactics, keeping its own id.
func (a *Attack) Technique(id string) (Technique, bool) {
	id = strings.ToUpper(strings.TrimSpace(id))
	if t, ok := a.techniques[id]; ok {
		return t, true
	}
	if parent, _, ok := strings.Cut(id, "."); ok {
		if t, ok := a.techniques[parent]; ok {
			return Technique{ID: id, Name: t.Name, Tactics: t.Tactics}, true
		}
	}
	return Technique{}, false
}

func normalizeName(s string) string {
	return strings.Join(strings.Fields(strings.ToLower(strings.ReplaceAll(s, "-", " "))), " ")
}
