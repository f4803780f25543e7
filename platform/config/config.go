// Package config reads Engram's configuration from ENGRAM_* environment
// variables, optionally preloaded from a .env file, applies the defaults and
// validates every value, reporting all problems at once.
//
// The variable names are a contract (see docs/configuration): renaming one
// breaks deployments.
package config

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/joho/godotenv"
	"github.com/redis/go-redis/v9"
)

// Environment names the kind of deployment a process runs in.
type Environment string

// The environments Engram knows.
const (
	// Development is a developer's machine: dev seed and auto-migrate on,
	// a missing JWT secret is generated.
	Development Environment = "development"
	// Test is an automated test run: like Development without the dev seed.
	Test Environment = "test"
	// Production refuses weak secrets and does not migrate by itself.
	Production Environment = "production"
)

// DefaultRedisURL is the Redis used when ENGRAM_REDIS_URL is unset.
// Setting the variable to the empty string disables Redis instead.
const DefaultRedisURL = "redis://127.0.0.1:6379/0"

// MinJWTSecretLength is the shortest JWT secret, in bytes, that production
// accepts.
const MinJWTSecretLength = 32

// LoginAttemptWindow is the default of ENGRAM_LOGIN_WINDOW: the fixed window
// in which LoginMaxAttempts failed logins are counted, per account and per IP.
const LoginAttemptWindow = 15 * time.Minute

// DotEnvFile is the file FromEnvironment reads from the working directory.
const DotEnvFile = ".env"

