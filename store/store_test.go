package store_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/rampart-soar/rampart/schemas"
	"github.com/rampart-soar/rampart/store"
	"github.com/rampart-soar/rampart/store/storetest"
)

var t0 = time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)

func alertRow(id string, received time.Time, sev int, status string) *store.Alert {
	return &store.Alert{
		ID: id, WorkflowID: "alert/fp-" + id, Fingerprint: "fp-" + id, Source: "crowdstrike",
		FindingUID: "finding-" + id, Title: "title " + id, SeverityID: sev, Severity: schemas.SeverityName(sev),
		Status: status, EventTime: received.Add(-time.Minute), ReceivedAt: received, LastSeenAt: received,
		AlertJSON: `{"id":"` + id + `"}`,
	}
}

func TestRecordAlertIsIdempotent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		ents := []schemas.Entity{{Kind: "hostname", Value: "fin-ws-1"}, {Kind: "ip", Value: "10.0.0.1"}}
		run := &store.Run{ID: "r1", WorkflowID: "alert/fp-r1", WorkflowType: "AlertWorkflow", AlertID: "r1", Status: store.StatusRunning, StartedAt: t0}
		for range 3 {
			if err := st.RecordAlert(ctx, alertRow("r1", t0, 4, store.AlertProcessing), ents, run); err != nil {
				t.Fatal(err)
			}
		}
		outcomeAt := t0.Add(1500 * time.Millisecond).In(time.FixedZone("UTC+2", 2*3600))
		if err := st.UpdateAlert(ctx, "r1", store.AlertUpdate{Status: store.AlertContained, Summary: "contained: contain_when matched", DecisionJSON: `{"contain":true}`,
			OutcomeAt: &outcomeAt}); err != nil {
			t.Fatal(err)
		}
		// A late replay of the first write must not undo the later status.
		if err := st.RecordAlert(ctx, alertRow("r1", t0, 4, store.AlertProcessing), ents, run); err != nil {
			t.Fatal(err)
		}
		d, err := st.GetAlert(ctx, "r1")
		if err != nil {
			t.Fatal(err)
		}
		if d.Alert.Status != store.AlertContained || d.Alert.DecisionJSON != `{"contain":true}` || d.Alert.Summary != "contained: contain_when matched" ||
			d.Alert.OutcomeAt == nil || d.Alert.OutcomeAt.Sub(d.Alert.ReceivedAt) != 1500*time.Millisecond {
			t.Fatalf("status/decision/outcome time overwritten: %+v", d.Alert)
		}
		if d.Run == nil || d.Run.WorkflowID != "alert/fp-r1" {
			t.Fatalf("run not recorded: %+v", d.Run)
		}
		n, err := st.CountPriorAlerts(ctx, ents, t0.Add(-time.Hour), t0, "other")
		if err != nil || n != 1 {
			t.Fatalf("entity index: got %d, %v; want 1 alert", n, err)
		}
		if err := st.UpdateAlert(ctx, "missing", store.AlertUpdate{Status: store.AlertFailed}); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("update of a missing alert: %v", err)
		}
	})
}

func TestDuplicatesOnlyGrow(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		if err := st.RecordAlert(ctx, alertRow("a", t0, 3, store.AlertProcessing), nil, nil); err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{3, 7, 5} { // 5 arrives late, from an older write
			if err := st.SetDuplicates(ctx, "a", n, t0.Add(time.Duration(n)*time.Second)); err != nil {
				t.Fatal(err)
			}
		}
		d, _ := st.GetAlert(ctx, "a")
		if d.Alert.DuplicateCount != 7 || !d.Alert.LastSeenAt.Equal(t0.Add(7*time.Second)) {
			t.Fatalf("duplicates = %d last seen %v, want 7 at +7s", d.Alert.DuplicateCount, d.Alert.LastSeenAt)
		}
	})
}

func TestCountPriorAlertsWindow(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		host := []schemas.Entity{{Kind: "hostname", Value: "h1"}}
		for i, age := range []time.Duration{time.Hour, 23 * time.Hour, 25 * time.Hour} {
			a := alertRow(fmt.Sprintf("p%d", i), t0, 3, store.AlertNoAction)
			a.EventTime = t0.Add(-age)
			if err := st.RecordAlert(ctx, a, host, nil); err != nil {
				t.Fatal(err)
			}
		}
		other := alertRow("other", t0, 3, store.AlertNoAction)
		if err := st.RecordAlert(ctx, other, []schemas.Entity{{Kind: "hostname", Value: "h2"}}, nil); err != nil {
			t.Fatal(err)
		}
		n, err := st.CountPriorAlerts(ctx, append(host, schemas.Entity{Kind: "user", Value: "nobody"}), t0.Add(-24*time.Hour), t0, "p0")
		if err != nil {
			t.Fatal(err)
		}
		if n != 1 { // p1 only: p0 is excluded, p2 is too old, other is another host
			t.Fatalf("prior alerts = %d, want 1", n)
		}
		if n, _ := st.CountPriorAlerts(ctx, nil, t0.Add(-24*time.Hour), t0, ""); n != 0 {
			t.Fatalf("no entities should count nothing, got %d", n)
		}
	})
}

func TestListAlertsNewestFirstWithFilters(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		for i := range 7 {
			status := store.AlertNoAction
			if i%3 == 0 {
				status = store.AlertContained
			}
			// i=5 and 6 share a receive time: the id breaks the tie.
			at := t0.Add(time.Duration(min(i, 5)) * time.Minute)
			a := alertRow(fmt.Sprintf("a%d", i), at, 2+i%4, store.AlertProcessing)
			if i%2 == 0 {
				a.RuleUID = "rule-even"
			}
			if err := st.RecordAlert(ctx, a, nil, nil); err != nil {
				t.Fatal(err)
			}
			if err := st.UpdateAlert(ctx, fmt.Sprintf("a%d", i), store.AlertUpdate{Status: status}); err != nil {
				t.Fatal(err)
			}
		}
		var ids []string
		cursor := ""
		for page := 0; ; page++ {
			rows, next, err := st.ListAlerts(ctx, store.AlertFilter{Limit: 3, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rows {
				ids = append(ids, r.ID)
				if r.RawJSON != "" {
					t.Fatal("list must not load raw payloads")
				}
			}
			if next == "" {
				break
			}
			if page > 5 {
				t.Fatal("pagination does not end")
			}
			cursor = next
		}
		want := []string{"a6", "a5", "a4", "a3", "a2", "a1", "a0"}
		if fmt.Sprint(ids) != fmt.Sprint(want) {
			t.Fatalf("order = %v, want %v", ids, want)
		}
		rows, _, err := st.ListAlerts(ctx, store.AlertFilter{Status: store.AlertContained})
		if err != nil || len(rows) != 3 {
			t.Fatalf("status filter: %d rows, %v", len(rows), err)
		}
		minSev := 4
		rows, _, _ = st.ListAlerts(ctx, store.AlertFilter{MinSeverity: &minSev})
		for _, r := range rows {
			if r.SeverityID < 4 {
				t.Fatalf("min severity filter let %d through", r.SeverityID)
			}
		}
		if len(rows) == 0 {
			t.Fatal("min severity filter returned nothing")
		}
		// By rule: its title or its rule uid, with the other filters (the OR stays in its parentheses).
		for _, c := range []struct {
			f    store.AlertFilter
			want string
		}{
			{store.AlertFilter{Rule: "title a4"}, "[a4]"},
			{store.AlertFilter{Rule: "rule-even"}, "[a6 a4 a2 a0]"},
			{store.AlertFilter{Rule: "rule-even", Status: store.AlertContained}, "[a6 a0]"},
			{store.AlertFilter{Rule: "title a3", Status: store.AlertNoAction}, "[]"},
			{store.AlertFilter{Rule: "Title A4"}, "[]"},
		} {
			rows, _, err := st.ListAlerts(ctx, c.f)
			got := []string{}
			for _, r := range rows {
				got = append(got, r.ID)
			}
			if err != nil || fmt.Sprint(got) != c.want {
				t.Fatalf("%+v: %v (%v), want %s", c.f, got, err, c.want)
			}
		}
		if _, _, err := st.ListAlerts(ctx, store.AlertFilter{Cursor: "not-a-cursor!"}); !errors.Is(err, store.ErrBadCursor) {
			t.Fatalf("bad cursor: %v", err)
		}
	})
}

