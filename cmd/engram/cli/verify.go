package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/engramhq/engram/audit"
	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/platform/config"
)

// newProjectionsVerifyCommand is "engram projections verify [NAME]": the
// check an operator runs when in doubt about a read model.
func (p *program) newProjectionsVerifyCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify [NAME]",
		Short: "Compare the SQL read models with the event log",
		Long: "Fold the event log with the aggregates and compare each SQL read model (or the one\n" +
			"named: " + strings.Join(audit.ReadModelNames(), ", ") + ") with it, up to its projector's\n" +
			"checkpoint, in one snapshot. Every missing row, extra row, differing column and\n" +
			"parked event is named. The exit status is 0 when every model agrees with the log,\n" +
			"1 when one does not, 2 for a name that is not a read model. The servers may keep\n" +
			"running; the verification is recorded in the operator's audit stream.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			return p.withAudit(cmd, func(ctx context.Context, _ config.Config, svc *audit.Service, r audit.Reader) error {
				report, err := svc.VerifyProjections(ctx, r, name)
				if domain.ErrorCode(err) == domain.CodeInvalid {
					return usageError(err)
				}
				if err != nil {
					return err
				}
				if asJSON {
					if err := json.NewEncoder(cmd.OutOrStdout()).Encode(report); err != nil {
						return err
					}
				} else if err := printProjectionsReport(cmd, report); err != nil {
					return err
				}
				if !report.OK {
					return failure(errors.New(disagreeing(report)))
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

// printProjectionsReport prints one line per read model and one per
// difference.
func printProjectionsReport(cmd *cobra.Command, report audit.ProjectionsReport) error {
	out := bufio.NewWriter(cmd.OutOrStdout())
	for _, m := range report.ReadModels {
		state := "agrees with the log"
		if m.DifferenceCount > 0 {
			state = fmt.Sprintf("%d differences", m.DifferenceCount)
		}
		checkpoint := fmt.Sprintf("checkpoint %d", m.CheckpointPosition)
		if !m.Started {
			checkpoint = "not started"
		}
		fmt.Fprintf(out, "%-14s %s, %d events, %d rows (%s): %s\n", m.Name, checkpoint, m.Events, m.Rows,
			strings.Join(m.Tables, ", "), state)
		for _, d := range m.Differences {
			fmt.Fprintf(out, "  %s\n", d)
		}
		if n := m.DifferenceCount - len(m.Differences); n > 0 {
			fmt.Fprintf(out, "  … and %d more\n", n)
		}
	}
	return out.Flush()
}

// disagreeing names the read models that differ from the log.
func disagreeing(report audit.ProjectionsReport) string {
	var names []string
	for _, m := range report.ReadModels {
		if m.DifferenceCount > 0 {
			names = append(names, m.Name)
		}
	}
	return "read models that differ from the log: " + strings.Join(names, ", ")
}
