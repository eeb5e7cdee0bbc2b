// Package cli is the gantry command line: it parses arguments with cobra and
// either runs a node (server) or calls the REST API through package client.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"gantry/client"
	"gantry/node/toolbox"
)

// exitError carries a process exit code through cobra.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// ServerConfig is what `gantry server` was asked to run (INTERFACE.md
// lists the flags); main turns it into a node.
type ServerConfig struct {
	DataDir       string
	HTTPAddr      string
	ClusterAddr   string
	Advertise     string
	Name          string
	Join          string
	Token         string
	AdminPassword string
	Labels        map[string]string
	Registries    []string // other registries jobs may pull from
	// GPUs, GPUMode and GPUShareable declare the node's GPUs (--gpu,
	// --gpu-mode, --gpu-shareable); no --gpu discovers them.
	GPUs         []string
	GPUMode      string
	GPUShareable []string
	JobRetention time.Duration
	LogRetention time.Duration
	RaftTimeout  time.Duration
	// HistoryInterval is the time between the charts' samples
	// (--history-interval; 0: 10 s).
	HistoryInterval time.Duration
	// Restore is a backup a fresh data directory starts from (--restore).
	Restore string
	// DataCacheSize caps the node's cache of unpacked job inputs
	// (--data-cache-size; 0: the default).
	DataCacheSize int64
	// TLSCert and TLSKey are the HTTP port's certificate and key
	// (--tls-cert, --tls-key); empty: one from the cluster CA.
	TLSCert string
	TLSKey  string
	// HTTPPlainFrom names the clients plain HTTP is served to
	// (--http-plain-from; empty: loopback).
	HTTPPlainFrom string
	Logger        *slog.Logger
}

// Server runs a node until ctx ends.
type Server func(ctx context.Context, cfg ServerConfig) error

// Main runs the CLI and returns the process exit code; server runs
// `gantry server`.
func Main(args []string, server Server) int {
	if len(args) > 0 && args[0] == "toolbox" {
		return toolbox.Main(args[1:])
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, args, server, os.Stdout, os.Stderr)
}

// run executes one command line and returns its exit code.
func run(ctx context.Context, args []string, server Server, stdout, stderr io.Writer) int {
	root := newRoot(server)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	var ee exitError
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ue):
		fmt.Fprintln(stderr, oneLine(ue.msg))
		return 2
	case strings.HasPrefix(err.Error(), "unknown command "): // cobra's, for the root
		fmt.Fprintln(stderr, tr("usage.line", "gantry", cobraText(err), "gantry"))
		return 2
	default:
		fmt.Fprintln(stderr, "gantry: "+oneLine(errorText(err)))
		return 1
	}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

type globals struct {
	output string
}

func newRoot(server Server) *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:           "gantry",
		Short:         "Gantry: a self-hosted batch-compute platform in one binary",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVarP(&g.output, "output", "o", "table", "output format: table or json")
	root.AddCommand(serverCmd(server), loginCmd(), runCmd(g), jobCmd(g), nodeCmd(g), userCmd(g), clusterCmd(g))
	root.AddCommand(imageCmd(g), dataCmd(g), scheduleCmd(g), queueCmd(g), catalogCmd(g), eventsCmd())
	root.AddCommand(backupCmd(g), versionCmd(g))
	root.AddCommand(auditCmd(g), inboxCmd(g), reviewCmd(g), reportCmd(g), takedownCmd(g), restoreCmd(g), infringementCmd(g))
	root.AddCommand(manCmd(root))
	enforceUsage(root)
	localize(root)
	return root
}

// usageError is a command line that names no command, an unknown one, a bad
// flag or the wrong arguments: one line naming it, exit code 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// usageErr names the command, what is wrong, and where to look.
func usageErr(c *cobra.Command, format string, args ...any) error {
	return usageError{tr("usage.line", c.CommandPath(), fmt.Sprintf(format, args...), c.CommandPath())}
}

