package app

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"

	"go.temporal.io/sdk/client"
	"gopkg.in/yaml.v3"

	"github.com/rampart-soar/rampart/activities"
	"github.com/rampart-soar/rampart/cmd/rampart/internal/runs"
	"github.com/rampart-soar/rampart/cmd/rampart/internal/shadow"
	"github.com/rampart-soar/rampart/integrations"
	"github.com/rampart-soar/rampart/integrations/crowdstrike"
	"github.com/rampart-soar/rampart/playbook/lint"
	"github.com/rampart-soar/rampart/policy"
	"github.com/rampart-soar/rampart/server"
	"github.com/rampart-soar/rampart/server/ingest"
	"github.com/rampart-soar/rampart/server/telemetry"
	"github.com/rampart-soar/rampart/store"
	"github.com/rampart-soar/rampart/triage"
)

// OpenStore opens the database; migrate applies the schema first.
func OpenStore(ctx context.Context, dsn string, migrate bool) (*store.Store, error) {
	st, err := store.Open(ctx, dsn)
	if err != nil {
		return nil, err
	}
	if migrate {
		if err := st.Migrate(ctx); err != nil {
			_ = st.Close()
			return nil, err
		}
	}
	return st, nil
}

// OpenServerStore opens the store for `rampart server`. Unless it is to migrate,
// the server starts without the database answering: the webhooks need only
// Temporal, and the rest of the API answers 503 until the database does.
func OpenServerStore(ctx context.Context, dsn string, migrate bool, log *slog.Logger) (*store.Store, error) {
	if migrate {
		return OpenStore(ctx, dsn, true)
	}
	st, err := store.Connect(dsn)
	if err != nil {
		return nil, err
	}
	if err := st.Ping(ctx); err != nil {
		log.Warn("the database does not answer: serving anyway; the webhooks take alerts, the rest of the API answers 503 until it does",
			"error", err)
	}
	return st, nil
}

// OpenWorkerStore opens the store for `rampart worker`, waiting for a database
// that does not answer yet (both restarting, a slow start) instead of exiting:
// alerts wait in Temporal meanwhile. With migrate it applies the schema once the
// database answers. It gives up only when ctx ends.
func OpenWorkerStore(ctx context.Context, dsn string, migrate bool, log *slog.Logger) (*store.Store, error) {
	st, err := store.Connect(dsn)
	if err != nil {
		return nil, err
	}
	for delay := time.Second; ; delay = min(2*delay, maxStoreWait) {
		err := st.Ping(ctx)
		if err == nil && migrate {
			err = st.Migrate(ctx)
		}
		if err == nil {
			return st, nil
		}
		log.Warn("the database does not answer: the worker waits for it before polling", "error", err, "retry_in", delay)
		select {
		case <-ctx.Done():
			_ = st.Close()
			return nil, fmt.Errorf("gave up waiting for the database: %w", err)
		case <-time.After(delay):
		}
	}
}

// maxStoreWait bounds the pause between a starting worker's tries of the database.
const maxStoreWait = 30 * time.Second

// NewIntegrations builds a client for every vendor the config points at.
func NewIntegrations(cfg *Config) (*integrations.Registry, error) {
	reg := integrations.NewRegistry()
	if cs := cfg.CrowdStrike; cs.BaseURL != "" {
		c, err := crowdstrike.New(crowdstrike.Config{BaseURL: cs.BaseURL, ClientID: cs.ClientID, ClientSecret: cs.ClientSecret})
		if err != nil {
			return nil, err
		}
		reg.RegisterEDR(c)
	}
	return reg, nil
}