// Config is Engram's whole configuration. Load and FromEnvironment fill it;
// the env tags name the variables.
type Config struct {
	// Env is the deployment kind (ENGRAM_ENV).
	Env Environment `env:"ENGRAM_ENV" envDefault:"development"`

	// HTTPAddr is the address the HTTP server listens on, host:port.
	HTTPAddr string `env:"ENGRAM_HTTP_ADDR" envDefault:"127.0.0.1:8080"`
	// HTTPReadTimeout bounds reading a whole request, body included.
	HTTPReadTimeout time.Duration `env:"ENGRAM_HTTP_READ_TIMEOUT" envDefault:"15s"`
	// HTTPWriteTimeout bounds writing a response; SSE handlers extend their
	// own deadlines.
	HTTPWriteTimeout time.Duration `env:"ENGRAM_HTTP_WRITE_TIMEOUT" envDefault:"30s"`
	// HTTPIdleTimeout bounds how long an idle keep-alive connection stays open.
	HTTPIdleTimeout time.Duration `env:"ENGRAM_HTTP_IDLE_TIMEOUT" envDefault:"120s"`
	// ShutdownTimeout bounds a graceful shutdown.
	ShutdownTimeout time.Duration `env:"ENGRAM_SHUTDOWN_TIMEOUT" envDefault:"20s"`
	// BodyLimit is the largest request body accepted, in bytes.
	BodyLimit int64 `env:"ENGRAM_BODY_LIMIT" envDefault:"1048576"`
	// CommandConcurrency is how many commands (POST, PATCH, DELETE …) an
	// instance works on at once; CommandQueue more wait at most
	// CommandQueueTimeout for a turn, those expected to wait within half of
	// it (of CommandQueueTarget once the queue stands); the rest are
	// refused at once with 503 and Retry-After.
	CommandConcurrency  int           `env:"ENGRAM_COMMAND_CONCURRENCY" envDefault:"128"`
	CommandQueue        int           `env:"ENGRAM_COMMAND_QUEUE" envDefault:"256"`
	CommandQueueTimeout time.Duration `env:"ENGRAM_COMMAND_QUEUE_TIMEOUT" envDefault:"1s"`
	CommandQueueTarget  time.Duration `env:"ENGRAM_COMMAND_QUEUE_TARGET" envDefault:"50ms"`
	// ReadCacheBytes bounds the answers an instance keeps in memory for its
	// hottest reads (the read cache); 0 turns the cache off, so that every
	// read goes to the read models.
	ReadCacheBytes int `env:"ENGRAM_READ_CACHE_BYTES" envDefault:"67108864"`
	// TrustedProxies are the networks whose X-Forwarded-For is believed.
	// Empty means the client address is always the TCP peer.
	TrustedProxies Prefixes `env:"ENGRAM_TRUSTED_PROXIES"`
	// CORSAllowedOrigins are the origins (scheme://host[:port]) whose pages
	// may call the API and open live streams from a browser. Empty means
	// this server's own origin only.
	CORSAllowedOrigins []string `env:"ENGRAM_CORS_ALLOWED_ORIGINS" envSeparator:","`

	// DatabaseURL is the PostgreSQL connection URL. It may hold a password:
	// log it only through LogValue.
	DatabaseURL string `env:"ENGRAM_DATABASE_URL" envDefault:"postgres://127.0.0.1:5432/engram?sslmode=disable"`
	// DatabaseMaxConns caps the connection pool (PostgreSQL allows 100
	// connections by default, shared by every instance).
	DatabaseMaxConns int `env:"ENGRAM_DATABASE_MAX_CONNS" envDefault:"32"`
	// AutoMigrate applies pending migrations at start (default: true unless
	// production).
	AutoMigrate bool `env:"ENGRAM_AUTO_MIGRATE"`

	// RedisURL is the Redis connection URL; empty means no Redis (the
	// in-memory cache is used). It may hold a password.
	RedisURL string `env:"ENGRAM_REDIS_URL"`
	// RedisPrefix starts every Redis key Engram writes.
	RedisPrefix string `env:"ENGRAM_REDIS_PREFIX" envDefault:"engram:"`

	// JWTSecret is the HMAC key for access tokens. Never log it.
	JWTSecret Secret `env:"ENGRAM_JWT_SECRET"`
	// JWTSecretGenerated reports that JWTSecret was unset and a random one
	// was generated (development and test only): tokens will not survive a
	// restart.
	JWTSecretGenerated bool `env:"-"`
	// JWTIssuer is the iss claim of access tokens.
	JWTIssuer string `env:"ENGRAM_JWT_ISSUER" envDefault:"engram"`
	// JWTAudience is the aud claim of access tokens.
	JWTAudience string `env:"ENGRAM_JWT_AUDIENCE" envDefault:"engram-api"`
	// AccessTokenTTL is the lifetime of an access token (JWT).
	AccessTokenTTL time.Duration `env:"ENGRAM_ACCESS_TOKEN_TTL" envDefault:"15m"`
	// RefreshTokenTTL is the lifetime of a refresh token (session).
	RefreshTokenTTL time.Duration `env:"ENGRAM_REFRESH_TOKEN_TTL" envDefault:"720h"`
	// LoginMaxAttempts is how many failed logins are allowed per account and
	// per IP in a LoginAttemptWindow.
	LoginMaxAttempts int `env:"ENGRAM_LOGIN_MAX_ATTEMPTS" envDefault:"10"`
	// LoginWindow is the fixed window in which failed logins are counted
	// (default LoginAttemptWindow).
	LoginWindow time.Duration `env:"ENGRAM_LOGIN_WINDOW" envDefault:"15m"`

	// LogLevel is the lowest level logged: debug, info, warn or error.
	LogLevel slog.Level `env:"ENGRAM_LOG_LEVEL" envDefault:"info"`
	// LogFormat is the console format: text or json.
	LogFormat string `env:"ENGRAM_LOG_FORMAT" envDefault:"text"`
	// LogDir, when not empty, receives rotating engram.log and error.log.
	LogDir string `env:"ENGRAM_LOG_DIR"`
	// PprofAddr, when set, serves net/http/pprof on this loopback
	// host:port, apart from the API. Empty (the default) serves nothing.
	PprofAddr string `env:"ENGRAM_PPROF_ADDR"`

	// SSEHeartbeat is the interval of the ": ping" comment on live streams.
	SSEHeartbeat time.Duration `env:"ENGRAM_SSE_HEARTBEAT" envDefault:"15s"`
	// SSEMaxConnectionsPerUser caps a user's concurrent live streams.
	SSEMaxConnectionsPerUser int `env:"ENGRAM_SSE_MAX_CONNECTIONS_PER_USER" envDefault:"16"`
	// SSEMaxLifetime closes a live stream after this long; clients resume
	// with Last-Event-ID.
	SSEMaxLifetime time.Duration `env:"ENGRAM_SSE_MAX_LIFETIME" envDefault:"1h"`
	// SSEBuffer is how many frames a live stream may fall behind before it
	// is dropped as too slow.
	SSEBuffer int `env:"ENGRAM_SSE_BUFFER" envDefault:"256"`

	// DevSeed creates the development user and workspace at start (default:
	// true in development only).
	DevSeed bool `env:"ENGRAM_DEV_SEED"`

	// ReadYourWritesTimeout bounds how long a query sent with
	// Engram-Min-Position waits for its read model.
	ReadYourWritesTimeout time.Duration `env:"ENGRAM_READ_YOUR_WRITES_TIMEOUT" envDefault:"5s"`
	// ProjectionPollInterval is how often the dispatcher looks for new events
	// when no notification arrives; a group told nothing polls every five.
	ProjectionPollInterval time.Duration `env:"ENGRAM_PROJECTION_POLL_INTERVAL" envDefault:"100ms"`
	// ProjectionMaxLag is how many events a projection may lag behind the
	// log before /readyz reports not ready.
	ProjectionMaxLag int64 `env:"ENGRAM_PROJECTION_MAX_LAG" envDefault:"5000"`

	// Router is the router that decides how messages are handled: rules
	// (slash commands, the default) or patterns (a table of regular
	// expressions). See docs/cognition.md.
	Router string `env:"ENGRAM_ROUTER" envDefault:"rules"`
	// RouterRules configure the router: a JSON object, or "@" and the path
	// of a file holding one (read at start). Empty keeps the defaults.
	RouterRules string `env:"ENGRAM_ROUTER_RULES"`
	// LLMBaseURL is the base URL of an OpenAI-compatible chat-completions
	// endpoint; set, it turns the llm expert on and makes it the default
	// responder. Empty (the default) leaves it off.
	LLMBaseURL string `env:"ENGRAM_LLM_BASE_URL"`
	// LLMModel is the model the llm expert asks (required with LLMBaseURL).
	LLMModel string `env:"ENGRAM_LLM_MODEL"`
	// LLMAPIKey is the bearer token of the endpoint. Never log it.
	LLMAPIKey Secret `env:"ENGRAM_LLM_API_KEY"`
	// TaskTimeout bounds one attempt of an expert at a task.
	TaskTimeout time.Duration `env:"ENGRAM_TASK_TIMEOUT" envDefault:"2m"`
	// TaskAttempts is how many attempts a task gets before it fails.
	TaskAttempts int `env:"ENGRAM_TASK_ATTEMPTS" envDefault:"3"`
	// TaskWorkers is how many tasks an instance runs at once.
	TaskWorkers int `env:"ENGRAM_TASK_WORKERS" envDefault:"64"`
	// TaskMaxAge is how long after its message a task may still start;
	// older messages are not answered and older tasks are failed.
	TaskMaxAge time.Duration `env:"ENGRAM_TASK_MAX_AGE" envDefault:"10m"`

	// AuditSigningKey is the path of the PEM file holding the Ed25519 key
	// that signs audit checkpoints (engram audit checkpoint). Keep the file
	// away from the database and its administrators.
	AuditSigningKey string `env:"ENGRAM_AUDIT_SIGNING_KEY"`

	// Warnings are problems that do not stop the program; the caller logs
	// them.
	Warnings []string `env:"-"`
}

