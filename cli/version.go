package cli

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"gantry/version"
	"gantry/wire"
)

// versionOutput is what `gantry version -o json` prints.
type versionOutput struct {
	Client version.Info `json:"client"`
	// Server is the version of the node the CLI talks to; absent when it
	// cannot be reached.
	Server *wire.Health `json:"server,omitempty"`
	// ServerError says why the server's version is unknown.
	ServerError string `json:"server_error,omitempty"`
}

func versionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of this binary and of the server it talks to",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			out := versionOutput{Client: version.Get()}
			cl, err := newPublicClient()
			if err == nil {
				ctx, cancel := context.WithTimeout(cmd.Context(), 3*time.Second)
				defer cancel()
				var h wire.Health
				if err = cl.Do(ctx, http.MethodGet, "/healthz", nil, &h); err == nil {
					out.Server = &h
				}
			}
			if err != nil {
				out.ServerError = err.Error()
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), out)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "gantry %s\n", out.Client)
			if out.Server != nil {
				s := out.Server.Version
				if out.Server.Commit != "" {
					c := out.Server.Commit
					if len(c) > 12 {
						c = c[:12]
					}
					s += " (commit " + c + ")"
				}
				fmt.Fprintf(w, "server %s: %s\n", cl.Addr, s)
			} else {
				fmt.Fprintf(w, "server: not reachable (%s)\n", out.ServerError)
			}
			return nil
		},
	}
}
