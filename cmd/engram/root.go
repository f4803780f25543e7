package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/engramhq/engram/platform/config"
)

// exitError carries a process exit status through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

func run(ctx context.Context, args []string) int {
	root := newRootCommand(os.Stdout, os.Stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil && ee.err.Error() != "" {
			fmt.Fprintln(os.Stderr, "engram:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(os.Stderr, "engram:", err)
	return 1
}

func newRootCommand(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "engram",
		Short:         "Engram: an event-sourced backend for conversational workspaces",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newServeCommand(), newMigrateCommand())
	root.AddCommand(newProjectionsCommand())
	root.AddCommand(newUserCommand())
	root.AddCommand(newAuditCommand())
	return root
}

// loadConfig reads the configuration; every problem is reported at once with
// exit status 2.
func loadConfig() (config.Config, error) {
	cfg, err := config.FromEnvironment()
	if err != nil {
		return config.Config{}, &exitError{code: 2, err: fmt.Errorf("invalid configuration:\n%w", err)}
	}
	return cfg, nil
}
