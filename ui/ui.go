// Package ui is Rampart's web UI: static HTML and a little vanilla JS over the JSON
// API, embedded with go:embed so the binary serves it with no build step. The page
// routes with the URL fragment, so only "/" and the assets under Prefix are served.
//
// It may import only the standard library.
package ui

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

// Prefix is where the assets are served.
const Prefix = "/ui/"

// Handler serves index.html at "/" and the assets under Prefix.
func Handler() http.Handler {
	root, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embed directive guarantees the directory
	}
	files := http.StripPrefix(Prefix, http.FileServerFS(root))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Content-Security-Policy", "default-src 'self'")
		if r.URL.Path == "/" {
			http.ServeFileFS(w, r, root, "index.html")
			return
		}
		files.ServeHTTP(w, r)
	})
}
