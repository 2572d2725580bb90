// Package embedded runs a real Temporal server (go.temporal.io/server) inside the
// rampart process, backed by a SQLite file, for `rampart dev` and the end-to-end tests.
//
// It is modelled on the Temporal CLI's dev server and applies the measured settings
// from docs/temporal-notes: WAL pragmas keyed without "_", one connection, one task
// queue partition and a raised transfer-processor poll rate. Only cmd/rampart and the
// end-to-end tests import this package: it links the whole Temporal server.
//
// It may import the Temporal server and SDK; nothing from the rest of Rampart.
package embedded

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/membership/static"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/primitives"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"
)

const (
	host        = "127.0.0.1"
	clusterName = "active"
	// DBFileName is the Temporal database inside the data dir.
	DBFileName   = "temporal.db"
	lockFileName = "temporal.lock"
)

// Options configure the embedded server.
type Options struct {
	// DataDir holds the SQLite file and the lock file. Empty means in-memory (tests).
	DataDir string
	// Namespace is created at first boot.
	Namespace string
	// FrontendPort is the gRPC port clients dial; 0 picks a free one.
	FrontendPort int
	// LogLevel of the server's own logger: debug, info, warn or error.
	LogLevel string
	// SearchAttributes are created with the namespace, so a new data dir has them
	// before the server starts and its caches load them.
	SearchAttributes map[string]enumspb.IndexedValueType
}

// Server is a running embedded Temporal server.
type Server struct {
	srv      temporal.Server
	frontend string
	lock     *os.File
}

// ErrDataDirLocked means another process owns the data dir.
var ErrDataDirLocked = errors.New("data dir is in use by another rampart process")

// Start starts the server and returns once its frontend accepts connections.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.Namespace == "" {
		return nil, errors.New("embedded temporal: namespace is required")
	}
	if opts.LogLevel == "" {
		opts.LogLevel = "error"
	}
	s := &Server{}
	sqlCfg, err := s.prepareStorage(opts)
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(4, opts.FrontendPort)
	if err != nil {
		s.unlock()
		return nil, err
	}
	s.frontend = net.JoinHostPort(host, strconv.Itoa(ports[0]))

	ns, err := sqliteschema.NewNamespaceConfig(clusterName, opts.Namespace, false, opts.SearchAttributes)
	if err != nil {
		s.unlock()
		return nil, fmt.Errorf("embedded temporal: namespace config: %w", err)
	}
	if err := sqliteschema.CreateNamespaces(sqlCfg, ns); err != nil {
		s.unlock()
		return nil, fmt.Errorf("embedded temporal: create namespace: %w", err)
	}

	cfg := serverConfig(sqlCfg, ports)
	logger := log.NewZapLogger(log.BuildZapLogger(log.Config{Level: opts.LogLevel, Format: "json"}))
	srv, err := temporal.NewServer(
		temporal.WithConfig(cfg),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithStaticHosts(map[primitives.ServiceName]static.Hosts{
			primitives.FrontendService: static.SingleLocalHost(net.JoinHostPort(host, strconv.Itoa(ports[0]))),
			primitives.HistoryService:  static.SingleLocalHost(net.JoinHostPort(host, strconv.Itoa(ports[1]))),
			primitives.MatchingService: static.SingleLocalHost(net.JoinHostPort(host, strconv.Itoa(ports[2]))),
			primitives.WorkerService:   static.SingleLocalHost(net.JoinHostPort(host, strconv.Itoa(ports[3]))),
		}),
		temporal.WithLogger(logger),
		temporal.WithAuthorizer(authorization.NewNoopAuthorizer()),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper { return authorization.NewNoopClaimMapper() }),
		temporal.WithDynamicConfigClient(dynamicConfig()),
	)
	if err != nil {
		s.unlock()
		return nil, fmt.Errorf("embedded temporal: new server: %w", err)
	}
	if err := srv.Start(); err != nil {
		s.unlock()
		return nil, fmt.Errorf("embedded temporal: start: %w", err)
	}
	s.srv = srv
	if err := waitForPort(ctx, s.frontend, 30*time.Second); err != nil {
		_ = s.Stop()
		return nil, err
	}
	return s, nil
}

