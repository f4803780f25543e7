// Package console serves Engram's web console: a single page, in plain
// JavaScript and CSS embedded in the binary (no build step, no CDN), that
// speaks to the API like any other client.
//
// The page is served at / and its assets at /assets/{name}. The page names
// each asset with a digest of its content (?v=…), so that assets are cached
// for a year and a new binary's page fetches new ones; the page itself is
// revalidated on every load. A Content-Security-Policy lets the page load
// and connect to this origin only.
package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"

	"github.com/labstack/echo/v4"
)

//go:embed assets
var assets embed.FS

// contentSecurityPolicy confines the page to this origin: scripts and
// styles from its own files only (no inline code), requests to the API and
// its live streams only, no framing.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// asset is one embedded file, ready to serve.
type asset struct {
	body        []byte
	contentType string
	etag        string
	version     string
}

// Console serves the page and its assets. Build it with New.
type Console struct {
	page   asset
	assets map[string]asset
}

// New reads the embedded files and prepares the page, whose {{asset:NAME}}
// placeholders become the versioned URLs of the assets.
func New() (*Console, error) {
	c := &Console{assets: map[string]asset{}}
	entries, err := fs.ReadDir(assets, "assets")
	if err != nil {
		return nil, fmt.Errorf("console: list assets: %w", err)
	}
	var page []byte
	for _, e := range entries {
		body, err := assets.ReadFile(path.Join("assets", e.Name()))
		if err != nil {
			return nil, fmt.Errorf("console: read %s: %w", e.Name(), err)
		}
		if e.Name() == "index.html" {
			page = body
			continue
		}
		c.assets[e.Name()] = newAsset(e.Name(), body)
	}
	if page == nil {
		return nil, fmt.Errorf("console: index.html is missing")
	}
	for name, a := range c.assets {
		page = bytes.ReplaceAll(page, []byte("{{asset:"+name+"}}"), []byte("/assets/"+name+"?v="+a.version))
	}
	if i := bytes.Index(page, []byte("{{asset:")); i >= 0 {
		end := bytes.IndexByte(page[i:], '}')
		return nil, fmt.Errorf("console: index.html names an unknown asset: %s", page[i:i+max(end, 0)])
	}
	c.page = newAsset("index.html", page)
	return c, nil
}

func newAsset(name string, body []byte) asset {
	sum := sha256.Sum256(body)
	version := hex.EncodeToString(sum[:8])
	contentType := mime.TypeByExtension(path.Ext(name))
	switch path.Ext(name) { // not left to the system's MIME table
	case ".html":
		contentType = "text/html; charset=utf-8"
	case ".js":
		contentType = "text/javascript; charset=utf-8"
	case ".css":
		contentType = "text/css; charset=utf-8"
	case ".svg":
		contentType = "image/svg+xml"
	}
	return asset{body: body, contentType: contentType, etag: `"` + version + `"`, version: version}
}

// Register adds GET / and GET /assets/:name to e.
func (c *Console) Register(e *echo.Echo) {
	e.GET("/", c.servePage)
	e.GET("/assets/:name", c.serveAsset)
}

func (c *Console) servePage(ctx echo.Context) error {
	h := ctx.Response().Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("Cache-Control", "no-cache")
	return serve(ctx, c.page)
}

// serveAsset answers an asset: cached for a year when asked for by its
// current version (as the page does), revalidated otherwise.
func (c *Console) serveAsset(ctx echo.Context) error {
	a, ok := c.assets[ctx.Param("name")]
	if !ok {
		return echo.NewHTTPError(http.StatusNotFound, "no such asset")
	}
	h := ctx.Response().Header()
	if ctx.QueryParam("v") == a.version {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	return serve(ctx, a)
}

func serve(ctx echo.Context, a asset) error {
	h := ctx.Response().Header()
	h.Set("ETag", a.etag)
	if match := ctx.Request().Header.Get("If-None-Match"); match != "" && etagMatches(match, a.etag) {
		return ctx.NoContent(http.StatusNotModified)
	}
	return ctx.Blob(http.StatusOK, a.contentType, a.body)
}

// etagMatches reports whether an If-None-Match header names etag.
func etagMatches(header, etag string) bool {
	for _, candidate := range strings.Split(header, ",") {
		candidate = strings.TrimPrefix(strings.TrimSpace(candidate), "W/")
		if candidate == etag || candidate == "*" {
			return true
		}
	}
	return false
}
