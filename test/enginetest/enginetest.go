// Package enginetest starts Engram for end-to-end tests: the real engram
// binary, built once per test process, or the same program in-process
// (Options.InProcess), run on a free port against a fresh database (and
// its own Redis key prefix), spoken to over HTTP like any client.
package enginetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/engramhq/engram/cmd/engram/cli"
	"github.com/engramhq/engram/test/pgtest"
	"github.com/engramhq/engram/test/redistest"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary builds cmd/engram once per test process and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		dir, err := os.MkdirTemp("", "engram-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "engram")
		args := []string{"build", "-o", binPath}
		if os.Getenv("ENGRAM_TEST_RACE") == "1" {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, "./cmd/engram")...)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// Options configure an instance.
type Options struct {
	// DatabaseURL, when set, is used instead of a fresh database (to run a
	// second instance on the same data).
	DatabaseURL string
	// RedisURL overrides the Redis URL; NoRedis runs without Redis.
	RedisURL string
	NoRedis  bool
	// RedisPrefix, when set, is used instead of a fresh prefix.
	RedisPrefix string
	// JWTSecret, when set, is used instead of a fresh one (share it between
	// instances that must accept each other's tokens).
	JWTSecret string
	// Env are extra ENGRAM_* variables.
	Env map[string]string
	// InProcess runs Engram inside the test process (cli.Run, as the
	// binary's main does) instead of as the binary: it starts faster, and
	// the race detector and coverage see the server too. An in-process
	// instance cannot crash (Kill).
	InProcess bool
}

// redisURL is the Redis the instance uses.
func (o Options) redisURL() string {
	if o.RedisURL != "" {
		return o.RedisURL
	}
	return redistest.URL()
}

// Instance is a running Engram: a process, or a run of the program inside
// the test process.
type Instance struct {
	t       testing.TB
	opts    Options
	cmd     *exec.Cmd          // the process (binary mode)
	stop    context.CancelFunc // ends the in-process run
	logs    *syncBuffer
	done    chan struct{}
	waitErr error

	// URL is the base URL of the API, e.g. http://127.0.0.1:41234.
	URL string
	// Addr is host:port.
	Addr        string
	DatabaseURL string
	RedisPrefix string
	JWTSecret   string
}

// Start runs engram serve and waits until /readyz says ready. The process is
// stopped (SIGTERM) when the test ends; its log is printed if the test failed.
// Without Options.RedisPrefix, the instance gets a fresh prefix whose keys
// are removed from Redis once the process has stopped (a caller that passes
// a prefix removes its keys, e.g. with redistest.Prefix).
func Start(t testing.TB, o Options) *Instance {
	t.Helper()
	if testing.Short() {
		t.Skip("starts engram: skipped in -short mode")
	}
	if o.DatabaseURL == "" {
		o.DatabaseURL = pgtest.NewURL(t)
	}
	if o.RedisPrefix == "" {
		o.RedisPrefix = redistest.NewPrefix()
		if !o.NoRedis {
			// Registered before the process starts: runs after it stopped.
			redistest.Clean(t, o.redisURL(), o.RedisPrefix)
		}
	}
	if o.JWTSecret == "" {
		o.JWTSecret = randomHex(32)
	}
	inst := &Instance{t: t, opts: o, DatabaseURL: o.DatabaseURL, RedisPrefix: o.RedisPrefix, JWTSecret: o.JWTSecret}
	inst.start(t, freeAddr(t))
	t.Cleanup(func() {
		inst.Stop(t)
		if t.Failed() {
			t.Logf("engram log (%s):\n%s", inst.Addr, inst.Logs())
		}
	})
	return inst
}

// vars are the configuration of an instance serving on addr.
func (o Options) vars(addr string) map[string]string {
	vars := map[string]string{
		"ENGRAM_ENV":                      "test",
		"ENGRAM_HTTP_ADDR":                addr,
		"ENGRAM_DATABASE_URL":             o.DatabaseURL,
		"ENGRAM_REDIS_PREFIX":             o.RedisPrefix,
		"ENGRAM_JWT_SECRET":               o.JWTSecret,
		"ENGRAM_LOG_FORMAT":               "json",
		"ENGRAM_LOG_LEVEL":                "info",
		"ENGRAM_PROJECTION_POLL_INTERVAL": "50ms",
		"ENGRAM_SHUTDOWN_TIMEOUT":         "10s",
		"ENGRAM_DATABASE_MAX_CONNS":       "16",
		"ENGRAM_REDIS_URL":                o.redisURL(),
	}
	if o.NoRedis {
		vars["ENGRAM_REDIS_URL"] = ""
	}
	maps.Copy(vars, o.Env)
	return vars
}

func (inst *Instance) start(t testing.TB, addr string) {
	t.Helper()
	inst.logs = &syncBuffer{}
	inst.done = make(chan struct{})
	inst.Addr = addr
	inst.URL = "http://" + addr
	if inst.opts.InProcess {
		inst.runInProcess(inst.opts.vars(addr))
	} else {
		inst.runBinary(t, inst.opts.vars(addr))
	}
	inst.waitReady(t, 30*time.Second)
}

// runBinary starts engram serve as a process.
func (inst *Instance) runBinary(t testing.TB, vars map[string]string) {
	t.Helper()
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	cmd := exec.Command(Binary(t), "serve")
	cmd.Env = env
	cmd.Dir = t.TempDir()
	cmd.Stdout = inst.logs
	cmd.Stderr = inst.logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start engram: %v", err)
	}
	inst.cmd = cmd
	go func() {
		inst.waitErr = cmd.Wait()
		close(inst.done)
	}()
}

