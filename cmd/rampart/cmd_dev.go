package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rampart-soar/rampart/cmd/rampart/internal/app"
	"github.com/rampart-soar/rampart/server/ingest"
)

func newDevCmd() *cobra.Command {
	f := &configFlags{}
	var temporalPort int
	var simListen string
	examples := app.ExamplesDir()
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run everything in one process: embedded Temporal, store, worker, API and the CrowdStrike simulator",
		Long: `dev starts a real Temporal server embedded in this process (SQLite in --data-dir),
the app store (SQLite in the same dir), a worker, the HTTP API and web UI, and a
CrowdStrike simulator, and loads the examples: asset inventory, IOC list and webhook
sources. Restarting with the same --data-dir resumes every in-flight workflow.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.load()
			if err != nil {
				return err
			}
			log, err := newLogger(cmd.ErrOrStderr(), cfg.LogLevel)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			hup := watchHangUps() // first: a hang-up while booting waits, not kills
			defer hup.stop()
			d, err := app.StartDev(ctx, app.DevOptions{Config: *cfg, TemporalPort: temporalPort, SimulatorListen: simListen, Logger: log})
			if err != nil {
				return err
			}
			printBanner(cmd.OutOrStdout(), d)
			// A bad file on a reload keeps what it feeds as it was.
			err = hup.serve(ctx, log, func() { _ = d.Reload(ctx) }, d.Done(), nil)
			if ctx.Err() != nil {
				log.Info("shutting down")
			}
			d.Stop(context.Background())
			return err
		},
	}
	f.common(cmd, filepath.Join(examples, "rampart.yaml"))
	f.temporal(cmd, "")
	f.database(cmd, "")
	f.sources(cmd, filepath.Join(examples, "sources.yaml"))
	f.reference(cmd, filepath.Join(examples, "assets.yaml"), filepath.Join(examples, "iocs.csv"))
	f.edr(cmd)
	fl := cmd.Flags()
	fl.StringVar(&f.cfg.Listen, "listen", app.Env("RAMPART_LISTEN", app.DefaultListen), "HTTP listen address (env RAMPART_LISTEN)")
	fl.StringVar(&f.cfg.DataDir, "data-dir", app.Env("RAMPART_DATA_DIR", app.DefaultDataDir), "where the Temporal and app SQLite files live (env RAMPART_DATA_DIR)")
	fl.StringVar(&f.cfg.PlaybooksDir, "playbooks", app.Env("RAMPART_PLAYBOOKS_DIR", filepath.Join(examples, "playbooks")), "playbooks applied at boot (env RAMPART_PLAYBOOKS_DIR; empty: none)")
	fl.IntVar(&temporalPort, "temporal-port", 7233, "embedded Temporal frontend port (0 picks a free one)")
	fl.StringVar(&simListen, "crowdstrike-sim-listen", "127.0.0.1:9010", "where the built-in CrowdStrike simulator serves (unless --crowdstrike-url points elsewhere)")
	return cmd
}

// apiAccess says who may call the API.
func apiAccess(cfg app.Config) string {
	if len(cfg.APITokens) == 0 {
		return "open to this machine (set " + app.APITokenEnvPrefix + "<NAME> to require tokens)"
	}
	names := slices.Sorted(maps.Keys(cfg.APITokens))
	return "bearer tokens of " + strings.Join(names, ", ") + " (the CLI sends RAMPART_API_TOKEN)"
}

func printBanner(w io.Writer, d *app.Dev) {
	example := filepath.Join(app.ExamplesDir(), "alerts", "crowdstrike-ransomware.json")
	fmt.Fprintf(w, "\nRampart dev is running.\n\n")
	fmt.Fprintf(w, "  API and UI    %s\n", d.URL)
	fmt.Fprintf(w, "  Temporal      %s  (namespace %s)\n", d.Config.TemporalAddress, d.Config.Namespace)
	if d.Simulator != nil {
		fmt.Fprintf(w, "  CrowdStrike   %s  (simulator; host state at %s/_sim/hosts)\n", d.Simulator.URL(), d.Simulator.URL())
	}
	if d.Temporal != nil {
		fmt.Fprintf(w, "  Data dir      %s\n", d.Config.DataDir)
	}
	fmt.Fprintf(w, "  Payloads      encrypted in Temporal, key id %s\n", d.Config.Payloads.CurrentKeyID())
	fmt.Fprintf(w, "  API access    %s\n", apiAccess(d.Config))
	fmt.Fprintf(w, "  Metrics       %s/api/v1/metrics  (Prometheus: webhooks, runs, vendor calls, the Temporal SDK's)\n", d.URL)
	fmt.Fprintf(w, "\nSend an alert (signed with the source's secret from %s):\n\n", d.Config.SourcesFile)
	fmt.Fprintf(w, "  ./bin/rampart alert send %s --source crowdstrike --url %s\n\n", example, d.URL)
	fmt.Fprintf(w, "or with curl, SECRET being that source's secret:\n\n")
	fmt.Fprintf(w, "  ts=$(date +%%s); sig=$( (printf '%%s.' \"$ts\"; cat %s) | openssl dgst -sha256 -hmac \"$SECRET\" | sed 's/.* //')\n", example)
	fmt.Fprintf(w, "  curl -sS %s/api/v1/webhooks/crowdstrike -H 'Content-Type: application/json' \\\n", d.URL)
	fmt.Fprintf(w, "       -H \"%s: t=$ts,v1=$sig\" --data-binary @%s\n\n", ingest.SignatureHeader, example)
	fmt.Fprintf(w, "Then: ./bin/rampart alert list --url %s\n\nCtrl-C stops; restarting with the same data dir resumes in-flight workflows.\n\n", d.URL)
}