func TestListAlertsAboutAnEntity(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		for i, e := range [][]schemas.Entity{
			{{Kind: schemas.EntityHostname, Value: "fin-ws-0142"}, {Kind: schemas.EntityIP, Value: "10.20.4.142"}},
			{{Kind: schemas.EntityHostname, Value: "eng-ws-0077"}, {Kind: schemas.EntityIP, Value: "203.0.113.66"}},
			{{Kind: schemas.EntityUser, Value: "dana.okafor"}, {Kind: schemas.EntityIP, Value: "10.20.4.142"}},
			{{Kind: schemas.EntityHostname, Value: "fin-ws-0142"}},
		} {
			if err := st.RecordAlert(ctx, alertRow(fmt.Sprintf("e%d", i), t0.Add(time.Duration(i)*time.Minute), 3, store.AlertNoAction), e, nil); err != nil {
				t.Fatal(err)
			}
		}
		ids := func(f store.AlertFilter) string {
			rows, next, err := st.ListAlerts(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, r := range rows {
				out = append(out, r.ID)
			}
			return strings.Join(out, ",") + map[bool]string{true: " …"}[next != ""]
		}
		for entity, want := range map[string]string{
			" FIN-WS-0142 ": "e3,e0", // as recorded: trimmed, lower case
			"10.20.4.142":   "e2,e0", // an IP the device had and a source IP alike
			"dana.okafor":   "e2",
			"fin-ws":        "", // whole values only
		} {
			if got := ids(store.AlertFilter{Entity: entity}); got != want {
				t.Errorf("entity %q: %q, want %q", entity, got, want)
			}
		}
		if got := ids(store.AlertFilter{Entity: "fin-ws-0142", Limit: 1}); got != "e3 …" {
			t.Errorf("first page: %q", got)
		}
	})
}

func TestStepsUpsertByRunAndName(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		if err := st.RecordAlert(ctx, alertRow("s", t0, 3, store.AlertProcessing), nil,
			&store.Run{ID: "s", WorkflowID: "alert/fp-s", WorkflowType: "AlertWorkflow", AlertID: "s", Status: store.StatusRunning, StartedAt: t0}); err != nil {
			t.Fatal(err)
		}
		start := &store.Step{RunID: "s", Name: "contain", Seq: 4, Status: store.StatusRunning, StartedAt: t0, InputJSON: `{"target":"x"}`}
		if err := st.SaveStep(ctx, start); err != nil {
			t.Fatal(err)
		}
		if err := st.SaveStep(ctx, &store.Step{RunID: "s", Name: "detect", Seq: 1, Status: store.StatusSucceeded, StartedAt: t0}); err != nil {
			t.Fatal(err)
		}
		done := t0.Add(2 * time.Second)
		if err := st.SaveStep(ctx, &store.Step{RunID: "s", Name: "contain", Seq: 4, Status: store.StatusSucceeded, StartedAt: t0, FinishedAt: &done, OutputJSON: `{"status":"contained"}`,
			Note: "the playbook went on"}); err != nil {
			t.Fatal(err)
		}
		d, err := st.GetAlert(ctx, "s")
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Steps) != 2 || d.Steps[0].Name != "detect" || d.Steps[1].Name != "contain" {
			t.Fatalf("steps = %+v", d.Steps)
		}
		c := d.Steps[1]
		if c.Status != store.StatusSucceeded || c.InputJSON != `{"target":"x"}` || c.OutputJSON != `{"status":"contained"}` || c.FinishedAt == nil ||
			c.Note != "the playbook went on" {
			t.Fatalf("contain step after upsert = %+v", c)
		}
		if started, err := st.StepStartedAt(ctx, "s", "contain"); err != nil || !started.Equal(t0) {
			t.Fatalf("StepStartedAt = %v, %v", started, err)
		}
		done2 := t0.Add(time.Hour)
		if err := st.UpdateRun(ctx, "s", store.RunUpdate{Status: store.StatusCompleted, ClosedAt: &done2}); err != nil {
			t.Fatal(err)
		}
		d, _ = st.GetAlert(ctx, "s")
		if d.Run.Status != store.StatusCompleted || d.Run.ClosedAt == nil || !d.Run.ClosedAt.Equal(done2) {
			t.Fatalf("run = %+v", d.Run)
		}
	})
}

func TestClaimActionOncePerKey(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		claim := func() (store.Action, bool) {
			a, created, err := st.ClaimAction(ctx, &store.Action{IdempotencyKey: "alert/x/run/contain", AlertID: "run", RunID: "run",
				Integration: "crowdstrike", Operation: "isolate_host", Target: "dev1"})
			if err != nil {
				t.Fatal(err)
			}
			return a, created
		}
		first, created := claim()
		if !created || first.Status != store.StatusPending || first.Attempts != 1 {
			t.Fatalf("first claim = %+v created=%v", first, created)
		}
		if err := st.UpdateAction(ctx, "alert/x/run/contain", store.ActionUpdate{Status: store.StatusRunning, VendorID: "v-1", VendorCall: true}); err != nil {
			t.Fatal(err)
		}
		again, created := claim()
		if created || again.VendorID != "v-1" || again.VendorCalls != 1 || again.Attempts != 2 || again.ID != first.ID {
			t.Fatalf("second claim = %+v created=%v", again, created)
		}
		if err := st.UpdateAction(ctx, "alert/x/run/contain", store.ActionUpdate{Error: "boom"}); err != nil {
			t.Fatal(err)
		}
		if err := st.UpdateAction(ctx, "alert/x/run/contain", store.ActionUpdate{Status: store.StatusSucceeded, ClearError: true}); err != nil {
			t.Fatal(err)
		}
		got, err := st.GetAction(ctx, "alert/x/run/contain")
		if err != nil || got.Error != "" || got.Status != store.StatusSucceeded || got.VendorID != "v-1" {
			t.Fatalf("final action = %+v, %v", got, err)
		}
		if _, err := st.GetAction(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("missing action: %v", err)
		}
	})
}

