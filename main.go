// Command gantry is Gantry's single binary: `gantry server` runs a node,
// the other commands are the CLI client (see INTERFACE.md).
package main

import (
	"context"
	"os"

	"gantry/cli"
	"gantry/node"
)

func main() { os.Exit(cli.Main(os.Args[1:], runServer)) }

// runServer runs a node with the configuration `gantry server` parsed.
func runServer(ctx context.Context, c cli.ServerConfig) error {
	return node.New(node.Config{
		DataDir: c.DataDir, HTTPAddr: c.HTTPAddr, ClusterAddr: c.ClusterAddr, Advertise: c.Advertise,
		Name: c.Name, Join: c.Join, Token: c.Token, AdminPassword: c.AdminPassword, Labels: c.Labels, Registries: c.Registries,
		GPUs: c.GPUs, GPUMode: c.GPUMode, GPUShareable: c.GPUShareable,
		JobRetention: c.JobRetention, LogRetention: c.LogRetention, RaftTimeout: c.RaftTimeout, HistoryInterval: c.HistoryInterval, Restore: c.Restore, Logger: c.Logger,
		DataCacheSize: c.DataCacheSize, TLSCert: c.TLSCert, TLSKey: c.TLSKey, HTTPPlainFrom: c.HTTPPlainFrom,
	}).Run(ctx)
}
