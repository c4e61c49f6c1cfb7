// Package web holds Ferry Notes, the example app's offline-first web app
// (TypeScript in src/, on the protocol v1 client in clients/js), built by
// Vite into dist/ and embedded here, so the example server needs no
// Node to serve it. After changing src/ or clients/js/src, rebuild with
// `npm ci && npm run build` in this folder and commit dist/; TestWeb in
// example-app fails when dist/ is not what the sources build.
package web

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed dist
var dist embed.FS

// Files is the built app: index.html, sw.js and assets/.
func Files() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // dist is embedded at build time: it is there
	}
	return sub
}

// Handler serves the built app. Every answer is Cache-Control: no-cache:
// the file names carry no content hash, so a browser revalidates them
// (the service worker falls back to its copies when offline).
func Handler() http.Handler {
	files := http.FileServerFS(Files())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		files.ServeHTTP(w, r)
	})
}