// NewActivities builds the activity implementations with their dependencies.
func NewActivities(cfg *Config, st *store.Store, reg *integrations.Registry, log *slog.Logger) (*activities.Activities, error) {
	rule, err := policy.CompileContainRule(cfg.ContainWhen)
	if err != nil {
		return nil, err
	}
	edr, err := reg.EDR(crowdstrike.Name)
	if err != nil {
		return nil, fmt.Errorf("%w: set --crowdstrike-url, RAMPART_CROWDSTRIKE_CLIENT_ID and RAMPART_CROWDSTRIKE_CLIENT_SECRET", err)
	}
	return &activities.Activities{Store: st, EDR: activities.MeterEDR(edr), Decider: rule, Attack: triage.NewAttack(),
		Secrets: PlaybookSecrets(os.Environ()), Logger: log}, nil
}

// NewHTTPServer builds the HTTP server: webhooks into Temporal, reads from the store.
func NewHTTPServer(cfg *Config, c client.Client, st *store.Store, sources map[string]*ingest.Source, log *slog.Logger) (*server.Server, error) {
	if cfg.Payloads == nil {
		return nil, errors.New("http server: no payload keys (LoadPayloadKeys)")
	}
	tokens, err := cfg.APIAuth()
	if err != nil {
		return nil, err
	}
	pipeline, err := ingest.NewPipeline(ingest.Options{
		Sources: sources,
		Starter: &server.TemporalStarter{
			Client: c, Namespace: cfg.Namespace, TaskQueue: cfg.TaskQueue,
			DataConverter: cfg.Payloads.DataConverter(), Identity: server.NewIdentity("server"),
		},
		DedupWindow: cfg.DedupWindow,
	})
	if err != nil {
		return nil, err
	}
	ReportReload(cfg.Metrics, FilesSources, nil)
	ReportReload(cfg.Metrics, FilesAPITokens, nil)
	control := &server.TemporalControl{Client: c, Failures: cfg.Payloads.FailureConverter(), TaskQueue: cfg.TaskQueue}
	return server.New(server.Options{
		Pipeline:  pipeline,
		Alerts:    st,
		Playbooks: st,
		Approvals: st,
		Control:   control,
		Stalls:    control,
		Workers:   control,
		Replayer:  &shadow.Replayer{Store: st},
		Runs:      &runs.Starter{Client: c, Store: st, TaskQueue: cfg.TaskQueue},
		Tokens:    tokens,
		Codec:     cfg.Payloads,
		Ready:     ReadyChecks(c, st),
		Metrics:   cfg.Metrics,
		Logger:    log,
	}), nil
}

// ReadyChecks are what /readyz asks of a server or a worker: the database and
// Temporal answer.
func ReadyChecks(c client.Client, st *store.Store) []server.Check {
	return []server.Check{
		{Name: "database", Check: st.Ping},
		{Name: "temporal", Check: func(ctx context.Context) error {
			_, err := c.CheckHealth(ctx, &client.CheckHealthRequest{})
			return err
		}},
	}
}

// AssetsFile is the YAML shape of an asset inventory.
type AssetsFile struct {
	Assets []struct {
		Hostname    string   `yaml:"hostname"`
		DeviceID    string   `yaml:"device_id"`
		IP          string   `yaml:"ip"`
		Criticality string   `yaml:"criticality"`
		Owner       string   `yaml:"owner"`
		Protected   bool     `yaml:"protected"`
		Tags        []string `yaml:"tags"`
	} `yaml:"assets"`
}

// LoadAssets reads an inventory file: YAML in the AssetsFile shape, or, for a
// .csv file, a CMDB export with the header hostname,ip,device_id,criticality,
// owner,tags,protected in any order (hostname required; device_uid is accepted
// for device_id; tags separated by ';', '|' or spaces).
func LoadAssets(path string) ([]store.Asset, error) {
	if strings.EqualFold(filepath.Ext(path), ".csv") {
		return loadAssetsCSV(path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("assets: %w", err)
	}
	var f AssetsFile
	if err := yaml.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("assets %s: %w", path, err)
	}
	out := make([]store.Asset, 0, len(f.Assets))
	seen := hostnamesSeen{}
	for i, a := range f.Assets {
		asset := newAsset(a.Hostname, a.DeviceID, a.IP, a.Criticality, a.Owner, a.Protected, a.Tags)
		if err := seen.check(asset, fmt.Sprintf("entry %d", i+1)); err != nil {
			return nil, fmt.Errorf("assets %s: entry %d: %w", path, i+1, err)
		}
		out = append(out, asset)
	}
	return out, nil
}

