// Package node runs one Gantry node: it takes its ports, opens the store and
// Raft, starts the cluster protocol, registry, runner, scheduler (on the
// leader) and API, and wires them together with plain code. Sub-packages
// hold each subsystem; this package owns only configuration, start-up
// order and shutdown.
package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"gantry/node/api"
	"gantry/node/auth"
	"gantry/node/catalog"
	"gantry/node/cluster"
	"gantry/node/datacache"
	"gantry/node/diskspace"
	"gantry/node/governance"
	"gantry/node/history"
	"gantry/node/httpsmux"
	"gantry/node/images"
	"gantry/node/outputs"
	"gantry/node/reports"
	"gantry/node/runner"
	"gantry/raftcluster"
	"gantry/store"
	"gantry/ui"
)

// Config is a node's configuration (INTERFACE.md lists the flags).
type Config struct {
	DataDir     string
	HTTPAddr    string
	ClusterAddr string
	Advertise   string
	Name        string
	Join        string
	Token       string
	// AdminPassword is used for the admin account on first start; empty
	// generates one.
	AdminPassword string
	// Registries are the registries other than Gantry's own that jobs may
	// name (host or host:port; --allow-registry). None by default.
	Registries []string
	// Labels describe the node (zone=eu, disk=ssd); jobs select nodes by
	// them with constraints.
	Labels map[string]string
	// GPUs are this node's GPUs (--gpu): NVIDIA indices or UUIDs, or host
	// device paths; none discovers them with nvidia-smi when it is
	// installed. GPUMode is GPUModeNVIDIA, GPUModePath or GPUModeAuto;
	// GPUShareable names the devices several tasks may share (GPUShareAll:
	// every one).
	GPUs         []string
	GPUMode      string
	GPUShareable []string
	// JobRetention is how long after a job ended its record (tasks,
	// attempts) is kept (0: forever).
	JobRetention time.Duration
	// LogRetention is how long after a job ended its task logs are kept
	// on this node (0: forever).
	LogRetention time.Duration
	// RaftTimeout is how long followers wait for a silent leader before
	// electing another (0: raftcluster.DefaultHeartbeatTimeout, for a LAN).
	RaftTimeout time.Duration
	// HistoryInterval is the time between the charts' samples (0: 10 s).
	HistoryInterval time.Duration
	// Restore is a backup (a directory or an archive file, gantry backup)
	// a fresh data directory starts from, as a new single-node cluster.
	Restore string
	// DataCacheSize caps the node's cache of unpacked job inputs
	// (0: datacache.DefaultMaxBytes).
	DataCacheSize int64
	// TLSCert and TLSKey are an operator's certificate and key for the
	// HTTP port (--tls-cert, --tls-key); empty: one the cluster CA issued
	// (the node certificate, for its advertised address and localhost).
	TLSCert string
	TLSKey  string
	// HTTPPlainFrom names the clients the HTTP port serves plain HTTP to
	// (httpsmux.ParsePlainFrom; empty: loopback).
	HTTPPlainFrom string
	Logger        *slog.Logger
	// Out receives the first-start banner (console URL, credentials).
	Out io.Writer
}

// Node is one running Gantry node.
type Node struct {
	cfg Config
	log *slog.Logger

	// ctx is the node's own: every loop runs under it, and close cancels it
	// before waiting for them, whatever the caller's context does.
	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup

	httpLn    net.Listener
	clusterLn net.Listener
	http      *http.Server
	handler   atomic.Pointer[http.Handler]    // nil until start-up is done: 503
	httpCert  atomic.Pointer[tls.Certificate] // the HTTP port's; nil: TLS handshakes fail until the PKI is loaded

	store   *store.Store
	gpus    []store.Device // declared at start
	raft    *raftcluster.Cluster
	cluster *cluster.Cluster
	auth    *auth.Auth
	images  *images.Images
	catalog *catalog.Catalog
	gov     *governance.Governance
	runner  *runner.Runner
	reports *reports.Batcher // the runner's reports, batched into attempt.report
	space   *diskspace.Guard // the data directory's reserve of free space
	reg     *prometheus.Registry
	commit  prometheus.Histogram
}

