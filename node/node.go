// Package node runs one Gantry node: it opens the store and Raft, starts the
// API, registry, scheduler (on the leader) and runner, and wires them with
// plain code. Sub-packages hold each subsystem; this package owns only
// configuration, start-up order and shutdown.
package node

import (
	"bytes"
	"context"
	"crypto/rand"
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
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"gantry/node/api"
	"gantry/node/auth"
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
	// Labels describe the node (zone=eu, disk=ssd); jobs select nodes by
	// them with constraints.
	Labels map[string]string
	// JobRetention is how long after a job ended its record (tasks,
	// attempts) is kept (0: forever).
	JobRetention time.Duration
	// LogRetention is how long after a job ended its task logs are kept
	// on this node (0: forever).
	LogRetention time.Duration
	Logger       *slog.Logger
	// Out receives the first-start banner (console URL, credentials).
	Out io.Writer
}

// Node is one running Gantry node.
type Node struct {
	cfg Config
	log *slog.Logger

	store   *store.Store
	cluster *raftcluster.Cluster
	auth    *auth.Auth
	runner  *runner.Runner
	http    *http.Server
	reg     *prometheus.Registry
	metrics *metrics

	clusterID string
	usage     usage
	wg        sync.WaitGroup
	cl        *clusterState // membership and node-to-node calls (cluster.go)
	images    *images       // the registry and the runner's view of it (images.go)
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
func (n *Node) Run(ctx context.Context) error {
	err := n.start(ctx)
	if err == nil {
		<-ctx.Done()
		n.log.Info("shutting down", "reason", context.Cause(ctx))
	}
	cerr := n.close()
	if err != nil {
		return err
	}
	return cerr
}

func (n *Node) start(ctx context.Context) error {
	if !validNodeName(n.cfg.Name) {
		return fmt.Errorf("--name %q: use letters, digits, '.', '-' or '_'", n.cfg.Name)
	}
	if err := os.MkdirAll(n.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	adv, err := n.advertiseHost()
	if err != nil {
		return err
	}
	st, err := store.Open(filepath.Join(n.cfg.DataDir, "state"), n.log)
	if err != nil {
		return err
	}
	n.store = st
	_, cport, err := net.SplitHostPort(n.cfg.ClusterAddr)
	if err != nil {
		return fmt.Errorf("--cluster %q: %w", n.cfg.ClusterAddr, err)
	}
	member, err := n.joinIfNeeded(ctx, adv, cport) // cluster_join.go
	if err != nil {
		return err
	}
	pki, err := raftcluster.LoadOrCreatePKI(filepath.Join(n.cfg.DataDir, "tls"), n.cfg.Name, []string{adv})
	if err != nil {
		return err
	}
	n.cluster, err = raftcluster.Open(raftcluster.Config{
		Dir: filepath.Join(n.cfg.DataDir, "raft"), NodeID: n.cfg.Name, Bind: n.cfg.ClusterAddr,
		Advertise: net.JoinHostPort(adv, cport), FSM: st, PKI: pki, Logger: n.log, Bootstrap: n.cfg.Join == "",
	})
	if err != nil {
		return err
	}
	n.startInternal(adv)
	if member != "" {
		n.adoptCAKey(ctx, member, pki, adv)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := n.cluster.WaitLeader(wctx); err != nil {
		return err
	}
	if n.cfg.Join != "" {
		if err := n.waitCaughtUp(wctx); err != nil {
			return err
		}
	}
	nodeSecret, err := n.nodeSecret()
	if err != nil {
		return err
	}
	n.auth = auth.New(st, nodeSecret)

	first, password, err := n.bootstrap(ctx)
	if err != nil {
		return err
	}
	if err := n.ensureJoinSecret(ctx); err != nil {
		return err
	}
	info, err := st.Cluster()
	if err != nil {
		return fmt.Errorf("read cluster identity: %w", err)
	}
	n.clusterID = info.ID

	n.reg = prometheus.NewRegistry()
	n.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	n.metrics = newMetrics(n.reg, st)

	if err := n.openRegistry(nodeSecret); err != nil {
		return err
	}
	n.runner, err = runner.New(runner.Config{
		Node: n.cfg.Name, Cluster: n.clusterID, LogDir: filepath.Join(n.cfg.DataDir, "logs"),
		Reporter: reporter{n}, Logger: n.log, RegistryAuth: n.images.registryAuth,
	})
	if err != nil {
		return fmt.Errorf("start runner: %w", err)
	}
	if err := n.runner.Ping(ctx); err != nil {
		return fmt.Errorf("cannot reach the Docker Engine (is dockerd running and is its socket accessible?): %w", err)
	}
	if err := n.seedToolbox(ctx); err != nil {
		return err
	}
	if err := n.register(ctx, adv); err != nil {
		return err
	}

	n.goLoop(ctx, n.usage.run)
	n.goLoop(ctx, n.runnerLoop)
	n.goLoop(ctx, n.leaderLoop)
	n.goLoop(ctx, n.clusterLoop)
	n.goLoop(ctx, n.reconcileBlobs) // peers.go
	n.goLoop(ctx, n.pruneLogsLoop)  // logs.go

	ln, err := net.Listen("tcp", n.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", n.cfg.HTTPAddr, err)
	}
	handler := api.New(api.Config{
		Store: st, Proposer: n, Auth: n.auth, Logger: n.log, NodeName: n.cfg.Name, Cluster: clusterAdmin{n},
		Usage: n.nodeUsage, LogRetention: n.cfg.LogRetention,
		LogPath: func(job string, task, attempt int) string {
			return n.runner.LogPath(runner.Key{JobID: job, Task: task, Attempt: attempt})
		},
		Leader: func() (bool, string) {
			_, id := n.cluster.Leader()
			return n.cluster.IsLeader(), id
		},
		Metrics:  promhttp.HandlerFor(n.reg, promhttp.HandlerOpts{}),
		Registry: n.images.reg, Images: n.images.reg,
		Events: ui.NewHub(ui.HubConfig{Store: st, Logger: n.log}),
		UI:     ui.Assets(),
	})
	n.http = &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := n.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("http server stopped", "err", err)
		}
	}()
	n.log.Info("node ready", "name", n.cfg.Name, "http", ln.Addr().String(), "cluster", n.cfg.ClusterAddr, "data", n.cfg.DataDir)
	n.goLoop(ctx, n.prepullToolbox)
	if first {
		n.printBanner(adv, ln.Addr(), password, pki.CAHash())
	}
	// Start-up (building the toolbox image above all) leaves garbage the
	// runtime would return to the OS only slowly; an idle node should be small.
	debug.FreeOSMemory()
	return nil
}

func (n *Node) goLoop(ctx context.Context, fn func(context.Context)) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		fn(ctx)
	}()
}

