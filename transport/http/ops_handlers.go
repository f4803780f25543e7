package http

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	report, ok := s.app.Readiness.Ready(ctx)
	status := http.StatusOK
	report["status"] = "ready"
	if !ok {
		status = http.StatusServiceUnavailable
		report["status"] = "not ready"
	}
	return c.JSON(status, report)
}

func (s *Server) metrics(c echo.Context) error {
	if s.cfg.Metrics == nil {
		return echo.ErrNotFound
	}
	s.cfg.Metrics.ServeHTTP(c.Response(), c.Request())
	return nil
}

func (s *Server) openapi(c echo.Context) error {
	if len(s.cfg.OpenAPI) == 0 {
		return echo.ErrNotFound
	}
	return c.Blob(http.StatusOK, "application/yaml", s.cfg.OpenAPI)
}