// New returns a node for cfg; Run starts it.
func New(cfg Config) *Node {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Out == nil {
		cfg.Out = os.Stdout
	}
	if cfg.DataDir == "" {
		cfg.DataDir = "gantry-data"
	}
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = ":7070"
	}
	if cfg.ClusterAddr == "" {
		cfg.ClusterAddr = ":7071"
	}
	if cfg.Name == "" {
		cfg.Name, _ = os.Hostname()
	}
	return &Node{cfg: cfg, log: cfg.Logger}
}

// Run starts the node and serves until ctx ends, then shuts down cleanly.
// A failure to start returns at once, having released everything the node
// took (ports, files, goroutines).
func (n *Node) Run(ctx context.Context) error {
	n.ctx, n.cancel = context.WithCancelCause(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() { n.cancel(context.Cause(ctx)) })
	defer stop()
	err := n.start(n.ctx)
	if err == nil {
		<-n.ctx.Done()
		n.log.Info("shutting down", "reason", context.Cause(n.ctx))
	}
	cerr := n.close()
	if err != nil {
		return err
	}
	return cerr
}

func (n *Node) start(ctx context.Context) error {
	if !cluster.ValidNodeName(n.cfg.Name) {
		return fmt.Errorf("--name %q: use letters, digits, '.', '-' or '_'", n.cfg.Name)
	}
	for k, v := range n.cfg.Labels {
		if err := store.ValidNodeLabel(k, v); err != nil {
			return fmt.Errorf("--label: %v", err)
		}
	}
	if err := checkDataDir(n.cfg.DataDir); err != nil {
		return err
	}
	reserve, err := diskspace.ReserveFromEnv()
	if err != nil {
		return err
	}
	if n.space, err = diskspace.New(n.cfg.DataDir, reserve, n.cfg.Name, n.log); err != nil {
		return err
	}
	n.goLoop(ctx, func(ctx context.Context) { n.space.Run(ctx, 500*time.Millisecond) })
	gpus, err := declareGPUs(ctx, n.cfg.GPUs, n.cfg.GPUMode, n.cfg.GPUShareable, n.log)
	if err != nil {
		return err
	}
	n.gpus = gpus
	adv, err := n.advertiseHost()
	if err != nil {
		return err
	}
	_, cport, err := net.SplitHostPort(n.cfg.ClusterAddr)
	if err != nil {
		return fmt.Errorf("--cluster %q: %w", n.cfg.ClusterAddr, err)
	}
	_, hport, err := net.SplitHostPort(n.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("--http %q: %w", n.cfg.HTTPAddr, err)
	}
	if (n.cfg.TLSCert == "") != (n.cfg.TLSKey == "") {
		return errors.New("--tls-cert and --tls-key go together: give both, or neither to use a certificate from the cluster CA")
	}
	if n.cfg.TLSCert != "" {
		c, err := tls.LoadX509KeyPair(n.cfg.TLSCert, n.cfg.TLSKey)
		if err != nil {
			return fmt.Errorf("--tls-cert %s --tls-key %s: %w (both PEM, the key matching the certificate)", n.cfg.TLSCert, n.cfg.TLSKey, err)
		}
		n.httpCert.Store(&c)
	}
	plainOK, err := httpsmux.ParsePlainFrom(n.cfg.HTTPPlainFrom)
	if err != nil {
		return fmt.Errorf("--http-plain-from: %w", err)
	}
	// The ports first: a node that cannot serve must not bootstrap or join
	// anything. Until start-up is done the HTTP port answers 503.
	if n.httpLn, err = net.Listen("tcp", n.cfg.HTTPAddr); err != nil {
		return fmt.Errorf("--http %s: %w", n.cfg.HTTPAddr, err)
	}
	n.httpLn = httpsmux.New(n.httpLn, &tls.Config{MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			if c := n.httpCert.Load(); c != nil {
				return c, nil
			}
			return nil, errors.New("the node is starting: no certificate yet")
		}}, plainOK)
	if n.clusterLn, err = net.Listen("tcp", n.cfg.ClusterAddr); err != nil {
		return fmt.Errorf("--cluster %s: %w", n.cfg.ClusterAddr, err)
	}
	n.serveHTTP()

	if n.store, err = store.Open(filepath.Join(n.cfg.DataDir, "state"), n.log); err != nil {
		return err
	}
	var seed *raftcluster.Seed
	if n.cfg.Restore != "" {
		if seed, err = n.restore(n.cfg.Restore); err != nil { // restore.go
			return err
		}
	}
	tlsDir := filepath.Join(n.cfg.DataDir, "tls")
	member := ""
	if n.cfg.Join != "" {
		if n.cfg.Token == "" {
			if _, err := os.Stat(filepath.Join(tlsDir, "node.pem")); err != nil {
				return errors.New("--join needs --token (print it on a member with 'gantry cluster join-command')")
			}
		}
		member, err = cluster.Join(ctx, cluster.JoinConfig{Member: n.cfg.Join, Token: n.cfg.Token, Name: n.cfg.Name,
			TLSDir: tlsDir, Host: adv, Cluster: net.JoinHostPort(adv, cport), Logger: n.log})
		if err != nil {
			return err
		}
	}
	pki, err := raftcluster.LoadOrCreatePKI(tlsDir, n.cfg.Name, []string{adv})
	if err != nil {
		return err
	}
	if n.cfg.TLSCert == "" {
		n.httpCert.Store(&pki.NodeTLS)
	}
	n.raft, err = raftcluster.Open(raftcluster.Config{
		Dir: filepath.Join(n.cfg.DataDir, "raft"), NodeID: n.cfg.Name, Listener: n.clusterLn,
		Advertise: net.JoinHostPort(adv, cport), FSM: n.store, PKI: pki, Logger: n.log, Bootstrap: n.cfg.Join == "",
		Seed: seed, HeartbeatTimeout: n.cfg.RaftTimeout,
	})
	n.clusterLn = nil // raftcluster owns it now, and closes it
	if err != nil {
		return err
	}
	n.reg = prometheus.NewRegistry()
	n.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	n.commit = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "gantry_raft_commit_seconds",
		Help: "Time to commit and apply one command.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)})
	n.reg.MustRegister(n.commit)

	n.cluster = cluster.New(cluster.Config{
		Name: n.cfg.Name, Advertise: adv, HTTPPort: hport, TLSDir: tlsDir, Raft: n.raft, Store: n.store,
		Logger: n.log, LogRetention: n.cfg.LogRetention, Labels: n.cfg.Labels, Devices: n.gpus,
		// Register runs only once the runner exists (below).
		Capacity: func(ctx context.Context) (int64, int64, error) { return n.runner.Capacity(ctx) },
		OnCommit: func(d time.Duration) { n.commit.Observe(d.Seconds()) },
		Space:    n.space,
	})
	n.cluster.Start()
	n.reports = reports.New(reports.Config{Proposer: n.cluster, Logger: n.log})
	n.registerMetrics() // metrics.go
	if member != "" {
		n.cluster.AdoptCAKey(ctx, member)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := n.raft.WaitLeader(wctx); err != nil {
		return err
	}
	if n.cfg.Join != "" {
		if err := n.cluster.WaitCaughtUp(wctx); err != nil {
			return err
		}
	}
	// Heartbeats from now on: a joiner that has caught up is promoted
	// while it finishes starting.
	n.goLoop(ctx, n.cluster.Run)
	nodeSecret, err := n.nodeSecret()
	if err != nil {
		return err
	}
	n.auth = auth.New(auth.Config{Store: n.store, NodeSecret: nodeSecret, Logger: n.log, Registerer: n.reg})

	first, password, err := n.bootstrap(ctx)
	if err != nil {
		return err
	}
	if err := n.cluster.EnsureJoinSecret(ctx); err != nil {
		return err
	}
	info, err := n.store.Cluster()
	if err != nil {
		return fmt.Errorf("read cluster identity: %w", err)
	}
	n.images, err = images.Open(images.Config{
		DataDir: n.cfg.DataDir, HTTPAddr: n.cfg.HTTPAddr, Advertise: adv, NodeName: n.cfg.Name, NodeSecret: nodeSecret,
		Store: n.store, Proposer: n.cluster, Auth: n.auth, Peers: n.cluster.Peers(), Logger: n.log,
		// Set below, before the registry serves anything.
		OnManifest: func(ctx context.Context, repo string, m *store.RegManifest) { n.catalog.OnManifest(ctx, repo, m) },
		Registerer: n.reg, Space: n.space,
	})
	if err != nil {
		return err
	}
	n.catalog = catalog.New(catalog.Config{Store: n.store, Proposer: n.cluster, Registry: n.images.Registry(), Logger: n.log})
	inputs, err := datacache.Open(datacache.Config{Dir: filepath.Join(n.cfg.DataDir, "data-cache"), MaxBytes: n.cfg.DataCacheSize,
		Blobs: n.images, Logger: n.log, Registerer: n.reg})
	if err != nil {
		return fmt.Errorf("open the data cache: %w", err)
	}
	n.runner, err = runner.New(runner.Config{
		Node: n.cfg.Name, Cluster: info.ID, LogDir: filepath.Join(n.cfg.DataDir, "logs"),
		Reporter: reporter{n}, Logger: n.log, RegistryAuth: n.images.RegistryAuth, Inputs: inputs,
		OutputDir: filepath.Join(n.cfg.DataDir, "outputs"), Outputs: outputs.New(n.images.Registry(), n.log, n.reg),
	})
	if err != nil {
		return fmt.Errorf("start runner: %w", err)
	}
	n.cluster.Attach(n.images.Registry(), logFiles{n.runner})
	if err := n.runner.Ping(ctx); err != nil {
		return fmt.Errorf("cannot reach the Docker Engine (is dockerd running and is its socket accessible?): %w", err)
	}
	if err := n.images.SeedToolbox(ctx); err != nil {
		return err
	}
	if err := n.cluster.Register(ctx); err != nil {
		return err
	}

	n.gov = governance.New(governance.Config{Store: n.store, Proposer: n.cluster, Logger: n.log})
	n.goLoop(ctx, n.cluster.ReconcileBlobs)
	n.goLoop(ctx, n.catalog.Run)
	n.goLoop(ctx, n.runnerLoop)
	n.goLoop(ctx, n.leaderLoop)
	n.goLoop(ctx, n.pruneLogsLoop) // logs.go
	hub := ui.NewHub(ui.HubConfig{Store: n.store, Logger: n.log, Viewer: viewer})
	hist := history.New(history.Config{Source: n.store, Used: n.cluster.NodeUsage, Interval: n.cfg.HistoryInterval, Logger: n.log,
		OnSample: func(at time.Time) { hub.Broadcast("stats", at) }})
	n.goLoop(ctx, hist.Run)

	var handler http.Handler = api.New(api.Config{
		Store: n.store, Proposer: n.cluster, Auth: n.auth, Logger: n.log, NodeName: n.cfg.Name, Cluster: n.cluster,
		Usage: n.cluster.NodeUsage, LogRetention: n.cfg.LogRetention,
		LogPath: func(job string, task, attempt int) string {
			return n.runner.LogPath(runner.Key{JobID: job, Task: task, Attempt: attempt})
		},
		Leader: func() (bool, string) {
			_, id := n.raft.Leader()
			return n.raft.IsLeader(), id
		},
		Metrics:  promhttp.HandlerFor(n.reg, promhttp.HandlerOpts{}),
		Registry: n.images.Registry(), Images: n.images.Registry(), Registries: n.cfg.Registries,
		Catalog: n.catalog, CatalogState: n.store, History: hist,
		Governance: n.gov, GovernanceState: n.store, Moderation: n.store, Notices: n.store,
		Backup: n.writeBackup, // restore.go
		Events: hub,
		UI:     ui.Assets(),
	})
	n.handler.Store(&handler)
	n.announceReady(ctx)
	n.goLoop(ctx, func(ctx context.Context) { n.images.PrepullToolbox(ctx, n.runner.Pull) })
	if first {
		n.printBanner(adv, n.httpLn.Addr(), password, pki.CAHash())
	}
	// Start-up (building the toolbox image above all) leaves garbage the
	// runtime would return to the OS only slowly; an idle node should be small.
	debug.FreeOSMemory()
	return nil
}

