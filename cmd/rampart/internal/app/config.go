// Package app assembles Rampart's processes from its parts: configuration, the
// store, the Temporal client and worker, the HTTP server, the CrowdStrike
// simulator, and the example data `rampart dev` loads. cmd/rampart's commands and
// the end-to-end tests call it; nothing else does.
//
// It may import every Rampart package and the embedded Temporal server.
package app

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/rampart-soar/rampart/activities"
	"github.com/rampart-soar/rampart/cmd/rampart/internal/codec"
	"github.com/rampart-soar/rampart/integrations"
	"github.com/rampart-soar/rampart/policy"
	"github.com/rampart-soar/rampart/server"
	"github.com/rampart-soar/rampart/server/ingest"
	"github.com/rampart-soar/rampart/server/telemetry"
	"github.com/rampart-soar/rampart/workflows"
)

// Config is everything a Rampart process is configured with. Process settings come
// from flags and RAMPART_* variables; policy settings from the config file.
type Config struct {
	Listen          string
	DataDir         string
	TemporalAddress string
	Namespace       string
	TaskQueue       string
	DatabaseDSN     string
	SourcesFile     string
	AssetsFile      string
	IOCsFile        string
	// PlaybooksDir is applied at boot (rampart dev): every playbook in it becomes
	// its next version when it changed.
	PlaybooksDir string
	LogLevel     string
	// ReconcileEvery is how often a worker looks for runs that ended in Temporal
	// without recording it (reconcile.DefaultEvery when zero).
	ReconcileEvery time.Duration

	// Policy, from the config file.
	ContainWhen string
	DedupWindow time.Duration
	Retention   time.Duration

	CrowdStrike CrowdStrikeConfig

	// PayloadKeys are base64 AES-256 keys, the first of which encrypts Temporal
	// payloads (RAMPART_PAYLOAD_KEY, never a flag); PayloadKeyFile holds them
	// instead. Payloads is the keyring LoadPayloadKeys made of either.
	PayloadKeys    integrations.Secret
	PayloadKeyFile string
	Payloads       *codec.Keyring

	// APITokens authenticate API callers, by the name of who holds each
	// (RAMPART_API_TOKEN_<NAME>, never a flag). Without any the API is open, which
	// only a loopback listen address allows.
	APITokens map[string]integrations.Secret

	// MetricsListen is where a worker process serves /healthz, /readyz and
	// /metrics; empty serves nothing.
	MetricsListen string
	// Metrics keeps the process's metrics: DialTemporal has the SDK report to
	// it, and the API's or the worker's /metrics shows it.
	Metrics *telemetry.Metrics
}

// CrowdStrikeConfig points the EDR integration at a Falcon cloud (or a simulator).
type CrowdStrikeConfig struct {
	BaseURL      string
	ClientID     string
	ClientSecret integrations.Secret
}

// Defaults.
const (
	DefaultListen = "127.0.0.1:8080"
	// DefaultMetricsListen is the worker's; the port is the one OpenTelemetry's
	// Prometheus exporter uses, taken by nothing else of Rampart's.
	DefaultMetricsListen = "127.0.0.1:9464"
	DefaultDataDir       = ".rampart"
	DefaultNamespace     = "default"
	DefaultRetention     = 7 * 24 * time.Hour
)

// Env returns the value of a RAMPART_ variable or def.
func Env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

// PolicyFile is the YAML config file's shape.
type PolicyFile struct {
	Decide struct {
		ContainWhen string `yaml:"contain_when"`
	} `yaml:"decide"`
	DedupWindow string `yaml:"dedup_window"`
	Retention   string `yaml:"retention"`
}

