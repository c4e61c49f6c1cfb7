// Package requestid gives every HTTP request an id: the client's
// X-Request-Id when it sent a usable one (a proxy in front may have
// made it), a new random one otherwise. The id is echoed in the answer's
// X-Request-Id, kept in the request's context, and added to every slog
// record logged with that context by a logger built on [NewHandler], so
// an operator can follow one request through the logs and a client can
// quote it in a bug report.
package requestid

import (
	"context"
	"log/slog"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
)

// Header is the request and answer header that carries the id.
const Header = "X-Request-Id"

// MaxLen caps an accepted id; a longer one, an empty one, or one with a
// character outside letters, digits and "-_.:/+=@" is replaced by a new
// id (not refused: the id is a convenience, never a reason to fail a
// sync), so that no client can write what it likes into the logs.
const MaxLen = 128

// LogKey is the slog attribute [NewHandler] adds.
const LogKey = "request_id"

type ctxKey struct{}

// Middleware is gin middleware that sets the request's id. Put it first
// on the engine, so that everything after it (the access log, recovery,
// the handlers) sees the id.
func Middleware() gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.GetHeader(Header)
		if !valid(id) {
			id = uuid.NewString()
		}
		c.Header(Header, id)
		c.Request = c.Request.WithContext(With(c.Request.Context(), id))
		c.Next()
	}
}

// With returns ctx carrying id (jobs outside HTTP may set their own).
func With(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// From returns the request id ctx carries, or "".
func From(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}

func valid(id string) bool {
	if id == "" || len(id) > MaxLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch b := id[i]; {
		case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9':
		case b == '-', b == '_', b == '.', b == ':', b == '/', b == '+', b == '=', b == '@':
		default:
			return false
		}
	}
	return true
}

// NewHandler wraps h so that a record logged with a context carrying a
// request id (the ...Context methods of slog.Logger) gets a request_id
// attribute. Records without one pass through unchanged.
func NewHandler(h slog.Handler) slog.Handler { return handler{h} }

type handler struct{ slog.Handler }

func (h handler) Handle(ctx context.Context, r slog.Record) error {
	if id := From(ctx); id != "" {
		r = r.Clone()
		r.AddAttrs(slog.String(LogKey, id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return handler{h.Handler.WithAttrs(attrs)}
}

func (h handler) WithGroup(name string) slog.Handler {
	return handler{h.Handler.WithGroup(name)}
}