// IsProduction reports whether c.Env is Production.
func (c Config) IsProduction() bool { return c.Env == Production }

// FromEnvironment reads .env from the working directory, if there is one,
// overlays the process environment (which wins) and calls Load.
func FromEnvironment() (Config, error) {
	environ, err := readDotEnv(DotEnvFile)
	if err != nil {
		return Config{}, err
	}
	maps.Copy(environ, env.ToMap(os.Environ()))
	return Load(environ)
}

func readDotEnv(path string) (map[string]string, error) {
	environ, err := godotenv.Read(path)
	var pathErr *fs.PathError
	switch {
	case err == nil:
		return environ, nil
	case errors.Is(err, fs.ErrNotExist):
		return map[string]string{}, nil
	case errors.As(err, &pathErr):
		return nil, fmt.Errorf("read %s: %w", path, err)
	default:
		// The parser quotes the text around a mistake, which may be a secret.
		return nil, fmt.Errorf("read %s: invalid syntax (details withheld: the file may hold secrets)", path)
	}
}

// Load builds a Config from environ (variable name → value) alone: it does
// not look at the process environment or the file system. It returns every
// problem it finds at once, joined; each is a *VarError.
func Load(environ map[string]string) (Config, error) {
	var cfg Config
	v := validator{environ: environ, failed: map[string]bool{}}

	if err := env.ParseWithOptions(&cfg, env.Options{Environment: environ}); err != nil {
		v.parseErrors(err)
	}

	cfg.Env = Environment(strings.ToLower(strings.TrimSpace(string(cfg.Env))))
	cfg.LogFormat = strings.ToLower(strings.TrimSpace(cfg.LogFormat))
	if _, set := environ["ENGRAM_REDIS_URL"]; !set {
		cfg.RedisURL = DefaultRedisURL
	}
	cfg.RedisURL = strings.TrimSpace(cfg.RedisURL)
	if !v.isSet("ENGRAM_DEV_SEED") {
		cfg.DevSeed = cfg.Env == Development
	}
	if !v.isSet("ENGRAM_AUTO_MIGRATE") {
		cfg.AutoMigrate = cfg.Env != Production
	}

	v.validate(&cfg)
	if len(v.problems) > 0 {
		return Config{}, errors.Join(v.problems...)
	}
	return cfg, nil
}