// runInProcess runs engram serve inside the test process until Stop.
func (inst *Instance) runInProcess(vars map[string]string) {
	ctx, stop := context.WithCancel(context.Background())
	inst.stop = stop
	go func() {
		defer close(inst.done)
		if code := cli.Run(ctx, []string{"serve"}, cli.Env{Stdout: inst.logs, Stderr: inst.logs, Vars: vars}); code != 0 {
			inst.waitErr = fmt.Errorf("engram serve: exit status %d", code)
		}
	}()
}

func (inst *Instance) waitReady(t testing.TB, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	client := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		select {
		case <-inst.done:
			t.Fatalf("engram exited before it was ready: %v\n%s", inst.waitErr, inst.Logs())
		default:
		}
		resp, err := client.Get(inst.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("engram not ready within %s\n%s", within, inst.Logs())
}

// Stop asks Engram to stop (SIGTERM, or the end of the in-process run's
// context) and waits until it has; a process is killed after 20s. It
// returns the exit error, if any.
func (inst *Instance) Stop(t testing.TB) error {
	t.Helper()
	if inst.done == nil {
		return nil
	}
	select {
	case <-inst.done:
		return inst.waitErr
	default:
	}
	if inst.stop != nil {
		inst.stop()
	} else {
		_ = inst.cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-inst.done:
	case <-time.After(20 * time.Second):
		t.Errorf("engram did not stop within 20s of being asked to")
		if inst.cmd == nil {
			return inst.waitErr // an in-process run cannot be killed
		}
		_ = inst.cmd.Process.Kill()
		<-inst.done
	}
	return inst.waitErr
}

// Kill stops the process at once (SIGKILL), as a crash would. An
// in-process instance cannot crash: the test fails.
func (inst *Instance) Kill(t testing.TB) {
	t.Helper()
	if inst.cmd == nil {
		t.Fatal("Kill: an in-process instance cannot crash; start it without Options.InProcess")
	}
	_ = inst.cmd.Process.Kill()
	<-inst.done
}

// Done is closed when Engram has exited.
func (inst *Instance) Done() <-chan struct{} { return inst.done }

// Restart stops Engram and starts it again on the same address and data.
func (inst *Instance) Restart(t testing.TB) {
	t.Helper()
	inst.Stop(t)
	inst.start(t, inst.Addr)
}

// Logs returns everything the process printed.
func (inst *Instance) Logs() string { return inst.logs.String() }

// Second starts another instance sharing this one's database, Redis prefix
// and JWT secret: a scaled-out deployment.
func (inst *Instance) Second(t testing.TB) *Instance {
	o := inst.opts
	return Start(t, o)
}

// freeAddr returns a free loopback address.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Client speaks to an instance as one user.
type Client struct {
	t     testing.TB
	base  string
	http  *http.Client
	Token string
	// UserID of the logged-in user.
	UserID string
	// skipContract turns off the openapi.yaml check of answers (see
	// OffContract).
	skipContract bool
}

// Client returns an anonymous client of the instance.
func (inst *Instance) Client(t testing.TB) *Client {
	return &Client{t: t, base: inst.URL, http: &http.Client{Timeout: 30 * time.Second}}
}

// Response is a finished HTTP exchange.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v (failing the test on error).
func (r *Response) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// Map decodes the body as a JSON object.
func (r *Response) Map(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	r.JSON(t, &m)
	return m
}

// Do sends a request. body may be nil, a string (sent verbatim), []byte, or a
// value encoded as JSON. headers are "Name: value" pairs. The answer must be
// one that openapi.yaml describes (see CheckContract), or the test fails.
func (c *Client) Do(method, path string, body any, headers ...string) *Response {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	SetHeaders(req, c.Token, headers...)
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	r := &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
	c.checkContract(req, r)
	return r
}

// Must sends a request and fails the test unless the status is want.
func (c *Client) Must(want int, method, path string, body any, headers ...string) *Response {
	c.t.Helper()
	r := c.Do(method, path, body, headers...)
	if r.Status != want {
		c.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.Status, want, r.Body)
	}
	return r
}

// Password is the password Signup uses.
const Password = "correct horse battery staple"

// Signup registers a new user with a unique e-mail address (based on name)
// and logs in. It returns the logged-in client.
func (inst *Instance) Signup(t testing.TB, name string) *Client {
	t.Helper()
	c := inst.Client(t)
	email := fmt.Sprintf("%s-%s@example.com", strings.ToLower(name), randomHex(4))
	reg := c.Must(http.StatusCreated, "POST", "/v1/auth/register", map[string]string{
		"email": email, "password": Password, "display_name": name,
	}).Map(t)
	c.UserID, _ = reg["id"].(string)
	login := c.Must(http.StatusOK, "POST", "/v1/auth/login", map[string]string{"email": email, "password": Password}).Map(t)
	c.Token, _ = login["access_token"].(string)
	return c
}

// Email returns the e-mail address Signup gave a client's user.
func (c *Client) Email() string {
	c.t.Helper()
	r := c.Must(http.StatusOK, "GET", "/v1/auth/me", nil)
	return r.Map(c.t)["email"].(string)
}

// Position returns the Engram-Position header of a command's answer.
func (r *Response) Position() string { return r.Header.Get("Engram-Position") }

// SetHeaders sets on req the bearer token (when there is one) and each of
// headers, written "Name: value".
func SetHeaders(req *http.Request, token string, headers ...string) {
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
}
