package runs_test

import (
	"strings"
	"testing"

	"github.com/rampart-soar/rampart/cmd/rampart/internal/runs"
	"github.com/rampart-soar/rampart/store"
)

// The starter itself runs end to end (TestEndToEndPlaybooks: a dry run on a
// recorded alert); this checks how a recorded alert is read back.
func TestFromStore(t *testing.T) {
	rec, err := runs.FromStore(&store.Alert{ID: "a1",
		AlertJSON:      `{"source":"crowdstrike","severity_id":5,"device":{"id":"h1"}}`,
		DetectionJSON:  `{"techniques":["T1486"]}`,
		EnrichmentJSON: `{"ioc_hits":2,"complete":true}`})
	if err != nil || rec.Alert.Device.ID != "h1" || rec.Detection.Techniques[0] != "T1486" || rec.Enrichment.IOCHits != 2 {
		t.Fatalf("%+v, %v", rec, err)
	}
	// An alert still being detected has no enrichment yet: that is not an error.
	if _, err := runs.FromStore(&store.Alert{ID: "a2", AlertJSON: `{}`}); err != nil {
		t.Fatal(err)
	}
	if _, err := runs.FromStore(&store.Alert{ID: "a3", EnrichmentJSON: `{"ioc_hits":"many"}`}); err == nil || !strings.Contains(err.Error(), "enrichment") {
		t.Fatalf("a broken recording: %v", err)
	}
}