// VarError describes one invalid variable.
type VarError struct {
	// Var is the variable's name, e.g. ENGRAM_LOG_LEVEL.
	Var string
	// Value is the offending value (passwords in URLs masked); empty when
	// Hidden.
	Value string
	// Hidden is true when the value is secret and must not be shown.
	Hidden bool
	// Reason says what is wrong.
	Reason string
}

// Error returns "VAR=value: reason", or "VAR: reason" for a hidden value.
func (e *VarError) Error() string {
	if e.Hidden {
		return fmt.Sprintf("%s: %s", e.Var, e.Reason)
	}
	return fmt.Sprintf("%s=%q: %s", e.Var, e.Value, e.Reason)
}

// fieldVars maps a Config field name to its variable, to name the variable
// in the parse errors of caarlos0/env (which name the field).
var fieldVars = func() map[string]string {
	vars := map[string]string{}
	t := reflect.TypeFor[Config]()
	for i := range t.NumField() {
		f := t.Field(i)
		if name, _, _ := strings.Cut(f.Tag.Get("env"), ","); name != "" && name != "-" {
			vars[f.Name] = name
		}
	}
	return vars
}()

type validator struct {
	environ  map[string]string
	failed   map[string]bool // variables that did not even parse
	problems []error
}

func (v *validator) isSet(name string) bool {
	return strings.TrimSpace(v.environ[name]) != ""
}

func (v *validator) add(name, value, reason string) {
	v.problems = append(v.problems, &VarError{Var: name, Value: value, Reason: reason})
}

func (v *validator) addHidden(name, reason string) {
	v.problems = append(v.problems, &VarError{Var: name, Hidden: true, Reason: reason})
}

// parseErrors turns caarlos0/env's errors into VarErrors.
func (v *validator) parseErrors(err error) {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		v.problems = append(v.problems, err)
		return
	}
	for _, e := range agg.Errors {
		var perr env.ParseError
		name, known := "", false
		if errors.As(e, &perr) {
			name, known = fieldVars[perr.Name]
		}
		if !known {
			v.problems = append(v.problems, e)
			continue
		}
		v.failed[name] = true
		v.add(name, v.environ[name], parseReason(name, perr))
	}
}

func parseReason(name string, perr env.ParseError) string {
	if name == "ENGRAM_LOG_LEVEL" {
		return "must be one of debug, info, warn, error"
	}
	switch perr.Type {
	case reflect.TypeFor[time.Duration]():
		return "not a duration (write e.g. 500ms, 15s, 1h30m)"
	case reflect.TypeFor[bool]():
		return "not a boolean (true or false)"
	case reflect.TypeFor[Prefixes]():
		return perr.Err.Error()
	}
	switch perr.Type.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if errors.Is(perr.Err, strconv.ErrRange) {
			return "number out of range"
		}
		return "not a whole number"
	}
	return perr.Err.Error()
}

