package cli

import (
	"fmt"
	"log/slog"

	"github.com/jmoiron/sqlx"
	"github.com/spf13/cobra"

	"github.com/engramhq/engram/migrations"
	"github.com/engramhq/engram/platform/config"
)

func (p *program) newMigrateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Apply pending database migrations",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return p.withDatabase(cmd.Context(), alwaysMigrate, func(cfg config.Config, _ *slog.Logger, db *sqlx.DB) error {
				v, err := migrations.Version(cmd.Context(), db.DB)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "database %s is at schema version %d\n", redactURL(cfg.DatabaseURL), v)
				return nil
			})
		},
	}
}