// TestEndAction: a run that gives up on an action fails it if the vendor never
// accepted it, marks it unconfirmed if the vendor accepted it, and leaves a
// finished one as it is.
func TestEndAction(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		for key, status := range map[string]string{"k-pending": "", "k-running": store.StatusRunning, "k-done": store.StatusSucceeded} {
			if _, _, err := st.ClaimAction(ctx, &store.Action{IdempotencyKey: key, Integration: "crowdstrike", Operation: "isolate_host"}); err != nil {
				t.Fatal(err)
			}
			if status != "" {
				if err := st.UpdateAction(ctx, key, store.ActionUpdate{Status: status}); err != nil {
					t.Fatal(err)
				}
			}
		}
		for _, key := range []string{"k-pending", "k-running", "k-done", "k-missing"} {
			if err := st.EndAction(ctx, key); err != nil {
				t.Fatalf("%s: %v", key, err)
			}
		}
		for key, want := range map[string]string{"k-pending": store.StatusFailed, "k-running": store.StatusUnconfirmed, "k-done": store.StatusSucceeded} {
			if a, err := st.GetAction(ctx, key); err != nil || a.Status != want {
				t.Errorf("%s = %+v, %v; want %s", key, a, err, want)
			}
		}
	})
}

func TestAssetsAndIOCs(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		assets := []store.Asset{
			{Hostname: "FIN-WS-1", DeviceID: "AAA", IP: "10.0.0.1", Criticality: "low", TagsJSON: `["ws"]`},
			{Hostname: "dc-01", DeviceID: "bbb", IP: "10.0.0.2", Criticality: "critical", Protected: true},
		}
		if err := st.UpsertAssets(ctx, assets); err != nil {
			t.Fatal(err)
		}
		// Upsert by hostname: the second load changes, not duplicates.
		if err := st.UpsertAssets(ctx, []store.Asset{{Hostname: "fin-ws-1", DeviceID: "aaa", IP: "10.0.0.9", Criticality: "high"}}); err != nil {
			t.Fatal(err)
		}
		a, err := st.FindAsset(ctx, "", "Fin-WS-1", "")
		if err != nil || a.Criticality != "high" || a.IP != "10.0.0.9" {
			t.Fatalf("asset by hostname = %+v, %v", a, err)
		}
		if a, err := st.FindAsset(ctx, "BBB", "fin-ws-1", ""); err != nil || a.Hostname != "dc-01" || !a.Protected {
			t.Fatalf("device id must win over hostname: %+v, %v", a, err)
		}
		if a, err := st.FindAsset(ctx, "", "", "10.0.0.2"); err != nil || a.Hostname != "dc-01" {
			t.Fatalf("asset by ip = %+v, %v", a, err)
		}
		if _, err := st.FindAsset(ctx, "zzz", "nope", "1.2.3.4"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown asset: %v", err)
		}
		hash := strings.Repeat("ab", 32)
		if err := st.UpsertIOCs(ctx, []store.IOC{
			{Type: "sha256", Value: strings.ToUpper(hash), Source: "feed", Confidence: 90},
			{Type: "ipv4", Value: "203.0.113.66", Source: "feed", Confidence: 70},
			{Type: "domain", Value: "evil.example", Source: "feed"},
			{Type: "ipv6", Value: "2001:DB8:0:0::0001", Source: "feed"}, // as alerts give it: 2001:db8::1
		}); err != nil {
			t.Fatal(err)
		}
		if err := st.UpsertIOCs(ctx, []store.IOC{{Type: "ipv4", Value: "203.0.113.66", Source: "feed2", Confidence: 75}}); err != nil {
			t.Fatal(err)
		}
		hits, err := st.MatchIOCs(ctx, []schemas.Entity{
			{Kind: schemas.EntityHash, Value: hash},
			{Kind: schemas.EntityIP, Value: "203.0.113.66"},
			{Kind: schemas.EntityIP, Value: "2001:db8::1"},
			{Kind: schemas.EntityHostname, Value: "evil.example"}, // a hostname is not a domain IOC hit
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(hits) != 3 || hits[0].Type != "ipv4" || hits[0].Source != "feed2" || hits[1].Type != "ipv6" || hits[2].Type != "sha256" {
			t.Fatalf("hits = %+v", hits)
		}
		if err := st.UpsertIOCs(ctx, []store.IOC{{Type: "bogus", Value: "x"}}); err == nil {
			t.Fatal("unknown IOC type accepted")
		}
		if err := st.UpsertIOCs(ctx, []store.IOC{{Type: "sha256", Value: "abcdef"}}); err == nil {
			t.Fatal("a truncated hash, which could never match, accepted")
		}
		if err := st.UpsertAssets(ctx, []store.Asset{{Hostname: "ws-9", IP: "10.0.0.300"}}); err == nil {
			t.Fatal("an asset with an IP that is not one accepted")
		}
		// An inventory IP in a non-canonical form still finds its asset.
		if err := st.UpsertAssets(ctx, []store.Asset{{Hostname: "ws-6", IP: "FE80::0001"}}); err != nil {
			t.Fatal(err)
		}
		if a, err := st.FindAsset(ctx, "", "", "fe80::1"); err != nil || a.Hostname != "ws-6" {
			t.Fatalf("asset by a canonical IPv6 address = %+v, %v", a, err)
		}
	})
}

// TestURLIndicatorsMatchHoweverWritten: a URL indicator is hit by the same URL
// written with a default port, a fragment or without the root path.
func TestURLIndicatorsMatchHoweverWritten(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		if _, err := st.ReplaceIOCs(ctx, []store.IOC{
			{Type: "url", Value: "http://dl.example/payload.bin", Source: "feed"},
			{Type: "url", Value: "https://c2.example:443", Source: "feed"},
		}); err != nil {
			t.Fatal(err)
		}
		for url, hit := range map[string]bool{
			"HTTP://dl.example:80/payload.bin#top": true,
			"http://dl.example/payload.bin":        true,
			"https://c2.example/":                  true,
			"https://c2.example":                   true,
			"http://dl.example/payload.bin?x=1":    false,
			"https://dl.example/payload.bin":       false,
			"http://dl.example:8080/payload.bin":   false,
		} {
			hits, err := st.MatchIOCs(ctx, []schemas.Entity{{Kind: schemas.EntityURL, Value: schemas.EntityValue(url)}})
			if err != nil || (len(hits) > 0) != hit || len(hits) > 1 || (hit && hits[0].Type != "url") {
				t.Errorf("%s: hits %+v, %v; want a hit: %v", url, hits, err, hit)
			}
		}
	})
}

