// Package ingest turns a webhook delivery into a started (or signalled) AlertWorkflow:
// source lookup, authentication (HMAC signature with a timestamp window, or a bearer
// token), size and nesting limits, JSON Schema validation, normalization into the
// Alert model, fingerprinting, and the start (or signal) through a Starter. Every refusal
// is an *Error with a 4xx status; nothing a sender can send makes it panic.
//
// It may import schemas, workflows (for the workflow's payload types), gojsonschema
// and yaml; never store or integrations. The Temporal client sits behind Starter.
package ingest

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/rampart-soar/rampart/schemas"
)

// Authentication schemes.
const (
	AuthHMAC   = "hmac"
	AuthBearer = "bearer"
)

// SignatureHeader carries "t=<unix seconds>,v1=<hex HMAC-SHA256>".
const SignatureHeader = "X-Rampart-Signature"

// SecretEnvPrefix + the upper-cased source name overrides a source's secret;
// with PreviousSecretEnvSuffix after it, its previous secret. Either with
// SecretFileEnvSuffix after it names a file holding the value instead (a
// mounted Docker or Kubernetes secret): it is read at every load of the
// sources, so a secret rotated in the file takes effect on a reload.
const (
	SecretEnvPrefix         = "RAMPART_WEBHOOK_SECRET_"
	PreviousSecretEnvSuffix = "_PREVIOUS"
	SecretFileEnvSuffix     = "_FILE"
)

// Source is a configured webhook source.
type Source struct {
	Name string
	// Format selects the payload schema and normalizer: ocsf or crowdstrike.
	Format string
	Auth   string
	// RateLimit bounds the deliveries accepted per second, once authenticated;
	// zero means no bound.
	RateLimit RateLimit
	// secrets are those a delivery may be signed with: the current one, then,
	// during a rotation, the previous one, accepted until the tool has moved.
	secrets [][]byte
}

// RateLimit is a token bucket: PerSecond deliveries a second on average, up to
// Burst at once.
type RateLimit struct {
	PerSecond float64 `yaml:"per_second" json:"per_second"`
	Burst     int     `yaml:"burst" json:"burst"`
}

// String never prints the secret.
func (s *Source) String() string { return fmt.Sprintf("source %s (%s, %s)", s.Name, s.Format, s.Auth) }

// Secret returns the source's secret, for signing in the CLI and tests.
func (s *Source) Secret() string { return string(s.secrets[0]) }

// sourcesFile is the YAML shape of sources.yaml.
type sourcesFile struct {
	Sources map[string]struct {
		Auth      string     `yaml:"auth"`
		Format    string     `yaml:"format"`
		Secret    string     `yaml:"secret"`
		Previous  string     `yaml:"previous_secret"`
		RateLimit *RateLimit `yaml:"rate_limit"`
	} `yaml:"sources"`
}

