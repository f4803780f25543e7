package cli

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/engramhq/engram/audit"
	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/auditlog"
	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/platform/config"
)

// The audit commands read the event log directly from the database named by
// ENGRAM_DATABASE_URL: whoever runs them holds the database's credentials,
// so no role is asked for. Every read is recorded all the same, in the audit
// stream of the operator ("audit-cli:<user>@<host>").

func (p *program) newAuditCommand() *cobra.Command {
	return newGroup("audit", "Verify, checkpoint, export and replay the event log",
		"Verify the hash chains of the event log, sign checkpoints of it and verify it against\n"+
			"them, export its events as NDJSON, and fold a stream's state as it was at a version or\n"+
			"a time. Secrets are never shown, and every read is itself recorded in the log.",
		p.newAuditVerifyCommand(), p.newAuditExportCommand(), p.newAuditStateCommand(),
		p.newAuditKeygenCommand(), p.newAuditCheckpointCommand())
}

func (p *program) newAuditVerifyCommand() *cobra.Command {
	var streamID, checkpoint, publicKey string
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check every stream's hash chain and version sequence, and the log against a checkpoint",
		Long: "Check every stream's hash chain and version sequence (or one stream's, with\n" +
			"--stream) and print each break with its stream, version and position. With\n" +
			"--checkpoint, also check the signature of a checkpoint written by `engram audit\n" +
			"checkpoint` and that every event it covers is still there, unchanged, and nothing was\n" +
			"slipped in among them, printing each change with its positions; events written since\n" +
			"are not its concern. The exit status is 1 when anything is wrong.",
		Example: "  engram audit verify\n" +
			"  engram audit verify --checkpoint checkpoint-2026-05-04.json --public-key audit-key.pem.pub",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var v domain.Validation
			v.Check(checkpoint == "" || streamID == "", "--stream", "cannot be combined with --checkpoint, which covers the whole log")
			v.Check(publicKey == "" || checkpoint != "", "--public-key", "needs --checkpoint")
			if err := v.Err(); err != nil {
				return usageError(err)
			}
			var (
				cp  *audit.Checkpoint
				pub ed25519.PublicKey
				err error
			)
			if checkpoint != "" {
				if cp, pub, err = readCheckpointFlags(checkpoint, publicKey); err != nil {
					return err
				}
			}
			return p.withAudit(cmd, func(ctx context.Context, _ config.Config, svc *audit.Service, r audit.Reader) error {
				return verify(ctx, cmd, svc, r, streamID, cp, pub)
			})
		},
	}
	cmd.Flags().StringVar(&streamID, "stream", "", "verify only this stream (e.g. user-<id>)")
	cmd.Flags().StringVar(&checkpoint, "checkpoint", "", "also verify the log against this checkpoint file")
	cmd.Flags().StringVar(&publicKey, "public-key", "",
		"the key the checkpoint must be signed by: a PEM file (as keygen writes) or its base64 (default: the key the checkpoint names)")
	return cmd
}

// readCheckpointFlags reads the checkpoint file and the public key given.
func readCheckpointFlags(path, publicKey string) (*audit.Checkpoint, ed25519.PublicKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, usageError(fmt.Errorf("--checkpoint: %w", err))
	}
	defer func() { _ = f.Close() }() // read-only
	cp, err := audit.ReadCheckpoint(f)
	if err != nil {
		return nil, nil, usageError(fmt.Errorf("--checkpoint %s: %w", path, err))
	}
	if publicKey == "" {
		return cp, nil, nil
	}
	text := []byte(publicKey)
	if _, err := audit.ParsePublicKey(text); err != nil {
		if text, err = os.ReadFile(publicKey); err != nil {
			return nil, nil, usageError(fmt.Errorf("--public-key: neither a base64 key nor a readable file: %w", err))
		}
	}
	pub, err := audit.ParsePublicKey(text)
	if err != nil {
		return nil, nil, usageError(fmt.Errorf("--public-key: %w", err))
	}
	return cp, pub, nil
}

