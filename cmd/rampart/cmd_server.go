package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/rampart-soar/rampart/cmd/rampart/internal/app"
	"github.com/rampart-soar/rampart/server"
	"github.com/rampart-soar/rampart/server/ingest"
	"github.com/rampart-soar/rampart/server/telemetry"
	"github.com/rampart-soar/rampart/store"
)

func newServerCmd() *cobra.Command {
	f := &configFlags{}
	var migrate bool
	examples := app.ExamplesDir()
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the HTTP side: webhook ingress, API and UI, against an external Temporal and database",
		Long: `server runs the webhook ingress, the API and the web UI. It needs the Temporal
address and namespace, the database DSN, the payload keys, the sources file with
its secrets (RAMPART_WEBHOOK_SECRET_<SOURCE>[_FILE]) and, to listen beyond
loopback, API tokens (RAMPART_API_TOKEN_<NAME>[_FILE]). A hang-up re-reads the
sources file and the webhook secrets' and API tokens' files.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := f.loadProcess(cmd)
			if err != nil {
				return err
			}
			if _, err := cfg.APIAuth(); err != nil { // before connecting to anything
				return err
			}
			sources, err := ingest.LoadSources(cfg.SourcesFile)
			if err != nil {
				return err
			}
			hup := watchHangUps()
			defer hup.stop()
			ctx := cmd.Context()
			st, err := app.OpenServerStore(ctx, cfg.DatabaseDSN, migrate, log)
			if err != nil {
				return err
			}
			defer st.Close()
			c, err := app.DialTemporal(ctx, cfg.TemporalAddress, cfg.Namespace, cfg.Payloads, cfg.Metrics, log)
			if err != nil {
				return err
			}
			defer c.Close()
			if err := app.PrepareTemporal(ctx, c, cfg); err != nil {
				return err
			}
			srv, err := app.NewHTTPServer(cfg, c, st, sources, log)
			if err != nil {
				return err
			}
			addr, err := srv.Listen(cfg.Listen)
			if err != nil {
				return app.PortTaken(fmt.Errorf("listen on %s: %w", cfg.Listen, err), "--listen")
			}
			log.Info("rampart server listening", "addr", addr.String(), "temporal", cfg.TemporalAddress, "namespace", cfg.Namespace,
				"api", apiAccess(*cfg))
			errc := make(chan error, 1)
			go func() { errc <- srv.Serve() }()
			// A bad sources file on a reload keeps the sources as they were.
			err = hup.serve(ctx, log, func() {
				_, _ = app.ReloadSources(srv, cfg.SourcesFile, cfg.Metrics, log)
				_ = app.ReloadAPITokens(srv, cfg.Listen, os.Environ(), cfg.Metrics, log)
			}, errc, nil)
			shutdown, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			_ = srv.Shutdown(shutdown)
			return err
		},
	}
	f.common(cmd, "")
	f.temporal(cmd, "127.0.0.1:7233")
	f.database(cmd, "")
	f.sources(cmd, filepath.Join(examples, "sources.yaml"))
	cmd.Flags().StringVar(&f.cfg.Listen, "listen", app.Env("RAMPART_LISTEN", app.DefaultListen), "HTTP listen address (env RAMPART_LISTEN)")
	cmd.Flags().BoolVar(&migrate, "migrate", false, "apply the store schema before serving")
	return cmd
}

func newWorkerCmd() *cobra.Command {
	f := &configFlags{}
	var migrate bool
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run a Temporal worker: the alert workflow and its activities, against an external Temporal and database",
		Long: `worker runs the alert and playbook workflows and their activities: the store's
writes and the integrations' calls. It needs the Temporal address and namespace, the
database DSN, the payload keys, the EDR's credentials
(RAMPART_CROWDSTRIKE_CLIENT_SECRET[_FILE]) and the secrets the playbooks declare:
secrets.<name> is RAMPART_SECRET_<NAME>, or the file RAMPART_SECRET_<NAME>_FILE names,
read at each action. A hang-up re-reads the asset inventory and the IOC list.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := f.loadProcess(cmd)
			if err != nil {
				return err
			}
			hup := watchHangUps()
			defer hup.stop()
			reference, err := app.ReadReferenceData(cfg.AssetsFile, cfg.IOCsFile) // before waiting for the database
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			st, err := app.OpenWorkerStore(ctx, cfg.DatabaseDSN, migrate, log)
			if err != nil {
				return err
			}
			defer st.Close()
			if err := reference.Load(ctx, st, cfg.Metrics, log); err != nil {
				return err
			}
			reg, err := app.NewIntegrations(cfg)
			if err != nil {
				return err
			}
			acts, err := app.NewActivities(cfg, st, reg, log)
			if err != nil {
				return err
			}
			c, err := app.DialTemporal(ctx, cfg.TemporalAddress, cfg.Namespace, cfg.Payloads, cfg.Metrics, log)
			if err != nil {
				return err
			}
			defer c.Close()
			if err := app.PrepareTemporal(ctx, c, cfg); err != nil {
				return err
			}
			w, err := app.StartWorker(c, cfg.TaskQueue, acts, worker.Options{})
			if err != nil {
				return err
			}
			defer w.Stop()
			stopReconciler := app.StartReconciler(c, st, cfg, log)
			defer stopReconciler()
			ops, err := serveOps(cfg, c, st, log)
			if err != nil {
				return err
			}
			log.Info("rampart worker polling", "task_queue", cfg.TaskQueue, "temporal", cfg.TemporalAddress, "namespace", cfg.Namespace,
				"metrics", cfg.MetricsListen)
			// A worker Temporal stopped for good exits non-zero, for its
			// supervisor to restart it or page someone.
			err = hup.serve(ctx, log, func() { _, _ = app.ReloadReferenceData(ctx, st, cfg.AssetsFile, cfg.IOCsFile, cfg.Metrics, log) },
				ops.done, w.Fatal)
			ops.stop()
			return err
		},
	}
	f.common(cmd, "")
	f.temporal(cmd, "127.0.0.1:7233")
	f.database(cmd, "")
	f.reference(cmd, "", "")
	f.edr(cmd)
	cmd.Flags().StringVar(&f.cfg.MetricsListen, "metrics-listen", app.Env("RAMPART_METRICS_LISTEN", app.DefaultMetricsListen),
		"where to serve /healthz, /readyz and /metrics (the Temporal SDK's metrics); empty for none (env RAMPART_METRICS_LISTEN)")
	cmd.Flags().BoolVar(&migrate, "migrate", false, "apply the store schema before polling")
	return cmd
}

