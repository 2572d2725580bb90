package triage

// Enrichment is what the enrich stage learned about the alert's entities.
// Expressions see it as `enrich`.
type Enrichment struct {
	// Asset is the inventory record of the alert's device, if any.
	Asset Asset `json:"asset" expr:"asset"`
	// IOCHits counts the alert's indicators found on the local IOC list.
	IOCHits int        `json:"ioc_hits" expr:"ioc_hits"`
	IOCs    []IOCMatch `json:"iocs,omitempty" expr:"iocs"`
	// PriorAlerts counts other alerts naming any of the same entities in the 24 hours
	// before this one (event time), up to 100: 100 reads "100 or more".
	PriorAlerts int `json:"prior_alerts" expr:"prior_alerts"`
	// Complete is false when a lookup failed; Errors says which. Decisions that act
	// on an incomplete picture are refused by policy.
	Complete bool     `json:"complete" expr:"complete"`
	Errors   []string `json:"errors,omitempty" expr:"errors"`
}

// Asset is an inventory record as the decide stage sees it.
type Asset struct {
	Found       bool     `json:"found" expr:"found"`
	DeviceID    string   `json:"device_id,omitempty" expr:"device_id"`
	Hostname    string   `json:"hostname,omitempty" expr:"hostname"`
	IP          string   `json:"ip,omitempty" expr:"ip"`
	Criticality string   `json:"criticality,omitempty" expr:"criticality"`
	Owner       string   `json:"owner,omitempty" expr:"owner"`
	Protected   bool     `json:"protected" expr:"protected"`
	Tags        []string `json:"tags,omitempty" expr:"tags"`
}

// IOCMatch is one of the alert's indicators found on the IOC list.
type IOCMatch struct {
	Type       string `json:"type" expr:"type"`
	Value      string `json:"value" expr:"value"`
	Source     string `json:"source,omitempty" expr:"source"`
	Confidence int    `json:"confidence" expr:"confidence"`
}
