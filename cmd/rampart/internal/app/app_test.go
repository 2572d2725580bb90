package app

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/rampart-soar/rampart/cmd/rampart/internal/codec"
	"github.com/rampart-soar/rampart/cmd/rampart/internal/embedded"
	"github.com/rampart-soar/rampart/integrations"
	"github.com/rampart-soar/rampart/schemas"
	"github.com/rampart-soar/rampart/server"
	"github.com/rampart-soar/rampart/server/telemetry"
	"github.com/rampart-soar/rampart/store"
	"github.com/rampart-soar/rampart/store/storetest"
	"github.com/rampart-soar/rampart/workflows"
)

func TestPrepareTemporalIsIdempotent(t *testing.T) {
	ctx := context.Background()
	address := testTemporal(t)
	c, err := DialTemporal(ctx, address, "default", testKeys(t), nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cfg := &Config{Namespace: "default", Retention: 72 * time.Hour}
	for range 2 { // every boot runs it
		if err := PrepareTemporal(ctx, c, cfg); err != nil {
			t.Fatal(err)
		}
	}
	ns, err := c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	if got := ns.GetConfig().GetWorkflowExecutionRetentionTtl().AsDuration(); got != 72*time.Hour {
		t.Fatalf("retention = %v, want 72h (the SQLite default is 24h)", got)
	}
	sas, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range workflows.SearchAttributeKeys() {
		if typ, ok := sas.GetCustomAttributes()[key.GetName()]; !ok || typ != key.GetValueType() {
			t.Errorf("search attribute %s: %v %v", key.GetName(), typ, ok)
		}
	}
	// A namespace that does not exist yet is registered with the retention, and
	// its search attributes are accepted as soon as PrepareTemporal returns: the
	// server's caches are not forced to re-read them on every use.
	cfg.Namespace = "rampart-new"
	if err := PrepareTemporal(ctx, c, cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: "rampart-new"}); err != nil {
		t.Fatal(err)
	}
	startWithSearchAttributes(t, address, "rampart-new")
}

// startWithSearchAttributes starts a workflow carrying every search attribute
// the workflows use; the server refuses one it does not know.
func startWithSearchAttributes(t *testing.T, address, namespace string) {
	t.Helper()
	ctx := context.Background()
	c, err := DialTemporal(ctx, address, namespace, testKeys(t), nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: "search-attributes", TaskQueue: "nobody-polls",
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.SearchSource.ValueSet("crowdstrike"), workflows.SearchSeverity.ValueSet(4)),
	}, "AnyWorkflow")
	if err != nil {
		t.Fatalf("start with search attributes in %s: %v", namespace, err)
	}
}