// verify checks the hash chains, and the log against cp when it is not nil.
func verify(ctx context.Context, cmd *cobra.Command, svc *audit.Service, r audit.Reader, streamID string,
	cp *audit.Checkpoint, pub ed25519.PublicKey) error {
	out := bufio.NewWriter(cmd.OutOrStdout())
	report, err := svc.Verify(ctx, r, streamID, printBreak(out))
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
	var problems []string
	if report.Breaks > 0 {
		problems = append(problems, fmt.Sprintf("the event log has %d breaks", report.Breaks))
	}
	if cp != nil {
		cr, err := svc.VerifyCheckpoint(ctx, r, cp, pub, func(ch audit.CheckpointChange) error {
			_, err := fmt.Fprintf(out, "CHANGE change=%s positions=%s events=%d: %s\n", ch.Change, ch.Positions, ch.Events, ch)
			return err
		})
		switch {
		case errors.Is(err, audit.ErrCheckpointInvalid):
			problems = append(problems, err.Error())
		case err != nil:
			return err
		default:
			summary := "every event it covers is intact"
			if cr.Changes > 0 {
				summary = fmt.Sprintf("%d changes", cr.Changes)
				problems = append(problems, fmt.Sprintf("the event log differs from the checkpoint: %d changes", cr.Changes))
			}
			if _, err := fmt.Fprintf(out, "checkpoint of %s signed by %s: %d events up to position %d, %d found: %s\n",
				cp.CreatedAt.Format(time.RFC3339), cr.SignedBy, cr.Events, cr.Position, cr.Found, summary); err != nil {
				return err
			}
			if pub == nil {
				note(cmd.ErrOrStderr(), "note: the checkpoint was checked with the key it names itself (%s): compare it with the key you trust, or pass --public-key\n", cr.SignedBy)
			}
		}
	}
	if err := out.Flush(); err != nil {
		return err
	}
	if len(problems) > 0 {
		return failure(errors.New(strings.Join(problems, "; ")))
	}
	return nil
}

// printBreak returns a function that prints a break of a hash chain as one
// line to w.
func printBreak(w io.Writer) func(eventstore.Break) error {
	return func(b eventstore.Break) error {
		_, err := fmt.Fprintf(w, "BREAK stream=%s version=%d position=%d reason=%q\n", b.StreamID, b.Version, b.Position, b.Reason)
		return err
	}
}

func (p *program) newAuditKeygenCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "keygen",
		Short: "Create the Ed25519 key that signs checkpoints",
		Long: "Write a new Ed25519 signing key to --output (PEM, PKCS #8, readable by its owner only)\n" +
			"and its public key beside it, to <output>.pub (PEM), and print the public key. Point\n" +
			"ENGRAM_AUDIT_SIGNING_KEY at the key where checkpoints are signed — not on the database\n" +
			"host — and give the public key to whoever verifies.",
		Example: "  engram audit keygen -o /secure/engram-audit-key.pem",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output == "" {
				return usageError(errors.New("--output: the file to write the key to is required"))
			}
			return keygen(cmd, output)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "write the key to this file (it must not exist)")
	return cmd
}

func keygen(cmd *cobra.Command, output string) error {
	key, err := audit.GenerateSigningKey()
	if err != nil {
		return err
	}
	priv, err := audit.MarshalSigningKey(key)
	if err != nil {
		return err
	}
	pub := key.Public().(ed25519.PublicKey)
	pubPEM, err := audit.MarshalPublicKey(pub)
	if err != nil {
		return err
	}
	if err := writeNewFile(output, priv, 0o600); err != nil {
		return err
	}
	if err := writeNewFile(output+".pub", pubPEM, 0o644); err != nil {
		return err
	}
	_, err = fmt.Fprintf(cmd.OutOrStdout(), "signing key: %s\npublic key:  %s.pub\n  %s\n  %s\n",
		output, output, base64.StdEncoding.EncodeToString(pub), audit.Fingerprint(pub))
	return err
}

