package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/jmoiron/sqlx"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/engramhq/engram/commands"
	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/user"
	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/platform/config"
	"github.com/engramhq/engram/platform/security"
)

func (p *program) newUserCommand() *cobra.Command {
	return newGroup("user", "Create users and grant roles",
		"Create users and grant them the global roles user, admin or auditor.\n"+
			"Passwords are read from an interactive prompt (not echoed) or, when standard\n"+
			"input is not a terminal, from its first line; never from the command line.",
		p.newUserCreateCommand(), p.newUserGrantCommand())
}

func (p *program) newUserCreateCommand() *cobra.Command {
	var email, displayName, role string
	cmd := &cobra.Command{
		Use:   "create --email ADDRESS --display-name NAME [--role user|admin|auditor]",
		Short: "Create a user; the password is read from a prompt or standard input",
		Example: "  engram user create --email ada@example.com --display-name Ada --role admin\n" +
			"  printf '%s\\n' \"$PASSWORD\" | engram user create --email ci@example.com --display-name CI",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkRole(role); err != nil {
				return err
			}
			password, err := readPassword(cmd.InOrStdin(), cmd.ErrOrStderr(), "Password for "+email+": ", true)
			if err != nil {
				return err
			}
			return p.withOperator(cmd, func(ctx context.Context, op userAdmin) error {
				reg, err := op.commands.Register.Handle(ctx, commands.Register{Email: email, Password: password, DisplayName: displayName})
				if err != nil {
					return cliError(err)
				}
				roles, position := reg.User.Roles, reg.Position
				if role != user.RoleUser {
					res, err := op.grant.Handle(ctx, commands.GrantRole{Email: reg.User.Email, Role: role, By: op.name})
					if err != nil {
						return cliError(err)
					}
					roles, position = res.User.Roles, max(position, res.Position)
				}
				op.notify(ctx)
				fmt.Fprintf(cmd.OutOrStdout(), "created user %s %s roles %s position %d\n",
					reg.User.ID, reg.User.Email, strings.Join(roles, ","), position)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&email, "email", "", "e-mail address (required)")
	cmd.Flags().StringVar(&displayName, "display-name", "", "display name (required)")
	cmd.Flags().StringVar(&role, "role", user.RoleUser, "global role: user, admin or auditor")
	_ = cmd.MarkFlagRequired("email")
	_ = cmd.MarkFlagRequired("display-name")
	return cmd
}

func (p *program) newUserGrantCommand() *cobra.Command {
	var email, role string
	cmd := &cobra.Command{
		Use:     "grant --email ADDRESS --role user|admin|auditor",
		Short:   "Grant a global role to a user",
		Long:    "Grant a global role to a user. It applies to the user's next login or token refresh.",
		Example: "  engram user grant --email ada@example.com --role auditor",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkRole(role); err != nil {
				return err
			}
			return p.withOperator(cmd, func(ctx context.Context, op userAdmin) error {
				res, err := op.grant.Handle(ctx, commands.GrantRole{Email: email, Role: role, By: op.name})
				if err != nil {
					return cliError(err)
				}
				if res.Position == 0 {
					fmt.Fprintf(cmd.OutOrStdout(), "user %s %s already holds %s\n", res.User.ID, res.User.Email, role)
					return nil
				}
				op.notify(ctx)
				fmt.Fprintf(cmd.OutOrStdout(), "granted %s to user %s %s roles %s position %d\n",
					role, res.User.ID, res.User.Email, strings.Join(res.User.Roles, ","), res.Position)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&email, "email", "", "e-mail address of the user (required)")
	cmd.Flags().StringVar(&role, "role", "", "global role: user, admin or auditor (required)")
	_ = cmd.MarkFlagRequired("email")
	_ = cmd.MarkFlagRequired("role")
	return cmd
}

func checkRole(role string) error {
	switch role {
	case user.RoleUser, user.RoleAdmin, user.RoleAuditor:
		return nil
	}
	return usageError(fmt.Errorf("--role %q: must be one of user, admin, auditor", role))
}

// userAdmin is what the user commands work with: the command handlers over
// the event store, and who runs them.
type userAdmin struct {
	commands commands.Commands
	grant    *commands.GrantRoleHandler
	notify   func(ctx context.Context)
	// name is recorded as the actor of the events, e.g. "cli:alice@host".
	name string
}

// withOperator opens the database (migrating it when ENGRAM_AUTO_MIGRATE
// says so) and runs fn with the command handlers.
func (p *program) withOperator(cmd *cobra.Command, fn func(ctx context.Context, op userAdmin) error) error {
	ctx := cmd.Context()
	return p.withDatabase(ctx, autoMigrate, func(cfg config.Config, logger *slog.Logger, db *sqlx.DB) error {
		store, err := eventstore.New(db)
		if err != nil {
			return err
		}
		tokens, err := security.NewTokens(cfg.JWTSecret.Bytes(), cfg.JWTIssuer, cfg.JWTAudience, cfg.AccessTokenTTL, nil)
		if err != nil {
			return err
		}
		cmds, err := commands.New(commands.Dependencies{
			Store: store, Hasher: security.NewPasswordHasher(), Tokens: tokens, Secrets: secrets{}, RefreshTTL: cfg.RefreshTokenTTL,
		})
		if err != nil {
			return err
		}
		grant, err := commands.NewGrantRoleHandler(store)
		if err != nil {
			return err
		}
		ctx := commands.WithMetadata(ctx, eventstore.Metadata{})
		return fn(ctx, userAdmin{commands: cmds, grant: grant, name: operator(),
			notify: func(ctx context.Context) {
				// Wake the servers' projectors now rather than at their next poll.
				if _, err := db.ExecContext(ctx, `SELECT pg_notify($1, '')`, eventstore.NotifyChannel); err != nil {
					logger.Debug("could not notify the servers of the new events", "err", err)
				}
			}})
	})
}

// readPassword reads a password without echo from a terminal (twice when
// confirm is set), or else the first line of in.
func readPassword(in io.Reader, prompt io.Writer, label string, confirm bool) (string, error) {
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(prompt, label)
		pw, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(prompt)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		if confirm {
			fmt.Fprint(prompt, "Repeat the password: ")
			again, err := term.ReadPassword(int(f.Fd()))
			fmt.Fprintln(prompt)
			if err != nil {
				return "", fmt.Errorf("read password: %w", err)
			}
			if string(again) != string(pw) {
				return "", usageError(errors.New("the passwords differ"))
			}
		}
		return string(pw), nil
	}
	// One line, bounded: the password rules allow 1,024 bytes.
	r := bufio.NewReaderSize(io.LimitReader(in, 4*user.MaxPasswordBytes), 4*user.MaxPasswordBytes)
	line, err := r.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password from standard input: %w", err)
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if line == "" {
		return "", usageError(errors.New("no password on standard input (write it as the first line)"))
	}
	return line, nil
}

// cliError turns a domain error into an exit status and a message that
// names every invalid field; it never repeats a password.
func cliError(err error) error {
	var de *domain.Error
	if !errors.As(err, &de) {
		return err
	}
	msg := de.Message
	for _, f := range de.Fields {
		msg += "\n  " + f.Field + ": " + f.Message
	}
	if de.Code == domain.CodeInvalid {
		return usageError(errors.New(msg))
	}
	return failure(errors.New(msg))
}