// FrontendAddress is the host:port a Temporal client dials.
func (s *Server) FrontendAddress() string { return s.frontend }

// Stop stops the server and releases the data dir.
func (s *Server) Stop() error {
	var err error
	if s.srv != nil {
		err = s.srv.Stop()
		s.srv = nil
	}
	s.unlock()
	return err
}

// prepareStorage locks the data dir and creates the schema on first boot.
func (s *Server) prepareStorage(opts Options) (*config.SQL, error) {
	sqlCfg := &config.SQL{PluginName: sqliteplugin.PluginName, MaxConns: 1, MaxIdleConns: 1}
	if opts.DataDir == "" {
		sqlCfg.ConnectAttributes = map[string]string{"mode": "memory", "cache": "shared"}
		sqlCfg.DatabaseName = fmt.Sprintf("rampart-%d", time.Now().UnixNano())
		if err := sqliteschema.SetupSchema(sqlCfg); err != nil {
			return nil, fmt.Errorf("embedded temporal: schema: %w", err)
		}
		return sqlCfg, nil
	}
	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("embedded temporal: data dir: %w", err)
	}
	if err := s.lockDir(opts.DataDir); err != nil {
		return nil, err
	}
	dbFile := filepath.Join(opts.DataDir, DBFileName)
	// Pragma keys carry no leading "_": the plugin adds the prefix itself, and a
	// prefixed key is silently ignored (temporalio/cli#681).
	sqlCfg.ConnectAttributes = map[string]string{
		"mode":         "rwc",
		"journal_mode": "wal",
		"synchronous":  "1",
		"busy_timeout": "10000",
	}
	sqlCfg.DatabaseName = dbFile
	if _, err := os.Stat(dbFile); errors.Is(err, os.ErrNotExist) {
		if err := sqliteschema.SetupSchema(sqlCfg); err != nil {
			s.unlock()
			_ = os.Remove(dbFile)
			return nil, fmt.Errorf("embedded temporal: schema: %w", err)
		}
	}
	return sqlCfg, nil
}

