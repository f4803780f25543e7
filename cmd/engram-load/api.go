package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"
)

// api speaks to Engram's HTTP API the way a client does, and counts every
// answer that is not a success by request kind and status.
type api struct {
	base   string
	client *http.Client
	errors *errorCounts
}

func newAPI(base string, conns int) *api {
	transport := &http.Transport{
		Proxy:               nil,
		MaxIdleConns:        conns * 2,
		MaxIdleConnsPerHost: conns * 2,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
		ReadBufferSize:      16 << 10, // a page of messages in one read, not two
	}
	return &api{base: base, client: &http.Client{Transport: transport, Timeout: 30 * time.Second}, errors: &errorCounts{}}
}

// answer is a response read to the end.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// call sends one request; kind names it in the error counts (e.g. "POST
// messages"). A transport failure counts as status 0 and is returned.
func (a *api) call(ctx context.Context, kind, method, path, token string, body any, header ...string) (answer, error) {
	return a.send(ctx, true, kind, method, path, token, body, header...)
}

// get is a GET whose answer's body is read and dropped, not kept: the
// measured reads, where the client should cost no more than it must (the
// answer has no body; it counts like call).
func (a *api) get(ctx context.Context, kind, path, token string, header ...string) (answer, error) {
	return a.send(ctx, false, kind, http.MethodGet, path, token, nil, header...)
}

func (a *api) send(ctx context.Context, keep bool, kind, method, path, token string, body any, header ...string) (answer, error) {
	var reader io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return answer{}, fmt.Errorf("%s: encode body: %w", kind, err)
		}
		reader = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, reader)
	if err != nil {
		return answer{}, fmt.Errorf("%s: %w", kind, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := a.client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			a.errors.add(kind, 0)
		}
		return answer{}, fmt.Errorf("%s: %w", kind, err)
	}
	defer resp.Body.Close()
	var b []byte
	if keep {
		b, err = io.ReadAll(resp.Body)
	} else {
		_, err = io.Copy(io.Discard, resp.Body) // io.Discard reads into a pooled buffer
	}
	if err != nil {
		if ctx.Err() == nil {
			a.errors.add(kind, 0)
		}
		return answer{}, fmt.Errorf("%s: read answer: %w", kind, err)
	}
	if resp.StatusCode >= 300 && resp.StatusCode != http.StatusNotModified { // 304 answers a revalidation
		a.errors.add(kind, resp.StatusCode)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// expect is call that also fails on a status other than want.
func (a *api) expect(ctx context.Context, want int, kind, method, path, token string, body any, header ...string) (answer, error) {
	ans, err := a.call(ctx, kind, method, path, token, body, header...)
	if err != nil {
		return ans, err
	}
	if ans.status != want {
		return ans, fmt.Errorf("%s: status %d, want %d: %.300s", kind, ans.status, want, ans.body)
	}
	return ans, nil
}

// position is the Engram-Position header of a command's answer (0 if none).
func (ans answer) position() int64 {
	p, _ := strconv.ParseInt(ans.header.Get("Engram-Position"), 10, 64)
	return p
}

// errorCounts counts failed requests by kind and status.
type errorCounts struct {
	mu sync.Mutex
	m  map[string]int64
}

func (e *errorCounts) add(kind string, status int) {
	key := kind + " " + strconv.Itoa(status)
	if status == 0 {
		key = kind + " transport-error"
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.m == nil {
		e.m = map[string]int64{}
	}
	e.m[key]++
}

// snapshot returns the counts so far, sorted by key.
func (e *errorCounts) snapshot() []Count {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Count, 0, len(e.m))
	for k, n := range e.m {
		out = append(out, Count{What: k, N: n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].What < out[j].What })
	return out
}

// Count is a number of occurrences of something.
type Count struct {
	What string `json:"what"`
	N    int64  `json:"n"`
}

// user is a registered, logged-in account of the load run.
type user struct {
	id, email, token string
}

// signup registers and logs in one user.
func (a *api) signup(ctx context.Context, email, password, name string) (user, error) {
	reg, err := a.expect(ctx, http.StatusCreated, "POST register", http.MethodPost, "/v1/auth/register", "",
		map[string]string{"email": email, "password": password, "display_name": name})
	if err != nil {
		return user{}, err
	}
	var u struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(reg.body, &u); err != nil || u.ID == "" {
		return user{}, fmt.Errorf("register: no user id in the answer: %.200s", reg.body)
	}
	login, err := a.expect(ctx, http.StatusOK, "POST login", http.MethodPost, "/v1/auth/login", "",
		map[string]string{"email": email, "password": password})
	if err != nil {
		return user{}, err
	}
	var t struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(login.body, &t); err != nil || t.AccessToken == "" {
		return user{}, fmt.Errorf("login: no access token in the answer")
	}
	return user{id: u.ID, email: email, token: t.AccessToken}, nil
}

// create POSTs body to path, expects 201 and returns the new resource's id
// and the position of the command.
func (a *api) create(ctx context.Context, kind, path, token string, body any) (string, int64, error) {
	ans, err := a.expect(ctx, http.StatusCreated, kind, http.MethodPost, path, token, body)
	if err != nil {
		return "", 0, err
	}
	var r struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(ans.body, &r); err != nil || r.ID == "" {
		return "", 0, fmt.Errorf("%s: no id in the answer: %.200s", kind, ans.body)
	}
	return r.ID, ans.position(), nil
}
