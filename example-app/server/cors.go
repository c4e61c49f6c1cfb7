package server

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/ferrysync/ferry/framework"
	"github.com/gin-contrib/cors"
	"github.com/gin-gonic/gin"
)

// corsEnv reads FERRY_CORS_ORIGINS: comma-separated origins
// (https://app.example.com) whose pages may call the sync and account
// routes, or "*" for any.
func corsEnv(cfg *Config) {
	for _, o := range strings.Split(os.Getenv("FERRY_CORS_ORIGINS"), ",") {
		if o = strings.TrimSpace(o); o != "" {
			cfg.CORSOrigins = append(cfg.CORSOrigins, o)
		}
	}
}

// corsMiddleware lets pages of the listed origins call the server from
// a browser (gin-contrib/cors answers the preflights and sets the
// headers). Requests without an Origin header, and same-origin ones, pass
// untouched; a page of another origin is refused with 403 forbidden in
// the protocol's error shape. Tokens travel in the Authorization header,
// never in cookies, so credentials are not allowed.
func corsMiddleware(origins []string) (gin.HandlerFunc, error) {
	all := slices.Contains(origins, "*")
	for _, o := range origins {
		if o == "*" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil || u.Fragment != "" {
			return nil, fmt.Errorf("CORSOrigins: %q is not an origin such as https://app.example.com (scheme and host, no path)", o)
		}
	}
	cfg := cors.Config{
		AllowOrigins:    origins,
		AllowAllOrigins: all,
		AllowMethods:    []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodDelete},
		// Content-Encoding: compressed push bodies; Last-Event-ID: an
		// EventSource reconnecting to /sync/stream; X-Request-Id: a
		// client's own request ids.
		AllowHeaders: []string{"Authorization", "Content-Type", "Content-Encoding", "Accept", "Last-Event-ID", "X-Request-Id"},
		// Accept-Encoding: the server takes compressed request bodies;
		// X-Request-Id: the id to quote in a bug report.
		ExposeHeaders: []string{"Retry-After", "Accept-Encoding", "X-Request-Id"},
		MaxAge:        12 * time.Hour,
	}
	if all {
		cfg.AllowOrigins = nil
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("CORSOrigins: %w", err)
	}
	apply := cors.New(cfg)
	return func(c *gin.Context) {
		origin := c.GetHeader("Origin")
		if origin != "" && !all && !slices.Contains(origins, origin) &&
			origin != "http://"+c.Request.Host && origin != "https://"+c.Request.Host {
			framework.WriteError(c, framework.NewError(framework.CodeForbidden, "origin %s is not allowed; the server lists the allowed ones in FERRY_CORS_ORIGINS", origin))
			return
		}
		apply(c)
	}, nil
}