// lockDir takes an exclusive advisory lock so two processes never share one SQLite
// file: Temporal has no protection of its own against a second writer.
func (s *Server) lockDir(dir string) error {
	f, err := os.OpenFile(filepath.Join(dir, lockFileName), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("embedded temporal: lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return fmt.Errorf("%w: %s", ErrDataDirLocked, dir)
	}
	_ = f.Truncate(0)
	_, _ = fmt.Fprintf(f, "%d\n", os.Getpid())
	s.lock = f
	return nil
}

func (s *Server) unlock() {
	if s.lock == nil {
		return
	}
	_ = syscall.Flock(int(s.lock.Fd()), syscall.LOCK_UN)
	_ = s.lock.Close()
	s.lock = nil
}

func serverConfig(sqlCfg *config.SQL, ports []int) *config.Config {
	frontend := net.JoinHostPort(host, strconv.Itoa(ports[0]))
	cfg := &config.Config{}
	cfg.Global.Membership.MaxJoinDuration = 30 * time.Second
	cfg.Global.Membership.BroadcastAddress = host
	cfg.Persistence.DefaultStore = "sqlite-default"
	cfg.Persistence.VisibilityStore = "sqlite-default"
	cfg.Persistence.NumHistoryShards = 1
	cfg.Persistence.DataStores = map[string]config.DataStore{"sqlite-default": {SQL: sqlCfg}}
	cfg.ClusterMetadata = &cluster.Config{
		EnableGlobalNamespace:    false,
		FailoverVersionIncrement: 10,
		MasterClusterName:        clusterName,
		CurrentClusterName:       clusterName,
		ClusterInformation: map[string]cluster.ClusterInformation{
			clusterName: {
				Enabled:                true,
				InitialFailoverVersion: 1,
				RPCAddress:             frontend,
				ClusterID:              "rampart-dev",
			},
		},
	}
	cfg.DCRedirectionPolicy.Policy = "noop"
	service := func(port int) config.Service {
		var s config.Service
		s.RPC.GRPCPort = port
		s.RPC.BindOnIP = host
		return s
	}
	cfg.Services = map[string]config.Service{
		"frontend": service(ports[0]),
		"history":  service(ports[1]),
		"matching": service(ports[2]),
		"worker":   service(ports[3]),
	}
	cfg.Archival.History.State = "disabled"
	cfg.Archival.Visibility.State = "disabled"
	cfg.NamespaceDefaults.Archival.History.State = "disabled"
	cfg.NamespaceDefaults.Archival.Visibility.State = "disabled"
	cfg.PublicClient.HostPort = frontend
	return cfg
}

// dynamicConfig holds the values measured in docs/temporal-notes ("Latency"): with the
// defaults each task hand-off waits ~50 ms for the single history shard's transfer poll.
//
// Search attributes are read from the server's caches, not forced from the database
// on every read as the CLI's dev server does: with one SQLite connection, each
// forced read (every workflow start carrying search attributes, every GetVersion
// marker) queued behind the writes and cost ~4 ms of latency per alert. New data
// dirs get the search attributes with the namespace; one that lacks them has them
// added at boot and waited for (app.EnsureSearchAttributes).
//
// A run is reported stalled (the TemporalReportedProblems search attribute, which
// GET /api/v1/stalled reads) after two workflow task attempts in a row fail or
// time out, not five: a worker reports only an attempt's first failure and the
// next times out (10 s), so five took about a minute. One lost attempt alone (a
// worker that died holding the task) is not reported.
func dynamicConfig() dynamicconfig.StaticClient {
	return dynamicconfig.StaticClient{
		dynamicconfig.TransferProcessorMaxPollRPS.Key():                                1000,
		dynamicconfig.MatchingNumTaskqueueReadPartitions.Key():                         1,
		dynamicconfig.MatchingNumTaskqueueWritePartitions.Key():                        1,
		dynamicconfig.FrontendMaxNamespaceVisibilityRPSPerInstance.Key():               100,
		dynamicconfig.HistoryCacheHostLevelMaxSize.Key():                               8096,
		dynamicconfig.FrontendPersistenceMaxQPS.Key():                                  10000,
		dynamicconfig.HistoryPersistenceMaxQPS.Key():                                   45000,
		dynamicconfig.NumConsecutiveWorkflowTaskProblemsToTriggerSearchAttribute.Key(): 2,
	}
}

// FreePort is a free loopback port picked as freePorts picks, for a server that
// binds it a while later (a child process given --temporal-port, say).
func FreePort() (int, error) {
	ports, err := freePorts(1, 0)
	if err != nil {
		return 0, err
	}
	return ports[0], nil
}

// freePorts returns n distinct loopback ports; first, when non-zero, is used as the first.
//
// The ports are picked below the kernel's range for outgoing connections' local
// ports: the server binds them only a moment after they are picked, and one the
// kernel handed to an outgoing connection meanwhile (seen in the tests, with many
// connections open) made the server exit at boot, "address already in use".
func freePorts(n, first int) ([]int, error) {
	ports := make([]int, 0, n)
	if first != 0 {
		l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(first)))
		if err != nil {
			return nil, fmt.Errorf("embedded temporal: port %d: %w", first, err)
		}
		_ = l.Close()
		ports = append(ports, first)
	}
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}()
	below := ephemeralPortsStart()
	for tries := 0; len(ports) < n; tries++ {
		port := "0" // the kernel's pick, when no port below its range is free
		if tries < 100*n && below > minPickedPort {
			port = strconv.Itoa(minPickedPort + rand.IntN(below-minPickedPort))
		}
		l, err := net.Listen("tcp", net.JoinHostPort(host, port))
		if err != nil {
			if port != "0" {
				continue // taken: try another
			}
			return nil, fmt.Errorf("embedded temporal: free port: %w", err)
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// minPickedPort is the lowest port freePorts picks: above the well-known and
// the commonly configured ones.
const minPickedPort = 20000

// ephemeralPortsStart is the first local port the kernel hands to outgoing
// connections (Linux: net.ipv4.ip_local_port_range); 0 when it cannot be read,
// and then freePorts takes the kernel's picks.
func ephemeralPortsStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	var lo, hi int
	if _, err := fmt.Sscan(string(b), &lo, &hi); err != nil {
		return 0
	}
	return lo
}

func waitForPort(ctx context.Context, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		conn, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", addr)
		if err == nil {
			_ = conn.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("embedded temporal: frontend %s not reachable: %w", addr, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