// enforceUsage makes every command of the tree refuse a wrong command line
// with a usageError: a command group given no subcommand or an unknown
// one (cobra would print the group's help and exit 0), a bad flag, or the
// wrong number of arguments.
func enforceUsage(root *cobra.Command) {
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageErr(c, "%s", cobraText(err)) })
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.HasSubCommands() && c.Run == nil && c.RunE == nil {
			c.Args = cobra.ArbitraryArgs
			c.RunE = func(c *cobra.Command, args []string) error {
				if len(args) == 0 {
					if !c.HasParent() {
						return c.Help()
					}
					return usageErr(c, "%s", tr("usage.missing_subcommand", strings.Join(subcommandNames(c), ", ")))
				}
				return usageErr(c, "%s", tr("usage.unknown_command", args[0]))
			}
		} else if check := c.Args; check != nil {
			c.Args = func(c *cobra.Command, args []string) error {
				if err := check(c, args); err != nil {
					return usageErr(c, "%s", cobraText(err))
				}
				return nil
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

func subcommandNames(c *cobra.Command) []string {
	var out []string
	for _, s := range c.Commands() {
		if s.IsAvailableCommand() {
			out = append(out, s.Name())
		}
	}
	return out
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// parseNodeLabels reads K=V node labels (the node checks their spelling).
func parseNodeLabels(kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			return nil, fmt.Errorf("--label: %q: want KEY=VALUE", kv)
		}
		out[k] = v
	}
	return out, nil
}

// parseRetention reads a duration in Go's syntax or whole days ("30d").
func parseRetention(flag, s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 && time.Duration(n) <= math.MaxInt64/(24*time.Hour) {
			return time.Duration(n) * 24 * time.Hour, nil
		}
	} else if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return d, nil
	}
	return 0, fmt.Errorf("%s: %q is not a duration (e.g. 30d, 72h, or 0 to keep forever)", flag, s)
}