func TestReplaceReferenceData(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		hash := strings.Repeat("cd", 32)
		list := []store.IOC{
			{Type: "sha256", Value: hash, Source: "feed", Confidence: 90},
			{Type: "ipv4", Value: "203.0.113.66", Source: "feed", Confidence: 50},
			{Type: "ipv4", Value: "203.0.113.66", Source: "feed2", Confidence: 70}, // listed twice: the last wins
			{Type: "domain", Value: "evil.example", Source: "feed"},
		}
		if removed, err := st.ReplaceIOCs(ctx, list); err != nil || removed != 0 {
			t.Fatalf("first load: removed %d, %v", removed, err)
		}
		match := func() []store.IOC {
			t.Helper()
			hits, err := st.MatchIOCs(ctx, []schemas.Entity{
				{Kind: schemas.EntityHash, Value: hash},
				{Kind: schemas.EntityIP, Value: "203.0.113.66"},
				{Kind: schemas.EntityDomain, Value: "evil.example"},
			})
			if err != nil {
				t.Fatal(err)
			}
			return hits
		}
		if hits := match(); len(hits) != 3 || hits[1].Source != "feed2" || hits[1].Confidence != 70 {
			t.Fatalf("hits after the first load = %+v", hits)
		}
		// A domain indicator is hit by the names under it, in a domain or a URL;
		// an IP indicator by a URL to the address. A name that merely ends the
		// same way, or a parent of the listed domain, is no hit.
		for _, c := range []struct {
			entity schemas.Entity
			hit    string
		}{
			{schemas.Entity{Kind: schemas.EntityDomain, Value: "cdn.login.evil.example."}, "evil.example"},
			{schemas.Entity{Kind: schemas.EntityURL, Value: "https://files.evil.example:8443/payload.bin?x=1"}, "evil.example"},
			{schemas.Entity{Kind: schemas.EntityURL, Value: "http://203.0.113.66/c2"}, "203.0.113.66"},
			{schemas.Entity{Kind: schemas.EntityDomain, Value: "notevil.example"}, ""},
			{schemas.Entity{Kind: schemas.EntityDomain, Value: "example"}, ""},
			{schemas.Entity{Kind: schemas.EntityURL, Value: "https://example/evil.example"}, ""},
			{schemas.Entity{Kind: schemas.EntityHostname, Value: "www.evil.example"}, ""}, // a hostname is no domain hit
			{schemas.Entity{Kind: schemas.EntityURL, Value: "not a url %zz"}, ""},
		} {
			hits, err := st.MatchIOCs(ctx, []schemas.Entity{c.entity})
			if err != nil || (c.hit == "") != (len(hits) == 0) || len(hits) > 1 || (len(hits) == 1 && hits[0].Value != c.hit) {
				t.Errorf("%+v: hits %+v, %v; want %q", c.entity, hits, err, c.hit)
			}
		}
		// The hash was a false positive: taken off the list, it stops matching.
		removed, err := st.ReplaceIOCs(ctx, []store.IOC{list[2], list[3]})
		if err != nil || removed != 1 {
			t.Fatalf("second load: removed %d, %v", removed, err)
		}
		if hits := match(); len(hits) != 2 || hits[0].Type != "domain" || hits[1].Type != "ipv4" {
			t.Fatalf("hits after the hash left the list = %+v", hits)
		}
		// A list with a bad line changes nothing.
		if _, err := st.ReplaceIOCs(ctx, []store.IOC{{Type: "md5", Value: "abc"}}); err == nil {
			t.Fatal("a list with a truncated hash replaced the list")
		}
		if hits := match(); len(hits) != 2 {
			t.Fatalf("hits after a refused list = %+v", hits)
		}
		// More indicators than one statement may bind, all but one then removed.
		many := make([]store.IOC, 1200)
		for i := range many {
			many[i] = store.IOC{Type: "ipv4", Value: fmt.Sprintf("198.51.%d.%d", i/250, i%250+1)}
		}
		if removed, err := st.ReplaceIOCs(ctx, many); err != nil || removed != 2 {
			t.Fatalf("large load: removed %d, %v", removed, err)
		}
		if removed, err := st.ReplaceIOCs(ctx, many[:1]); err != nil || removed != len(many)-1 {
			t.Fatalf("shrinking load: removed %d, %v", removed, err)
		}
		if removed, err := st.ReplaceIOCs(ctx, nil); err != nil || removed != 1 {
			t.Fatalf("an empty list: removed %d, %v", removed, err)
		}

		assets := []store.Asset{
			{Hostname: "old-ws-1", DeviceID: "aaa", IP: "10.0.0.7", Criticality: "critical", Protected: true},
			{Hostname: "dc-01", DeviceID: "bbb", IP: "10.0.0.2", Criticality: "critical"},
			{Hostname: "DC-01", DeviceID: "bbb", IP: "10.0.0.2", Criticality: "critical", Protected: true}, // the last wins
		}
		if removed, err := st.ReplaceAssets(ctx, assets); err != nil || removed != 0 {
			t.Fatalf("first inventory: removed %d, %v", removed, err)
		}
		if a, err := st.FindAsset(ctx, "", "dc-01", ""); err != nil || !a.Protected {
			t.Fatalf("dc-01 = %+v, %v", a, err)
		}
		// old-ws-1 is decommissioned and its address given to a new host: the
		// address finds the new host, not the one that left the inventory.
		removed, err = st.ReplaceAssets(ctx, []store.Asset{assets[2], {Hostname: "new-ws-9", IP: "10.0.0.7", Criticality: "low"}})
		if err != nil || removed != 1 {
			t.Fatalf("second inventory: removed %d, %v", removed, err)
		}
		if a, err := st.FindAsset(ctx, "", "", "10.0.0.7"); err != nil || a.Hostname != "new-ws-9" || a.Protected {
			t.Fatalf("asset by the reused address = %+v, %v", a, err)
		}
		if _, err := st.FindAsset(ctx, "aaa", "old-ws-1", ""); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a host off the inventory is still found: %v", err)
		}
	})
}

func TestOpenRejectsBadDSNWithoutLeakingPassword(t *testing.T) {
	_, err := store.Open(context.Background(), "postgres://u:s3cr3t-pw@127.0.0.1:1/db?sslmode=disable&connect_timeout=1")
	if err == nil {
		t.Fatal("expected an error for an unreachable database")
	}
	if strings.Contains(err.Error(), "s3cr3t-pw") {
		t.Fatalf("password leaked into the error: %v", err)
	}
	if _, err := store.Open(context.Background(), " "); err == nil {
		t.Fatal("empty DSN accepted")
	}
	// Connect leaves the database for later: the store opens, and its calls fail
	// until the database answers.
	st, err := store.Connect("postgres://u:s3cr3t-pw@127.0.0.1:1/db?sslmode=disable&connect_timeout=1")
	if err != nil {
		t.Fatalf("connect without the database answering: %v", err)
	}
	defer st.Close()
	if err := st.Ping(context.Background()); err == nil || strings.Contains(err.Error(), "s3cr3t-pw") {
		t.Fatalf("ping of a database nobody serves: %v", err)
	}
	if _, _, err := st.ListAlerts(context.Background(), store.AlertFilter{Limit: 1}); err == nil {
		t.Fatal("a query of a database nobody serves succeeded")
	}
}

