package test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/engramhq/engram/test/enginetest"
)

// Every forged, tampered, expired or revoked access token is refused with
// 401 and a WWW-Authenticate challenge; a valid one is accepted.
func TestTokenAttacksAreRefused(t *testing.T) {
	inst := enginetest.Start(t, enginetest.Options{})
	ada := inst.Signup(t, "Ada")
	ada.Must(http.StatusOK, "GET", "/v1/workspaces", nil)

	claims := jwtClaimsOf(t, ada.Token)
	secret := []byte(inst.JWTSecret)
	forge := func(method jwt.SigningMethod, key any, mutate func(jwt.MapClaims)) string {
		t.Helper()
		m := jwt.MapClaims{}
		for k, v := range claims {
			m[k] = v
		}
		if mutate != nil {
			mutate(m)
		}
		s, err := jwt.NewWithClaims(method, m).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	// A revoked session: Bob logs out, his token must not work any more.
	bob := inst.Signup(t, "Bob")
	bob.Must(http.StatusNoContent, "POST", "/v1/auth/logout", nil)
	parts := strings.Split(ada.Token, ".")
	adminClaims := base64.RawURLEncoding.EncodeToString(mustJSON(t, func() map[string]any {
		m := map[string]any{}
		for k, v := range claims {
			m[k] = v
		}
		m["roles"] = []string{"admin", "auditor", "user"}
		return m
	}()))

	attacks := []struct{ name, header string }{
		{"alg none", "Bearer " + forge(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, nil)},
		{"alg none without signature", "Bearer " + base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + "."},
		{"HS384", "Bearer " + forge(jwt.SigningMethodHS384, secret, nil)},
		{"HS512", "Bearer " + forge(jwt.SigningMethodHS512, secret, nil)},
		{"RS256", "Bearer " + forge(jwt.SigningMethodRS256, rsaKey, nil)},
		{"wrong key", "Bearer " + forge(jwt.SigningMethodHS256, []byte("another-secret-of-thirty-two-bytes!!"), nil)},
		{"expired", "Bearer " + forge(jwt.SigningMethodHS256, secret, func(m jwt.MapClaims) {
			m["iat"], m["nbf"], m["exp"] = time.Now().Add(-2*time.Hour).Unix(), time.Now().Add(-2*time.Hour).Unix(), time.Now().Add(-time.Hour).Unix()
		})},
		{"without expiry", "Bearer " + forge(jwt.SigningMethodHS256, secret, func(m jwt.MapClaims) { delete(m, "exp") })},
		{"wrong issuer", "Bearer " + forge(jwt.SigningMethodHS256, secret, func(m jwt.MapClaims) { m["iss"] = "evil" })},
		{"wrong audience", "Bearer " + forge(jwt.SigningMethodHS256, secret, func(m jwt.MapClaims) { m["aud"] = "another-api" })},
		{"revoked session", "Bearer " + bob.Token},
		{"escalated roles, original signature", "Bearer " + parts[0] + "." + adminClaims + "." + parts[2]},
		{"truncated", "Bearer " + ada.Token[:len(ada.Token)-6]},
		{"without signature", "Bearer " + parts[0] + "." + parts[1] + "."},
		{"garbage", "Bearer garbage"},
		{"garbage with dots", "Bearer a.b.c"},
		{"unknown API key", "Bearer sk-" + strings.Repeat("A", 43)},
		{"overlong API key", "Bearer sk-" + strings.Repeat("A", 4000)},
		{"empty bearer", "Bearer "},
		{"other scheme", "Basic " + base64.StdEncoding.EncodeToString([]byte("ada:"+enginetest.Password))},
	}
	anon := inst.Client(t)
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			r := anon.Do("GET", "/v1/auth/me", nil, "Authorization: "+a.header)
			if r.Status != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401: %s", r.Status, r.Body)
			}
			if r.Header.Get("WWW-Authenticate") == "" || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/problem+json") {
				t.Fatalf("headers %v", r.Header)
			}
		})
	}
	// The real token still works: nothing above changed the account.
	ada.Must(http.StatusOK, "GET", "/v1/workspaces", nil)
}

