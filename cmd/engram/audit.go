package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/engramhq/engram/audit"
	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/auditlog"
	"github.com/engramhq/engram/eventstore"
)

// The audit commands read the event log directly from the database named by
// ENGRAM_DATABASE_URL: whoever runs them holds the database's credentials,
// so no role is asked for. Every read is recorded all the same, in the audit
// stream of the operator ("audit-cli:<user>@<host>").

func newAuditCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Verify, export and replay the event log",
		Long: "Verify the hash chains of the event log, export its events as NDJSON, and fold a\n" +
			"stream's state as it was at a version or a time. Secrets are never shown, and every\n" +
			"read is itself recorded in the log.",
	}
	cmd.AddCommand(newAuditVerifyCommand(), newAuditExportCommand(), newAuditStateCommand())
	return cmd
}

func newAuditVerifyCommand() *cobra.Command {
	var streamID string
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check every stream's hash chain and version sequence",
		Long: "Check every stream's hash chain and version sequence (or one stream's, with\n" +
			"--stream) and print each break with its stream, version and position. The exit\n" +
			"status is 1 when anything is wrong.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withAudit(cmd, func(ctx context.Context, svc *audit.Service, r audit.Reader) error {
				out := bufio.NewWriter(cmd.OutOrStdout())
				report, err := svc.Verify(ctx, r, streamID, func(b eventstore.Break) error {
					_, err := fmt.Fprintf(out, "BREAK stream=%s version=%d position=%d reason=%q\n", b.StreamID, b.Version, b.Position, b.Reason)
					return err
				})
				if err != nil {
					return err
				}
				summary := "no breaks, the log is intact"
				if report.Breaks > 0 {
					summary = fmt.Sprintf("%d breaks", report.Breaks)
				}
				if _, err := fmt.Fprintf(out, "checked %d streams, %d events: %s\n", report.Streams, report.Events, summary); err != nil {
					return err
				}
				if err := out.Flush(); err != nil {
					return err
				}
				if report.Breaks > 0 {
					return &exitError{code: 1, err: fmt.Errorf("the event log has %d breaks", report.Breaks)}
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&streamID, "stream", "", "verify only this stream (e.g. user-<id>)")
	return cmd
}

// exportFlags are the filters of `engram audit export`.
type exportFlags struct {
	from, to, streamID, streamType, actor, output string
	types                                         []string
	limit                                         int
	noProgress                                    bool
}

func newAuditExportCommand() *cobra.Command {
	var f exportFlags
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write events of the log as NDJSON, secrets removed",
		Long: "Write the events of the log in position order, one JSON object a line, with the\n" +
			"shape of the audit API's items and without secrets. --from and --to take a global\n" +
			"position (inclusive) or an RFC 3339 time (from inclusive, to exclusive). A progress\n" +
			"bar is shown on standard error.",
		Example: "  engram audit export --from 1 --to 5000 > events.ndjson\n" +
			"  engram audit export --from 2026-01-01T00:00:00Z --type user.role_granted -o grants.ndjson",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q, err := f.query()
			if err != nil {
				return err
			}
			return withAudit(cmd, func(ctx context.Context, svc *audit.Service, r audit.Reader) error {
				return export(ctx, cmd, svc, r, q, f)
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.from, "from", "", "first position, or earliest time (RFC 3339)")
	fl.StringVar(&f.to, "to", "", "last position, or time to stop before (RFC 3339)")
	fl.StringVar(&f.streamID, "stream", "", "only this stream")
	fl.StringVar(&f.streamType, "stream-type", "", "only streams of this type (e.g. user)")
	fl.StringSliceVar(&f.types, "type", nil, "only these event types (repeatable, or a comma list)")
	fl.StringVar(&f.actor, "actor", "", "only events recorded on behalf of this actor")
	fl.IntVar(&f.limit, "limit", 0, "at most this many events (default: all)")
	fl.StringVarP(&f.output, "output", "o", "", "write to this file instead of standard output")
	fl.BoolVar(&f.noProgress, "no-progress", false, "do not show the progress bar")
	return cmd
}

// query turns the flags into a query, reporting every invalid one.
func (f exportFlags) query() (audit.Query, error) {
	var (
		v domain.Validation
		q = audit.Query{Limit: f.limit}
	)
	q.Filter.FromPosition, q.Filter.From = positionOrTime(&v, "--from", f.from)
	q.Filter.ToPosition, q.Filter.To = positionOrTime(&v, "--to", f.to)
	q.Filter.StreamID, q.Filter.StreamType, q.Filter.ActorID = f.streamID, f.streamType, f.actor
	for _, t := range f.types {
		q.Filter.Types = append(q.Filter.Types, strings.TrimSpace(t))
	}
	if err := v.Err(); err != nil {
		return q, &exitError{code: 2, err: err}
	}
	q.Check(&v, false)
	if err := v.Err(); err != nil {
		return q, &exitError{code: 2, err: err}
	}
	return q, nil
}

// positionOrTime reads a bound given as a global position or an RFC 3339 time.
func positionOrTime(v *domain.Validation, flag, raw string) (int64, time.Time) {
	if raw == "" {
		return 0, time.Time{}
	}
	if n, err := strconv.ParseInt(raw, 10, 64); err == nil {
		v.Check(n >= 1, flag, "must be a positive position or an RFC 3339 time")
		return n, time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, raw)
	if err != nil {
		v.Add(flag, "must be a positive position or an RFC 3339 time, e.g. 2026-01-02T15:04:05Z")
	}
	return 0, t
}

func export(ctx context.Context, cmd *cobra.Command, svc *audit.Service, r audit.Reader, q audit.Query, f exportFlags) error {
	w := cmd.OutOrStdout()
	var file *os.File
	if f.output != "" {
		var err error
		if file, err = os.Create(f.output); err != nil {
			return fmt.Errorf("export: %w", err)
		}
		defer func() { _ = file.Close() }() // synced below; a close error loses nothing
		w = file
	}
	out := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)

	var bar *progressbar.ProgressBar
	if !f.noProgress {
		total, err := svc.Count(ctx, q)
		if err != nil {
			return err
		}
		bar = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(cmd.ErrOrStderr()),
			progressbar.OptionSetDescription("exporting"),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("events"),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionSetRenderBlankState(true),
		)
	}
	const step = 100
	pending := 0
	var first, last int64
	n, err := svc.Export(ctx, r, q, func(it audit.Item) error {
		if first == 0 {
			first = it.GlobalPosition
		}
		last = it.GlobalPosition
		if err := enc.Encode(it); err != nil {
			return err
		}
		if pending++; pending == step && bar != nil {
			pending = 0
			return bar.Add(step)
		}
		return nil
	})
	if err == nil {
		err = out.Flush()
	}
	if err == nil && file != nil {
		err = file.Sync()
	}
	if bar != nil {
		if pending > 0 {
			_ = bar.Add(pending)
		}
		_ = bar.Finish()
		note(cmd.ErrOrStderr(), "\n")
	}
	if err != nil {
		return fmt.Errorf("export stopped after %d events: %w", n, err)
	}
	if n == 0 {
		note(cmd.ErrOrStderr(), "exported 0 events\n")
	} else {
		note(cmd.ErrOrStderr(), "exported %d events, positions %d to %d\n", n, first, last)
	}
	return nil
}