// opsServer is a worker's /healthz, /readyz and /metrics while it runs.
type opsServer struct {
	done <-chan error // a serve error; never closed
	stop func()
}

// serveOps starts the worker's ops endpoints at cfg.MetricsListen, or nothing
// when it is empty.
func serveOps(cfg *app.Config, c client.Client, st *store.Store, log *slog.Logger) (opsServer, error) {
	if cfg.MetricsListen == "" {
		return opsServer{done: make(chan error), stop: func() {}}, nil
	}
	srv := server.NewOps(app.ReadyChecks(c, st), cfg.Metrics, log)
	addr, err := srv.Listen(cfg.MetricsListen)
	if err != nil {
		return opsServer{}, app.PortTaken(fmt.Errorf("listen on %s: %w", cfg.MetricsListen, err), "--metrics-listen")
	}
	cfg.MetricsListen = addr.String()
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	return opsServer{done: done, stop: func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}}, nil
}

// loadProcess reads the config of a server or worker process, with the payload
// keys it must be given (no dev default), and makes its logger.
func (f *configFlags) loadProcess(cmd *cobra.Command) (*app.Config, *slog.Logger, error) {
	cfg, err := f.load()
	if err != nil {
		return nil, nil, err
	}
	if err := cfg.LoadPayloadKeys(false); err != nil {
		return nil, nil, err
	}
	cfg.Metrics = telemetry.NewMetrics()
	log, err := newLogger(cmd.ErrOrStderr(), cfg.LogLevel)
	return cfg, log, err
}

func newMigrateCmd() *cobra.Command {
	var dsn string
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply the store schema to the database",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := app.OpenStore(cmd.Context(), dsn, true)
			if err != nil {
				return err
			}
			defer st.Close()
			cmd.Printf("store schema applied (%s)\n", st.Dialect())
			return nil
		},
	}
	cmd.Flags().StringVar(&dsn, "database", app.Env("RAMPART_DATABASE_DSN", ""), "database: postgres://… for PostgreSQL, else a SQLite file path (env RAMPART_DATABASE_DSN)")
	return cmd
}
