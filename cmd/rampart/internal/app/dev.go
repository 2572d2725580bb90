package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/rampart-soar/rampart/cmd/rampart/internal/embedded"
	"github.com/rampart-soar/rampart/integrations"
	"github.com/rampart-soar/rampart/integrations/crowdstrike"
	"github.com/rampart-soar/rampart/server"
	"github.com/rampart-soar/rampart/server/ingest"
	"github.com/rampart-soar/rampart/server/telemetry"
	"github.com/rampart-soar/rampart/store"
)

// DevOptions configure a one-process Rampart.
type DevOptions struct {
	Config Config
	// TemporalPort is the embedded frontend's port; 0 picks a free one.
	TemporalPort int
	// SimulatorListen is where the CrowdStrike simulator serves (127.0.0.1:0).
	SimulatorListen string
	// ContainDelay is how long the simulator keeps a host containment_pending.
	ContainDelay time.Duration
	// PollInterval is how often containment is re-checked.
	PollInterval time.Duration
	Worker       worker.Options
	Logger       *slog.Logger
}

// Dev is a running one-process Rampart: embedded Temporal (unless an address was
// given), SQLite store, worker, HTTP server and CrowdStrike simulator.
type Dev struct {
	Config    Config
	Temporal  *embedded.Server // nil with an external Temporal
	Client    client.Client
	Store     *store.Store
	Simulator *crowdstrike.Simulator // nil with an external EDR
	Worker    *Worker
	HTTP      *server.Server
	URL       string

	serveErr       chan error
	stopReconciler func()
	log            *slog.Logger

	mu      sync.Mutex
	sources map[string]*ingest.Source // as last loaded, for Sources
}

// Sources returns the webhook sources as last loaded, with their secrets.
func (d *Dev) Sources() map[string]*ingest.Source {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.sources
}

// StartDev starts everything and returns once the HTTP server is listening. On
// error, whatever was started is stopped again.
func StartDev(ctx context.Context, opts DevOptions) (_ *Dev, err error) {
	cfg := opts.Config
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if _, err := cfg.APIAuth(); err != nil { // before starting anything
		return nil, err
	}
	// The files too: a mistake in one stops the boot before Temporal starts.
	reference, err := ReadReferenceData(cfg.AssetsFile, cfg.IOCsFile)
	if err != nil {
		return nil, err
	}
	sources, err := ingest.LoadSources(cfg.SourcesFile)
	if err != nil {
		return nil, err
	}
	if cfg.Payloads == nil {
		if err := cfg.LoadPayloadKeys(true); err != nil {
			return nil, err
		}
	}
	if cfg.Metrics == nil {
		cfg.Metrics = telemetry.NewMetrics()
	}
	d := &Dev{Config: cfg, sources: sources, log: log, serveErr: make(chan error, 1)}
	defer func() {
		if err != nil {
			d.Stop(context.Background())
		}
	}()

	if cfg.TemporalAddress == "" {
		d.Temporal, err = embedded.Start(ctx, embedded.Options{
			DataDir: cfg.DataDir, Namespace: cfg.Namespace, FrontendPort: opts.TemporalPort, LogLevel: temporalLogLevel(cfg.LogLevel),
			SearchAttributes: searchAttributeTypes(),
		})
		if err != nil {
			return nil, PortTaken(err, "--temporal-port")
		}
		d.Config.TemporalAddress = d.Temporal.FrontendAddress()
	}
	dialCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if d.Client, err = DialTemporal(dialCtx, d.Config.TemporalAddress, cfg.Namespace, cfg.Payloads, d.Config.Metrics, log); err != nil {
		return nil, err
	}
	if err := PrepareTemporal(ctx, d.Client, &d.Config); err != nil {
		return nil, err
	}

	dsn := cfg.DatabaseDSN
	if dsn == "" {
		dsn = filepath.Join(cfg.DataDir, "rampart.db")
	}
	if d.Store, err = OpenStore(ctx, dsn, true); err != nil {
		return nil, err
	}
	if err := reference.Load(ctx, d.Store, cfg.Metrics, log); err != nil {
		return nil, err
	}
	if err := ApplyPlaybookDir(ctx, d.Store, cfg.PlaybooksDir, log); err != nil {
		return nil, err
	}

	if d.Config.CrowdStrike.BaseURL == "" {
		if err := d.startSimulator(opts, reference.Assets); err != nil {
			return nil, PortTaken(err, "--crowdstrike-sim-listen")
		}
	}
	reg, err := NewIntegrations(&d.Config)
	if err != nil {
		return nil, err
	}
	acts, err := NewActivities(&d.Config, d.Store, reg, log)
	if err != nil {
		return nil, err
	}
	acts.PollInterval = opts.PollInterval
	if d.Worker, err = StartWorker(d.Client, cfg.TaskQueue, acts, opts.Worker); err != nil {
		return nil, err
	}
	w := d.Worker
	go func() {
		// A worker Temporal stopped for good ends the process as a failed HTTP
		// server does: nothing would take the alerts it accepts.
		if err := w.Failed(); err != nil {
			select {
			case d.serveErr <- err:
			default:
			}
		}
	}()
	d.stopReconciler = StartReconciler(d.Client, d.Store, &d.Config, log)

	if d.HTTP, err = NewHTTPServer(&d.Config, d.Client, d.Store, sources, log); err != nil {
		return nil, err
	}
	addr, err := d.HTTP.Listen(cfg.Listen)
	if err != nil {
		return nil, PortTaken(fmt.Errorf("listen on %s: %w", cfg.Listen, err), "--listen")
	}
	d.URL = "http://" + addr.String()
	go func() { d.serveErr <- d.HTTP.Serve() }()
	return d, nil
}