func (n *Node) close() error {
	var errs []error
	if n.http != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = n.http.Shutdown(sctx)
		cancel()
	}
	n.wg.Wait()
	n.closeInternal()
	if n.images != nil {
		errs = append(errs, n.images.reg.Close())
	}
	if n.runner != nil {
		errs = append(errs, n.runner.Close())
	}
	if n.cluster != nil {
		errs = append(errs, n.cluster.Close())
	}
	if n.store != nil {
		errs = append(errs, n.store.Close())
	}
	return errors.Join(errs...)
}

func validNodeName(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_') {
			return false
		}
	}
	return true
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
	if _, err := n.Propose(ctx, store.CmdBootstrap, cmd); err != nil {
		return false, "", fmt.Errorf("bootstrap: %w", err)
	}
	if err := os.WriteFile(filepath.Join(n.cfg.DataDir, "admin-token"), []byte(secret+"\n"), 0o600); err != nil {
		return false, "", fmt.Errorf("write admin token: %w", err)
	}
	return true, password, nil
}

func (n *Node) printBanner(adv string, httpAddr net.Addr, password, caHash string) {
	_, port, _ := net.SplitHostPort(httpAddr.String())
	url := "http://localhost:" + port
	fmt.Fprintf(n.cfg.Out, `
Gantry is running.
  Console:         %s
  Admin user:      admin
  Admin password:  %s
  Admin API token: %s
  Join command:    %s
  (CA %s)

`, url, password, filepath.Join(n.cfg.DataDir, "admin-token"), n.bannerJoinCommand(adv, port), caHash)
}

// Propose commits a command through Raft and returns Apply's result; an
// error the state machine returned comes back as the error.
func (n *Node) Propose(ctx context.Context, typ string, payload any) (any, error) {
	b, err := store.NewCommand(typ, time.Now(), payload)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	res, err := n.apply(ctx, typ, b) // locally on the leader, else forwarded (cluster_forward.go)
	if n.metrics != nil {
		n.metrics.commit.Observe(time.Since(start).Seconds())
	}
	if errors.Is(err, raftcluster.ErrNotLeader) {
		return nil, store.Errorf(store.EUnavailable, "this node is not the leader; try again")
	}
	if err != nil {
		return nil, fmt.Errorf("propose %s: %w", typ, err)
	}
	if e, ok := res.(error); ok {
		return nil, e
	}
	return res, nil
}

// register records this node and its capacity in the cluster state.
func (n *Node) register(ctx context.Context, adv string) error {
	cpu, mem, err := n.runner.Capacity(ctx)
	if err != nil {
		return fmt.Errorf("read Docker capacity: %w", err)
	}
	_, hport, _ := net.SplitHostPort(n.cfg.HTTPAddr)
	_, cport, _ := net.SplitHostPort(n.cfg.ClusterAddr)
	_, err = n.Propose(ctx, store.CmdUpsertNode, store.UpsertNode{Node: store.Node{
		Name: n.cfg.Name, Addr: net.JoinHostPort(adv, cport), APIAddr: net.JoinHostPort(adv, hport),
		Capacity: store.Resources{CPU: cpu, Memory: mem}, Labels: n.cfg.Labels,
	}})
	return err
}
