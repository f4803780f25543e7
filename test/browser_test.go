package test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/engramhq/engram/test/enginetest"
)

// browserWait bounds each wait for the page.
const browserWait = 30 * time.Second

// chromium returns the path of a Chromium (or Chrome) binary. Without one
// the test is skipped, except in CI (CI=true), where it fails: the browser
// test must run there.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	const msg = "no Chromium found: install it (apt-get install -y chromium) to run the browser test"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// newBrowser starts a headless Chromium with a fresh profile and returns a
// context of one of its tabs; it is closed when the test ends.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 860),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithLogf(func(string, ...any) {}), chromedp.WithErrorf(func(string, ...any) {}))
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// browserRun runs browser actions, each wait bounded by browserWait, failing the
// test with what was being done.
func browserRun(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, browserWait)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		var extra string
		if body, terr := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body"))); terr == nil {
			extra = "\npage text:\n" + body
		}
		t.Fatalf("%s: %v%s", what, err, extra)
	}
}

// browserValue evaluates a JavaScript expression in the page.
func browserValue[T any](t *testing.T, ctx context.Context, expression string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, browserWait)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expression))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expression, err)
	}
	return v
}

// js runs a JavaScript statement in the page.
func js(statement string) chromedp.Action[chromedp.Void] {
	return void(chromedp.Evaluate[any](statement))
}

// void drops the value of an action.
func void[T any](a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := a(ctx, t)
		return chromedp.Void{}, err
	}
}

// pollPage polls a JavaScript expression in the page until it is true.
func pollPage(expression string) chromedp.Action[chromedp.Void] {
	return void(chromedp.Poll[any](expression, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(browserWait)))
}

// screenshot saves the page as docs/screenshots/<name>.png when
// ENGRAM_SCREENSHOTS names a directory (the repository's docs/screenshots
// to refresh them).
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("ENGRAM_SCREENSHOTS")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// hasMessage is a JavaScript expression: a message of the conversation
// holds text.
func hasMessage(text string) string {
	return fmt.Sprintf(`[...document.querySelectorAll("#messages .msg[data-id]")].some(m => m.textContent.includes(%q))`, text)
}

