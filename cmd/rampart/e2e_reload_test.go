package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rampart-soar/rampart/cmd/rampart/internal/app"
	"github.com/rampart-soar/rampart/server"
	"github.com/rampart-soar/rampart/server/ingest"
)

// TestHangUpReloadsTheFiles runs `rampart dev` without a terminal, as a
// supervisor would, on an inventory without the ransomware's host and an IOC list
// without its hash: the detection is left alone. With both added to the files and
// a SIGHUP sent, the same detection's next alert contains the host, with no
// restart (the simulator learned the new host too). The same hang-up reloads the
// sources file: the crowdstrike secret rotated (the old one still accepted, and
// counted, as previous_secret), ocsf removed, a source added. Files with a
// mistake on the next hang-up change nothing and the process carries on.
func TestHangUpReloadsTheFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: skipped with -short")
	}
	dir := t.TempDir()
	write := func(name, body string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	config := write("rampart.yaml", "decide:\n  contain_when: enrich.ioc_hits > 0 && !enrich.asset.protected && alert.severity_id >= 4\n"+
		"dedup_window: 1s\nretention: 24h\n")
	assets := write("assets.yaml", "assets: [{hostname: eng-ws-0077, device_id: 3c9e7b1a5d2f4c68b0e1a2d3c4b5f6e7}]\n")
	iocs := write("iocs.csv", "type,value\nipv4,198.51.100.1\n")
	sourcesFile := write("sources.yaml", string(readFile(t, examples+"/sources.yaml")))
	listen, simListen := freeAddr(t), freeAddr(t)
	baseURL := "http://" + listen
	args := []string{"dev", "--data-dir", filepath.Join(dir, "data"), "--listen", listen,
		"--temporal-port", strconv.Itoa(freePort(t)), "--config", config, "--crowdstrike-sim-listen", simListen,
		"--sources", sourcesFile, "--assets", assets, "--iocs", iocs, "--playbooks", ""}
	child := startChild(t, dir, "dev", args, []string{childEnv + "=1"})
	waitReady(t, baseURL)
	sources, err := ingest.LoadSources(sourcesFile)
	if err != nil {
		t.Fatal(err)
	}
	closed := func(a server.AlertDetail) bool { return a.Run != nil && a.Run.ClosedAt != nil }

	first := accepted(t, baseURL, sources, "crowdstrike", readFile(t, ransomware))
	if a := awaitAlert(t, baseURL, first.AlertID, "the first alert's run to close", waitTimeout, closed); a.Status != "no_action" {
		t.Fatalf("with neither the host nor the hash listed: status %s, enrichment %s", a.Status, a.Enrichment)
	}

	write("assets.yaml", string(readFile(t, examples+"/assets.yaml")))
	write("iocs.csv", string(readFile(t, examples+"/iocs.csv")))
	const rotated = "rotated-crowdstrike-secret-0123456789"
	write("sources.yaml", "sources:\n  crowdstrike: {secret: "+rotated+", previous_secret: "+sources["crowdstrike"].Secret()+"}\n"+
		"  falcon-eu: {format: crowdstrike, secret: falcon-eu-secret-0123456789}\n")
	hangUp(t, child)
	log := filepath.Join(dir, "dev.log")
	waitFor(t, "the IOC list to be reloaded", waitTimeout, func() bool {
		return strings.Count(string(readFile(t, log)), `msg="IOC list loaded"`) == 2 // at boot, then now
	})
	listed, err := app.LoadIOCs(examples + "/iocs.csv")
	if err != nil {
		t.Fatal(err)
	}
	if got := string(readFile(t, log)); strings.Count(got, `msg="asset inventory loaded"`) != 2 ||
		!strings.Contains(got, fmt.Sprintf(`msg="IOC list loaded" iocs=%d removed=1`, len(listed))) { // 198.51.100.1 went
		t.Fatalf("the reload's log lines are missing:\n%s", got)
	}
	waitFor(t, "the sources and the API tokens to be reloaded", waitTimeout, func() bool {
		got := string(readFile(t, log))
		return strings.Contains(got, `msg="webhook sources reloaded" sources=2 added=[falcon-eu] removed=[ocsf] changed=[] new_secrets=[crowdstrike]`) &&
			strings.Contains(got, `msg="API tokens reloaded" holders=0 added=[] removed=[] new_tokens=[]`) // none here: the API stays open to this machine
	})
	reloaded, err := ingest.LoadSources(sourcesFile)
	if err != nil || reloaded["crowdstrike"].Secret() != rotated {
		t.Fatalf("the rotated file: %v", err)
	}

	second := accepted(t, baseURL, reloaded, "crowdstrike", readFile(t, ransomware))
	if second.AlertID == first.AlertID || second.Duplicate {
		t.Fatalf("the second alert folded into the first: %+v", second)
	}
	a := awaitAlert(t, baseURL, second.AlertID, "the second alert to end", waitTimeout, func(a server.AlertDetail) bool {
		return a.Status != "processing" && a.Status != "received"
	})
	if a.Status != "contained" || !strings.Contains(string(a.Enrichment), `"ioc_hits":1`) {
		t.Fatalf("after the reload: status %s, enrichment %s, actions %+v", a.Status, a.Enrichment, a.Actions)
	}
	resp, err := http.Get("http://" + simListen + "/_sim/hosts")
	if err != nil {
		t.Fatal(err)
	}
	hosts, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(hosts), `"fin-ws-0142"`) || !strings.Contains(string(hosts), `"contained"`) {
		t.Fatalf("the simulator's hosts: %s", hosts)
	}
	// The tool still signing with the old secret is let in, and counted, until
	// it moves; the removed source is gone, the added one takes alerts.
	pup := readFile(t, filepath.Join(examples, "alerts", "crowdstrike-pup.json"))
	accepted(t, baseURL, sources, "crowdstrike", pup)
	accepted(t, baseURL, reloaded, "falcon-eu", pup)
	if status, _ := post(t, baseURL, sources, "ocsf", readFile(t, filepath.Join(examples, "alerts", "ocsf-dc-credential-dumping.json")), time.Now()); status != http.StatusNotFound {
		t.Fatalf("the removed source answered %d", status)
	}
	var srcs server.SourceList
	if code := getJSON(t, baseURL+"/api/v1/sources", &srcs); code != http.StatusOK || len(srcs.Sources) != 2 ||
		srcs.Sources[0].Name != "crowdstrike" || !srcs.Sources[0].PreviousSecret || srcs.Sources[0].PreviousSecretUsed != 1 ||
		srcs.Sources[0].Accepted+srcs.Sources[0].Duplicates != 3 || srcs.Sources[1].Name != "falcon-eu" || srcs.UnknownSource != 1 {
		t.Fatalf("sources after the reload: %d %+v", code, srcs)
	}

	write("iocs.csv", "type,value\nmd5,8f14e45f\n")
	write("sources.yaml", "sources:\n  crowdstrike: {secret: short}\n")
	hangUp(t, child)
	waitFor(t, "the bad files to be refused", waitTimeout, func() bool {
		got := string(readFile(t, log))
		return strings.Contains(got, "reference data not reloaded") && strings.Contains(got, "webhook sources not reloaded")
	})
	select {
	case <-child.done:
		t.Fatal("rampart dev ended on a bad file")
	case <-time.After(200 * time.Millisecond):
	}
	waitReady(t, baseURL)
	// The sources as they were (signed a moment back: the same body signed in
	// the same second as before would be a replay).
	if status, _ := post(t, baseURL, reloaded, "falcon-eu", pup, time.Now().Add(-2*time.Second)); status != http.StatusAccepted {
		t.Fatalf("after a refused reload, the source added before answered %d", status)
	}
}

func hangUp(t *testing.T, c *childProc) {
	t.Helper()
	if err := c.proc.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
}