func TestCountPriorAlertsIsCapped(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		hash := []schemas.Entity{{Kind: schemas.EntityHash, Value: "feedface"}}
		for i := range store.MaxPriorAlerts + 5 {
			if err := st.RecordAlert(ctx, alertRow(fmt.Sprintf("m%04d", i), t0, 4, store.AlertProcessing), hash, nil); err != nil {
				t.Fatal(err)
			}
		}
		n, err := st.CountPriorAlerts(ctx, hash, t0.Add(-24*time.Hour), t0, "none")
		if err != nil || n != store.MaxPriorAlerts {
			t.Fatalf("count = %d, %v; want the cap %d", n, err, store.MaxPriorAlerts)
		}
	})
}

func TestPlaybookVersions(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		apply := func(hash string, enabled bool) store.ApplyResult {
			r, err := st.ApplyPlaybook(ctx, "p", hash, "source "+hash, `{"name":"p"}`, 10, "desc", enabled)
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		if r := apply("h1", false); r.Version != 1 || !r.Created {
			t.Fatalf("first apply = %+v", r)
		}
		if r := apply("h1", true); r.Version != 1 || r.Created {
			t.Fatalf("same definition again = %+v", r)
		}
		if r := apply("h2", true); r.Version != 2 || !r.Created {
			t.Fatalf("changed definition = %+v", r)
		}
		pb, versions, err := st.GetPlaybook(ctx, "p")
		if err != nil || pb.LatestVersion != 2 || pb.Enabled || len(versions) != 2 || versions[0].Version != 2 {
			t.Fatalf("playbook = %+v versions %+v, %v (enabled comes from the first apply only)", pb, versions, err)
		}
		if v, err := st.GetPlaybookVersion(ctx, "p", 1); err != nil || v.Source != "source h1" {
			t.Fatalf("v1 = %+v, %v", v, err)
		}
		if v, err := st.GetPlaybookVersion(ctx, "p", 0); err != nil || v.Version != 2 {
			t.Fatalf("latest = %+v, %v", v, err)
		}
		if got, _ := st.EnabledPlaybooks(ctx); len(got) != 0 {
			t.Fatalf("a disabled playbook is enabled: %+v", got)
		}
		if err := st.SetPlaybookEnabled(ctx, "p", true); err != nil {
			t.Fatal(err)
		}
		if _, err := st.ApplyPlaybook(ctx, "a-first", "x", "s", `{}`, 5, "", true); err != nil {
			t.Fatal(err)
		}
		got, err := st.EnabledPlaybooks(ctx)
		if err != nil || len(got) != 2 || got[0].Name != "a-first" || got[1].Name != "p" || got[1].Version != 2 {
			t.Fatalf("enabled = %+v, %v (priority order, latest version)", got, err)
		}
		if err := st.SetPlaybookEnabled(ctx, "missing", true); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("missing: %v", err)
		}
		if _, err := st.GetPlaybookVersion(ctx, "p", 9); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("v9: %v", err)
		}
	})
}

func TestApprovalsMirror(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		at := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
		row := func(status string) *store.Approval {
			return &store.Approval{ID: "ap-1", AlertID: "a1", WorkflowID: "playbook/a1/p", RunID: "r1", Playbook: "p", Step: "isolate",
				Operation: "edr.isolate_host", ArgsHash: "h", ApproversJSON: `["role:tier2"]`, Status: status, RequestedAt: at}
		}
		if err := st.SaveApproval(ctx, row(store.ApprovalPending)); err != nil {
			t.Fatal(err)
		}
		// Escalation rewrites the approvers; the request time stays.
		esc := row(store.ApprovalPending)
		esc.ApproversJSON, esc.RequestedAt = `["role:soc-lead"]`, at.Add(15*time.Minute)
		if err := st.SaveApproval(ctx, esc); err != nil {
			t.Fatal(err)
		}
		got, err := st.GetApproval(ctx, "ap-1")
		if err != nil || got.ApproversJSON != `["role:soc-lead"]` || !got.RequestedAt.Equal(at) {
			t.Fatalf("after escalation: %+v, %v", got, err)
		}
		if waiting, err := st.PendingApprovalsFor(ctx, []string{"a1", "a2"}); err != nil || len(waiting) != 1 || waiting[0].ID != "ap-1" {
			t.Fatalf("pending approvals of a1, a2: %+v, %v", waiting, err)
		}
		decided := row(store.ApprovalDenied)
		decided.DecidedBy, decided.Reason = "ana", "no"
		if err := st.SaveApproval(ctx, decided); err != nil {
			t.Fatal(err)
		}
		// A late pending write (a retried activity) does not reopen it.
		if err := st.SaveApproval(ctx, row(store.ApprovalPending)); err != nil {
			t.Fatal(err)
		}
		got, _ = st.GetApproval(ctx, "ap-1")
		if got.Status != store.ApprovalDenied || got.DecidedBy != "ana" {
			t.Fatalf("decided approval = %+v", got)
		}
		if pending, _ := st.ListApprovals(ctx, store.ApprovalPending, 10); len(pending) != 0 {
			t.Fatalf("pending = %+v", pending)
		}
		if waiting, err := st.PendingApprovalsFor(ctx, []string{"a1"}); err != nil || len(waiting) != 0 {
			t.Fatalf("pending approvals of a1 once decided: %+v, %v", waiting, err)
		}
		if all, _ := st.ListApprovals(ctx, "", 10); len(all) != 1 {
			t.Fatalf("all = %+v", all)
		}
		if n, err := st.CountApprovals(ctx, store.ApprovalDenied); err != nil || n != 1 {
			t.Fatalf("denied count = %d, %v", n, err)
		}
		if n, err := st.CountApprovals(ctx, store.ApprovalPending); err != nil || n != 0 {
			t.Fatalf("pending count = %d, %v", n, err)
		}
		if _, err := st.GetApproval(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("missing: %v", err)
		}
	})
}

func TestOldestApproval(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		if _, ok, err := st.OldestApproval(ctx, store.ApprovalPending); ok || err != nil {
			t.Fatalf("oldest of none: %v %v", ok, err)
		}
		at := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
		for id, a := range map[string]struct {
			status string
			at     time.Time
		}{
			"newer":   {store.ApprovalPending, at.Add(time.Hour)},
			"oldest":  {store.ApprovalPending, at},
			"decided": {store.ApprovalApproved, at.Add(-time.Hour)},
		} {
			if err := st.SaveApproval(ctx, &store.Approval{ID: id, AlertID: "a1", WorkflowID: "playbook/a1/p", RunID: "r1", Playbook: "p",
				Step: id, Operation: "edr.isolate_host", ArgsHash: "h", ApproversJSON: `[]`, Status: a.status, RequestedAt: a.at}); err != nil {
				t.Fatal(err)
			}
		}
		if got, ok, err := st.OldestApproval(ctx, store.ApprovalPending); !ok || err != nil || !got.Equal(at) {
			t.Fatalf("oldest pending = %v %v %v, want %v", got, ok, err, at)
		}
		if got, ok, err := st.OldestApproval(ctx, store.ApprovalApproved); !ok || err != nil || !got.Equal(at.Add(-time.Hour)) {
			t.Fatalf("oldest approved = %v %v %v", got, ok, err)
		}
	})
}

