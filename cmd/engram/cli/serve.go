package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"github.com/spf13/cobra"

	"github.com/engramhq/engram/platform/config"
)

func (p *program) newServeCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Run the Engram API server",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return p.withConfig(func(cfg config.Config, logger *slog.Logger) error {
				if err := serve(cmd.Context(), cfg, logger); err != nil {
					logger.Error("engram stopped with an error", "err", err)
					return &exitError{code: exitFailure} // the error is logged: nothing to print
				}
				return nil
			})
		},
	}
}

// serve runs the API until ctx ends, then shuts down gracefully.
func serve(ctx context.Context, cfg config.Config, logger *slog.Logger) error {
	logger.Debug("configuration", "config", cfg)
	tuneGC(logger)
	for _, w := range cfg.Warnings {
		logger.Warn(w)
	}
	if cfg.JWTSecretGenerated {
		logger.Warn("ENGRAM_JWT_SECRET is not set: using a random secret for this run; access tokens will not survive a restart")
	}
	// The port is taken first: a clash fails at once, before migrations,
	// the seed or any consumer has run.
	listener, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("cannot listen on %s (is another server using it? set ENGRAM_HTTP_ADDR): %w", cfg.HTTPAddr, err)
	}
	defer listener.Close()
	in, err := wire(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer in.close()
	running, err := in.start(ctx)
	if err != nil {
		return err
	}
	defer running.stop()
	if cfg.DevSeed {
		if err := in.seedDevelopment(ctx); err != nil {
			return err
		}
	}
	logger.Debug("http routes", "routes", in.server.Routes())
	logger.Info(fmt.Sprintf("engram is listening on http://%s", listener.Addr()), "env", cfg.Env, "cache", in.caches.Backend())
	serveErr := make(chan error, 1)
	go func() { serveErr <- in.server.Serve(listener) }()
	select {
	case <-ctx.Done():
		logger.Info("shutting down: finishing in-flight requests")
	case err := <-serveErr:
		return fmt.Errorf("http server: %w", err)
	case err := <-running.routerDone:
		return fmt.Errorf("event router stopped: %w", err)
	}
	in.shutdown(ctx, running)
	logger.Info("engram stopped")
	return nil
}
