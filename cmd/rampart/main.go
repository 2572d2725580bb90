// Command rampart is Rampart's one binary: `dev` runs everything in one process;
// `server` and `worker` run the HTTP side and the Temporal worker side against an
// external Temporal and PostgreSQL; `migrate` applies the store schema; `alert`
// sends, replays and inspects alerts; `playbook` lints, tests, versions and
// shadow-replays playbooks; `approvals` answers the steps that wait for a human;
// `sim-crowdstrike` serves the EDR simulator alone; `keygen` makes a key or token.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/rampart-soar/rampart/cmd/rampart/internal/app"
	"github.com/rampart-soar/rampart/integrations"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the command line and returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		var exit exitError
		if errors.As(err, &exit) {
			return int(exit) // the command already said why
		}
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	return 0
}

// hangUps catches each SIGHUP until stop is called. Run from a terminal
// (stdin one), a hang-up means that terminal went away and the process stops as
// on Ctrl-C; run without one (under a supervisor, in a container), it reloads
// files as daemons do: dev and worker the inventory and IOC files, dev and
// server the webhook sources file.
type hangUps struct {
	c            <-chan os.Signal
	fromTerminal bool
	stop         func()
}

func watchHangUps() hangUps {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	return hangUps{c: ch, fromTerminal: isTerminal(os.Stdin), stop: func() { signal.Stop(ch) }}
}

// serve waits until ctx ends (nil), done or fatal delivers an error (that
// error; a nil channel never does), or a hang-up from the terminal ends the
// process (nil); every other hang-up calls reload, which logs its outcome.
func (h hangUps) serve(ctx context.Context, log *slog.Logger, reload func(), done, fatal <-chan error) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-done:
			return err
		case err := <-fatal:
			return err
		case <-h.c:
			if h.fromTerminal {
				log.Info("hang-up: the terminal went away; shutting down")
				return nil
			}
			reload()
		}
	}
}

// exitError carries a specific exit code.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "rampart",
		Short:         "Rampart: durable SOAR workflows — detect, enrich, decide, contain",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(
		newDevCmd(),
		newServerCmd(),
		newWorkerCmd(),
		newMigrateCmd(),
		newAlertCmd(),
		newSimCmd(),
		newPlaybookCmd(),
		newApprovalsCmd(),
		newKeygenCmd(),
		newHealthcheckCmd(),
	)
	return root
}

// newLogger writes structured logs to stderr at the given level.
func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(level))); err != nil {
		return nil, fmt.Errorf("log level %q: use debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// configFlags registers the flags shared by dev, server and worker on cfg.
type configFlags struct {
	cfg        app.Config
	configFile string
}

func (f *configFlags) temporal(cmd *cobra.Command, defAddress string) {
	fl := cmd.Flags()
	fl.StringVar(&f.cfg.TemporalAddress, "temporal-address", app.Env("RAMPART_TEMPORAL_ADDRESS", defAddress), "Temporal frontend host:port (env RAMPART_TEMPORAL_ADDRESS)")
	fl.StringVar(&f.cfg.Namespace, "namespace", app.Env("RAMPART_TEMPORAL_NAMESPACE", app.DefaultNamespace), "Temporal namespace (env RAMPART_TEMPORAL_NAMESPACE)")
	fl.StringVar(&f.cfg.TaskQueue, "task-queue", app.Env("RAMPART_TASK_QUEUE", "rampart"), "Temporal task queue (env RAMPART_TASK_QUEUE)")
	fl.StringVar(&f.cfg.PayloadKeyFile, "payload-key-file", app.Env("RAMPART_PAYLOAD_KEY_FILE", ""),
		"file of base64 AES-256 keys that encrypt Temporal payloads, the first current (env RAMPART_PAYLOAD_KEY_FILE; or the keys themselves in RAMPART_PAYLOAD_KEY; dev default: payload.key in the data dir)")
}

func (f *configFlags) common(cmd *cobra.Command, defConfig string) {
	fl := cmd.Flags()
	fl.StringVar(&f.configFile, "config", app.Env("RAMPART_CONFIG", defConfig), "policy config file: decide.contain_when, dedup_window, retention (env RAMPART_CONFIG)")
	fl.StringVar(&f.cfg.LogLevel, "log-level", app.Env("RAMPART_LOG_LEVEL", "info"), "debug, info, warn or error (env RAMPART_LOG_LEVEL)")
}

func (f *configFlags) database(cmd *cobra.Command, def string) {
	cmd.Flags().StringVar(&f.cfg.DatabaseDSN, "database", app.Env("RAMPART_DATABASE_DSN", def), "database: postgres://… for PostgreSQL, else a SQLite file path (env RAMPART_DATABASE_DSN)")
}

func (f *configFlags) reference(cmd *cobra.Command, defAssets, defIOCs string) {
	fl := cmd.Flags()
	fl.StringVar(&f.cfg.AssetsFile, "assets", app.Env("RAMPART_ASSETS_FILE", defAssets), "asset inventory (YAML, or a CMDB export in CSV) loaded at boot as the whole inventory: hosts not on it are removed (env RAMPART_ASSETS_FILE)")
	fl.StringVar(&f.cfg.IOCsFile, "iocs", app.Env("RAMPART_IOCS_FILE", defIOCs), "IOC list CSV loaded at boot as the whole list: indicators not on it are removed (env RAMPART_IOCS_FILE)")
}

func (f *configFlags) edr(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.cfg.CrowdStrike.BaseURL, "crowdstrike-url", app.Env("RAMPART_CROWDSTRIKE_URL", ""), "CrowdStrike API base URL (env RAMPART_CROWDSTRIKE_URL)")
	fl.StringVar(&f.cfg.CrowdStrike.ClientID, "crowdstrike-client-id", app.Env("RAMPART_CROWDSTRIKE_CLIENT_ID", ""), "CrowdStrike API client id (env RAMPART_CROWDSTRIKE_CLIENT_ID; the secret only from RAMPART_CROWDSTRIKE_CLIENT_SECRET, or the file RAMPART_CROWDSTRIKE_CLIENT_SECRET_FILE names)")
}

func (f *configFlags) sources(cmd *cobra.Command, def string) {
	cmd.Flags().StringVar(&f.cfg.SourcesFile, "sources", app.Env("RAMPART_SOURCES_FILE", def), "webhook sources YAML (env RAMPART_SOURCES_FILE; secrets overridable with RAMPART_WEBHOOK_SECRET_<SOURCE>[_FILE]; re-read on a hang-up by dev and server)")
}

// load finishes the config: policy file, then secrets from the environment.
func (f *configFlags) load() (*app.Config, error) {
	if err := f.cfg.LoadPolicy(f.configFile); err != nil {
		return nil, err
	}
	secret, err := app.EnvSecret("RAMPART_CROWDSTRIKE_CLIENT_SECRET")
	if err != nil {
		return nil, err
	}
	if secret != "" {
		f.cfg.CrowdStrike.ClientSecret = integrations.NewSecret(secret)
	}
	if v := os.Getenv("RAMPART_PAYLOAD_KEY"); v != "" {
		f.cfg.PayloadKeys = integrations.NewSecret(v)
	}
	if f.cfg.APITokens, err = app.APITokensFromEnv(os.Environ()); err != nil {
		return nil, err
	}
	return &f.cfg, f.cfg.Validate()
}