func TestAlertHeadlines(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		a := alertRow("a1", t0, 5, store.AlertProcessing)
		a.AlertJSON = `{"device":{"id":"d1","hostname":"dc-01"},"user":{"name":"svc-backup"},"raw":{"x":1}}`
		broken := alertRow("a2", t0, 2, store.AlertNoAction)
		broken.AlertJSON = `not json`
		for _, row := range []*store.Alert{a, broken} {
			if err := st.RecordAlert(ctx, row, nil, nil); err != nil {
				t.Fatal(err)
			}
		}
		got, err := st.AlertHeadlines(ctx, []string{"a1", "a2", "missing"})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]store.AlertHeadline{
			"a1": {Title: "title a1", Severity: "Critical", SeverityID: 5, Status: store.AlertProcessing, Hostname: "dc-01", User: "svc-backup"},
			"a2": {Title: "title a2", Severity: "Low", SeverityID: 2, Status: store.AlertNoAction},
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("headlines = %+v\nwant %+v", got, want)
		}
		if none, err := st.AlertHeadlines(ctx, nil); err != nil || len(none) != 0 {
			t.Fatalf("no ids: %v, %v", none, err)
		}
	})
}

// TestAlertPlaybookRuns: an alert's detail holds its playbook runs with their
// steps, and the approvals they asked for.
func TestAlertPlaybookRuns(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		at := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
		if err := st.RecordAlert(ctx, alertRow("a1", at, 5, store.AlertProcessing), nil,
			&store.Run{ID: "a1", WorkflowID: "alert/fp", WorkflowType: "AlertWorkflow", AlertID: "a1", Status: store.StatusRunning, StartedAt: at}); err != nil {
			t.Fatal(err)
		}
		for i, name := range []string{"second", "first"} {
			if err := st.SaveRun(ctx, &store.Run{ID: "pb-" + name, WorkflowID: "playbook/a1/" + name, WorkflowType: "PlaybookWorkflow",
				AlertID: "a1", Status: store.StatusRunning, StartedAt: at.Add(time.Duration(1-i) * time.Second), Playbook: name, PlaybookVersion: 3,
				RequestedBy: map[string]string{"first": "ana"}[name], RequestReason: map[string]string{"first": "try it"}[name]}); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.SaveStep(ctx, &store.Step{RunID: "pb-first", Name: "s1", Seq: 1, Status: store.StatusSucceeded, StartedAt: at}); err != nil {
			t.Fatal(err)
		}
		if err := st.UpdateRun(ctx, "pb-first", store.RunUpdate{Status: store.StatusCompleted, ResultJSON: `{"status":"succeeded"}`}); err != nil {
			t.Fatal(err)
		}
		// Approvals of the alert's runs, one decided, one pending; another alert's stays out.
		for _, ap := range []*store.Approval{
			{ID: "ap-late", AlertID: "a1", Status: store.ApprovalPending, RequestedAt: at.Add(2 * time.Minute)},
			{ID: "ap-early", AlertID: "a1", Status: store.ApprovalApproved, DecidedBy: "ana", RequestedAt: at.Add(time.Minute)},
			{ID: "ap-other", AlertID: "a2", Status: store.ApprovalPending, RequestedAt: at},
		} {
			ap.WorkflowID, ap.RunID, ap.Playbook, ap.Step, ap.Operation, ap.ArgsHash = "playbook/a1/first", "pb-first", "first", "s1", "edr.isolate_host", "h"
			if err := st.SaveApproval(ctx, ap); err != nil {
				t.Fatal(err)
			}
		}
		d, err := st.GetAlert(ctx, "a1")
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Approvals) != 2 || d.Approvals[0].ID != "ap-early" || d.Approvals[0].DecidedBy != "ana" || d.Approvals[1].ID != "ap-late" {
			t.Fatalf("approvals = %+v", d.Approvals)
		}
		if len(d.Playbooks) != 2 || d.Playbooks[0].Run.Playbook != "first" || len(d.Playbooks[0].Steps) != 1 ||
			d.Playbooks[0].Run.RequestedBy != "ana" || d.Playbooks[0].Run.RequestReason != "try it" || d.Playbooks[1].Run.RequestedBy != "" ||
			d.Playbooks[0].Run.ResultJSON != `{"status":"succeeded"}` || d.Playbooks[1].Run.PlaybookVersion != 3 {
			t.Fatalf("playbook runs = %+v", d.Playbooks)
		}
		if d.Run == nil || d.Run.Playbook != "" {
			t.Fatalf("the alert's own run = %+v", d.Run)
		}
	})
}

// TestConcurrentTransactionsOnAFreshStore: transactions that each hold a
// connection and meet statements nobody has prepared yet all finish; none waits
// for a connection to prepare on while the others hold them all.
func TestConcurrentTransactionsOnAFreshStore(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		const n = 40 // more than either dialect's connection pool
		errs := make(chan error, n)
		for i := range n {
			go func() {
				errs <- st.InTx(ctx, func(tx *store.Store) error {
					id := fmt.Sprintf("run-%d", i)
					if err := tx.SaveRun(ctx, &store.Run{ID: id, WorkflowID: "wf-" + id, WorkflowType: "AlertWorkflow", Status: store.StatusRunning, StartedAt: t0}); err != nil {
						return err
					}
					if err := tx.SaveStep(ctx, &store.Step{RunID: id, Name: "detect", Seq: 1, Status: store.StatusSucceeded, StartedAt: t0}); err != nil {
						return err
					}
					return tx.UpdateRun(ctx, id, store.RunUpdate{Status: store.StatusCompleted})
				})
			}()
		}
		for range n {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		for i := range n {
			steps, err := st.RunSteps(ctx, fmt.Sprintf("run-%d", i))
			if err != nil || len(steps) != 1 {
				t.Fatalf("run-%d: %d steps, %v", i, len(steps), err)
			}
		}
	})
}

