package server

import (
	"io/fs"
	"strings"

	"github.com/ferrysync/ferry/example-app/web"
	"github.com/ferrysync/ferry/framework"
	"github.com/gin-gonic/gin"
)

// mountWebApp serves Ferry Notes, the offline-first web app (package
// web), at /: its page, its service worker and its assets. A name that is
// not one of its files (or is a folder) is the router's 404 in the
// protocol's error shape, never a directory listing.
func mountWebApp(engine *gin.Engine) {
	files := web.Files()
	h := web.Handler()
	serve := func(c *gin.Context) {
		name := strings.TrimPrefix(c.Request.URL.Path, "/")
		if name == "" {
			name = "index.html"
		}
		if st, err := fs.Stat(files, name); err != nil || st.IsDir() {
			framework.WriteError(c, framework.NewError(framework.CodeNotFound, "no route %s %s", c.Request.Method, c.Request.URL.Path))
			return
		}
		h.ServeHTTP(c.Writer, c.Request)
	}
	for _, path := range []string{"/", "/sw.js", "/assets/*file"} {
		engine.GET(path, serve)
		engine.HEAD(path, serve)
	}
}