// serveHTTP serves the HTTP port from the moment it is bound: 503 with a
// JSON error until start-up has installed the real handler.
func (n *Node) serveHTTP() {
	starting := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error":"the node is starting; try again in a moment","code":"unavailable"}` + "\n"))
	})
	n.http = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := n.handler.Load(); h != nil {
			(*h).ServeHTTP(w, r)
			return
		}
		starting.ServeHTTP(w, r)
	})}
	ln := n.httpLn
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := n.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("http server stopped", "err", err)
		}
	}()
}

func (n *Node) goLoop(ctx context.Context, fn func(context.Context)) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		fn(ctx)
	}()
}

// close releases what start took, in reverse order; it is safe after a
// partial start.
func (n *Node) close() error {
	n.cancel(errors.New("node closing"))
	var errs []error
	if n.http != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = n.http.Shutdown(sctx)
		cancel()
	} else if n.httpLn != nil {
		n.httpLn.Close()
	}
	if n.clusterLn != nil {
		n.clusterLn.Close()
	}
	n.wg.Wait()
	if n.cluster != nil {
		n.cluster.Close()
	}
	if n.images != nil {
		errs = append(errs, n.images.Close())
	}
	if n.runner != nil {
		errs = append(errs, n.runner.Close())
	}
	if n.raft != nil {
		errs = append(errs, n.raft.Close())
	}
	if n.store != nil {
		errs = append(errs, n.store.Close())
	}
	return errors.Join(errs...)
}