// A run whose workflow Temporal closed without the run recording it (terminated,
// say) is ended once, with everything it left unfinished: steps, actions,
// approvals and the alert it was processing. Another run's rows stay as they are.
func TestEndAbandonedRun(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		at := time.Date(2026, 11, 28, 6, 0, 0, 0, time.UTC)
		for _, id := range []string{"a1", "a2"} {
			if err := st.RecordAlert(ctx, alertRow(id, at, 5, store.AlertProcessing), nil,
				&store.Run{ID: id, WorkflowID: "alert/fp-" + id, WorkflowType: "AlertWorkflow", AlertID: id, Status: store.StatusRunning, StartedAt: at}); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.SaveRun(ctx, &store.Run{ID: "pb1", WorkflowID: "playbook/a1/isolate", WorkflowType: "PlaybookWorkflow",
			AlertID: "a1", Status: store.StatusRunning, StartedAt: at, Playbook: "isolate", PlaybookVersion: 1}); err != nil {
			t.Fatal(err)
		}
		for _, s := range []store.Step{
			{RunID: "a1", Name: "detect", Seq: 1, Status: store.StatusSucceeded},
			{RunID: "a1", Name: "enrich", Seq: 2, Status: store.StatusRunning},
			{RunID: "pb1", Name: "ask", Seq: 1, Status: store.StatusPending},
			{RunID: "a2", Name: "enrich", Seq: 2, Status: store.StatusRunning},
		} {
			s.StartedAt = at
			if err := st.SaveStep(ctx, &s); err != nil {
				t.Fatal(err)
			}
		}
		actions := map[string]struct{ run, status string }{
			"k-accepted": {"a1", store.StatusRunning}, "k-claimed": {"a1", store.StatusPending},
			"k-done": {"a1", store.StatusSucceeded}, "k-other": {"a2", store.StatusRunning},
		}
		for key, a := range actions {
			if _, _, err := st.ClaimAction(ctx, &store.Action{IdempotencyKey: key, AlertID: a.run, RunID: a.run,
				Integration: "crowdstrike", Operation: "isolate_host", Status: a.status}); err != nil {
				t.Fatal(err)
			}
		}
		for _, ap := range []*store.Approval{
			{ID: "ap1", AlertID: "a1", RunID: "pb1", Status: store.ApprovalPending},
			{ID: "ap2", AlertID: "a2", RunID: "pb-a2", Status: store.ApprovalPending},
		} {
			ap.WorkflowID, ap.Playbook, ap.Step, ap.Operation, ap.ArgsHash, ap.RequestedAt = "playbook/x", "isolate", "ask", "edr.isolate_host", "h", at
			if err := st.SaveApproval(ctx, ap); err != nil {
				t.Fatal(err)
			}
		}

		known, err := st.RunsAmong(ctx, []string{"a1", "pb1", "unknown"})
		if err != nil || len(known) != 2 || known[0].ClosedAt != nil || known[1].ClosedAt != nil {
			t.Fatalf("runs = %+v, %v", known, err)
		}
		const reason = "terminated in Temporal by ops: stuck"
		end := at.Add(time.Hour)
		for _, id := range []string{"a1", "pb1"} {
			for attempt, want := range []bool{true, false} {
				ended, err := st.EndAbandonedRun(ctx, store.RunEnd{RunID: id, At: end, Reason: reason})
				if err != nil || ended != want {
					t.Fatalf("end %s (attempt %d) = %v, %v; want %v", id, attempt+1, ended, err, want)
				}
			}
		}
		if ended, err := st.EndAbandonedRun(ctx, store.RunEnd{RunID: "unknown", At: end, Reason: reason}); err != nil || ended {
			t.Fatalf("end of an unknown run = %v, %v", ended, err)
		}

		d, err := st.GetAlert(ctx, "a1")
		if err != nil {
			t.Fatal(err)
		}
		if d.Alert.Status != store.AlertFailed || d.Alert.Summary != "failed: "+reason {
			t.Fatalf("alert = %s %q", d.Alert.Status, d.Alert.Summary)
		}
		if d.Run.Status != store.StatusFailed || d.Run.Error != reason || d.Run.ClosedAt == nil || !d.Run.ClosedAt.Equal(end) {
			t.Fatalf("run = %+v", d.Run)
		}
		steps := map[string]store.Step{}
		for _, s := range d.Steps {
			steps[s.Name] = s
		}
		if steps["detect"].Status != store.StatusSucceeded || steps["enrich"].Status != store.StatusCancelled ||
			steps["enrich"].Note != reason || steps["enrich"].FinishedAt == nil {
			t.Fatalf("steps = %+v", d.Steps)
		}
		got := map[string]string{}
		for _, a := range d.Actions {
			got[a.IdempotencyKey] = a.Status
		}
		if want := map[string]string{"k-accepted": store.StatusUnconfirmed, "k-claimed": store.StatusFailed, "k-done": store.StatusSucceeded}; !reflect.DeepEqual(got, want) {
			t.Fatalf("actions = %v, want %v", got, want)
		}
		if len(d.Playbooks) != 1 || d.Playbooks[0].Run.Status != store.StatusFailed || d.Playbooks[0].Steps[0].Status != store.StatusCancelled {
			t.Fatalf("playbook runs = %+v", d.Playbooks)
		}
		if len(d.Approvals) != 1 || d.Approvals[0].Status != store.ApprovalCancelled || d.Approvals[0].Reason != reason || d.Approvals[0].DecidedAt == nil {
			t.Fatalf("approvals = %+v", d.Approvals)
		}

		// The other alert's rows are untouched.
		other, err := st.GetAlert(ctx, "a2")
		if err != nil {
			t.Fatal(err)
		}
		if other.Alert.Status != store.AlertProcessing || other.Run.Status != store.StatusRunning || other.Run.ClosedAt != nil ||
			other.Steps[0].Status != store.StatusRunning || other.Actions[0].Status != store.StatusRunning {
			t.Fatalf("another alert changed: %+v", other)
		}
		if ap, err := st.GetApproval(ctx, "ap2"); err != nil || ap.Status != store.ApprovalPending {
			t.Fatalf("another run's approval = %+v, %v", ap, err)
		}

		// A run whose stages finished keeps its outcome; only its close is recorded.
		if err := st.UpdateRun(ctx, "a2", store.RunUpdate{Status: store.StatusCompleted}); err != nil {
			t.Fatal(err)
		}
		if err := st.UpdateAlert(ctx, "a2", store.AlertUpdate{Status: store.AlertContained, Summary: "contained: contain_when matched"}); err != nil {
			t.Fatal(err)
		}
		if ended, err := st.EndAbandonedRun(ctx, store.RunEnd{RunID: "a2", At: end, Reason: reason}); err != nil || !ended {
			t.Fatalf("end a2 = %v, %v", ended, err)
		}
		if other, err = st.GetAlert(ctx, "a2"); err != nil {
			t.Fatal(err)
		}
		if other.Alert.Status != store.AlertContained || other.Run.Status != store.StatusCompleted || other.Run.Error != "" || other.Run.ClosedAt == nil {
			t.Fatalf("a finished run's end changed its outcome: %s %+v", other.Alert.Status, other.Run)
		}
		known, err = st.RunsAmong(ctx, []string{"a1", "a2", "pb1"})
		if err != nil || len(known) != 3 {
			t.Fatalf("runs after their ends = %+v, %v", known, err)
		}
		for _, r := range known {
			if r.ClosedAt == nil {
				t.Fatalf("run %s still open after its end", r.ID)
			}
		}
	})
}