func (v *validator) validate(cfg *Config) {
	switch cfg.Env {
	case Development, Test, Production:
	default:
		v.add("ENGRAM_ENV", v.environ["ENGRAM_ENV"], "must be one of development, test, production")
	}

	v.hostPort("ENGRAM_HTTP_ADDR", cfg.HTTPAddr)
	if cfg.PprofAddr != "" {
		v.loopbackHostPort("ENGRAM_PPROF_ADDR", cfg.PprofAddr)
	}
	v.databaseURL(cfg.DatabaseURL)
	v.redisURL(cfg.RedisURL)
	v.jwtSecret(cfg)
	v.cognition(cfg)
	cfg.CORSAllowedOrigins = v.corsOrigins("ENGRAM_CORS_ALLOWED_ORIGINS", cfg.CORSAllowedOrigins)
	v.auditSigningKey(cfg)

	if !v.failed["ENGRAM_LOG_LEVEL"] {
		switch level := strings.ToLower(strings.TrimSpace(v.environ["ENGRAM_LOG_LEVEL"])); level {
		case "", "debug", "info", "warn", "error":
		default:
			v.add("ENGRAM_LOG_LEVEL", v.environ["ENGRAM_LOG_LEVEL"], "must be one of debug, info, warn, error")
		}
	}
	switch cfg.LogFormat {
	case "text", "json":
	default:
		v.add("ENGRAM_LOG_FORMAT", v.environ["ENGRAM_LOG_FORMAT"], "must be text or json")
	}

	positive(v, "duration", []setting[time.Duration]{
		{"ENGRAM_HTTP_READ_TIMEOUT", cfg.HTTPReadTimeout},
		{"ENGRAM_HTTP_WRITE_TIMEOUT", cfg.HTTPWriteTimeout},
		{"ENGRAM_HTTP_IDLE_TIMEOUT", cfg.HTTPIdleTimeout},
		{"ENGRAM_SHUTDOWN_TIMEOUT", cfg.ShutdownTimeout},
		{"ENGRAM_ACCESS_TOKEN_TTL", cfg.AccessTokenTTL},
		{"ENGRAM_REFRESH_TOKEN_TTL", cfg.RefreshTokenTTL},
		{"ENGRAM_LOGIN_WINDOW", cfg.LoginWindow},
		{"ENGRAM_SSE_HEARTBEAT", cfg.SSEHeartbeat},
		{"ENGRAM_SSE_MAX_LIFETIME", cfg.SSEMaxLifetime},
		{"ENGRAM_READ_YOUR_WRITES_TIMEOUT", cfg.ReadYourWritesTimeout},
		{"ENGRAM_PROJECTION_POLL_INTERVAL", cfg.ProjectionPollInterval},
		{"ENGRAM_COMMAND_QUEUE_TIMEOUT", cfg.CommandQueueTimeout},
		{"ENGRAM_COMMAND_QUEUE_TARGET", cfg.CommandQueueTarget},
	})
	positive(v, "number", []setting[int64]{
		{"ENGRAM_BODY_LIMIT", cfg.BodyLimit},
		{"ENGRAM_LOGIN_MAX_ATTEMPTS", int64(cfg.LoginMaxAttempts)},
		{"ENGRAM_DATABASE_MAX_CONNS", int64(cfg.DatabaseMaxConns)},
		{"ENGRAM_SSE_MAX_CONNECTIONS_PER_USER", int64(cfg.SSEMaxConnectionsPerUser)},
		{"ENGRAM_SSE_BUFFER", int64(cfg.SSEBuffer)},
		{"ENGRAM_PROJECTION_MAX_LAG", cfg.ProjectionMaxLag},
		{"ENGRAM_COMMAND_CONCURRENCY", int64(cfg.CommandConcurrency)},
	})
	v.check("ENGRAM_COMMAND_QUEUE", cfg.CommandQueue >= 0, "must be zero or a positive number")
	v.check("ENGRAM_READ_CACHE_BYTES", cfg.ReadCacheBytes >= 0, "must be zero (no read cache) or a positive number of bytes")

	v.check("ENGRAM_DEV_SEED", cfg.Env != Production || !cfg.DevSeed,
		"must not be true in production: it creates a user with a well-known password")
}

// check reports the setting name, with its raw value, as problem when ok is
// false, unless the setting was already reported (it did not parse).
func (v *validator) check(name string, ok bool, problem string) {
	if !ok && !v.failed[name] {
		v.add(name, v.environ[name], problem)
	}
}