// note writes a message for the operator on standard error; a failure to
// write it changes nothing of the outcome.
func note(w io.Writer, format string, args ...any) {
	_, _ = fmt.Fprintf(w, format, args...)
}

func newAuditStateCommand() *cobra.Command {
	var (
		version int
		at      string
	)
	cmd := &cobra.Command{
		Use:   "state STREAM",
		Short: "Print a stream's state as it was at a version or a time",
		Long: "Fold a stream's events up to --version N or --at <RFC 3339 time> (its latest state\n" +
			"when neither is given) and print the state, without secrets, as JSON.",
		Example: "  engram audit state workspace-0190a3b4-… --version 3\n" +
			"  engram audit state user-0190a3b4-… --at 2026-01-02T15:04:05Z",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var (
				v     domain.Validation
				point = audit.Point{Version: version}
			)
			v.Check(version >= 0, "--version", "must be a positive integer")
			if at != "" {
				t, err := time.Parse(time.RFC3339Nano, at)
				v.Check(err == nil, "--at", "must be an RFC 3339 time, e.g. 2026-01-02T15:04:05Z")
				point.At = t
			}
			v.Check(version == 0 || at == "", "--at", "give --version or --at, not both")
			if err := v.Err(); err != nil {
				return &exitError{code: 2, err: err}
			}
			return withAudit(cmd, func(ctx context.Context, svc *audit.Service, r audit.Reader) error {
				st, err := svc.State(ctx, r, args[0], point)
				if err != nil {
					return err
				}
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetEscapeHTML(false)
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			})
		},
	}
	cmd.Flags().IntVar(&version, "version", 0, "fold the first N events")
	cmd.Flags().StringVar(&at, "at", "", "fold the events recorded at or before this RFC 3339 time")
	return cmd
}

// withAudit opens the database and runs fn with an audit service and the
// operator as reader.
func withAudit(cmd *cobra.Command, fn func(ctx context.Context, svc *audit.Service, r audit.Reader) error) error {
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	logger, closeLogs, err := newLogger(cfg)
	if err != nil {
		return err
	}
	defer closeLogs.Close()
	ctx := cmd.Context()
	db, err := openDatabase(ctx, cfg, false, logger)
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()
	store, err := eventstore.New(db)
	if err != nil {
		return err
	}
	svc, err := audit.New(db, store)
	if err != nil {
		return err
	}
	id := uuid.Must(uuid.NewV7()).String()
	return fn(ctx, svc, audit.Reader{ActorID: operator(), Via: auditlog.ViaCLI, RequestID: id})
}

// operator names who runs the command: "cli:<user>@<host>".
func operator() string {
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	if name == "" {
		name = "unknown"
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return sanitizeID("cli:" + name + "@" + host)
}

// sanitizeID replaces characters an identifier may not hold.
func sanitizeID(s string) string {
	return strings.Map(func(r rune) rune {
		if r <= ' ' || r == 0x7f {
			return '_'
		}
		return r
	}, s)
}