// A timed revert whose workflow was stopped in Temporal will not run: its pending
// step is cancelled with the reason, and an inverse action it had begun ends. The
// same step of another playbook run stays pending.
func TestEndAbandonedRevert(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		at := time.Date(2026, 11, 28, 6, 0, 0, 0, time.UTC)
		for _, id := range []string{"a", "b"} {
			if err := st.SaveRun(ctx, &store.Run{ID: "pb-" + id, WorkflowID: "playbook/" + id + "/block", WorkflowType: "PlaybookWorkflow",
				AlertID: id, Status: store.StatusCompleted, StartedAt: at, Playbook: "block", PlaybookVersion: 1}); err != nil {
				t.Fatal(err)
			}
			for _, s := range []store.Step{
				{RunID: "pb-" + id, Name: "block", Seq: 1, Status: store.StatusSucceeded, StartedAt: at},
				{RunID: "pb-" + id, Name: "block.revert", Seq: 1_000_000, Status: store.StatusPending, StartedAt: at},
			} {
				if err := st.SaveStep(ctx, &s); err != nil {
					t.Fatal(err)
				}
			}
			if _, _, err := st.ClaimAction(ctx, &store.Action{IdempotencyKey: "undo-" + id, AlertID: id, RunID: "pb-" + id, Step: "block.revert",
				Integration: "firewall", Operation: "unblock_ip", Status: store.StatusRunning}); err != nil {
				t.Fatal(err)
			}
		}
		const reason = "the revert will not run: terminated in Temporal by ana@ops: keep the block"
		for attempt, want := range []bool{true, false} {
			ended, err := st.EndAbandonedRevert(ctx, "playbook/a/block", "block.revert", at.Add(time.Hour), reason)
			if err != nil || ended != want {
				t.Fatalf("attempt %d: ended %v, %v; want %v", attempt+1, ended, err, want)
			}
		}
		steps, err := st.RunSteps(ctx, "pb-a")
		if err != nil {
			t.Fatal(err)
		}
		if len(steps) != 2 || steps[0].Status != store.StatusSucceeded || steps[1].Status != store.StatusCancelled ||
			steps[1].Note != reason || steps[1].FinishedAt == nil || !steps[1].FinishedAt.Equal(at.Add(time.Hour)) {
			t.Fatalf("steps = %+v", steps)
		}
		if a, err := st.GetAction(ctx, "undo-a"); err != nil || a.Status != store.StatusUnconfirmed {
			t.Fatalf("the begun inverse action = %+v, %v", a, err)
		}
		other, err := st.RunSteps(ctx, "pb-b")
		if err != nil || other[1].Status != store.StatusPending {
			t.Fatalf("another run's revert = %+v, %v", other, err)
		}
		if a, err := st.GetAction(ctx, "undo-b"); err != nil || a.Status != store.StatusRunning {
			t.Fatalf("another run's inverse action = %+v, %v", a, err)
		}
	})
}

func TestNormalizeIOC(t *testing.T) {
	sha1 := strings.Repeat("0a", 20)
	for _, c := range []struct{ typ, value, want string }{
		{"SHA1", " " + strings.ToUpper(sha1) + " ", sha1},
		{"ipv4", "::ffff:198.51.100.7", "198.51.100.7"},
		{"ipv4", "10.20.4.142", "10.20.4.142"}, // a private address may be an indicator: an internal relay's
		{"ipv6", "2001:0DB8::0042", "2001:db8::42"},
		{"domain", "Login-Verify.Example", "login-verify.example"},
		{"domain", "*.evil.example.", "evil.example"}, // a feed's wildcard: what a domain means here anyway
		{"url", "HTTPS://login-verify.example/a?b=1", "https://login-verify.example/a?b=1"},
		{"url", "http://evil.example:80#top", "http://evil.example/"},
		{"url", "https://[2001:DB8::1]:443/x", "https://[2001:db8::1]/x"},
		{"url", "https://evil.example:8443", "https://evil.example:8443/"},
	} {
		ioc, err := store.NormalizeIOC(store.IOC{Type: c.typ, Value: c.value})
		if err != nil || ioc.Value != c.want || ioc.Type != strings.ToLower(c.typ) {
			t.Errorf("%s %q = %+v, %v; want %q", c.typ, c.value, ioc, err, c.want)
		}
	}
	for _, c := range []struct{ typ, value, why string }{
		{"bitcoin", "1abc", "unknown IOC type"},
		{"md5", "", "empty value"},
		{"md5", sha1, "not a 32-character hex digest"},
		{"sha256", strings.Repeat("z", 64), "not a 64-character hex digest"},
		{"ipv4", "10.0.0.0/8", "not an IP address"},
		{"ipv4", "2001:db8::1", "other family"},
		{"ipv6", "10.0.0.1", "other family"},
		{"domain", "http://evil.example/x", "a URL belongs under type url"},
		{"domain", "203.0.113.5", "an IP address"},
		{"domain", "example", "would match every name under it"},
		{"domain", "*.com", "would match every name under it"},
		{"domain", "evil..example", "an empty label"},
		{"domain", "*evil.example", "not a domain name"},
		{"url", "evil.example/x", "a scheme and a host"},
		{"md5", "D41D8CD98F00B204E9800998ECF8427E", "every empty file"},
		{"sha1", "da39a3ee5e6b4b0d3255bfef95601890afd80709", "every empty file"},
		{"sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "every empty file"},
		{"ipv4", "127.0.0.53", "every host has it"},
		{"ipv4", "0.0.0.0", "every host has it"},
		{"ipv4", "::ffff:255.255.255.255", "every host has it"},
		{"ipv4", "224.0.0.251", "every host has it"},
		{"ipv6", "::1", "every host has it"},
		{"ipv6", "::", "every host has it"},
		{"ipv6", "ff02::fb", "every host has it"},
	} {
		if _, err := store.NormalizeIOC(store.IOC{Type: c.typ, Value: c.value}); err == nil || !strings.Contains(err.Error(), c.why) {
			t.Errorf("%s %q: error %v, want one saying %q", c.typ, c.value, err, c.why)
		}
	}
}

// TestAlertDetailIsOneSnapshot: the reads behind an alert's detail see the
// database at one moment. The outcome is recorded (alert and run in one
// transaction) just after the alert's row is read; the detail must not show the
// run completed beside the alert still in progress.
func TestAlertDetailIsOneSnapshot(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		run := &store.Run{ID: "s1", WorkflowID: "alert/fp-s1", WorkflowType: "AlertWorkflow", AlertID: "s1", Status: store.StatusRunning, StartedAt: t0}
		if err := st.RecordAlert(ctx, alertRow("s1", t0, 4, store.AlertProcessing), nil, run); err != nil {
			t.Fatal(err)
		}
		done := t0.Add(time.Second)
		finish := func() error {
			return st.InTx(ctx, func(tx *store.Store) error {
				if err := tx.UpdateAlert(ctx, "s1", store.AlertUpdate{Status: store.AlertNoAction, Summary: "nothing matched", OutcomeAt: &done}); err != nil {
					return err
				}
				return tx.UpdateRun(ctx, "s1", store.RunUpdate{Status: store.StatusCompleted, CompletedAt: &done})
			})
		}
		var finished atomic.Bool
		var finishErr error
		err := st.GormDB().Callback().Query().After("gorm:query").Register("test:finish-after-alert-read", func(db *gorm.DB) {
			if db.Statement.Table == "alerts" && finished.CompareAndSwap(false, true) {
				finishErr = finish()
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		d, err := st.GetAlert(ctx, "s1")
		if err != nil || finishErr != nil || !finished.Load() {
			t.Fatalf("detail: %v; the finish between its reads: %v (ran: %v)", err, finishErr, finished.Load())
		}
		if d.Alert.Status != store.AlertProcessing || d.Run == nil || d.Run.CompletedAt != nil {
			t.Fatalf("one read saw the outcome and another did not: alert %s, run %+v", d.Alert.Status, d.Run)
		}
		if d, err = st.GetAlert(ctx, "s1"); err != nil || d.Alert.Status != store.AlertNoAction || d.Run.CompletedAt == nil {
			t.Fatalf("after the finish: %v %+v", err, d)
		}
	})
}