// hostnamesSeen refuses a host listed twice: which record was meant (one may say
// protected, the other not) is not for the loader to guess.
type hostnamesSeen map[string]string

// check validates the record and notes where its hostname was first listed.
func (seen hostnamesSeen) check(a store.Asset, where string) error {
	n, err := store.NormalizeAsset(a)
	if err != nil {
		return err
	}
	if first, twice := seen[n.Hostname]; twice {
		return fmt.Errorf("hostname %q is listed twice (first at %s)", n.Hostname, first)
	}
	seen[n.Hostname] = where
	return nil
}

func newAsset(hostname, deviceID, ip, criticality, owner string, protected bool, tags []string) store.Asset {
	if tags == nil {
		tags = []string{}
	}
	tagsJSON, _ := json.Marshal(tags)
	return store.Asset{Hostname: hostname, DeviceID: deviceID, IP: ip, Criticality: criticality,
		Owner: owner, Protected: protected, TagsJSON: string(tagsJSON)}
}

func loadAssetsCSV(path string) ([]store.Asset, error) {
	var out []store.Asset
	seen := hostnamesSeen{}
	err := readCSV(path, "assets", []string{"hostname"}, map[string]string{"device_uid": "device_id"}, func(line int, get func(string) string) error {
		a := newAsset(get("hostname"), get("device_id"), get("ip"), get("criticality"), get("owner"), false,
			strings.FieldsFunc(get("tags"), func(r rune) bool { return r == ';' || r == '|' || unicode.IsSpace(r) }))
		if err := seen.check(a, fmt.Sprintf("line %d", line)); err != nil {
			return err
		}
		if p := get("protected"); p != "" {
			var err error
			if a.Protected, err = strconv.ParseBool(strings.ToLower(p)); err != nil {
				return fmt.Errorf("protected %q is not true or false", p)
			}
		}
		out = append(out, a)
		return nil
	})
	return out, err
}

// LoadIOCs reads a CSV IOC list with the header type,value,source,confidence
// (and an optional description).
func LoadIOCs(path string) ([]store.IOC, error) {
	var out []store.IOC
	err := readCSV(path, "iocs", []string{"type", "value"}, nil, func(_ int, get func(string) string) error {
		ioc, err := store.NormalizeIOC(store.IOC{Type: get("type"), Value: get("value"), Source: get("source"), Description: get("description")})
		if err != nil {
			return err
		}
		if c := get("confidence"); c != "" {
			var err error
			if ioc.Confidence, err = strconv.Atoi(c); err != nil || ioc.Confidence < 0 || ioc.Confidence > 100 {
				return errors.New("confidence must be 0-100")
			}
		}
		out = append(out, ioc)
		return nil
	})
	return out, err
}

// readCSV calls row for every record of a CSV file with a header line, giving it
// the record's line and its fields by (lower-cased) column name; aliases name
// other spellings of a column. Errors name the file and line.
func readCSV(path, what string, required []string, aliases map[string]string, row func(line int, get func(string) string) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	header, err := r.Read()
	if err != nil {
		return fmt.Errorf("%s %s: header: %w", what, path, err)
	}
	col := map[string]int{}
	for i, h := range header {
		name := strings.ToLower(strings.TrimSpace(h))
		if canonical, ok := aliases[name]; ok {
			name = canonical
		}
		col[name] = i
	}
	for _, need := range required {
		if _, ok := col[need]; !ok {
			return fmt.Errorf("%s %s: header lacks %q", what, path, need)
		}
	}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s %s: %w", what, path, err)
		}
		line, _ := r.FieldPos(0) // the file's line, blank lines and quoted line breaks counted
		get := func(name string) string {
			if i, ok := col[name]; ok && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		if err := row(line, get); err != nil {
			return fmt.Errorf("%s %s line %d: %w", what, path, line, err)
		}
	}
}