// PortTaken names, on a failure to listen because the port is taken, the flag
// that picks another: a second rampart on the machine is the usual cause.
func PortTaken(err error, flag string) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("%w (another program, perhaps another rampart, has the port; %s picks another)", err, flag)
	}
	return err
}

// startSimulator runs the CrowdStrike simulator with one device per inventory asset
// that has a device id, and points the EDR client at it with fresh credentials.
func (d *Dev) startSimulator(opts DevOptions, assets []store.Asset) error {
	id, secret := "rampart-dev-"+randomHex(4), randomHex(24)
	d.Simulator = crowdstrike.NewSimulator(crowdstrike.SimOptions{ClientID: id, ClientSecret: secret, ContainDelay: opts.ContainDelay})
	d.addSimulatedHosts(assets)
	listen := opts.SimulatorListen
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	if err := d.Simulator.Start(listen); err != nil {
		return err
	}
	d.Config.CrowdStrike = CrowdStrikeConfig{BaseURL: d.Simulator.URL(), ClientID: id, ClientSecret: integrations.NewSecret(secret)}
	return nil
}

// Reload reloads the inventory and IOC files and the sources file (see
// ReloadReferenceData and ReloadSources; each logs its outcome, and a bad file
// leaves what it feeds as it was). The simulator learns the inventory's new
// hosts, and keeps the state of those it knew.
func (d *Dev) Reload(ctx context.Context) error {
	r, refErr := ReloadReferenceData(ctx, d.Store, d.Config.AssetsFile, d.Config.IOCsFile, d.Config.Metrics, d.log)
	if refErr == nil && d.Simulator != nil {
		d.addSimulatedHosts(r.Assets)
	}
	sources, srcErr := ReloadSources(d.HTTP, d.Config.SourcesFile, d.Config.Metrics, d.log)
	if srcErr == nil {
		d.mu.Lock()
		d.sources = sources
		d.mu.Unlock()
	}
	tokenErr := ReloadAPITokens(d.HTTP, d.Config.Listen, os.Environ(), d.Config.Metrics, d.log)
	return errors.Join(refErr, srcErr, tokenErr)
}

// addSimulatedHosts gives the simulator the inventory's hosts it does not know
// (by their EDR device id); a host it knows keeps its state.
func (d *Dev) addSimulatedHosts(assets []store.Asset) {
	for _, a := range assets {
		if _, known := d.Simulator.Host(a.DeviceID); a.DeviceID != "" && !known {
			d.Simulator.AddHost(crowdstrike.SimHost{ID: a.DeviceID, Hostname: a.Hostname, IP: a.IP, Platform: "Windows"})
		}
	}
}

// Done reports the HTTP server stopping on its own (a serve error).
func (d *Dev) Done() <-chan error { return d.serveErr }

// Stop shuts everything down in reverse order: no new webhooks, then the worker
// finishes its current tasks, then Temporal and the store close.
func (d *Dev) Stop(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if d.HTTP != nil {
		if err := d.HTTP.Shutdown(ctx); err != nil {
			d.log.Warn("http shutdown", "error", err)
		}
	}
	if d.Worker != nil {
		d.Worker.Stop()
	}
	if d.stopReconciler != nil {
		d.stopReconciler()
	}
	if d.Client != nil {
		d.Client.Close()
	}
	if d.Simulator != nil {
		_ = d.Simulator.Close()
	}
	if d.Temporal != nil {
		if err := d.Temporal.Stop(); err != nil {
			d.log.Warn("temporal shutdown", "error", err)
		}
	}
	if d.Store != nil {
		_ = d.Store.Close()
	}
}

func temporalLogLevel(level string) string {
	if level == "debug" {
		return "info"
	}
	return "error"
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(errors.New("crypto/rand failed"))
	}
	return hex.EncodeToString(b)
}
