package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/engramhq/engram/migrations"
)

func (p *program) newMigrateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Apply pending database migrations",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, logger, logs, err := p.configure()
			if err != nil {
				return err
			}
			defer logs.Close()
			db, err := openDatabase(cmd.Context(), cfg, true, logger)
			if err != nil {
				return err
			}
			defer db.Close()
			v, err := migrations.Version(cmd.Context(), db.DB)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "database %s is at schema version %d\n", redactURL(cfg.DatabaseURL), v)
			return nil
		},
	}
}