// ReferenceData is the asset inventory and the IOC list, read and checked. A
// file given is the whole list: loading it removes what is not on it.
type ReferenceData struct {
	Assets []store.Asset
	IOCs   []store.IOC

	assetsGiven, iocsGiven bool // a file was named, even an empty one
}

// ReadReferenceData reads the inventory and the IOC list, whichever is given.
// It touches nothing else, so a process reads them before it starts anything and
// a mistake in either file stops it at once.
func ReadReferenceData(assetsFile, iocsFile string) (ReferenceData, error) {
	var r ReferenceData
	var err error
	if r.assetsGiven = assetsFile != ""; r.assetsGiven {
		if r.Assets, err = LoadAssets(assetsFile); err != nil {
			return ReferenceData{}, err
		}
	}
	if r.iocsGiven = iocsFile != ""; r.iocsGiven {
		if r.IOCs, err = LoadIOCs(iocsFile); err != nil {
			return ReferenceData{}, err
		}
	}
	return r, nil
}

// Load makes the store's inventory and IOC list those read, each only when its
// file was given: a host or an indicator taken off its file is taken out of the
// store too (a false-positive indicator left behind would go on driving
// containment). The log says how many were loaded and removed, and m (when not
// nil) whether the load succeeded.
func (r ReferenceData) Load(ctx context.Context, st *store.Store, m *telemetry.Metrics, log *slog.Logger) (err error) {
	if r.assetsGiven || r.iocsGiven {
		defer func() { ReportReload(m, FilesReferenceData, err) }()
	}
	if r.assetsGiven {
		removed, err := st.ReplaceAssets(ctx, r.Assets)
		if err != nil {
			return err
		}
		log.Info("asset inventory loaded", "assets", len(r.Assets), "removed", removed)
	}
	if r.iocsGiven {
		removed, err := st.ReplaceIOCs(ctx, r.IOCs)
		if err != nil {
			return err
		}
		log.Info("IOC list loaded", "iocs", len(r.IOCs), "removed", removed)
	}
	return nil
}

// What a process loads from files, as MetricLastReloadSuccessful labels it.
const (
	FilesSources       = "sources"        // the webhook sources (dev, server)
	FilesReferenceData = "reference_data" // the inventory and IOC list (dev, worker)
	FilesAPITokens     = "api_tokens"     // the API tokens' files (dev, server)
)

// MetricLastReloadSuccessful is 1 when the last load of a kind of files (at
// start, then at each hang-up) succeeded and 0 when it failed, the process
// running on what it loaded before; MetricLastReloadSuccessAt is when one last
// succeeded. Prometheus reports its own config reloads the same way.
const (
	MetricLastReloadSuccessful = "rampart_last_reload_successful"
	MetricLastReloadSuccessAt  = "rampart_last_reload_success_timestamp_seconds"
)

// ReportReload records a load of files, at start or on a hang-up, on m
// (nothing when m is nil).
func ReportReload(m *telemetry.Metrics, files string, err error) {
	if m == nil {
		return
	}
	h := m.Handler().WithTags(map[string]string{"files": files})
	if err != nil {
		h.Gauge(MetricLastReloadSuccessful).Update(0)
		return
	}
	h.Gauge(MetricLastReloadSuccessful).Update(1)
	h.Gauge(MetricLastReloadSuccessAt).Update(float64(time.Now().Unix()))
}