func TestNewDataDirHasSearchAttributes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Temporal server")
	}
	srv, err := embedded.Start(context.Background(), embedded.Options{
		DataDir: t.TempDir(), Namespace: "default", SearchAttributes: searchAttributeTypes(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	startWithSearchAttributes(t, srv.FrontendAddress(), "default")
}

func TestLoadPolicy(t *testing.T) {
	var c Config
	if err := c.LoadPolicy(filepath.Join("..", "..", "..", "..", "examples", "rampart.yaml")); err != nil {
		t.Fatal(err)
	}
	c.Namespace, c.TaskQueue = "default", "rampart"
	if c.DedupWindow != 10*time.Minute || c.Retention != 168*time.Hour || !strings.Contains(c.ContainWhen, "enrich.ioc_hits") {
		t.Fatalf("config = %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for body, want := range map[string]string{
		"dedup_window: soon\n":                        "dedup_window",
		"retention: -1h\n":                            "retention",
		"decide: {contain_when: 'enrich.nope > 1'}\n": "nope",
		"retention: 1h\n":                             "at least 24h",
		"decide: [\n":                                 "config",
	} {
		path := filepath.Join(dir, "c.yaml")
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		c := Config{Namespace: "default", TaskQueue: "q"}
		err := c.LoadPolicy(path)
		if err == nil {
			err = c.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", body, err, want)
		}
	}
}

func TestLoadReferenceFiles(t *testing.T) {
	assets, err := LoadAssets(filepath.Join("..", "..", "..", "..", "examples", "assets.yaml"))
	if err != nil || len(assets) < 4 {
		t.Fatalf("assets: %d, %v", len(assets), err)
	}
	iocs, err := LoadIOCs(filepath.Join("..", "..", "..", "..", "examples", "iocs.csv"))
	if err != nil || len(iocs) < 4 {
		t.Fatalf("iocs: %d, %v", len(iocs), err)
	}
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		_ = os.WriteFile(p, []byte(body), 0o600)
		return p
	}
	if _, err := LoadAssets(write("a.yaml", "assets: [{ip: 10.0.0.1}]\n")); err == nil {
		t.Error("asset without hostname accepted")
	}
	for body, want := range map[string]string{
		"assets: [{hostname: ws-1, criticality: severe}]\n":              `entry 1: criticality "severe"`,
		"assets: [{hostname: ws-1}, {hostname: ws-2, ip: 10.0.0.256}]\n": `entry 2: ip "10.0.0.256" is not an IP address`,
	} {
		if _, err := LoadAssets(write("b.yaml", body)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", body, err, want)
		}
	}

	// A CMDB export: columns in any order, device_uid for device_id, several tags.
	csvAssets, err := LoadAssets(write("cmdb.csv", "Hostname,device_uid,ip,criticality,owner,tags,protected\n"+
		"DC-01,ABC123,10.0.0.2,critical,it-ops,domain-controller;tier0,true\n"+
		"ws-7,,10.0.0.7,,ana,,\n"))
	if err != nil {
		t.Fatal(err)
	}
	dc := csvAssets[0]
	if len(csvAssets) != 2 || dc.Hostname != "DC-01" || dc.DeviceID != "ABC123" || dc.IP != "10.0.0.2" || dc.Criticality != "critical" ||
		dc.Owner != "it-ops" || !dc.Protected || strings.Join(dc.Tags(), ",") != "domain-controller,tier0" || csvAssets[1].Protected {
		t.Fatalf("csv assets = %+v", csvAssets)
	}
	week, err := LoadAssets(filepath.Join("..", "..", "..", "..", "..", "shared", "scenarios", "week1.assets.csv"))
	if err == nil && len(week) != 348 {
		t.Errorf("scenario inventory: %d assets", len(week))
	}
	weekIOCs, err := LoadIOCs(filepath.Join("..", "..", "..", "..", "..", "shared", "scenarios", "week1.iocs.csv"))
	if err == nil && len(weekIOCs) != 53 || err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("scenario IOC list: %d indicators, %v", len(weekIOCs), err)
	}
	for name, body := range map[string]string{
		"no hostname column": "ip,owner\n10.0.0.1,ana\n",
		"empty hostname":     "hostname,ip\n,10.0.0.1\n",
		"criticality":        "hostname,criticality\nws-1,severe\n",
		"protected":          "hostname,protected\nws-1,maybe\n",
		"ip":                 "hostname,ip\nws-1,10.0.0.1/24\n",
	} {
		if _, err := LoadAssets(write("bad.csv", body)); err == nil || (name != "no hostname column" && !strings.Contains(err.Error(), "line 2")) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := LoadIOCs(write("i.csv", "type,value\nbitcoin,abc\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("unknown IOC type: %v", err)
	}
	// An indicator that could never match is named with its line, not loaded to sit idle.
	if _, err := LoadIOCs(write("h.csv", "type,value\nipv4,198.51.100.7\nmd5,8f14e45fceea167a\n")); err == nil ||
		!strings.Contains(err.Error(), `line 3: md5 "8f14e45fceea167a": not a 32-character hex digest`) {
		t.Errorf("truncated hash: %v", err)
	}
	if _, err := LoadIOCs(write("j.csv", "kind,value\n")); err == nil {
		t.Error("IOC file without a type column accepted")
	}
	if _, err := LoadIOCs(write("k.csv", "type,value,confidence\nipv4,1.2.3.4,900\n")); err == nil {
		t.Error("confidence 900 accepted")
	}
	// A host listed twice is refused, with both places: one record may say
	// protected and the other not. Lines are the file's, blank ones counted.
	if _, err := LoadAssets(write("d.yaml", "assets: [{hostname: dc-01, protected: true}, {hostname: ws-1}, {hostname: DC-01}]\n")); err == nil ||
		!strings.Contains(err.Error(), `entry 3: hostname "dc-01" is listed twice (first at entry 1)`) {
		t.Errorf("a host twice in YAML: %v", err)
	}
	if _, err := LoadAssets(write("d.csv", "hostname,protected\ndc-01,true\n\nws-1,\"false\"\nDC-01,false\n")); err == nil ||
		!strings.Contains(err.Error(), `line 5: hostname "dc-01" is listed twice (first at line 2)`) {
		t.Errorf("a host twice in CSV: %v", err)
	}
}

func TestLoadReplacesTheListsGiven(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := OpenStore(ctx, filepath.Join(dir, "rampart.db"), true)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var logged bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logged, nil))
	metrics := telemetry.NewMetrics()
	lastLoad := func() string {
		var e telemetry.Exposition
		metrics.Write(&e)
		return e.String()
	}
	load := func(assets, iocs string) {
		t.Helper()
		ref, err := ReadReferenceData(assets, iocs)
		if err != nil {
			t.Fatal(err)
		}
		if err := ref.Load(ctx, st, metrics, log); err != nil {
			t.Fatal(err)
		}
	}
	hash := strings.Repeat("ef", 32)
	hits := func() int {
		t.Helper()
		m, err := st.MatchIOCs(ctx, []schemas.Entity{{Kind: schemas.EntityHash, Value: hash}, {Kind: schemas.EntityIP, Value: "203.0.113.9"}})
		if err != nil {
			t.Fatal(err)
		}
		return len(m)
	}
	load(write("a.yaml", "assets: [{hostname: ws-1}, {hostname: ws-2}]\n"), write("i.csv", "type,value\nsha256,"+hash+"\nipv4,203.0.113.9\n"))
	if hits() != 2 {
		t.Fatalf("first load: %d hits", hits())
	}
	// The hash turned out a false positive and left the file: a restart stops it matching.
	load("", write("i.csv", "type,value\nipv4,203.0.113.9\n"))
	if hits() != 1 || !strings.Contains(logged.String(), "msg=\"IOC list loaded\" iocs=1 removed=1") {
		t.Fatalf("after the hash left the list: %d hits; log:\n%s", hits(), logged.String())
	}
	// No file named leaves a list as it is; a file names the whole list.
	if _, err := st.FindAsset(ctx, "", "ws-2", ""); err != nil {
		t.Fatalf("the inventory changed when no inventory file was given: %v", err)
	}
	load(write("a.yaml", "assets: [{hostname: ws-1}]\n"), "")
	if _, err := st.FindAsset(ctx, "", "ws-2", ""); !errors.Is(err, store.ErrNotFound) || hits() != 1 {
		t.Fatalf("ws-2 left the inventory: %v; %d hits", err, hits())
	}
	// A reload (SIGHUP) of a file with a mistake changes neither list, even when
	// the other file is good.
	good := write("a2.yaml", "assets: [{hostname: ws-3}]\n")
	if !strings.Contains(lastLoad(), `rampart_last_reload_successful{files="reference_data"} 1`+"\n") ||
		!strings.Contains(lastLoad(), `rampart_last_reload_success_timestamp_seconds{files="reference_data"} `) {
		t.Fatalf("the loads are not reported:\n%s", lastLoad())
	}
	if _, err := ReloadReferenceData(ctx, st, good, write("i.csv", "type,value\nipv4,10.0.0.0/8\n"), metrics, log); err == nil ||
		!strings.Contains(logged.String(), "reference data not reloaded") {
		t.Fatalf("a bad list reloaded: %v; log:\n%s", err, logged.String())
	}
	if !strings.Contains(lastLoad(), `rampart_last_reload_successful{files="reference_data"} 0`+"\n") {
		t.Fatalf("the refused reload is not reported:\n%s", lastLoad())
	}
	if _, err := st.FindAsset(ctx, "", "ws-3", ""); !errors.Is(err, store.ErrNotFound) || hits() != 1 {
		t.Fatalf("a refused reload changed the lists: ws-3 %v; %d hits", err, hits())
	}
	if _, err := ReloadReferenceData(ctx, st, good, "", metrics, log); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(lastLoad(), `rampart_last_reload_successful{files="reference_data"} 1`+"\n") {
		t.Fatalf("the good reload is not reported:\n%s", lastLoad())
	}
	if _, err := st.FindAsset(ctx, "", "ws-3", ""); err != nil || hits() != 1 {
		t.Fatalf("after a good reload: ws-3 %v; %d hits", err, hits())
	}
}

func TestStartDevOnALockedDataDirFailsCleanly(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Temporal server")
	}
	dir := t.TempDir()
	srv, err := embedded.Start(context.Background(), embedded.Options{DataDir: dir, Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	cfg := Config{DataDir: dir, Namespace: "default", TaskQueue: "q", Listen: "127.0.0.1:0", SourcesFile: exampleSources}
	if err := cfg.LoadPolicy(""); err != nil {
		t.Fatal(err)
	}
	d, err := StartDev(context.Background(), DevOptions{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if !errors.Is(err, embedded.ErrDataDirLocked) || d != nil {
		t.Fatalf("StartDev = %v, %v; want ErrDataDirLocked", d, err)
	}
}

const exampleSources = "../../../../examples/sources.yaml"

// A mistake in a file the boot reads stops it before Temporal starts: the
// operator reads the file and line at once, not after a server's start and stop.
func TestStartDevChecksItsFilesFirst(t *testing.T) {
	dir := t.TempDir()
	badIOCs := filepath.Join(dir, "iocs.csv")
	if err := os.WriteFile(badIOCs, []byte("type,value\ndomain,https://evil.example/login\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	badSources := filepath.Join(dir, "sources.yaml")
	if err := os.WriteFile(badSources, []byte("sources:\n  ocsf: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, iocs, sources, want string
	}{
		{"IOC list", badIOCs, exampleSources, badIOCs + " line 2: domain"},
		{"sources", "", badSources, badSources + ": sources: yaml"},
	} {
		dataDir := filepath.Join(dir, "data-"+strings.ReplaceAll(c.name, " ", "-"))
		cfg := Config{DataDir: dataDir, Namespace: "default", TaskQueue: "q", Listen: "127.0.0.1:0", IOCsFile: c.iocs, SourcesFile: c.sources}
		if err := cfg.LoadPolicy(""); err != nil {
			t.Fatal(err)
		}
		d, err := StartDev(context.Background(), DevOptions{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err == nil || d != nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%s: StartDev = %v, %v; want an error naming %q", c.name, d, err, c.want)
		}
		if _, err := os.Stat(dataDir); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: the data dir was made (%v): something started before the files were read", c.name, err)
		}
	}
}

// testKeys is a keyring with a fresh key.
func testKeys(t *testing.T) *codec.Keyring {
	t.Helper()
	key, err := codec.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	k, err := codec.NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestLoadPayloadKeys(t *testing.T) {
	key, err := codec.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	older, _ := codec.NewKey()
	dir := t.TempDir()
	file := filepath.Join(dir, "keys")
	if err := os.WriteFile(file, []byte(codec.EncodeKey(older)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		cfg     Config
		dev     bool
		want    string // current key id
		wantErr string
	}{
		"env keys, first current": {cfg: Config{PayloadKeys: integrations.NewSecret(codec.EncodeKey(key) + "," + codec.EncodeKey(older))}, want: codec.KeyID(key)},
		"env wins over the file":  {cfg: Config{PayloadKeys: integrations.NewSecret(codec.EncodeKey(key)), PayloadKeyFile: file}, want: codec.KeyID(key)},
		"key file":                {cfg: Config{PayloadKeyFile: file}, want: codec.KeyID(older)},
		"bad env key":             {cfg: Config{PayloadKeys: integrations.NewSecret("c2hvcnQ=")}, wantErr: "RAMPART_PAYLOAD_KEY: payload key 1 is 5 bytes"},
		"missing file, server":    {cfg: Config{PayloadKeyFile: filepath.Join(dir, "absent")}, wantErr: "no such file"},
		"nothing, server":         {wantErr: "no payload encryption key"},
		"nothing, dev":            {cfg: Config{DataDir: dir}, dev: true},
	} {
		t.Run(name, func(t *testing.T) {
			err := tc.cfg.LoadPayloadKeys(tc.dev)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.want != "" && tc.cfg.Payloads.CurrentKeyID() != tc.want {
				t.Fatalf("current key %s, want %s", tc.cfg.Payloads.CurrentKeyID(), tc.want)
			}
		})
	}
	// dev made its key in the data dir, and keeps it across restarts.
	first, again := &Config{DataDir: dir}, &Config{DataDir: dir}
	if err := first.LoadPayloadKeys(true); err != nil {
		t.Fatal(err)
	}
	if err := again.LoadPayloadKeys(true); err != nil || again.Payloads.CurrentKeyID() != first.Payloads.CurrentKeyID() {
		t.Fatalf("dev key changed across restarts (%v)", err)
	}
	if _, err := os.Stat(filepath.Join(dir, PayloadKeyFileName)); err != nil {
		t.Fatal(err)
	}
}

func TestPlaybookSecrets(t *testing.T) {
	file := filepath.Join(t.TempDir(), "vt.key")
	if err := os.WriteFile(file, []byte("vt-key-one\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	secrets := PlaybookSecrets([]string{"RAMPART_SECRET_API_TOKEN=token-from-env", "RAMPART_SECRET_VT_KEY_FILE=" + file,
		"RAMPART_SECRET_EMPTY=", "RAMPART_SECRET_BOTH=x", "RAMPART_SECRET_BOTH_FILE=" + file, "RAMPART_SECRET_GONE_FILE=" + file + ".missing"})
	check := func(name, want, wantErr string) {
		t.Helper()
		got, err := secrets(name)
		if got != want || (err == nil) != (wantErr == "") || (err != nil && (!strings.Contains(err.Error(), wantErr) || strings.Contains(err.Error(), "vt-key"))) {
			t.Errorf("secrets(%q) = %q, %v; want %q, %q", name, got, err, want, wantErr)
		}
	}
	check("api_token", "token-from-env", "")
	check("vt_key", "vt-key-one", "")
	check("empty", "", "")
	check("unset", "", "")
	check("both", "", "set RAMPART_SECRET_BOTH or RAMPART_SECRET_BOTH_FILE, not both")
	check("gone", "", "RAMPART_SECRET_GONE_FILE: open")
	// The file is read at each use: a rotated secret is used from the next action on.
	if err := os.WriteFile(file, []byte("vt-key-two"), 0o600); err != nil {
		t.Fatal(err)
	}
	check("vt_key", "vt-key-two", "")
}

// TestReloadAPITokens rotates, revokes and spoils token files under a server:
// each reload does what the files say, except leave the API without a token.
func TestReloadAPITokens(t *testing.T) {
	dir := t.TempDir()
	mount := func(name, token string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(token+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const ana, bo, anaRotated = "ana-token-0123456789abcdef0123456789", "bo-token-0123456789abcdef0123456789ab", "ana-rotated-0123456789abcdef012345678"
	environ := []string{"RAMPART_API_TOKEN_ANA_FILE=" + mount("ana", ana), "RAMPART_API_TOKEN_BO_FILE=" + mount("bo", bo)}
	cfg := &Config{Listen: "127.0.0.1:8080"}
	var err error
	if cfg.APITokens, err = APITokensFromEnv(environ); err != nil {
		t.Fatal(err)
	}
	tokens, err := cfg.APIAuth()
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(server.Options{Alerts: storetest.SQLite(t), Tokens: tokens})
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	allowed := func(token string) bool {
		t.Helper()
		req := httptest.NewRequest(http.MethodGet, "/api/v1/alerts", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)
		return rec.Code == http.StatusOK
	}

	mount("ana", anaRotated)
	mount("bo", "")
	if err := ReloadAPITokens(srv, cfg.Listen, environ, nil, log); err != nil {
		t.Fatal(err)
	}
	if allowed(ana) || !allowed(anaRotated) || allowed(bo) {
		t.Fatal("after rotating ana's token and emptying bo's file")
	}
	if !strings.Contains(logs.String(), `msg="API tokens reloaded" holders=1 added=[] removed=[bo] new_tokens=[ana]`) {
		t.Fatalf("log:\n%s", logs.String())
	}
	for name, env := range map[string][]string{
		"no token left":  {"RAMPART_API_TOKEN_ANA_FILE=" + mount("ana", "")},
		"a missing file": {"RAMPART_API_TOKEN_ANA_FILE=" + filepath.Join(dir, "gone")},
		"a weak token":   {"RAMPART_API_TOKEN_ANA_FILE=" + mount("ana", "short")},
	} {
		if err := ReloadAPITokens(srv, cfg.Listen, env, nil, log); err == nil {
			t.Errorf("%s: reloaded", name)
		}
		if !allowed(anaRotated) || allowed("") {
			t.Fatalf("%s: the tokens in force changed", name)
		}
	}
	if strings.Contains(logs.String(), "token-0123") || strings.Contains(logs.String(), "rotated-0123") || !strings.Contains(logs.String(), "API tokens not reloaded") {
		t.Fatalf("log:\n%s", logs.String())
	}
}

func TestAPIAuth(t *testing.T) {
	// A token may come from a file a _FILE variable names, a mounted secret.
	tokenFile := filepath.Join(t.TempDir(), "ci.token")
	if err := os.WriteFile(tokenFile, []byte("ci-token-0123456789abcdef0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tokens, err := APITokensFromEnv([]string{
		"RAMPART_API_TOKEN_ANA=ana-token-0123456789abcdef0123456789",
		"RAMPART_API_TOKEN_TIER2_BO=bo-token-0123456789abcdef0123456789ab",
		"RAMPART_API_TOKEN_EMPTY=",
		"RAMPART_API_TOKEN=the-cli-side-not-a-holder-0123456789",
		"RAMPART_API_TOKEN_CI_FILE=" + tokenFile,
		"RAMPART_API_TOKEN_FILE=" + tokenFile,
		"HOME=/root",
	})
	if err != nil || len(tokens) != 3 || tokens["ana"].Reveal() == "" || tokens["tier2_bo"].Reveal() == "" ||
		tokens["ci"].Reveal() != "ci-token-0123456789abcdef0123456789" || tokens["ci_file"].Reveal() != "" {
		t.Fatalf("tokens from the environment: %v, %v", tokens, err)
	}
	for _, environ := range [][]string{
		{"RAMPART_API_TOKEN_CI=ci-token-0123456789abcdef0123456789", "RAMPART_API_TOKEN_CI_FILE=" + tokenFile},
		{"RAMPART_API_TOKEN_CI_FILE=" + tokenFile + ".missing"},
	} {
		if got, err := APITokensFromEnv(environ); err == nil || strings.Contains(err.Error(), "ci-token") {
			t.Errorf("%q: %v, %v; want an error without the token", environ, got, err)
		}
	}
	for _, c := range []struct {
		listen string
		tokens map[string]integrations.Secret
		ok     bool
	}{
		{"127.0.0.1:8080", nil, true},
		{"[::1]:8080", nil, true},
		{"localhost:8080", nil, true},
		{"0.0.0.0:8080", nil, false},
		{":8080", nil, false},
		{"10.1.2.3:8080", nil, false},
		{"0.0.0.0:8080", tokens, true},
		{"127.0.0.1:8080", map[string]integrations.Secret{"ana": integrations.NewSecret("short")}, false},
	} {
		cfg := Config{Listen: c.listen, APITokens: c.tokens}
		auth, err := cfg.APIAuth()
		if (err == nil) != c.ok {
			t.Errorf("listen %s with %d tokens: err = %v, want ok=%v", c.listen, len(c.tokens), err, c.ok)
		}
		if err == nil && auth.Len() != len(c.tokens) {
			t.Errorf("listen %s: %d tokens, want %d", c.listen, auth.Len(), len(c.tokens))
		}
		if err != nil && strings.Contains(err.Error(), "ana-token") {
			t.Errorf("the error shows a token: %v", err)
		}
	}
}

func TestPortTakenNamesTheFlag(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, err = net.Listen("tcp", l.Addr().String())
	if got := PortTaken(err, "--listen"); got == nil || !strings.Contains(got.Error(), "--listen picks another") || !errors.Is(got, err) {
		t.Fatalf("a taken port: %v", got)
	}
	other := errors.New("listen tcp: address 127.0.0.1:x: invalid port")
	if got := PortTaken(other, "--listen"); got != other {
		t.Fatalf("another failure: %v", got)
	}
}

// TestWorkerWaitsForTheDatabase: a worker whose database does not answer yet
// waits, saying so, and opens (migrated) once it answers; it gives up only when
// told to stop.
func TestWorkerWaitsForTheDatabase(t *testing.T) {
	pg, err := url.Parse(storetest.PostgresDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	// The database will answer at addr, through a proxy started late.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	late := *pg
	late.Host = addr
	var logs strings.Builder
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	}), nil))
	said := func() string {
		mu.Lock()
		defer mu.Unlock()
		return logs.String()
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	opened := make(chan error, 1)
	var st *store.Store
	go func() {
		var err error
		st, err = OpenWorkerStore(ctx, late.String(), true, log)
		opened <- err
	}()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(said(), "the database does not answer") {
		if time.Now().After(deadline) {
			t.Fatalf("no word of the wait: %s", said())
		}
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case err := <-opened:
		t.Fatalf("opened without a database: %v", err)
	default:
	}
	proxy(t, addr, pg.Host)
	select {
	case err := <-opened:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("the worker did not open once the database answered")
	}
	defer st.Close()
	if _, _, err := st.ListAlerts(ctx, store.AlertFilter{Limit: 1}); err != nil {
		t.Fatalf("the schema was not applied: %v", err)
	}

	// Told to stop while it waits, it gives up and says why.
	nobody, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nobody.Close()
	stopped, stop := context.WithTimeout(context.Background(), 2*time.Second)
	defer stop()
	_, err = OpenWorkerStore(stopped, "postgres://postgres@"+nobody.Addr().String()+"/none?sslmode=disable&connect_timeout=1", false, log)
	if err == nil || !strings.Contains(err.Error(), "gave up waiting for the database") {
		t.Fatalf("stopped while waiting: %v", err)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// proxy forwards connections to from to the address to, until the test ends.
func proxy(t *testing.T, from, to string) {
	t.Helper()
	l, err := net.Listen("tcp", from)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", to)
			if err != nil {
				in.Close()
				continue
			}
			go func() { _, _ = io.Copy(out, in); out.Close() }()
			go func() { _, _ = io.Copy(in, out); in.Close() }()
		}
	}()
}