// checkDataDir creates the data directory and proves it writable, so an
// unusable one is reported in one line before anything else starts.
func checkDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("--data %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, ".write-check-")
	if err != nil {
		return fmt.Errorf("--data %s is not writable: %w", dir, errors.Unwrap(err))
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

// advertiseHost is the host other nodes and clients use for this node.
func (n *Node) advertiseHost() (string, error) {
	if n.cfg.Advertise != "" {
		h := n.cfg.Advertise
		if host, _, err := net.SplitHostPort(h); err == nil {
			h = host
		}
		return h, nil
	}
	if host, _, err := net.SplitHostPort(n.cfg.ClusterAddr); err == nil && host != "" && host != "0.0.0.0" && host != "::" {
		return host, nil
	}
	// Listening on every interface: advertise the first non-loopback IPv4
	// address, so the printed join command works from another machine.
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && !ipn.IP.IsLoopback() && !ipn.IP.IsLinkLocalUnicast() {
				return ipn.IP.String(), nil
			}
		}
	}
	return "127.0.0.1", nil
}

// nodeSecret is the node's own registry credential, kept in the data dir.
func (n *Node) nodeSecret() (string, error) {
	p := filepath.Join(n.cfg.DataDir, "node-secret")
	if b, err := os.ReadFile(p); err == nil && len(bytes.TrimSpace(b)) > 0 {
		return string(bytes.TrimSpace(b)), nil
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	s := hex.EncodeToString(b)
	if err := os.WriteFile(p, []byte(s+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write node secret: %w", err)
	}
	return s, nil
}

// bootstrap creates the cluster identity and the admin account once.
func (n *Node) bootstrap(ctx context.Context) (first bool, password string, err error) {
	if _, err := n.store.Cluster(); err == nil {
		return false, "", nil
	}
	password = n.cfg.AdminPassword
	if password == "" {
		password = auth.NewPassword()
	}
	hash, err := auth.HashPassword(password)
	if err != nil {
		return false, "", fmt.Errorf("admin password: %w", err)
	}
	secret := auth.NewSecret()
	cmd := store.Bootstrap{
		Cluster:   store.ClusterInfo{ID: strings.ToLower(ulid.Make().String())},
		Admin:     store.User{Name: "admin", PasswordHash: hash, Admin: true},
		Token:     store.Token{ID: ulid.Make().String(), User: "admin", Name: "admin-token"},
		TokenHash: auth.HashToken(secret),
	}
	if _, err := store.CmdBootstrap.Propose(ctx, n.cluster, cmd); err != nil {
		return false, "", fmt.Errorf("bootstrap: %w", err)
	}
	if err := os.WriteFile(filepath.Join(n.cfg.DataDir, "admin-token"), []byte(secret+"\n"), 0o600); err != nil {
		return false, "", fmt.Errorf("write admin token: %w", err)
	}
	return true, password, nil
}

func (n *Node) printBanner(adv string, httpAddr net.Addr, password, caHash string) {
	host, port, _ := net.SplitHostPort(httpAddr.String())
	url := "http://localhost:" + port
	// Beyond loopback the port serves TLS with the cluster CA's certificate
	// (or the operator's): say where other machines reach it.
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		url += " (other machines: https://" + net.JoinHostPort(adv, port) + "; trust the CA from /api/v1/cluster/ca, 'gantry login' pins it)"
	}
	// The join token admits a machine as a node, with all the state: it
	// goes to a file only this user reads, never to the output (which
	// lands in logs and the journal).
	join := "gantry server --join " + net.JoinHostPort(adv, port) + " --token <the join token>"
	tokenAt := "run 'gantry cluster join-command' as admin"
	ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
	defer cancel()
	if _, tok, err := n.cluster.JoinCommand(ctx, false); err == nil {
		path := filepath.Join(n.cfg.DataDir, JoinTokenFile)
		if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
			n.log.Warn("write the join token", "err", err)
		} else {
			tokenAt = path + " (readable by this user only; 'gantry cluster join-command' prints it too)"
		}
	}
	fmt.Fprintf(n.cfg.Out, `
Gantry is running.
  Console:         %s
  Admin user:      admin
  Admin password:  %s
  Admin API token: %s
  Join command:    %s
  Join token:      %s
  (CA %s)

`, url, password, filepath.Join(n.cfg.DataDir, "admin-token"), join, tokenAt, caHash)
}

