// Package cli is the engram program: its command line — serve, migrate,
// projections, audit and user — and, for serve, the assembly of a running
// instance (wire.go). cmd/engram is its shell; tests run it in-process
// through Run, as they run the binary.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/engramhq/engram/platform/config"
	"github.com/engramhq/engram/platform/logging"
)

// Env is what a run of the program reads and writes besides its arguments.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	// Stderr receives the messages of the command line and the log's
	// console output.
	Stderr io.Writer
	// Vars are the configuration variables (ENGRAM_*). Nil means the
	// process environment over the .env file of the working directory.
	Vars map[string]string
	// Version is the build's version, as set at link time ("" to take it
	// from the build information).
	Version string
}

// program is one run of the command line.
type program struct {
	env Env
}

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

// usageError is a mistake on the command line or in the configuration:
// exit status 2.
func usageError(err error) error { return &exitError{code: exitUsage, err: err} }

// failure is a command that ran and failed: exit status 1.
func failure(err error) error { return &exitError{code: exitFailure, err: err} }

// Run runs the command line args (without the program's name) and returns
// the exit status: 0 on success, 2 for a usage mistake (unknown command or
// flag, wrong arguments, missing required flag, invalid configuration), 1
// when the command ran and failed, or the status the command chose (130
// when interrupted). A command that serves (engram serve) runs until ctx
// ends, then shuts down gracefully.
func Run(ctx context.Context, args []string, env Env) int {
	if env.Stdin == nil {
		env.Stdin = strings.NewReader("")
	}
	if env.Stdout == nil {
		env.Stdout = io.Discard
	}
	if env.Stderr == nil {
		env.Stderr = io.Discard
	}
	p := &program{env: env}
	stderr := env.Stderr
	root := p.newRootCommand()
	root.SetIn(env.Stdin)
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

func (p *program) newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "engram",
		Short:         "Engram: an event-sourced backend for conversational workspaces",
		Version:       version(p.env.Version),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(p.env.Stdout)
	root.SetErr(p.env.Stderr)
	root.SetVersionTemplate("engram {{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	root.AddCommand(p.newServeCommand(), p.newMigrateCommand())
	root.AddCommand(p.newProjectionsCommand())
	root.AddCommand(p.newUserCommand())
	root.AddCommand(p.newAuditCommand())
	guardGroups(root)
	return root
}

// newGroup returns a command that only groups subs: guardGroups decides
// what it does when run.
func newGroup(use, short, long string, subs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short, Long: long}
	cmd.AddCommand(subs...)
	return cmd
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

// loadConfig reads the configuration from the run's variables; every
// problem is reported at once with exit status 2.
func (p *program) loadConfig() (config.Config, error) {
	var cfg config.Config
	var err error
	if p.env.Vars != nil {
		cfg, err = config.Load(p.env.Vars)
	} else {
		cfg, err = config.FromEnvironment()
	}
	if err != nil {
		return config.Config{}, usageError(fmt.Errorf("invalid configuration:\n%w", err))
	}
	return cfg, nil
}

// configure loads the configuration and builds the logger it asks for; the
// caller closes the logs when done.
func (p *program) configure() (config.Config, *slog.Logger, io.Closer, error) {
	cfg, err := p.loadConfig()
	if err != nil {
		return config.Config{}, nil, nil, err
	}
	logger, logs, err := p.newLogger(cfg)
	if err != nil {
		return config.Config{}, nil, nil, err
	}
	return cfg, logger, logs, nil
}

// withConfig runs fn with the configuration and the logger it asks for,
// whose logs are closed when fn returns.
func (p *program) withConfig(fn func(cfg config.Config, logger *slog.Logger) error) error {
	cfg, logger, logs, err := p.configure()
	if err != nil {
		return err
	}
	defer func() { _ = logs.Close() }()
	return fn(cfg, logger)
}

// logFlushEvery bounds how long a log record waits to be written: an
// instance under load logs a line per request, and writing them together
// costs one system call instead of one each. Warnings and errors are
// written at once.
const logFlushEvery = 100 * time.Millisecond

// newLogger builds the logger cfg asks for, its console output going to
// the run's standard error.
func (p *program) newLogger(cfg config.Config) (*slog.Logger, io.Closer, error) {
	logger, closer, err := logging.New(logging.Options{Level: cfg.LogLevel, Format: cfg.LogFormat, Dir: cfg.LogDir,
		Console: p.env.Stderr, FlushEvery: logFlushEvery})
	if err != nil {
		return nil, nil, usageError(fmt.Errorf("logging: %w", err))
	}
	return logger, closer, nil
}
