// Command regserver runs the registry alone on a port, over a real store
// with registrytest's direct FSM proposer, for the conformance suite and the
// benchmarks until `gantry server` serves it. Not shipped.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"gantry/node/registry"
	"gantry/node/registry/registrytest"
	"gantry/store"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "regserver:", err)
		os.Exit(1)
	}
}

func run() error {
	dir := flag.String("data", "", "data directory (required)")
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	users := flag.String("users", "", "comma-separated user:password[:admin] to create")
	addrFile := flag.String("addr-file", "", "write the bound address here")
	quiet := flag.Bool("quiet", false, "log warnings only")
	flag.Parse()
	if *dir == "" {
		return errors.New("-data is required")
	}
	level := slog.LevelInfo
	if *quiet {
		level = slog.LevelWarn
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	st, err := store.Open(filepath.Join(*dir, "state"), logger)
	if err != nil {
		return err
	}
	defer st.Close()
	prop := &registrytest.DirectProposer{Store: st}
	ctx := context.Background()
	for _, spec := range splitNonEmpty(*users, ",") {
		parts := splitNonEmpty(spec, ":")
		if len(parts) < 2 {
			return fmt.Errorf("bad -users entry %q", spec)
		}
		if _, err := st.User(parts[0]); err == nil {
			continue
		}
		if err := registrytest.CreateUser(ctx, prop, parts[0], parts[1], len(parts) > 2 && parts[2] == "admin"); err != nil {
			return err
		}
	}
	reg, err := registry.New(registry.Config{Dir: filepath.Join(*dir, "registry"), Store: st, Proposer: prop,
		Auth: registrytest.StoreAuth{Store: st}, Logger: logger, NodeSecret: os.Getenv("REGSERVER_NODE_SECRET")})
	if err != nil {
		return err
	}
	defer reg.Close()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	if *addrFile != "" {
		if err := os.WriteFile(*addrFile, []byte(ln.Addr().String()), 0o644); err != nil {
			return err
		}
	}
	logger.Info("registry listening", "addr", ln.Addr().String())
	srv := &http.Server{Handler: reg}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() { <-sig; srv.Close() }()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func splitNonEmpty(s, sep string) []string {
	var out []string
	for _, p := range strings.Split(s, sep) {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}