// JoinTokenFile is the file in the data directory the first start writes
// the join token to (mode 0600); a rotation does not update it.
const JoinTokenFile = "join-token"

// announceReady logs that the node serves and the Raft role it has; a node
// that does not vote yet says when it will, on its output too.
func (n *Node) announceReady(ctx context.Context) {
	role := ""
	var roles cluster.Roles
	if r, err := n.cluster.Roles(ctx); err == nil {
		roles, role = r, r.Of[n.cfg.Name]
	}
	note := ""
	switch role {
	case cluster.RolePromoting:
		note = "it will vote once it has caught up"
		if roles.Voters%2 == 1 && roles.Voters < roles.Keeps {
			note += " and another server has, so the cluster keeps an odd number of voters"
		}
	case cluster.RoleNonvoter:
		note = fmt.Sprintf("the cluster keeps %d voters; this node receives the log and votes when one is lost", roles.Keeps)
	}
	args := []any{"name", n.cfg.Name, "role", role, "voters", roles.Voters, "failure_tolerance", roles.FailureTolerance,
		"http", n.httpLn.Addr().String(), "cluster", n.cfg.ClusterAddr, "data", n.cfg.DataDir}
	if note != "" {
		args = append(args, "note", note)
	}
	n.log.Info("node ready", args...)
	if n.cfg.Join != "" {
		msg := fmt.Sprintf("Joined the cluster as node %s: role %s", n.cfg.Name, role)
		if note != "" {
			msg += "; " + note
		}
		fmt.Fprintln(n.cfg.Out, msg+".")
	}
}

// logFiles gives the cluster the runner's log paths.
type logFiles struct{ r *runner.Runner }

func (l logFiles) LogPath(job string, task, attempt int) string {
	return l.r.LogPath(runner.Key{JobID: job, Task: task, Attempt: attempt})
}

// viewer tells the console hub who the API authenticated.
func viewer(r *http.Request) (ui.Viewer, bool) {
	id, ok := auth.FromContext(r.Context())
	return ui.Viewer{User: id.User, Admin: id.Admin}, ok
}
