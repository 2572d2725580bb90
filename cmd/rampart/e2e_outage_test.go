package main

import (
	"context"
	"database/sql"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	_ "modernc.org/sqlite"

	"github.com/rampart-soar/rampart/integrations"
	"github.com/rampart-soar/rampart/server"
)

// TestEndToEndStoreOutage takes the app database away for longer than a store
// call's first round of retries (a minute), the way a database restarted or
// failed over is: another process holds its write lock. The webhook still answers
// 202 (it needs only Temporal), the alert's run waits on a durable timer rather
// than failing, and once the lock goes the alert is recorded, decided and its host
// contained, once. It takes about a minute and a half.
func TestEndToEndStoreOutage(t *testing.T) {
	cfg := devConfig(t, 2*time.Second)
	d := startDev(t, cfg)

	db, err := sql.Open("sqlite", "file:"+filepath.Join(cfg.DataDir, "rampart.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	lock, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.ExecContext(context.Background(), "BEGIN EXCLUSIVE"); err != nil {
		t.Fatal(err)
	}
	unlock := func() {
		if _, err := lock.ExecContext(context.Background(), "ROLLBACK"); err != nil {
			t.Fatal(err)
		}
		lock.Close()
	}

	acc := accepted(t, d.URL, d.Sources(), "crowdstrike", readFile(t, ransomware))
	// The run gives up its first round of retries and asks for the outage wait (the
	// only version marker before detect's record): from here on it waits on timers.
	waitFor(t, "the run to wait for the store", 4*time.Minute, func() bool {
		for _, ev := range history(t, d.Client, acc.WorkflowID) {
			if ev.GetEventType() == enumspb.EVENT_TYPE_MARKER_RECORDED && ev.GetMarkerRecordedEventAttributes().GetMarkerName() == "Version" {
				return true
			}
		}
		return false
	})
	// Meanwhile the API shows the alert as Temporal holds it: received, not recorded.
	if a, ok := getAlert(t, d.URL, acc.AlertID); !ok || a.Status != "received" || len(a.Steps) != 0 {
		t.Fatalf("during the outage the API showed %+v (found %v); want it received, with no steps", a.AlertSummary, ok)
	}
	if n := d.Simulator.ContainCalls(ransomHost); n != 0 {
		t.Fatalf("contained before the alert was recorded: %d call(s)", n)
	}
	// The run itself says what it waits for.
	var state server.AlertStateView
	waitFor(t, "the run's state to say it waits for the store", waitTimeout, func() bool {
		return getJSON(t, d.URL+"/api/v1/alerts/"+acc.AlertID+"/state", &state) == http.StatusOK &&
			strings.HasPrefix(state.State.Waiting, "alert.detect: waiting for the store since ")
	})
	unlock()

	detail := awaitAlert(t, d.URL, acc.AlertID, "the alert to be contained after the outage", waitTimeout, func(a server.AlertDetail) bool {
		return a.Run != nil && a.Run.ClosedAt != nil
	})
	if detail.Status != "contained" || len(detail.Actions) != 1 || detail.Actions[0].Status != "succeeded" {
		t.Fatalf("alert %+v, actions %+v", detail.AlertSummary, detail.Actions)
	}
	if h, _ := d.Simulator.Host(ransomHost); h.Status != integrations.HostContained || d.Simulator.ContainCalls(ransomHost) != 1 {
		t.Fatalf("host %+v after %d contain call(s)", h, d.Simulator.ContainCalls(ransomHost))
	}
	timers := 0
	for _, ev := range history(t, d.Client, acc.WorkflowID) {
		if ev.GetEventType() == enumspb.EVENT_TYPE_TIMER_STARTED {
			timers++
		}
	}
	// The outage wait (and any of the first round's longer retry backoffs): a
	// handful of timers, not one per attempt.
	if timers < 1 || timers > 6 {
		t.Fatalf("%d timers in the history", timers)
	}
	if resp, err := http.Get(d.URL + "/readyz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("readyz after the outage: %v %v", resp, err)
	}
	saveHistory(t, d, acc.WorkflowID, "alert_store_outage.json")
}
