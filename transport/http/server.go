package http

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/lib/pq"

	"github.com/engramhq/engram/app"
	"github.com/engramhq/engram/platform/security"
	"github.com/engramhq/engram/transport/http/console"
)

// Config tunes the server.
type Config struct {
	Addr         string
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	IdleTimeout  time.Duration
	BodyLimit    int64
	// TrustedProxies are the networks whose X-Forwarded-For is believed.
	TrustedProxies []*net.IPNet
	// Observe, when set, is called after every request with its route,
	// status and duration (metrics).
	Observe func(method, route string, status int, d time.Duration)
	// LoginMaxAttempts is how many failed logins an account, and a client
	// address, may have in one LoginWindow before logins are refused.
	LoginMaxAttempts int
	// LoginWindow is the fixed window of the login throttle.
	LoginWindow time.Duration
	// CORSAllowedOrigins are the origins (scheme://host[:port], as browsers
	// send them) whose pages may use the API; empty means same origin only.
	CORSAllowedOrigins []string
	// MaxConcurrentHashes bounds the password hashes (argon2id) running at
	// once on this instance: registrations and logins beyond it wait up to
	// HashWait for a slot, then get 503 with Retry-After (0: one per
	// processor, at least two).
	MaxConcurrentHashes int
	// HashWait is how long a request that hashes a password waits for a
	// slot (0: one second).
	HashWait time.Duration
	// ConnContext, when set, derives each connection's base context (the
	// SSE transport keeps the connection there to tune its socket).
	ConnContext func(ctx context.Context, c net.Conn) context.Context
	// Admission bounds the commands in progress; a zero Concurrency admits
	// every command.
	Admission Admission
	// Metrics serves /metrics; nil means 404.
	Metrics http.Handler
	// OpenAPI is the OpenAPI document served at /openapi.yaml; empty means
	// 404.
	OpenAPI []byte
}

// Server is Engram's HTTP server.
type Server struct {
	echo      *echo.Echo
	http      *http.Server
	app       *app.Application
	cfg       Config
	logger    *slog.Logger
	throttle  *loginThrottle
	admission *admission
	hashing   *security.HashSlots
}

// NewServer builds the server and its routes over application. It refuses
// missing parts of the application.
func NewServer(cfg Config, application *app.Application, logger *slog.Logger) (*Server, error) {
	if application == nil {
		return nil, errors.New("http: an application is required")
	}
	if err := application.Validate(); err != nil {
		return nil, fmt.Errorf("http: %w", err)
	}
	if cfg.LoginMaxAttempts <= 0 || cfg.LoginWindow <= 0 {
		return nil, errors.New("http: the login throttle needs a positive maximum and window")
	}
	page, err := console.New()
	if err != nil {
		return nil, err
	}
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	s := &Server{echo: e, app: application, cfg: cfg, logger: logger, throttle: &loginThrottle{
		counters: application.Counters, max: int64(cfg.LoginMaxAttempts), window: cfg.LoginWindow, now: time.Now,
	}}
	if cfg.HashWait <= 0 {
		cfg.HashWait = time.Second
	}
	s.hashing = security.NewHashSlots(cfg.MaxConcurrentHashes, cfg.HashWait)
	e.HTTPErrorHandler = s.errorHandler
	e.IPExtractor = ipExtractor(cfg.TrustedProxies)

	e.Pre(middleware.RemoveTrailingSlash())
	// The security headers come before anything that can refuse a request
	// (the body limit, authentication), so that every answer carries them.
	e.Use(
		s.requestID,
		s.securityHeaders,
		s.accessLog,
		s.headerLimit,
		s.recoverer,
		s.cors(),
		s.bodyLimit,
	)
	if cfg.Admission.Concurrency > 0 {
		// Before authentication: a refusal costs next to nothing.
		s.admission = newAdmission(cfg.Admission)
		e.Use(s.admission.admit)
	}
	e.Use(s.authenticate, newAnswers().use)
	s.routes()
	page.Register(e)

	s.http = &http.Server{
		Addr:              cfg.Addr,
		Handler:           e,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    maxHeaderReadBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		ConnContext:       cfg.ConnContext,
	}
	return s, nil
}

// Handler returns the server's HTTP handler (for tests).
func (s *Server) Handler() http.Handler { return s.echo }