// A person signs in to the console, posts a message and sees the echo
// answer arrive live; Engram restarts and the page's own EventSource
// resumes without loss or duplicate (no page code reopens it); an auditor
// verifies the log.
func TestBrowserConsole(t *testing.T) {
	if testing.Short() {
		t.Skip("the browser test is not short")
	}
	ctx := newBrowser(t)
	inst := enginetest.Start(t, enginetest.Options{})
	ada := inst.Signup(t, "Ada")
	ws := ada.Must(http.StatusCreated, "POST", "/v1/workspaces", map[string]any{"name": "Research"}).Map(t)["id"].(string)
	conv := ada.Must(http.StatusCreated, "POST", "/v1/workspaces/"+ws+"/conversations", map[string]any{"title": "Launch plan"}).Map(t)["id"].(string)
	ada.Must(http.StatusCreated, "POST", "/v1/workspaces/"+ws+"/memory", map[string]any{"type": "entity", "content": "Ada leads the launch"})

	// Sign in; a wrong password shows the problem document first.
	browserRun(t, ctx, "open the console", chromedp.Navigate(inst.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#signin-email")))
	screenshot(t, ctx, "sign-in")
	browserRun(t, ctx, "sign in with a wrong password",
		chromedp.SendKeys(chromedp.CSS("#signin-email"), emailOf(t, inst, ada)),
		chromedp.SendKeys(chromedp.CSS("#signin-password"), "not the password"),
		chromedp.Click(chromedp.CSS("#signin-submit")),
		pollPage(`!!document.querySelector(".problem[data-status='401']")`))
	browserRun(t, ctx, "sign in",
		chromedp.SetValue(chromedp.CSS("#signin-password"), enginetest.Password),
		chromedp.Click(chromedp.CSS("#signin-submit")),
		pollPage(`[...document.querySelectorAll("#workspace-list a")].some(a => a.textContent.includes("Research"))`))

	browserRun(t, ctx, "start a conversation from the console",
		js(`location.hash = "#/w/`+ws+`"`),
		chromedp.WaitVisible(chromedp.CSS(`input[name="title"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name="title"]`), "Started in the browser"+kb.Enter),
		pollPage(`location.hash.startsWith("#/c/") && document.querySelector("main h1")?.textContent.includes("Started in the browser")`))
	browserRun(t, ctx, "open the workspace's members",
		js(`location.hash = "#/w/`+ws+`/members"`),
		pollPage(`document.querySelector("main table")?.textContent.includes("Ada")`))
	screenshot(t, ctx, "workspace")
	browserRun(t, ctx, "open the workspace's memory",
		js(`location.hash = "#/w/`+ws+`/memory"`),
		pollPage(`document.querySelector("#memory-list")?.textContent.includes("Ada leads the launch")`))

	// Post, and see the assistant's answer arrive live.
	browserRun(t, ctx, "open the conversation",
		js(`location.hash = "#/c/`+conv+`"`),
		pollPage(`document.querySelector("#live-status")?.dataset.state === "on"`))
	browserRun(t, ctx, "post a message",
		chromedp.SendKeys(chromedp.CSS("#composer textarea"), "hello from the browser"+kb.Enter),
		pollPage(hasMessage("hello from the browser")),
		pollPage(hasMessage("ECHO: hello from the browser")))
	screenshot(t, ctx, "conversation")

	// Restart Engram: the browser reconnects by itself, with Last-Event-ID,
	// to the URL it was given, and gets what was posted meanwhile.
	inst.Restart(t)
	ada.Must(http.StatusCreated, "POST", "/v1/conversations/"+conv+"/messages", map[string]any{"content": "posted after the restart"})
	browserRun(t, ctx, "resume after the restart",
		pollPage(hasMessage("ECHO: posted after the restart")),
		pollPage(`document.querySelector("#live-status")?.dataset.state === "on"`))

	ids := browserValue[[]string](t, ctx, `[...document.querySelectorAll("#messages .msg[data-id]")].map(m => m.dataset.id)`)
	duplicates := browserValue[string](t, ctx, `document.body.dataset.liveDuplicates || "0"`)
	reopens := browserValue[string](t, ctx, `document.body.dataset.liveReopens || "0"`)
	if duplicates != "0" || reopens != "0" {
		t.Errorf("live stream: %s duplicate events, reopened by the page %s times; want 0 and 0 (the browser resumes by itself)", duplicates, reopens)
	}
	var stored struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	ada.Must(http.StatusOK, "GET", "/v1/conversations/"+conv+"/messages?limit=200", nil).JSON(t, &stored)
	var want []string
	for _, m := range stored.Items {
		want = append(want, m.ID)
	}
	if !slices.Equal(ids, want) {
		t.Errorf("messages on the page:\n  %v\nstored:\n  %v", ids, want)
	}

	// An auditor signs in and verifies the log.
	audrey := inst.Signup(t, "Audrey")
	grant(t, inst, audrey, "auditor")
	browserRun(t, ctx, "sign out",
		chromedp.Click(chromedp.CSS("#sign-out")),
		chromedp.WaitVisible(chromedp.CSS("#signin-email")))
	browserRun(t, ctx, "sign in as the auditor",
		chromedp.SendKeys(chromedp.CSS("#signin-email"), emailOf(t, inst, audrey)),
		chromedp.SendKeys(chromedp.CSS("#signin-password"), enginetest.Password),
		chromedp.Click(chromedp.CSS("#signin-submit")),
		chromedp.WaitVisible(chromedp.CSS("#nav-audit")),
		chromedp.Click(chromedp.CSS("#nav-audit")),
		pollPage(`document.querySelectorAll("main tbody tr.selectable").length > 0`))
	browserRun(t, ctx, "filter the log by stream",
		chromedp.SendKeys(chromedp.CSS("#f-stream_id"), "conversation-"+conv),
		js(`document.querySelector("#audit-filters").requestSubmit()`),
		pollPage(`document.querySelectorAll("main tbody tr.selectable").length > 0 && [...document.querySelectorAll("main tbody tr.selectable")].every(r => r.textContent.includes("conversation-`+conv+`"))`),
		chromedp.Click(chromedp.CSS("main tbody tr.selectable")),
		pollPage(`document.querySelector("#audit-detail").textContent.includes("conversation.created")`),
		chromedp.Click(chromedp.CSS("#verify")),
		pollPage(`!!document.querySelector("#verify-result[data-ok]")`))
	if ok := browserValue[string](t, ctx, `document.querySelector("#verify-result").dataset.ok`); ok != "true" {
		t.Fatalf("verification on the page: %q", browserValue[string](t, ctx, `document.querySelector("#verify-result").textContent`))
	}
	browserRun(t, ctx, "show a state as of version 1",
		js(`document.querySelector("#s-stream").form.requestSubmit()`),
		pollPage(`document.querySelector("#audit-state").textContent.includes('"version": 1')`))
	screenshot(t, ctx, "audit")
}