// ReloadReferenceData reads the inventory and IOC files again and, when both read
// cleanly, makes the store's lists theirs (SIGHUP does this in dev and worker, so
// an indicator added in the middle of an incident matches the next alert without
// a restart). A mistake in either file is logged and changes nothing: the lists
// loaded before stay in force. Each list is replaced in a transaction of its own.
func ReloadReferenceData(ctx context.Context, st *store.Store, assetsFile, iocsFile string, m *telemetry.Metrics, log *slog.Logger) (ReferenceData, error) {
	if assetsFile == "" && iocsFile == "" {
		log.Warn("reference data not reloaded: no --assets or --iocs file was given")
		return ReferenceData{}, nil
	}
	r, err := ReadReferenceData(assetsFile, iocsFile)
	if err != nil {
		ReportReload(m, FilesReferenceData, err)
		log.Error("reference data not reloaded: the lists loaded before stay in force", "error", err)
		return ReferenceData{}, err
	}
	if err := r.Load(ctx, st, m, log); err != nil { // the store failed: a list logged as loaded just before was
		log.Error("reference data reload failed in the store: a list not logged as loaded is as it was", "error", err)
		return ReferenceData{}, err
	}
	return r, nil
}

// ReloadSources reads the sources file again and, when it reads cleanly, makes
// its sources the server's webhook sources (SIGHUP does this in dev and server,
// so a secret is rotated without a restart and without refusing a delivery).
// RAMPART_WEBHOOK_SECRET_* still override the file, with the values the process
// started with; the files their _FILE variants name are read again. A mistake
// in any of them is logged and changes nothing.
func ReloadSources(srv *server.Server, file string, m *telemetry.Metrics, log *slog.Logger) (map[string]*ingest.Source, error) {
	sources, err := ingest.LoadSources(file)
	var changes ingest.SourceChanges
	if err == nil {
		changes, err = srv.ReloadSources(sources)
	}
	ReportReload(m, FilesSources, err)
	if err != nil {
		log.Error("webhook sources not reloaded: the sources loaded before stay in force", "error", err)
		return nil, err
	}
	log.Info("webhook sources reloaded", "sources", len(sources), "added", changes.Added, "removed", changes.Removed,
		"changed", changes.Changed, "new_secrets", changes.Rekeyed)
	return sources, nil
}

// ReloadAPITokens reads the API tokens again and puts them in force on srv
// (SIGHUP does this in dev and server, so a token is rotated or revoked without a
// restart). RAMPART_API_TOKEN_<NAME> variables keep the values the process
// started with; the files their _FILE variants name are read again. A mistake,
// or a change that would leave no token, is logged and changes nothing.
func ReloadAPITokens(srv *server.Server, listen string, environ []string, m *telemetry.Metrics, log *slog.Logger) error {
	byName, err := APITokensFromEnv(environ)
	var tokens *server.APITokens
	if err == nil {
		tokens, err = apiAuth(byName, listen)
	}
	var changes server.TokenChanges
	if err == nil {
		changes, err = srv.ReplaceTokens(tokens)
	}
	ReportReload(m, FilesAPITokens, err)
	if err != nil {
		log.Error("API tokens not reloaded: the tokens loaded before stay in force", "error", err)
		return err
	}
	log.Info("API tokens reloaded", "holders", tokens.Len(), "added", changes.Added, "removed", changes.Removed,
		"new_tokens", changes.Rekeyed)
	return nil
}

// ApplyPlaybookDir applies every playbook in dir (none when dir is empty); any
// problem stops the boot with the diagnostics.
func ApplyPlaybookDir(ctx context.Context, st *store.Store, dir string, log *slog.Logger) error {
	if dir == "" {
		return nil
	}
	paths, err := lint.PlaybookFiles(dir)
	if err != nil {
		return fmt.Errorf("playbooks: %w", err)
	}
	files := make([]lint.File, 0, len(paths))
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("playbooks: %w", err)
		}
		files = append(files, lint.File{Name: p, Data: data})
	}
	applied, err := server.ApplyPlaybooks(ctx, st, files)
	if errors.Is(err, server.ErrLint) {
		var lines []string
		for _, a := range applied {
			for _, d := range a.Diagnostics {
				lines = append(lines, d.String())
			}
		}
		return fmt.Errorf("playbooks in %s have problems:\n%s", dir, strings.Join(lines, "\n"))
	}
	if err != nil {
		return err
	}
	for _, a := range applied {
		if a.Created {
			log.Info("playbook applied", "playbook", a.Name, "version", a.Version)
		}
	}
	return nil
}