// Serve accepts connections on l until Shutdown.
func (s *Server) Serve(l net.Listener) error {
	err := s.http.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections and waits for in-flight requests.
func (s *Server) Shutdown(ctx context.Context) error {
	return s.http.Shutdown(ctx)
}

// RegisterOnShutdown registers fn to run when Shutdown starts (e.g. to close
// live streams, which Shutdown does not wait for).
func (s *Server) RegisterOnShutdown(fn func()) { s.http.RegisterOnShutdown(fn) }

// Echo exposes the router so that other transports (SSE) add their routes.
func (s *Server) Echo() *echo.Echo { return s.echo }

func (s *Server) routes() {
	e := s.echo
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", s.metrics)
	e.GET("/openapi.yaml", s.openapi)

	v1 := e.Group("/v1")
	v1.POST("/auth/register", s.register)
	v1.POST("/auth/login", s.login)
	v1.POST("/auth/refresh", s.refresh)
	v1.POST("/auth/logout", s.logout, requireActor)
	v1.GET("/auth/me", s.me, requireActor)
	v1.GET("/sessions", s.listSessions, requireActor)
	v1.DELETE("/sessions/:id", s.revokeSession, requireActor)
	v1.POST("/api-keys", s.issueAPIKey, requireActor)
	v1.GET("/api-keys", s.listAPIKeys, requireActor)
	v1.DELETE("/api-keys/:id", s.revokeAPIKey, requireActor)

	v1.POST("/workspaces", s.createWorkspace, requireActor)
	v1.GET("/workspaces", s.listWorkspaces, requireActor)
	v1.GET("/workspaces/:id", s.getWorkspace, requireActor)
	v1.PATCH("/workspaces/:id", s.updateWorkspace, requireActor)
	v1.DELETE("/workspaces/:id", s.archiveWorkspace, requireActor)
	v1.GET("/workspaces/:id/members", s.listMembers, requireActor)
	v1.POST("/workspaces/:id/members", s.addMember, requireActor)
	v1.DELETE("/workspaces/:id/members/:user_id", s.removeMember, requireActor)

	v1.POST("/workspaces/:id/conversations", s.createConversation, requireActor)
	v1.GET("/workspaces/:id/conversations", s.listConversations, requireActor)
	v1.GET("/conversations/:id", s.getConversation, requireActor)
	v1.PATCH("/conversations/:id", s.updateConversation, requireActor)
	v1.DELETE("/conversations/:id", s.archiveConversation, requireActor)
	v1.POST("/conversations/:id/messages", s.postMessage, requireActor)
	v1.GET("/conversations/:id/messages", s.listMessages, requireActor)

	v1.GET("/workspaces/:id/memory", s.searchMemory, requireActor)
	v1.POST("/workspaces/:id/memory", s.storeMemoryItem, requireActor)
	v1.GET("/workspaces/:id/memory/context", s.memoryContext, requireActor)
	v1.DELETE("/workspaces/:id/memory/:item_id", s.deleteMemoryItem, requireActor)
	v1.GET("/experts", s.listExperts, requireActor)
	v1.GET("/tasks/:id", s.getTask, requireActor)
	v1.POST("/tasks/:id/cancel", s.cancelTask, requireActor)

	v1.GET("/audit/events", s.auditEvents, requireActor, s.requireAuditor)
	v1.GET("/audit/streams/:stream_id/events", s.auditStreamEvents, requireActor, s.requireAuditor)
	v1.GET("/audit/streams/:stream_id/state", s.auditState, requireActor, s.requireAuditor)
	v1.GET("/audit/verify", s.auditVerify, requireActor, s.requireAuditor)
	v1.GET("/audit/projections/verify", s.auditVerifyProjections, requireActor, s.requireAuditor)
}

// Routes lists every registered route as "METHOD path" (for the OpenAPI
// check).
func (s *Server) Routes() []string {
	var out []string
	for _, r := range s.echo.Routes() {
		if strings.HasPrefix(r.Name, "github.com/labstack") {
			continue
		}
		out = append(out, r.Method+" "+r.Path)
	}
	return out
}

func ipExtractor(trusted []*net.IPNet) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, n := range trusted {
		opts = append(opts, echo.TrustIPRange(n))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

// isUnavailable reports whether err means the database cannot be reached.
func isUnavailable(err error) bool {
	var pqErr *pq.Error
	var netErr net.Error
	var opErr *net.OpError
	switch {
	case errors.Is(err, driver.ErrBadConn), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return true
	case errors.As(err, &pqErr):
		code := string(pqErr.Code)
		return strings.HasPrefix(code, "08") || code == "57P01" || code == "57P02" || code == "57P03" || code == "53300"
	case errors.As(err, &opErr), errors.As(err, &netErr):
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "connection refused") || strings.Contains(msg, "bad connection")
}

// positionHeaders sets ETag and Engram-Position on a command's answer.
func positionHeaders(c echo.Context, version int, position int64) {
	h := c.Response().Header()
	if version > 0 {
		h.Set("ETag", versionETag(version))
	}
	if position > 0 {
		h.Set("Engram-Position", strconv.FormatInt(position, 10))
	}
}