// LoadPolicy reads the config file into c; an empty path keeps the defaults.
func (c *Config) LoadPolicy(path string) error {
	if c.ContainWhen == "" {
		c.ContainWhen = policy.DefaultContainWhen
	}
	if c.DedupWindow == 0 {
		c.DedupWindow = workflows.DefaultDedupWindow
	}
	if c.Retention == 0 {
		c.Retention = DefaultRetention
	}
	if path == "" {
		return nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	var f PolicyFile
	if err := yaml.Unmarshal(data, &f); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	if f.Decide.ContainWhen != "" {
		c.ContainWhen = f.Decide.ContainWhen
	}
	for _, d := range []struct {
		name, value string
		into        *time.Duration
	}{{"dedup_window", f.DedupWindow, &c.DedupWindow}, {"retention", f.Retention, &c.Retention}} {
		if d.value == "" {
			continue
		}
		v, err := time.ParseDuration(d.value)
		if err != nil || v <= 0 {
			return fmt.Errorf("config %s: %s must be a positive duration like 10m, not %q", path, d.name, d.value)
		}
		*d.into = v
	}
	return nil
}

// PayloadKeyFileName is the key file `rampart dev` keeps in its data dir.
const PayloadKeyFileName = "payload.key"

// LoadPayloadKeys resolves the keyring that encrypts Temporal payloads: from
// RAMPART_PAYLOAD_KEY, else from the key file. In dev (one process, its own data
// dir) a missing key file is created in the data dir; server and worker share
// Temporal with each other, so they must be given the same key and refuse to
// start without one.
func (c *Config) LoadPayloadKeys(dev bool) error {
	var err error
	switch {
	case c.PayloadKeys.Reveal() != "":
		var keys [][]byte
		if keys, err = codec.ParseKeys(c.PayloadKeys.Reveal()); err == nil {
			c.Payloads, err = codec.NewKeyring(keys...)
		}
		if err != nil {
			err = fmt.Errorf("RAMPART_PAYLOAD_KEY: %w", err)
		}
	case c.PayloadKeyFile != "":
		c.Payloads, err = codec.LoadKeyFile(c.PayloadKeyFile, dev)
	case dev:
		c.Payloads, err = codec.LoadKeyFile(filepath.Join(c.DataDir, PayloadKeyFileName), true)
	default:
		err = errors.New("no payload encryption key: set RAMPART_PAYLOAD_KEY (make one with `rampart keygen`) or --payload-key-file, the same for every server and worker")
	}
	return err
}

// APITokenEnvPrefix prefixes the variables that hold API tokens: the rest of the
// name, lower-cased, names the holder.
const APITokenEnvPrefix = "RAMPART_API_TOKEN_"

// APITokensFromEnv reads RAMPART_API_TOKEN_<NAME>=<token> variables, and
// RAMPART_API_TOKEN_<NAME>_FILE=<path> ones naming a file that holds the token
// (a mounted secret: the path itself is never taken for a token).
func APITokensFromEnv(environ []string) (map[string]integrations.Secret, error) {
	lookup := EnvLookup(environ)
	tokens := map[string]integrations.Secret{}
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		holder, ok := strings.CutPrefix(name, APITokenEnvPrefix)
		holder = strings.TrimSuffix(holder, ingest.SecretFileEnvSuffix)
		if !ok || holder == "" || holder == "FILE" { // RAMPART_API_TOKEN_FILE reads as the CLI's token file: a path is no token
			continue
		}
		token, err := ingest.SecretFromEnv(APITokenEnvPrefix+holder, "", lookup)
		if err != nil {
			return nil, err
		}
		if token != "" {
			tokens[strings.ToLower(holder)] = integrations.NewSecret(token)
		}
	}
	return tokens, nil
}

// PlaybookSecrets resolves the secrets.<name> of playbook actions from
// RAMPART_SECRET_<NAME>, or from the file RAMPART_SECRET_<NAME>_FILE names,
// read at each action, so a secret rotated in its file is used from the next
// action on without a restart.
func PlaybookSecrets(environ []string) activities.Secrets {
	lookup := EnvLookup(environ)
	return func(name string) (string, error) {
		return ingest.SecretFromEnv(activities.SecretEnvPrefix+strings.ToUpper(name), "", lookup)
	}
}

// EnvSecret reads a secret from this process's variable name, or from the file
// the variable name_FILE names; "" when neither is set.
func EnvSecret(name string) (string, error) {
	return ingest.SecretFromEnv(name, "", EnvLookup(os.Environ()))
}

// EnvLookup looks variables up in environ (os.Environ's form), a variable set
// empty counting as unset.
func EnvLookup(environ []string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		for _, kv := range slices.Backward(environ) { // the last setting wins, as in a process's environment
			if k, v, _ := strings.Cut(kv, "="); k == name {
				return v, v != ""
			}
		}
		return "", false
	}
}

// APIAuth builds the API's token check, and refuses an open API on an address
// others can reach.
func (c *Config) APIAuth() (*server.APITokens, error) { return apiAuth(c.APITokens, c.Listen) }

func apiAuth(byName map[string]integrations.Secret, listen string) (*server.APITokens, error) {
	plain := make(map[string]string, len(byName))
	for name, token := range byName {
		plain[name] = token.Reveal()
	}
	tokens, err := server.NewAPITokens(plain)
	if err != nil {
		return nil, err
	}
	if tokens.Len() == 0 && !server.IsLoopback(listen) {
		return nil, fmt.Errorf("refusing to serve an open API on %s: set %s<NAME> to a token (make one with `rampart keygen`), or listen on 127.0.0.1", listen, APITokenEnvPrefix)
	}
	return tokens, nil
}

// Validate checks what every process needs.
func (c *Config) Validate() error {
	var errs []error
	if c.Namespace == "" {
		errs = append(errs, errors.New("temporal namespace is empty"))
	}
	if c.TaskQueue == "" {
		errs = append(errs, errors.New("task queue is empty"))
	}
	if c.Retention < 24*time.Hour {
		errs = append(errs, errors.New("retention must be at least 24h (Temporal's minimum)"))
	}
	if _, err := policy.CompileContainRule(c.ContainWhen); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// ExamplesDir finds the examples directory: ./examples, or beside the binary.
func ExamplesDir() string {
	if st, err := os.Stat("examples"); err == nil && st.IsDir() {
		return "examples"
	}
	if exe, err := os.Executable(); err == nil {
		dir := filepath.Join(filepath.Dir(exe), "..", "examples")
		if st, err := os.Stat(dir); err == nil && st.IsDir() {
			return dir
		}
	}
	return "examples"
}