// writeNewFile writes data to a file that must not exist yet, and syncs it.
func writeNewFile(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return usageError(fmt.Errorf("write %s: %w", path, err))
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func (p *program) newAuditCheckpointCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "checkpoint",
		Short: "Sign a checkpoint of the whole log",
		Long: "Verify every hash chain and, when none is broken, write a checkpoint of every event\n" +
			"committed so far, signed with the key in ENGRAM_AUDIT_SIGNING_KEY, as JSON to --output\n" +
			"(or standard output). Keep checkpoints where the database's administrators cannot\n" +
			"change them; `engram audit verify --checkpoint FILE` later proves that none of these\n" +
			"events was changed, removed or re-hashed, and that the log was not truncated. The exit\n" +
			"status is 1, and nothing is signed, when a chain is broken.",
		Example: "  engram audit checkpoint -o checkpoint-$(date -u +%Y-%m-%dT%H%M%SZ).json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return p.withAudit(cmd, func(ctx context.Context, cfg config.Config, svc *audit.Service, r audit.Reader) error {
				if cfg.AuditSigningKey == "" {
					return usageError(errors.New("ENGRAM_AUDIT_SIGNING_KEY is not set: point it at the signing key (create one with engram audit keygen -o FILE)"))
				}
				key, err := audit.ReadSigningKey(cfg.AuditSigningKey)
				if err != nil {
					return usageError(fmt.Errorf("ENGRAM_AUDIT_SIGNING_KEY: %w", err))
				}
				return writeCheckpoint(ctx, cmd, svc, r, key, output)
			})
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "write the checkpoint to this file (it must not exist)")
	return cmd
}

func writeCheckpoint(ctx context.Context, cmd *cobra.Command, svc *audit.Service, r audit.Reader, key ed25519.PrivateKey, output string) error {
	stderr := bufio.NewWriter(cmd.ErrOrStderr())
	defer func() { _ = stderr.Flush() }() // messages for the operator only
	cp, err := svc.Checkpoint(ctx, r, key, printBreak(stderr))
	if errors.Is(err, audit.ErrLogBroken) {
		return failure(err)
	}
	if err != nil {
		return err
	}
	raw, err := json.MarshalIndent(cp, "", "  ")
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	raw = append(raw, '\n')
	if output == "" {
		if _, err := cmd.OutOrStdout().Write(raw); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
	} else if err := writeNewFile(output, raw, 0o644); err != nil {
		return err
	}
	note(stderr, "checkpoint of %d events up to position %d, head %s, signed by %s\n",
		cp.Events, cp.Position, cp.Head, audit.Fingerprint(key.Public().(ed25519.PublicKey)))
	return nil
}

// exportFlags are the filters of `engram audit export`.
type exportFlags struct {
	from, to, streamID, streamType, actor, output string
	types                                         []string
	limit                                         int
	noProgress                                    bool
}

func (p *program) newAuditExportCommand() *cobra.Command {
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
			return p.withAudit(cmd, func(ctx context.Context, _ config.Config, svc *audit.Service, r audit.Reader) error {
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
		return q, usageError(err)
	}
	q.Check(&v, false)
	if err := v.Err(); err != nil {
		return q, usageError(err)
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

func (p *program) newAuditStateCommand() *cobra.Command {
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
				return usageError(err)
			}
			return p.withAudit(cmd, func(ctx context.Context, _ config.Config, svc *audit.Service, r audit.Reader) error {
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

// withAudit opens the database and runs fn with the configuration, an audit
// service and the operator as reader.
func (p *program) withAudit(cmd *cobra.Command, fn func(ctx context.Context, cfg config.Config, svc *audit.Service, r audit.Reader) error) error {
	ctx := cmd.Context()
	return p.withDatabase(ctx, noMigration, func(cfg config.Config, _ *slog.Logger, db *sqlx.DB) error {
		store, err := eventstore.New(db)
		if err != nil {
			return err
		}
		svc, err := audit.New(db, store)
		if err != nil {
			return err
		}
		id := uuid.Must(uuid.NewV7()).String()
		return fn(ctx, cfg, svc, audit.Reader{ActorID: operator(), Via: auditlog.ViaCLI, RequestID: id})
	})
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
