package server

import (
	"testing"
	"time"

	"github.com/rampart-soar/rampart/server/ingest"
)

// A tool retrying with a stale secret is warned of once a minute per kind of
// refusal, each warning saying how many went unlogged since the one before.
func TestRefusalWarningsAreSpaced(t *testing.T) {
	t0 := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	d := newDeliveries([]ingest.SourceInfo{{Name: "crowdstrike"}}, t0)
	type want struct {
		warn     bool
		unlogged int
	}
	for i, c := range []struct {
		after   time.Duration
		code    string
		fixable bool
		want    want
	}{
		{0, "invalid_signature", true, want{true, 0}},
		{10 * time.Second, "invalid_signature", true, want{false, 0}},
		{20 * time.Second, "schema_violation", true, want{true, 0}}, // another kind: its own minute
		{30 * time.Second, "invalid_signature", true, want{false, 0}},
		{40 * time.Second, "rate_limited", false, want{false, 0}}, // logged where it is answered
		{61 * time.Second, "invalid_signature", true, want{true, 2}},
		{62 * time.Second, "invalid_signature", true, want{false, 0}},
	} {
		warn, unlogged := d.refused("crowdstrike", Refusal{At: t0.Add(c.after), Code: c.code}, c.fixable)
		if (want{warn, unlogged}) != c.want {
			t.Fatalf("refusal %d (%s at +%s): warn %v, unlogged %d; want %+v", i, c.code, c.after, warn, unlogged, c.want)
		}
	}
	if warn, _ := d.refused("nope", Refusal{At: t0, Code: "unknown_source"}, true); warn {
		t.Fatal("an unknown source's refusal warned")
	}
	got := d.list()
	if got.UnknownSource != 1 || got.Sources[0].Refused["invalid_signature"] != 5 || got.Sources[0].Refused["rate_limited"] != 1 ||
		got.Sources[0].LastRefusal.Code != "invalid_signature" {
		t.Fatalf("counts: %+v", got)
	}
}