func serverCmd(server Server) *cobra.Command {
	var cfg ServerConfig
	var retention, jobRetention, raftTimeout, historyInterval, dataCache string
	var labels, gpus, gpuShareable []string
	var debug bool
	c := &cobra.Command{
		Use:   "server",
		Short: "Run a Gantry node (a single-node cluster unless --join is given)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			level := slog.LevelInfo
			if debug {
				level = slog.LevelDebug
			}
			cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			cfg.AdminPassword = os.Getenv("GANTRY_ADMIN_PASSWORD")
			d, err := parseRetention("--log-retention", retention)
			if err != nil {
				return err
			}
			cfg.LogRetention = d
			if cfg.JobRetention, err = parseRetention("--job-retention", jobRetention); err != nil {
				return err
			}
			if cfg.Labels, err = parseNodeLabels(labels); err != nil {
				return err
			}
			if cfg.GPUs, err = splitList("--gpu", gpus); err != nil {
				return usageErr(cmd, "%v", err)
			}
			if cfg.GPUShareable, err = splitList("--gpu-shareable", gpuShareable); err != nil {
				return usageErr(cmd, "%v", err)
			}
			switch cfg.GPUMode {
			case "", "nvidia", "path":
			default:
				return usageErr(cmd, "--gpu-mode %q: want nvidia or path", cfg.GPUMode)
			}
			if raftTimeout != "" {
				d, err := time.ParseDuration(raftTimeout)
				if err != nil || d < 50*time.Millisecond || d > time.Minute {
					return usageErr(cmd, "--raft-timeout %q: want a duration from 50ms to 1m, e.g. 250ms", raftTimeout)
				}
				cfg.RaftTimeout = d
			}
			if historyInterval != "" {
				d, err := time.ParseDuration(historyInterval)
				if err != nil || d < 100*time.Millisecond || d > 10*time.Minute {
					return usageErr(cmd, "--history-interval %q: want a duration from 100ms to 10m, e.g. 10s", historyInterval)
				}
				cfg.HistoryInterval = d
			}
			if dataCache != "" {
				n, err := parseBytes(dataCache)
				if err != nil || n < 1<<20 {
					return usageErr(cmd, "--data-cache-size %q: want a size of at least 1Mi, e.g. 50Gi", dataCache)
				}
				cfg.DataCacheSize = n
			}
			return server(cmd.Context(), cfg)
		},
	}
	f := c.Flags()
	f.StringVar(&historyInterval, "history-interval", envOr("GANTRY_HISTORY_INTERVAL", ""),
		"time between the samples the console's charts draw, kept an hour at this step and a day a minute (default 10s)")
	f.StringVar(&cfg.DataDir, "data", envOr("GANTRY_DATA", "./gantry-data"), "directory for everything the node keeps")
	f.StringVar(&cfg.HTTPAddr, "http", envOr("GANTRY_HTTP", ":7070"), "address for the console, REST API and registry")
	f.StringVar(&cfg.ClusterAddr, "cluster", envOr("GANTRY_CLUSTER", ":7071"), "address for Raft and node-to-node calls (mutual TLS)")
	f.StringVar(&cfg.TLSCert, "tls-cert", envOr("GANTRY_TLS_CERT", ""), "PEM certificate for HTTPS on the HTTP port (with --tls-key; default: one from the cluster CA)")
	f.StringVar(&cfg.TLSKey, "tls-key", envOr("GANTRY_TLS_KEY", ""), "PEM key of --tls-cert")
	f.StringVar(&cfg.HTTPPlainFrom, "http-plain-from", envOr("GANTRY_HTTP_PLAIN_FROM", "loopback"),
		"clients the HTTP port serves plain HTTP to, a comma list of loopback, IP addresses and CIDR networks, or none; everyone else must use HTTPS")
	f.StringVar(&cfg.Advertise, "advertise", envOr("GANTRY_ADVERTISE", ""), "host other nodes and clients use to reach this node")
	f.StringVar(&cfg.Join, "join", envOr("GANTRY_JOIN", ""), "join the cluster of this member (host:port)")
	f.StringVar(&cfg.Token, "token", envOr("GANTRY_TOKEN_JOIN", ""), "join token printed by the first node")
	f.StringVar(&cfg.Name, "name", envOr("GANTRY_NAME", ""), "node name (default: host name)")
	f.StringVar(&jobRetention, "job-retention", envOr("GANTRY_JOB_RETENTION", "0"),
		"remove the records of jobs this long after they ended, e.g. 90d (0: keep them forever)")
	f.StringVar(&retention, "log-retention", envOr("GANTRY_LOG_RETENTION", "30d"),
		"remove task logs this long after their job ended, e.g. 30d, 72h (0: keep them forever)")
	var envLabels []string
	if v := os.Getenv("GANTRY_LABELS"); v != "" {
		envLabels = strings.Split(v, ",")
	}
	f.StringArrayVar(&labels, "label", envLabels, "node label K=V that jobs can require with --constraint (repeatable; $GANTRY_LABELS: K=V,K=V)")
	var envRegistries []string
	if v := os.Getenv("GANTRY_ALLOW_REGISTRIES"); v != "" {
		envRegistries = strings.Split(v, ",")
	}
	f.StringArrayVar(&cfg.Registries, "allow-registry", envRegistries,
		"a registry other than Gantry's own that jobs may pull from, HOST or HOST:PORT (repeatable; $GANTRY_ALLOW_REGISTRIES: H,H; none by default; give every node the same)")
	if v := os.Getenv("GANTRY_GPU_DEVICES"); v != "" {
		gpus = []string{v}
	}
	if v := os.Getenv("GANTRY_GPU_SHAREABLE"); v != "" {
		gpuShareable = []string{v}
	}
	f.StringArrayVar(&gpus, "gpu", gpus, "this node's GPUs, ID[,ID...]: NVIDIA indices or UUIDs, or host device paths such as /dev/nvidia0 "+
		"(repeatable; $GANTRY_GPU_DEVICES; default: the GPUs nvidia-smi lists, if it is installed)")
	f.StringVar(&cfg.GPUMode, "gpu-mode", envOr("GANTRY_GPU_MODE", ""),
		"how --gpu devices reach a container: nvidia (a device request for NVIDIA's runtime) or path (the device file at the same path); default: path when every id is a path")
	f.StringArrayVar(&gpuShareable, "gpu-shareable", gpuShareable,
		"GPUs several tasks may hold at once, ID[,ID...] or all (repeatable; $GANTRY_GPU_SHAREABLE; default: none, one task per GPU)")
	f.StringVar(&raftTimeout, "raft-timeout", envOr("GANTRY_RAFT_TIMEOUT", ""),
		"how long followers wait for a silent leader before electing another (default 250ms, for a LAN; raise it for slow links)")
	f.StringVar(&cfg.Restore, "restore", envOr("GANTRY_RESTORE", ""),
		"on a fresh --data directory: start from this backup (a directory or file written by 'gantry backup') as a new single-node cluster")
	f.StringVar(&dataCache, "data-cache-size", envOr("GANTRY_DATA_CACHE_SIZE", ""),
		"cap of the node's cache of unpacked job inputs; artifacts no task uses are evicted, least recently used first (default 20Gi)")
	f.BoolVar(&debug, "debug", os.Getenv("GANTRY_DEBUG") != "", "debug logging")
	return c
}