var sourceName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,63}$`)

// LoadSources reads a sources file and applies RAMPART_WEBHOOK_SECRET_<SOURCE>
// overrides from the environment.
func LoadSources(path string) (map[string]*Source, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sources: %w", err)
	}
	sources, err := ParseSources(data, os.LookupEnv)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err) // which file, for the operator
	}
	return sources, nil
}

// ParseSources parses a sources document; lookupEnv supplies secret overrides.
func ParseSources(data []byte, lookupEnv func(string) (string, bool)) (map[string]*Source, error) {
	var f sourcesFile
	if err := yaml.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("sources: %w", err)
	}
	if len(f.Sources) == 0 {
		return nil, errors.New("sources: no sources configured")
	}
	formats := schemas.Sources()
	out := make(map[string]*Source, len(f.Sources))
	names := make([]string, 0, len(f.Sources))
	for name := range f.Sources {
		names = append(names, name)
	}
	sort.Strings(names)
	if err := distinctSecretEnvs(names); err != nil {
		return nil, err
	}
	for _, name := range names {
		cfg := f.Sources[name]
		if !sourceName.MatchString(name) {
			return nil, fmt.Errorf("sources: %q is not a valid source name (lower-case letters, digits, - and _)", name)
		}
		s := &Source{Name: name, Format: cfg.Format, Auth: strings.ToLower(cfg.Auth)}
		if s.Format == "" {
			s.Format = name
		}
		if !slices.Contains(formats, s.Format) {
			return nil, fmt.Errorf("sources: %s: unknown format %q (have %s)", name, s.Format, strings.Join(formats, ", "))
		}
		if s.Auth == "" {
			s.Auth = AuthHMAC
		}
		if s.Auth != AuthHMAC && s.Auth != AuthBearer {
			return nil, fmt.Errorf("sources: %s: auth must be hmac or bearer, not %q", name, cfg.Auth)
		}
		secret, err := SecretFromEnv(SecretEnv(name), cfg.Secret, lookupEnv)
		if err != nil {
			return nil, fmt.Errorf("sources: %s: %w", name, err)
		}
		if len(secret) < 16 {
			return nil, fmt.Errorf("sources: %s: secret must be at least 16 bytes (set it in the file or %s)", name, SecretEnv(name))
		}
		previous, err := SecretFromEnv(SecretEnv(name)+PreviousSecretEnvSuffix, cfg.Previous, lookupEnv)
		if err != nil {
			return nil, fmt.Errorf("sources: %s: %w", name, err)
		}
		switch {
		case previous == "":
		case len(previous) < 16:
			return nil, fmt.Errorf("sources: %s: previous_secret must be at least 16 bytes (or unset, once the tool signs with the new one)", name)
		case previous == secret:
			return nil, fmt.Errorf("sources: %s: previous_secret is the secret itself: put the new secret in secret (%s)", name, SecretEnv(name))
		}
		s.secrets = [][]byte{[]byte(secret)}
		if previous != "" {
			s.secrets = append(s.secrets, []byte(previous))
		}
		if rl := cfg.RateLimit; rl != nil {
			if rl.PerSecond <= 0 || rl.Burst < 0 {
				return nil, fmt.Errorf("sources: %s: rate_limit needs per_second > 0 and burst >= 0 (0: per_second rounded up)", name)
			}
			s.RateLimit = *rl
			if s.RateLimit.Burst == 0 {
				s.RateLimit.Burst = int(math.Ceil(rl.PerSecond))
			}
		}
		out[name] = s
	}
	return out, nil
}

// SecretFromEnv resolves a secret: the variable env, else the file the
// variable env_FILE names (Docker's convention for mounted secrets), else
// fallback. Errors never carry a secret.
func SecretFromEnv(env, fallback string, lookupEnv func(string) (string, bool)) (string, error) {
	value, set := lookupEnv(env)
	path, fileSet := lookupEnv(env + SecretFileEnvSuffix)
	switch {
	case set && fileSet:
		return "", fmt.Errorf("set %s or %s, not both", env, env+SecretFileEnvSuffix)
	case set:
		return value, nil
	case fileSet:
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("%s: %w", env+SecretFileEnvSuffix, err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil // as written by echo or an editor
	}
	return fallback, nil
}

// distinctSecretEnvs refuses source names whose secret variables would be
// taken for one another's: a-b and a_b share one, and the secret of a source
// named x_previous would be the previous secret of x.
func distinctSecretEnvs(names []string) error {
	byEnv := map[string]string{}
	for _, name := range names {
		env := SecretEnv(name)
		if other, taken := byEnv[env]; taken {
			return fmt.Errorf("sources: %s and %s would share the variable %s: rename one", other, name, env)
		}
		byEnv[env] = name
	}
	for _, name := range names {
		for _, suffix := range []string{PreviousSecretEnvSuffix, SecretFileEnvSuffix, PreviousSecretEnvSuffix + SecretFileEnvSuffix} {
			if other, taken := byEnv[SecretEnv(name)+suffix]; taken {
				return fmt.Errorf("sources: %s would take %s's %s variable for its own secret: rename it", other, name, suffix)
			}
		}
	}
	return nil
}

// SecretEnv is the environment variable that overrides a source's secret.
func SecretEnv(source string) string {
	return SecretEnvPrefix + strings.ToUpper(strings.ReplaceAll(source, "-", "_"))
}

// Sign returns the X-Rampart-Signature value for body at time t.
func Sign(secret []byte, t time.Time, body []byte) string {
	return "t=" + strconv.FormatInt(t.Unix(), 10) + ",v1=" + hex.EncodeToString(mac(secret, t.Unix(), body))
}

func mac(secret []byte, ts int64, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(strconv.FormatInt(ts, 10)))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// signature is a parsed X-Rampart-Signature header.
type signature struct {
	ts  int64
	v1s [][]byte
}

func parseSignature(header string) (signature, bool) {
	var sig signature
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return signature{}, false
		}
		switch k {
		case "t":
			ts, err := strconv.ParseInt(v, 10, 64)
			if err != nil || ts <= 0 {
				return signature{}, false
			}
			sig.ts = ts
		case "v1":
			b, err := hex.DecodeString(v)
			if err != nil || len(b) != sha256.Size {
				return signature{}, false
			}
			sig.v1s = append(sig.v1s, b)
		}
		// Other schemes (v0, v2…) are ignored, so senders can add one during a
		// migration without breaking verification.
	}
	return sig, sig.ts != 0 && len(sig.v1s) > 0
}

// verifyHMAC checks a signature header against the body, signed with one of the
// secrets. It returns the signature's replay key and which secret signed it.
func verifyHMAC(secrets [][]byte, header string, body []byte, now time.Time, window time.Duration) (string, int, *Error) {
	if header == "" {
		return "", 0, errUnauthorized("missing_signature", "missing "+SignatureHeader+" header")
	}
	sig, ok := parseSignature(header)
	if !ok {
		return "", 0, errUnauthorized("malformed_signature", SignatureHeader+" must be t=<unix seconds>,v1=<hex HMAC-SHA256>")
	}
	age := now.Sub(time.Unix(sig.ts, 0))
	if age > window || age < -window {
		return "", 0, errUnauthorized("stale_signature", fmt.Sprintf("signature timestamp is outside the %s window", window))
	}
	for i, secret := range secrets {
		want := mac(secret, sig.ts, body)
		for _, v1 := range sig.v1s {
			if hmac.Equal(v1, want) {
				return strconv.FormatInt(sig.ts, 10) + ":" + hex.EncodeToString(v1), i, nil
			}
		}
	}
	return "", 0, errUnauthorized("invalid_signature", "signature does not match the body")
}

// verifyBearer checks an Authorization: Bearer header against each secret in
// constant time, and says which one it is.
func verifyBearer(secrets [][]byte, header string) (int, *Error) {
	token, ok := strings.CutPrefix(header, "Bearer ")
	if header == "" || !ok {
		return 0, errUnauthorized("missing_token", "missing Authorization: Bearer header")
	}
	for i, secret := range secrets {
		if subtle.ConstantTimeCompare([]byte(strings.TrimSpace(token)), secret) == 1 {
			return i, nil
		}
	}
	return 0, errUnauthorized("invalid_token", "bearer token is not valid for this source")
}

// SourceInfo is what may be shown of a source: everything but its secret.
type SourceInfo struct {
	Name   string `json:"name"`
	Format string `json:"format"`
	Auth   string `json:"auth"`
	// RateLimit is the source's bound, none when unbounded.
	RateLimit *RateLimit `json:"rate_limit,omitempty"`
	// PreviousSecret says a secret from before a rotation is still accepted.
	PreviousSecret bool `json:"previous_secret,omitempty"`
}

// Sources lists the pipeline's sources by name.
func (p *Pipeline) Sources() []SourceInfo {
	set := p.sources.Load()
	out := make([]SourceInfo, 0, len(set.byName))
	for _, s := range set.byName {
		info := SourceInfo{Name: s.Name, Format: s.Format, Auth: s.Auth, PreviousSecret: len(s.secrets) > 1}
		if s.RateLimit.PerSecond > 0 {
			rl := s.RateLimit
			info.RateLimit = &rl
		}
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b SourceInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}
