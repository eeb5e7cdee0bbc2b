// Command gantry is Gantry's single binary: `gantry server` runs a node,
// the other commands are the CLI client (see INTERFACE.md).
package main

import (
	"os"

	"gantry/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:])) }
