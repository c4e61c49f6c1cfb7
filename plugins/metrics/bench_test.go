package metrics_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ferrysync/ferry/plugins/metrics"
	"github.com/ferrysync/ferry/plugins/requestid"
	"github.com/gin-gonic/gin"
)

// BenchmarkMiddleware measures what request ids and request metrics add
// to a request (compare the sub-benchmarks: "bare" is the baseline of
// the same run).
func BenchmarkMiddleware(b *testing.B) {
	m, err := metrics.New(metrics.Config{})
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		mw   []gin.HandlerFunc
	}{
		{"bare", nil},
		{"requestid", []gin.HandlerFunc{requestid.Middleware()}},
		{"requestid+metrics", []gin.HandlerFunc{requestid.Middleware(), m.Middleware()}},
	} {
		b.Run(c.name, func(b *testing.B) {
			e := gin.New()
			e.Use(c.mw...)
			e.GET("/sync/pull", func(c *gin.Context) { c.Status(http.StatusNoContent) })
			req := httptest.NewRequest("GET", "/sync/pull", nil)
			b.ReportAllocs()
			for b.Loop() {
				e.ServeHTTP(httptest.NewRecorder(), req)
			}
		})
	}
}