// Refresh rotates the refresh token; presenting a spent one revokes the
// whole session, and the session's access tokens stop working at once.
func TestRefreshRotationAndReuseDetection(t *testing.T) {
	inst := enginetest.Start(t, enginetest.Options{})
	ada, email := newAccount(t, inst, "Ada")
	anon := inst.Client(t)

	first := anon.Must(http.StatusOK, "POST", "/v1/auth/login", map[string]string{"email": email, "password": enginetest.Password}).Map(t)
	sessionID := first["session_id"].(string)
	if first["token_type"] != "Bearer" || first["expires_in"].(float64) <= 0 || first["refresh_token"] == "" {
		t.Fatalf("login answer = %v", first)
	}
	refresh := func(token string) *enginetest.Response {
		return anon.Do("POST", "/v1/auth/refresh", map[string]string{"refresh_token": token})
	}
	r := refresh(first["refresh_token"].(string))
	if r.Status != http.StatusOK {
		t.Fatalf("refresh: %d %s", r.Status, r.Body)
	}
	second := r.Map(t)
	if second["session_id"] != sessionID || second["refresh_token"] == first["refresh_token"] || second["access_token"] == first["access_token"] {
		t.Fatalf("rotation: %v", second)
	}
	third := anon.Must(http.StatusOK, "POST", "/v1/auth/refresh", map[string]string{"refresh_token": second["refresh_token"].(string)}).Map(t)
	access := third["access_token"].(string)
	anon.Must(http.StatusOK, "GET", "/v1/workspaces", nil, "Authorization: Bearer "+access)

	// Theft: the first refresh token comes back.
	reuse := refresh(first["refresh_token"].(string))
	if reuse.Status != http.StatusUnauthorized {
		t.Fatalf("reused refresh token: %d %s", reuse.Status, reuse.Body)
	}
	anon.Must(http.StatusUnauthorized, "GET", "/v1/auth/me", nil, "Authorization: Bearer "+access)
	anon.Must(http.StatusUnauthorized, "GET", "/v1/auth/me", nil, "Authorization: Bearer "+first["access_token"].(string))
	anon.Must(http.StatusUnauthorized, "POST", "/v1/auth/refresh", map[string]string{"refresh_token": third["refresh_token"].(string)})

	// The session list (a read model) shows why the session ended.
	type listed struct {
		ID            string  `json:"id"`
		RevokedReason *string `json:"revoked_reason"`
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var sessions struct {
			Items []listed `json:"items"`
		}
		ada.Must(http.StatusOK, "GET", "/v1/sessions", nil).JSON(t, &sessions)
		if slices.ContainsFunc(sessions.Items, func(s listed) bool {
			return s.ID == sessionID && s.RevokedReason != nil && *s.RevokedReason == "refresh_token_reuse"
		}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stolen session is not listed as revoked for reuse: %+v", sessions.Items)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Malformed refresh tokens are refused alike.
	for _, bad := range []string{"garbage", "rt_", "rt_" + sessionID, "rt_" + sessionID + ".forged", "rt_not-a-uuid.x"} {
		if r := refresh(bad); r.Status != http.StatusUnauthorized || !strings.Contains(string(r.Body), "invalid or expired refresh token") {
			t.Errorf("refresh %q: %d %s", bad, r.Status, r.Body)
		}
	}
	anon.Must(http.StatusUnprocessableEntity, "POST", "/v1/auth/refresh", map[string]string{})
}

// A failed login says the same thing, in the same form, whether the account
// exists or not; an over-long password is refused without being hashed.
func TestLoginDoesNotRevealAccounts(t *testing.T) {
	inst := enginetest.Start(t, enginetest.Options{})
	_, email := newAccount(t, inst, "Ada")
	anon := inst.Client(t)
	attempts := map[string]map[string]string{
		"wrong password":     {"email": email, "password": "not the password at all"},
		"unknown account":    {"email": "nobody-" + email, "password": "not the password at all"},
		"e-mail in capitals": {"email": strings.ToUpper(email), "password": "wrong again, still wrong"},
		"over-long password": {"email": email, "password": strings.Repeat("x", 1025)},
		"huge password":      {"email": "nobody-" + email, "password": strings.Repeat("x", 512<<10)},
	}
	var want string
	for _, name := range []string{"wrong password", "unknown account", "e-mail in capitals", "over-long password", "huge password"} {
		r := anon.Do("POST", "/v1/auth/login", attempts[name])
		if r.Status != http.StatusUnauthorized {
			t.Fatalf("%s: status %d: %s", name, r.Status, r.Body)
		}
		p := r.Map(t)
		delete(p, "request_id")
		got := string(mustJSON(t, p))
		if want == "" {
			want = got
		} else if got != want {
			t.Errorf("%s answers %s, unlike %s", name, got, want)
		}
	}
	anon.Must(http.StatusOK, "POST", "/v1/auth/login", map[string]string{"email": email, "password": enginetest.Password})
	for _, secret := range []string{enginetest.Password, "not the password at all", strings.Repeat("x", 1025)} {
		if strings.Contains(inst.Logs(), secret) {
			t.Fatal("the log contains a password")
		}
	}
}

// A revocation made on one instance is refused there at once and on every
// other instance within the revocation set's staleness bound — each keeps
// the revoked credentials in memory, fed by its tail of the log, and asks
// nobody on a request.
func TestRevocationReachesEveryInstanceAtOnce(t *testing.T) {
	a := enginetest.Start(t, enginetest.Options{})
	b := a.Second(t)
	ada, email := newAccount(t, a, "Ada")
	onB := b.Client(t)
	onB.Token = ada.Token
	onB.Must(http.StatusOK, "GET", "/v1/workspaces", nil)
	ada.Must(http.StatusNoContent, "POST", "/v1/auth/logout", nil)
	ada.Must(http.StatusUnauthorized, "GET", "/v1/auth/me", nil)
	// Not /v1/auth/me on B: the users read model may not hold Ada yet (a
	// 404 without Engram-Min-Position), which says nothing of revocations.
	refusedWithinBound(t, onB, "GET", "/v1/workspaces")

	// A session revoked from another session, on the other instance.
	laptop := signIn(t, a, email, enginetest.Password)
	phone := signIn(t, b, email, enginetest.Password)
	phoneSession := jwtClaimsOf(t, phone.Token)["sid"].(string)
	phone.Must(http.StatusOK, "GET", "/v1/workspaces", nil)
	laptop.Must(http.StatusNoContent, "DELETE", "/v1/sessions/"+phoneSession, nil)
	refusedWithinBound(t, phone, "GET", "/v1/workspaces")
	laptop.Must(http.StatusNoContent, "DELETE", "/v1/sessions/"+phoneSession, nil) // again: nothing changes

	// An API key revoked on A is refused on A at once, and on B within the
	// bound.
	key := laptop.Must(http.StatusCreated, "POST", "/v1/api-keys", map[string]any{"name": "ci", "scopes": []string{"read"}}).Map(t)
	keyOnA, keyOnB := a.Client(t), b.Client(t)
	keyOnA.Token, keyOnB.Token = key["key"].(string), key["key"].(string)
	// The answer to the issue waits for the api_keys read model, so B knows
	// the key; under heavy load that wait may time out, hence the deadline.
	awaitStatus(t, keyOnB, http.StatusOK, "GET", "/v1/workspaces")
	laptop.Must(http.StatusNoContent, "DELETE", "/v1/api-keys/"+key["id"].(string), nil)
	keyOnA.Must(http.StatusUnauthorized, "GET", "/v1/workspaces", nil)
	refusedWithinBound(t, keyOnB, "GET", "/v1/workspaces")

	// Both instances say their revocation sets are current.
	for _, inst := range []*enginetest.Instance{a, b} {
		var ready struct {
			Revocations struct {
				Current bool `json:"current"`
				Keys    int  `json:"keys"`
			} `json:"revocations"`
		}
		inst.Client(t).Must(http.StatusOK, "GET", "/readyz", nil).JSON(t, &ready)
		if !ready.Revocations.Current || ready.Revocations.Keys != 1 {
			t.Fatalf("%s /readyz revocations = %+v", inst.Addr, ready.Revocations)
		}
	}
	laptop.Must(http.StatusOK, "GET", "/v1/workspaces", nil)
}

// revocationBound is the documented staleness bound of the revocation set:
// a revocation is refused on every instance within it.
const revocationBound = 3 * time.Second

// refusedWithinBound polls until the request is refused with 401, and fails
// the test if that takes longer than revocationBound.
func refusedWithinBound(t *testing.T, c *enginetest.Client, method, path string) {
	t.Helper()
	start := time.Now()
	for {
		r := c.Do(method, path, nil)
		if r.Status == http.StatusUnauthorized {
			t.Logf("%s %s refused after %v", method, path, time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Since(start) > revocationBound {
			t.Fatalf("%s %s still %d %v after the revocation", method, path, r.Status, revocationBound)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// API keys: shown once, stored hashed, scoped, never beyond their owner,
// refused once revoked or expired, and never written to the log or the
// event log.
func TestAPIKeys(t *testing.T) {
	inst := enginetest.Start(t, enginetest.Options{})
	ada := inst.Signup(t, "Ada")
	eve := inst.Signup(t, "Eve")

	created := ada.Must(http.StatusCreated, "POST", "/v1/api-keys", map[string]any{"name": " deploy ", "scopes": []string{"write", "read"}, "expires_in_days": 30})
	k := created.Map(t)
	key := k["key"].(string)
	if !strings.HasPrefix(key, "sk-") || len(key) < 40 || !strings.HasPrefix(key, k["prefix"].(string)) || len(k["prefix"].(string)) >= len(key)/2 {
		t.Fatalf("issued key = %v", k)
	}
	if k["name"] != "deploy" || fmt.Sprint(k["scopes"]) != "[read write]" || k["id"] == "" || k["created_at"] == "" {
		t.Fatalf("issued key = %v", k)
	}
	if exp, err := time.Parse(time.RFC3339, k["expires_at"].(string)); err != nil || time.Until(exp) < 29*24*time.Hour || time.Until(exp) > 31*24*time.Hour {
		t.Fatalf("expires_at = %v (%v)", k["expires_at"], err)
	}
	never := ada.Must(http.StatusCreated, "POST", "/v1/api-keys", map[string]any{"name": "reader", "scopes": []string{"read"}}).Map(t)
	if never["expires_at"] != nil {
		t.Fatalf("a key without expires_in_days expires: %v", never)
	}

	withKey := inst.Client(t)
	withKey.Token = key
	made := withKey.Must(http.StatusCreated, "POST", "/v1/workspaces", map[string]any{"name": "Made by a key"})
	ws := made.Map(t)
	withKey.Must(http.StatusOK, "GET", "/v1/workspaces/"+ws["id"].(string), nil, "Engram-Min-Position: "+made.Position())
	reader := inst.Client(t)
	reader.Token = never["key"].(string)
	reader.Must(http.StatusOK, "GET", "/v1/workspaces/"+ws["id"].(string), nil, "Engram-Min-Position: "+made.Position())
	reader.Must(http.StatusForbidden, "POST", "/v1/workspaces", map[string]any{"name": "nope"})
	reader.Must(http.StatusForbidden, "PATCH", "/v1/workspaces/"+ws["id"].(string), map[string]any{"name": "nope"})
	// Keys do not manage credentials, whatever their scopes.
	withKey.Must(http.StatusForbidden, "POST", "/v1/api-keys", map[string]any{"name": "child", "scopes": []string{"read"}})
	withKey.Must(http.StatusForbidden, "GET", "/v1/api-keys", nil)
	withKey.Must(http.StatusForbidden, "DELETE", "/v1/api-keys/"+never["id"].(string), nil)
	withKey.Must(http.StatusForbidden, "POST", "/v1/auth/logout", nil)
	withKey.Must(http.StatusForbidden, "GET", "/v1/sessions", nil)

	// A key never exceeds its owner: no audit scope for a plain user.
	ada.Must(http.StatusForbidden, "POST", "/v1/api-keys", map[string]any{"name": "audit", "scopes": []string{"audit"}})
	// Every bad field at once; no Idempotency-Key (the answer is a secret).
	bad := ada.Must(http.StatusUnprocessableEntity, "POST", "/v1/api-keys", map[string]any{"name": "", "scopes": []string{"root"}, "expires_in_days": 0}).Map(t)
	if fields := invalidFields(bad); !slices.Equal(fields, []string{"expires_in_days", "name", "scopes"}) {
		t.Fatalf("invalid fields = %v (%v)", fields, bad)
	}
	ada.Must(http.StatusUnprocessableEntity, "POST", "/v1/api-keys", map[string]any{"name": "x", "scopes": []string{"read"}, "expires_in_days": 366})
	ada.Must(http.StatusBadRequest, "POST", "/v1/api-keys", map[string]any{"name": "x", "scopes": "read"})
	ada.Must(http.StatusUnprocessableEntity, "POST", "/v1/api-keys", map[string]any{"name": "x", "scopes": []string{"read"}}, "Idempotency-Key: k1")

	// Lists show the prefix, never the key nor its hash.
	list := ada.Must(http.StatusOK, "GET", "/v1/api-keys", nil)
	var keys struct {
		Items []map[string]any `json:"items"`
	}
	list.JSON(t, &keys)
	if len(keys.Items) != 2 || strings.Contains(string(list.Body), key) || strings.Contains(string(list.Body), never["key"].(string)) ||
		strings.Contains(string(list.Body), tokenHash(key)) || strings.Contains(string(list.Body), "hash") {
		t.Fatalf("key list = %s", list.Body)
	}
	if page := ada.Must(http.StatusOK, "GET", "/v1/api-keys?limit=1", nil).Map(t); page["next_cursor"] == "" {
		t.Fatalf("first page of one = %v", page)
	}
	eveList := eve.Must(http.StatusOK, "GET", "/v1/api-keys", nil).Map(t)
	if len(eveList["items"].([]any)) != 0 {
		t.Fatalf("Eve sees keys: %v", eveList)
	}

	// Revocation: only the owner (Eve is told it does not exist), at once.
	eve.Must(http.StatusNotFound, "DELETE", "/v1/api-keys/"+k["id"].(string), nil)
	ada.Must(http.StatusNotFound, "DELETE", "/v1/api-keys/not-a-key", nil)
	ada.Must(http.StatusNoContent, "DELETE", "/v1/api-keys/"+k["id"].(string), nil)
	withKey.Must(http.StatusUnauthorized, "GET", "/v1/workspaces", nil)
	ada.Must(http.StatusNoContent, "DELETE", "/v1/api-keys/"+k["id"].(string), nil)

	// Expiry: the read model says a key expired a second ago (a key is
	// remembered in memory once used, with the expiry read with it, so this
	// one is used for the first time after).
	expiring := ada.Must(http.StatusCreated, "POST", "/v1/api-keys", map[string]any{"name": "expiring", "scopes": []string{"read"}}).Map(t)
	db := openDB(t, inst.DatabaseURL)
	if _, err := db.Exec(`UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1`, expiring["id"]); err != nil {
		t.Fatal(err)
	}
	withExpired := inst.Client(t)
	withExpired.Token = expiring["key"].(string)
	withExpired.Must(http.StatusUnauthorized, "GET", "/v1/workspaces", nil)
	reader.Must(http.StatusOK, "GET", "/v1/workspaces", nil)

	// Secrets stay secret: not in the event log, not in the process log.
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM events WHERE data::text LIKE '%' || $1 || '%' OR data::text LIKE '%' || $2 || '%'`,
		key, never["key"]).Scan(&n); err != nil || n != 0 {
		t.Fatalf("events holding a key: %d, %v", n, err)
	}
	if err := db.QueryRow(`SELECT count(*) FROM events WHERE type = 'apikey.issued' AND data->>'key_hash' = $1`, tokenHash(key)).Scan(&n); err != nil || n != 1 {
		t.Fatalf("issued events storing the key's hash: %d, %v", n, err)
	}
	logs := inst.Logs()
	for _, secret := range []string{key, never["key"].(string), tokenHash(key), ada.Token, enginetest.Password} {
		if strings.Contains(logs, secret) {
			t.Fatal("the log contains a secret")
		}
	}
}

// engram user create and grant: passwords from standard input (never from
// the command line), roles that take effect at the next login.
func TestUserCommandLine(t *testing.T) {
	inst := enginetest.Start(t, enginetest.Options{})
	email := "root-" + uniqueSuffix() + "@example.com"
	out, errOut, code := engramCLI(t, inst, enginetest.Password+"\n", "user", "create", "--email", email, "--display-name", "Root", "--role", "admin")
	if code != 0 || !strings.Contains(out, email) || !strings.Contains(out, "admin") {
		t.Fatalf("user create: exit %d\n%s%s", code, out, errOut)
	}
	root := signIn(t, inst, email, enginetest.Password)
	me := root.Must(http.StatusOK, "GET", "/v1/auth/me", nil, "Engram-Min-Position: "+cliPosition(t, out)).Map(t)
	if fmt.Sprint(me["roles"]) != "[admin user]" {
		t.Fatalf("roles = %v", me["roles"])
	}
	if claims := jwtClaimsOf(t, root.Token); fmt.Sprint(claims["roles"]) != "[admin user]" {
		t.Fatalf("token roles = %v", claims["roles"])
	}

	out, errOut, code = engramCLI(t, inst, "", "user", "grant", "--email", strings.ToUpper(email), "--role", "auditor")
	if code != 0 || !strings.Contains(out, "granted auditor") {
		t.Fatalf("user grant: exit %d\n%s%s", code, out, errOut)
	}
	again := signIn(t, inst, email, enginetest.Password)
	if claims := jwtClaimsOf(t, again.Token); fmt.Sprint(claims["roles"]) != "[admin auditor user]" {
		t.Fatalf("token roles after the grant = %v", claims["roles"])
	}
	if out, _, code = engramCLI(t, inst, "", "user", "grant", "--email", email, "--role", "auditor"); code != 0 || !strings.Contains(out, "already holds") {
		t.Fatalf("second grant: exit %d %s", code, out)
	}

	failures := []struct {
		name  string
		stdin string
		args  []string
		code  int
		says  string
	}{
		{"short password", "short\n", []string{"user", "create", "--email", "x-" + email, "--display-name", "X"}, 2, "password"},
		{"no password", "", []string{"user", "create", "--email", "y-" + email, "--display-name", "Y"}, 2, "no password"},
		{"taken e-mail", enginetest.Password + "\n", []string{"user", "create", "--email", email, "--display-name", "Z"}, 1, "already exists"},
		{"password on the command line", "", []string{"user", "create", "--email", "z-" + email, "--display-name", "Z", "--password", "s3cret-s3cret"}, 2, "unknown flag"},
		{"unknown role", enginetest.Password + "\n", []string{"user", "create", "--email", "w-" + email, "--display-name", "W", "--role", "root"}, 2, "role"},
		{"grant to nobody", "", []string{"user", "grant", "--email", "nobody@example.com", "--role", "admin"}, 1, "no user"},
	}
	for _, f := range failures {
		out, errOut, code := engramCLI(t, inst, f.stdin, f.args...)
		if code != f.code || !strings.Contains(out+errOut, f.says) {
			t.Errorf("%s: exit %d, want %d saying %q:\n%s%s", f.name, code, f.code, f.says, out, errOut)
		}
		if f.stdin != "" && strings.Contains(out+errOut, strings.TrimSpace(f.stdin)) {
			t.Errorf("%s: the output repeats the password", f.name)
		}
	}
}

// Failed logins are throttled per account and per client address (taken
// from X-Forwarded-For only when the peer is a trusted proxy), answered 429
// with Retry-After, the same for unknown accounts, and the throttle lifts
// when the window ends.
func TestLoginThrottling(t *testing.T) {
	const window = 2 * time.Second
	inst := enginetest.Start(t, enginetest.Options{Env: map[string]string{
		"ENGRAM_LOGIN_MAX_ATTEMPTS": "3",
		"ENGRAM_LOGIN_WINDOW":       window.String(),
		"ENGRAM_TRUSTED_PROXIES":    "127.0.0.1/32,::1/128",
	}})
	_, bobEmail := newAccount(t, inst, "Bob")
	anon := inst.Client(t)
	login := func(email, password, from string) *enginetest.Response {
		return anon.Do("POST", "/v1/auth/login", map[string]string{"email": email, "password": password}, "X-Forwarded-For: "+from)
	}
	const wrong = "wrong password, wrong"
	expect := func(r *enginetest.Response, status int, what string) error {
		if r.Status != status {
			return fmt.Errorf("%s: status %d, want %d: %s", what, r.Status, status, r.Body)
		}
		if status == http.StatusTooManyRequests {
			if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || s < 1 || s > int(window/time.Second) {
				return fmt.Errorf("%s: Retry-After %q", what, r.Header.Get("Retry-After"))
			}
		}
		return nil
	}
	var throttled string // an account left throttled, to see it recover

	// Per account: three failures from three addresses; the fourth attempt,
	// even with the right password from a fresh address, is refused, and an
	// unknown account is answered alike.
	inOneWindow(t, window, func(n int) error {
		_, email := newAccount(t, inst, "Ada")
		ghost := "ghost-" + email
		for i := range 3 {
			if err := expect(login(email, wrong, fmt.Sprintf("198.51.%d.%d", n, i+1)), 401, "failure"); err != nil {
				return err
			}
			if err := expect(login(ghost, wrong, fmt.Sprintf("198.51.%d.%d", n, i+11)), 401, "unknown account failure"); err != nil {
				return err
			}
		}
		known := login(email, enginetest.Password, fmt.Sprintf("198.51.%d.50", n))
		unknown := login(ghost, wrong, fmt.Sprintf("198.51.%d.51", n))
		if err := errors.Join(expect(known, 429, "known account"), expect(unknown, 429, "unknown account")); err != nil {
			return err
		}
		if k, u := known.Map(t), unknown.Map(t); k["type"] != u["type"] || k["title"] != u["title"] {
			return fmt.Errorf("throttled answers differ: %s vs %s", known.Body, unknown.Body)
		}
		throttled = email
		// Another account is not affected.
		return expect(login(bobEmail, enginetest.Password, fmt.Sprintf("198.51.%d.60", n)), 200, "Bob")
	})

	// Per address: three failures on three accounts from one address; the
	// left-hand X-Forwarded-For entries a client adds change nothing.
	inOneWindow(t, window, func(n int) error {
		from := fmt.Sprintf("203.0.113.%d", n+1)
		for i := range 3 {
			if err := expect(login(fmt.Sprintf("victim%d-%s", i, bobEmail), wrong, fmt.Sprintf("10.0.0.%d, %s", i, from)), 401, "address failure"); err != nil {
				return err
			}
		}
		return errors.Join(
			expect(login(bobEmail, enginetest.Password, "10.9.9.9, "+from), 429, "Bob from the throttled address"),
			expect(login(bobEmail, enginetest.Password, fmt.Sprintf("203.0.113.%d", n+101)), 200, "Bob from another address"))
	})

	// IPv6 clients are counted by their /64.
	inOneWindow(t, window, func(n int) error {
		for i := range 3 {
			if err := expect(login(fmt.Sprintf("v6-%d-%s", i, bobEmail), wrong, fmt.Sprintf("2001:db8:%x:2::%d", n, i+1)), 401, "IPv6 failure"); err != nil {
				return err
			}
		}
		return expect(login(bobEmail, enginetest.Password, fmt.Sprintf("2001:db8:%x:2:ffff::9", n)), 429, "Bob from the same /64")
	})

	// Recovery: once the window is over, the throttled account logs in again.
	deadline := time.Now().Add(2*window + time.Second)
	for {
		r := login(throttled, enginetest.Password, "192.0.2.70")
		if r.Status == http.StatusOK {
			break
		}
		if r.Status != http.StatusTooManyRequests || time.Now().After(deadline) {
			t.Fatalf("after the window: %d %s", r.Status, r.Body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// inOneWindow runs a step of the throttling test so that it falls in one
// fixed window of the throttle (windows start at multiples of window since
// the Unix epoch): it starts early in a window and, when the step fails
// after a window boundary passed, runs it again (n counts the runs, so that
// the step uses fresh accounts and addresses).
func inOneWindow(t *testing.T, window time.Duration, step func(n int) error) {
	t.Helper()
	for n := 0; ; n++ {
		now := time.Now()
		if next := now.Truncate(window).Add(window); next.Sub(now) < window/2 {
			time.Sleep(next.Sub(now) + 20*time.Millisecond)
		}
		started := time.Now().Truncate(window)
		err := step(n)
		if err == nil {
			return
		}
		if !time.Now().Truncate(window).After(started) || n == 2 {
			t.Fatal(err)
		}
		t.Logf("a window boundary passed during the step; running it again: %v", err)
	}
}

// Workspace sharing: owners share with viewers and editors, roles change,
// members leave, the last owner cannot; shared workspaces appear in the
// member's list; strangers learn nothing, not even which accounts exist.
func TestWorkspaceSharing(t *testing.T) {
	inst := enginetest.Start(t, enginetest.Options{})
	ada, _ := newAccount(t, inst, "Ada")
	bob, bobEmail := newAccount(t, inst, "Bob")
	eve, _ := newAccount(t, inst, "Eve")
	ws := ada.Must(http.StatusCreated, "POST", "/v1/workspaces", map[string]any{"name": "Shared"}).Map(t)["id"].(string)
	members := "/v1/workspaces/" + ws + "/members"

	// A stranger may not manage members, and is not told whether an address
	// has an account.
	eve.Must(http.StatusNotFound, "POST", members, map[string]any{"email": bobEmail, "role": "viewer"})
	eve.Must(http.StatusNotFound, "POST", members, map[string]any{"email": "nobody@example.com", "role": "viewer"})
	ada.Must(http.StatusUnprocessableEntity, "POST", members, map[string]any{"email": "nobody-" + bobEmail, "role": "viewer"})
	ada.Must(http.StatusUnprocessableEntity, "POST", members, map[string]any{"email": bobEmail, "user_id": bob.UserID, "role": "viewer"})
	ada.Must(http.StatusUnprocessableEntity, "POST", members, map[string]any{"email": bobEmail, "role": "admin"})

	added := ada.Must(http.StatusCreated, "POST", members, map[string]any{"email": strings.ToUpper(bobEmail), "role": "viewer"})
	if m := added.Map(t); m["user_id"] != bob.UserID || m["role"] != "viewer" {
		t.Fatalf("added member = %v", m)
	}
	list := bob.Must(http.StatusOK, "GET", "/v1/workspaces", nil, "Engram-Min-Position: "+added.Position()).Map(t)
	if items := list["items"].([]any); len(items) != 1 || items[0].(map[string]any)["id"] != ws || items[0].(map[string]any)["role"] != "viewer" {
		t.Fatalf("Bob's workspaces = %v", list)
	}
	bob.Must(http.StatusForbidden, "POST", "/v1/workspaces/"+ws+"/conversations", map[string]any{"title": "Mine"})
	bob.Must(http.StatusForbidden, "POST", members, map[string]any{"email": bobEmail, "role": "owner"})

	ada.Must(http.StatusCreated, "POST", members, map[string]any{"user_id": bob.UserID, "role": "editor"})
	bob.Must(http.StatusCreated, "POST", "/v1/workspaces/"+ws+"/conversations", map[string]any{"title": "Mine"})
	bob.Must(http.StatusForbidden, "PATCH", "/v1/workspaces/"+ws, map[string]any{"name": "Bob's"})

	// Bob leaves; the last owner cannot.
	left := bob.Must(http.StatusNoContent, "DELETE", members+"/"+bob.UserID, nil)
	bob.Must(http.StatusNotFound, "GET", "/v1/workspaces/"+ws, nil, "Engram-Min-Position: "+left.Position())
	ada.Must(http.StatusConflict, "DELETE", members+"/"+ada.UserID, nil)
	ada.Must(http.StatusNotFound, "DELETE", members+"/"+bob.UserID, nil)
}

// awaitStatus repeats a request until it answers want, failing after 10s.
func awaitStatus(t *testing.T, c *enginetest.Client, want int, method, path string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := c.Do(method, path, nil)
		if r.Status == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s %s: status %d after 10s, want %d: %s", method, path, r.Status, want, r.Body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// newAccount registers a user and logs in; it returns the client and the
// user's e-mail address.
func newAccount(t *testing.T, inst *enginetest.Instance, name string) (*enginetest.Client, string) {
	t.Helper()
	email := strings.ToLower(name) + "-" + uniqueSuffix() + "@example.com"
	inst.Client(t).Must(http.StatusCreated, "POST", "/v1/auth/register", map[string]string{
		"email": email, "password": enginetest.Password, "display_name": name,
	})
	return signIn(t, inst, email, enginetest.Password), email
}

// signIn logs in with e-mail and password and returns the client.
func signIn(t *testing.T, inst *enginetest.Instance, email, password string) *enginetest.Client {
	t.Helper()
	c := inst.Client(t)
	m := c.Must(http.StatusOK, "POST", "/v1/auth/login", map[string]string{"email": email, "password": password}).Map(t)
	c.Token = m["access_token"].(string)
	c.UserID = m["user"].(map[string]any)["id"].(string)
	return c
}

// cliPosition reads "position N" from the output of engram user.
func cliPosition(t *testing.T, out string) string {
	t.Helper()
	fields := strings.Fields(out)
	for i, f := range fields {
		if f == "position" && i+1 < len(fields) {
			return fields[i+1]
		}
	}
	t.Fatalf("no position in %q", out)
	return ""
}

// jwtClaimsOf decodes (without verifying) the claims of a token.
func jwtClaimsOf(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d parts", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// invalidFields lists the fields named by a validation problem, sorted.
func invalidFields(p map[string]any) []string {
	var out []string
	errs, _ := p["errors"].([]any)
	for _, e := range errs {
		out = append(out, e.(map[string]any)["field"].(string))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func tokenHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func uniqueSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)
}
