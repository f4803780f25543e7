// Command engram runs Engram and its operator tools: serve, migrate,
// projections, audit and user management. The program itself is package
// cli; this is its shell.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/engramhq/engram/cmd/engram/cli"
)

// buildVersion is set at link time by the Makefile:
//
//	go build -ldflags "-X main.buildVersion=$(git describe --tags --always --dirty)"
//
// Without it, the version comes from the build information Go records.
var buildVersion string

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], cli.Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Version: buildVersion})
	stop()
	os.Exit(code)
}