// splitList reads a repeatable flag whose values may be comma lists:
// ["a,b", "c"] is [a b c]; an empty item is refused, naming the flag.
func splitList(flag string, vals []string) ([]string, error) {
	var out []string
	for _, v := range vals {
		for _, item := range strings.Split(v, ",") {
			item = strings.TrimSpace(item)
			if item == "" {
				return nil, fmt.Errorf("%s %q: an empty item (want ID[,ID...])", flag, v)
			}
			out = append(out, item)
		}
	}
	return out, nil
}

// clientConfig is what `gantry login` stores.
type clientConfig struct {
	Addr  string `json:"addr"`
	Token string `json:"token"`
	// CA is the PEM of the CA pinned at login for Addr (https:// only;
	// empty: the system's roots); see trust.go.
	CA string `json:"ca,omitempty"`
}

// readConfig reads the saved login (none: the zero config).
func readConfig() (clientConfig, error) {
	var cfg clientConfig
	if b, err := os.ReadFile(configPath()); err == nil {
		if err := json.Unmarshal(b, &cfg); err != nil {
			return cfg, fmt.Errorf("the saved login %s is not readable (%v): run 'gantry login' again, or remove the file", configPath(), err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return cfg, fmt.Errorf("read the saved login: %w", err)
	}
	return cfg, nil
}

// sameAddr reports whether two addresses name the same server.
func sameAddr(a, b string) bool {
	return client.New(a, "").Addr == client.New(b, "").Addr
}

func configPath() string {
	dir, err := os.UserConfigDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "gantry", "config.json")
}

// newClient builds an API client from GANTRY_ADDR/GANTRY_TOKEN, the saved
// login, or the local admin token of a node started in this directory.
func newClient() (*client.Client, error) { return clientOf(true) }

// newPublicClient is a client for public routes: signed in if a login is
// at hand, anonymous otherwise.
func newPublicClient() (*client.Client, error) { return clientOf(false) }

func clientOf(signed bool) (*client.Client, error) {
	cfg, err := readConfig()
	if err != nil {
		return nil, err
	}
	addr := envOr("GANTRY_ADDR", cfg.Addr)
	if addr == "" {
		addr = "http://127.0.0.1:7070"
	}
	token := envOr("GANTRY_TOKEN", cfg.Token)
	if token == "" {
		p := filepath.Join(envOr("GANTRY_DATA", "./gantry-data"), "admin-token")
		if b, err := os.ReadFile(p); err == nil {
			token = strings.TrimSpace(string(b))
		}
	}
	if token == "" && signed {
		return nil, errors.New(tr("auth.not_logged_in"))
	}
	var ca []byte
	if cfg.CA != "" && sameAddr(addr, cfg.Addr) {
		ca = []byte(cfg.CA) // the CA pinned at login trusts this address, and nothing else does
	}
	c, err := client.NewTrusting(addr, token, ca)
	if err != nil {
		return nil, fmt.Errorf("the saved login %s: %w: run 'gantry login' again", configPath(), err)
	}
	return c, nil
}

func loginCmd() *cobra.Command {
	var user, password, addr, caFingerprint, caFile string
	c := &cobra.Command{
		Use:   "login",
		Short: "Sign in and save an API token for later commands",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if addr == "" {
				addr = envOr("GANTRY_ADDR", "http://127.0.0.1:7070")
			}
			if user == "" {
				return errors.New("--user is required")
			}
			addr = client.New(addr, "").Addr
			if caFingerprint != "" {
				if _, err := normalFingerprint(caFingerprint); err != nil {
					return usageErr(cmd, "%v", err)
				}
			}
			// The CA is settled before the password goes anywhere.
			// A saved login that does not read is what this login
			// replaces: it pins nothing.
			saved, _ := readConfig()
			opts := trustOptions{fingerprint: caFingerprint, caFile: caFile, in: os.Stdin, out: os.Stderr, tty: isTerminal(os.Stdin)}
			if sameAddr(saved.Addr, addr) {
				opts.pinned = []byte(saved.CA)
			}
			ca, err := pinCA(cmd.Context(), addr, opts)
			if err != nil {
				return err
			}
			cl, err := client.NewTrusting(addr, "", ca)
			if err != nil {
				return err
			}
			if password == "" {
				password = os.Getenv("GANTRY_PASSWORD")
			}
			if password == "" {
				fmt.Fprint(os.Stderr, tr("login.prompt"))
				b, err := readLine(os.Stdin)
				if err != nil {
					return err
				}
				password = b
			}
			host, _ := os.Hostname()
			tok, err := cl.Login(cmd.Context(), user, password, "cli@"+host)
			if err != nil {
				return fmt.Errorf("login: %w", err)
			}
			b, _ := json.MarshalIndent(clientConfig{Addr: addr, Token: tok, CA: string(ca)}, "", "  ")
			p := configPath()
			if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
				return err
			}
			if err := os.WriteFile(p, b, 0o600); err != nil {
				return fmt.Errorf("save login: %w", err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), tr("login.done", addr, user, p))
			if c, err := parseCAPEM(ca); err == nil {
				fmt.Fprintln(cmd.OutOrStdout(), tr("trust.pinned", fingerprint(c), addr))
			}
			return nil
		},
	}
	c.Flags().StringVarP(&user, "user", "u", "", "user name")
	c.Flags().StringVarP(&password, "password", "p", "", "password (default: $GANTRY_PASSWORD or prompt)")
	c.Flags().StringVar(&addr, "addr", "", "Gantry address (default $GANTRY_ADDR or http://127.0.0.1:7070)")
	c.Flags().StringVar(&caFingerprint, "ca-fingerprint", "",
		"for an https:// address: the SHA-256 fingerprint of the server's CA to pin (hex, colons optional); without it you are asked at a terminal")
	c.Flags().StringVar(&caFile, "ca-file", "", "for an https:// address: trust and pin this CA (PEM) instead of fetching the server's")
	return c
}

func readLine(r io.Reader) (string, error) {
	var b strings.Builder
	buf := make([]byte, 1)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if buf[0] == '\n' {
				break
			}
			b.WriteByte(buf[0])
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return "", err
		}
	}
	return strings.TrimRight(b.String(), "\r"), nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