// setting is the name of a setting and its parsed value.
type setting[T int64 | time.Duration] struct {
	name  string
	value T
}

// positive checks that every setting is above zero; what names the kind of
// value in the problem it reports.
func positive[T int64 | time.Duration](v *validator, what string, settings []setting[T]) {
	for _, s := range settings {
		v.check(s.name, s.value > 0, "must be a positive "+what)
	}
}

func (v *validator) hostPort(name, value string) {
	v.splitHostPort(name, value, "must be host:port, e.g. 127.0.0.1:8080 or :8080")
}

// loopbackHostPort accepts host:port on a loopback address only: what it
// serves must not be reachable from the network.
func (v *validator) loopbackHostPort(name, value string) {
	host, ok := v.splitHostPort(name, value, "must be host:port on a loopback address, e.g. 127.0.0.1:6060")
	if !ok {
		return
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		v.add(name, value, "host must be a loopback address (127.0.0.1, ::1 or localhost)")
	}
}

// splitHostPort returns the host of value, which must be host:port with a
// port from 0 to 65535; it reports notHostPort when value has no port, and
// then returns false.
func (v *validator) splitHostPort(name, value, notHostPort string) (string, bool) {
	host, port, err := net.SplitHostPort(value)
	if err != nil {
		v.add(name, value, notHostPort)
		return "", false
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		v.add(name, value, "port must be a number from 0 to 65535")
	}
	return host, true
}

func (v *validator) databaseURL(raw string) {
	const name = "ENGRAM_DATABASE_URL"
	u, err := url.Parse(raw)
	if err != nil {
		v.add(name, redactURL(raw), "not a URL")
		return
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		v.add(name, redactURL(raw), "scheme must be postgres or postgresql")
	}
}

func (v *validator) redisURL(raw string) {
	const name = "ENGRAM_REDIS_URL"
	if raw == "" {
		return // Redis disabled.
	}
	u, err := url.Parse(raw)
	if err != nil {
		v.add(name, redactURL(raw), "not a URL")
		return
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		v.add(name, redactURL(raw), "scheme must be redis or rediss (or set it empty to run without Redis)")
		return
	}
	if _, err := redis.ParseURL(raw); err != nil {
		v.add(name, redactURL(raw), strings.TrimPrefix(err.Error(), "redis: "))
	}
}

// placeholderSecrets are values people paste from examples.
var placeholderSecrets = []string{
	"secret", "changeme", "change-me", "development", "dev-secret", "engram", "please-change-me",
}

func isPlaceholderSecret(s string) bool {
	s = strings.ToLower(strings.TrimSpace(s))
	for _, p := range placeholderSecrets {
		if s == p {
			return true
		}
	}
	return strings.Contains(s, "changeme") || strings.Contains(s, "change-me") || strings.Contains(s, "change_me")
}

func (v *validator) jwtSecret(cfg *Config) {
	const name = "ENGRAM_JWT_SECRET"
	// An unknown environment is treated as production: the strictest rules.
	strict := cfg.Env != Development && cfg.Env != Test
	secret := string(cfg.JWTSecret)
	switch {
	case secret == "" && strict:
		v.addHidden(name, "is required in production (generate one with: openssl rand -base64 48)")
	case secret == "":
		generated, err := randomSecret()
		if err != nil {
			v.addHidden(name, "is unset and generating one failed: "+err.Error())
			return
		}
		cfg.JWTSecret = generated
		cfg.JWTSecretGenerated = true
	case isPlaceholderSecret(secret) && strict:
		v.addHidden(name, "is a well-known placeholder; production needs a random secret (openssl rand -base64 48)")
	case isPlaceholderSecret(secret):
		cfg.Warnings = append(cfg.Warnings, name+" is a well-known placeholder; production would refuse it")
	case len(secret) < MinJWTSecretLength && strict:
		v.addHidden(name, fmt.Sprintf("must be at least %d bytes in production (it has %d)", MinJWTSecretLength, len(secret)))
	case len(secret) < MinJWTSecretLength:
		cfg.Warnings = append(cfg.Warnings, fmt.Sprintf(
			"%s is shorter than %d bytes; production would refuse it", name, MinJWTSecretLength))
	}
}

