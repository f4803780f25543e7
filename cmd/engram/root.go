package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/engramhq/engram/platform/config"
)

// Exit statuses shared by every command.
const (
	exitFailure = 1 // the command ran and failed
	exitUsage   = 2 // the command line or the configuration is wrong
)

// exitError carries a process exit status through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// usageError is a mistake on the command line: exit status 2.
func usageError(err error) error { return &exitError{code: exitUsage, err: err} }

func run(ctx context.Context, args []string) int {
	return execute(ctx, args, os.Stdin, os.Stdout, os.Stderr)
}

// execute runs the command line args and returns the exit status: 0 on
// success, 2 for a usage mistake (unknown command or flag, wrong arguments,
// missing required flag, invalid configuration), 1 when the command ran and
// failed, or the status the command chose (130 when interrupted).
func execute(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCommand(stdout, stderr)
	root.SetIn(stdin)
	root.SetArgs(args)
	// Whatever cobra refuses before a command runs (flags, arguments,
	// required flags) is a usage mistake.
	ran := false
	markRunning(root, &ran)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	var ee *exitError
	if !errors.As(err, &ee) {
		code := exitFailure
		if !ran {
			code = exitUsage
		}
		ee = &exitError{code: code, err: err}
	}
	if ee.err != nil && ee.err.Error() != "" {
		fmt.Fprintln(stderr, "engram:", ee.err)
		if ee.code == exitUsage && !ran && cmd != nil {
			fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
		}
	}
	return ee.code
}

func newRootCommand(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "engram",
		Short:         "Engram: an event-sourced backend for conversational workspaces",
		Version:       version(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetVersionTemplate("engram {{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	root.AddCommand(newServeCommand(), newMigrateCommand())
	root.AddCommand(newProjectionsCommand())
	root.AddCommand(newUserCommand())
	root.AddCommand(newAuditCommand())
	guardGroups(root)
	return root
}

// guardGroups makes every command that only groups subcommands (engram,
// engram projections, …) refuse an unknown subcommand with a usage error and
// a "did you mean" hint, instead of printing its help and succeeding.
func guardGroups(cmd *cobra.Command) {
	for _, sub := range cmd.Commands() {
		guardGroups(sub)
	}
	if !cmd.HasSubCommands() || cmd.Runnable() {
		return
	}
	cmd.Args = cobra.ArbitraryArgs
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return cmd.Help()
		}
		return unknownCommand(cmd, args[0])
	}
}

// unknownCommand reports name as an unknown subcommand of cmd, with the
// closest names when there are any.
func unknownCommand(cmd *cobra.Command, name string) error {
	msg := fmt.Sprintf("unknown command %q for %q", name, cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2 // cobra's own default
	}
	if suggestions := cmd.SuggestionsFor(name); len(suggestions) > 0 {
		msg += "; did you mean " + strings.Join(quoteAll(suggestions), " or ") + "?"
	}
	return usageError(errors.New(msg))
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

// markRunning wraps the RunE of every command that does work (not of the
// groups) so that *ran turns true once its code starts: errors before that
// come from cobra's checks of the command line.
func markRunning(cmd *cobra.Command, ran *bool) {
	for _, sub := range cmd.Commands() {
		markRunning(sub, ran)
	}
	if cmd.RunE == nil || cmd.HasSubCommands() {
		return
	}
	runE := cmd.RunE
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		*ran = true
		return runE(cmd, args)
	}
}

// loadConfig reads the configuration; every problem is reported at once with
// exit status 2.
func loadConfig() (config.Config, error) {
	cfg, err := config.FromEnvironment()
	if err != nil {
		return config.Config{}, usageError(fmt.Errorf("invalid configuration:\n%w", err))
	}
	return cfg, nil
}
