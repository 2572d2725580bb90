package main

import (
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/rampart-soar/rampart/cmd/rampart/internal/app"
	"github.com/rampart-soar/rampart/integrations/crowdstrike"
)

func newSimCmd() *cobra.Command {
	var listen, assets string
	var containDelay time.Duration
	cmd := &cobra.Command{
		Use:   "sim-crowdstrike",
		Short: "Serve the CrowdStrike Falcon simulator on its own (docker compose uses it as the EDR)",
		Long: `sim-crowdstrike serves the Falcon endpoints Rampart calls (OAuth2 token,
devices-actions v2, devices v2) with one device per inventory asset that has a
device_id. Clients authenticate with RAMPART_CROWDSTRIKE_CLIENT_ID and
RAMPART_CROWDSTRIKE_CLIENT_SECRET (or a file RAMPART_CROWDSTRIKE_CLIENT_SECRET_FILE
names). GET /_sim/hosts and /_sim/audit show its state.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			id := os.Getenv("RAMPART_CROWDSTRIKE_CLIENT_ID")
			secret, err := app.EnvSecret("RAMPART_CROWDSTRIKE_CLIENT_SECRET")
			if err != nil {
				return err
			}
			if id == "" || secret == "" {
				return errors.New("set RAMPART_CROWDSTRIKE_CLIENT_ID and RAMPART_CROWDSTRIKE_CLIENT_SECRET (or RAMPART_CROWDSTRIKE_CLIENT_SECRET_FILE)")
			}
			sim := crowdstrike.NewSimulator(crowdstrike.SimOptions{ClientID: id, ClientSecret: secret, ContainDelay: containDelay})
			inventory, err := app.LoadAssets(assets)
			if err != nil {
				return err
			}
			for _, a := range inventory {
				if a.DeviceID != "" {
					sim.AddHost(crowdstrike.SimHost{ID: a.DeviceID, Hostname: a.Hostname, IP: a.IP, Platform: "Windows"})
				}
			}
			if err := sim.Start(listen); err != nil {
				return err
			}
			cmd.Printf("CrowdStrike simulator at %s (hosts: %s/_sim/hosts)\n", sim.URL(), sim.URL())
			<-cmd.Context().Done()
			return sim.Close()
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:9010", "listen address")
	cmd.Flags().StringVar(&assets, "assets", filepath.Join(app.ExamplesDir(), "assets.yaml"), "inventory whose devices the simulator knows")
	cmd.Flags().DurationVar(&containDelay, "contain-delay", 2*time.Second, "how long a host stays containment_pending")
	return cmd
}