func randomSecret() (Secret, error) {
	b := make([]byte, MinJWTSecretLength)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return Secret(base64.RawURLEncoding.EncodeToString(b)), nil
}

// redactURL masks the password of a URL, in its user info or in a password
// query parameter, even when the URL does not parse.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		// Mask everything between "://" and the last "@" after it.
		scheme, rest, ok := strings.Cut(raw, "://")
		if at := strings.LastIndex(rest, "@"); ok && at >= 0 {
			return scheme + "://" + redacted + rest[at:]
		}
		if strings.Contains(strings.ToLower(raw), "password") {
			return redacted
		}
		return raw
	}
	q := u.Query()
	masked := false
	for key := range q {
		if k := strings.ToLower(key); k == "password" || k == "pass" || k == "sslpassword" {
			q.Set(key, "xxxxx")
			masked = true
		}
	}
	if masked {
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// LogValue logs the configuration without secrets: the JWT secret is left
// out and passwords in URLs are masked.
func (c Config) LogValue() slog.Value {
	redisURL := "disabled"
	if c.RedisURL != "" {
		redisURL = redactURL(c.RedisURL)
	}
	return slog.GroupValue(
		slog.String("env", string(c.Env)),
		slog.String("http_addr", c.HTTPAddr),
		slog.Duration("http_read_timeout", c.HTTPReadTimeout),
		slog.Duration("http_write_timeout", c.HTTPWriteTimeout),
		slog.Duration("http_idle_timeout", c.HTTPIdleTimeout),
		slog.Duration("shutdown_timeout", c.ShutdownTimeout),
		slog.Int64("body_limit", c.BodyLimit),
		slog.Int("command_concurrency", c.CommandConcurrency),
		slog.Int("command_queue", c.CommandQueue),
		slog.Duration("command_queue_timeout", c.CommandQueueTimeout),
		slog.Duration("command_queue_target", c.CommandQueueTarget),
		slog.Int("read_cache_bytes", c.ReadCacheBytes),
		slog.String("trusted_proxies", c.TrustedProxies.String()),
		slog.String("database_url", redactURL(c.DatabaseURL)),
		slog.Bool("auto_migrate", c.AutoMigrate),
		slog.String("redis_url", redisURL),
		slog.String("redis_prefix", c.RedisPrefix),
		slog.Bool("jwt_secret_generated", c.JWTSecretGenerated),
		slog.String("jwt_issuer", c.JWTIssuer),
		slog.String("jwt_audience", c.JWTAudience),
		slog.Duration("access_token_ttl", c.AccessTokenTTL),
		slog.Duration("refresh_token_ttl", c.RefreshTokenTTL),
		slog.Int("login_max_attempts", c.LoginMaxAttempts),
		slog.Int("database_max_conns", c.DatabaseMaxConns),
		slog.Duration("login_window", c.LoginWindow),
		slog.String("log_level", c.LogLevel.String()),
		slog.String("log_format", c.LogFormat),
		slog.String("log_dir", c.LogDir),
		slog.String("pprof_addr", c.PprofAddr),
		slog.Duration("sse_heartbeat", c.SSEHeartbeat),
		slog.Int("sse_max_connections_per_user", c.SSEMaxConnectionsPerUser),
		slog.Duration("sse_max_lifetime", c.SSEMaxLifetime),
		slog.Int("sse_buffer", c.SSEBuffer),
		slog.Bool("dev_seed", c.DevSeed),
		slog.Duration("read_your_writes_timeout", c.ReadYourWritesTimeout),
		slog.Duration("projection_poll_interval", c.ProjectionPollInterval),
		slog.Int64("projection_max_lag", c.ProjectionMaxLag),
		slog.String("router", c.Router),
		slog.Bool("router_rules_set", c.RouterRules != ""),
		slog.String("llm_base_url", redactURL(c.LLMBaseURL)),
		slog.String("llm_model", c.LLMModel),
		slog.Bool("llm_api_key_set", c.LLMAPIKey != ""),
		slog.Duration("task_timeout", c.TaskTimeout),
		slog.Int("task_attempts", c.TaskAttempts),
		slog.Int("task_workers", c.TaskWorkers),
		slog.Duration("task_max_age", c.TaskMaxAge),
		slog.String("audit_signing_key", c.AuditSigningKey),
	)
}
