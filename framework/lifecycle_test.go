package framework_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/ferrysync/ferry/models"
	"github.com/gin-gonic/gin"
	"github.com/uptrace/bun"
)

// ticker is a plugin with a lifecycle: a goroutine that runs while the
// App serves.
type ticker struct {
	every time.Duration
	stop  chan struct{}
	done  chan struct{}
}

func (*ticker) Name() string                   { return "ticker" }
func (*ticker) Setup(app *framework.App) error { return nil } // nothing starts here

// Start implements framework.Starter.
func (t *ticker) Start(ctx context.Context) error {
	t.stop, t.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(t.done)
		tick := time.NewTicker(t.every)
		defer tick.Stop()
		for {
			select {
			case <-t.stop:
				return
			case <-tick.C: // e.g. purge tombstones, renew a lease
			}
		}
	}()
	fmt.Println("ticker started")
	return nil
}

// Close implements framework.Closer.
func (t *ticker) Close() error {
	close(t.stop)
	<-t.done
	fmt.Println("ticker stopped")
	return nil
}

var (
	_ framework.Starter = (*ticker)(nil)
	_ framework.Closer  = (*ticker)(nil)
)

// ExampleApp_Start attaches a plugin that owns a goroutine: it starts with
// the App, not at Setup, and stops when the App closes.
func ExampleApp_Start() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "ferry-example")
	defer os.RemoveAll(dir)
	db, err := models.OpenSQLite(ctx, filepath.Join(dir, "ferry.db"))
	if err != nil {
		panic(err)
	}
	defer db.Close()
	app, err := framework.New(framework.Config{DB: db})
	if err != nil {
		panic(err)
	}
	app.MustUse(&ticker{every: time.Minute})
	if err := app.Migrate(ctx); err != nil {
		panic(err)
	}
	if err := app.Start(ctx); err != nil { // before serving
		panic(err)
	}
	// … serve HTTP until shutdown …
	if err := app.Close(); err != nil { // after the HTTP server stopped
		panic(err)
	}
	// Output:
	// ticker started
	// ticker stopped
}

// step is a plugin that records its lifecycle calls.
type step struct {
	name     string
	log      *[]string
	startErr error
}

func (s *step) Name() string                   { return s.name }
func (s *step) Setup(app *framework.App) error { return nil }
func (s *step) Start(context.Context) error {
	*s.log = append(*s.log, "start "+s.name)
	return s.startErr
}
func (s *step) Close() error {
	*s.log = append(*s.log, "close "+s.name)
	if s.name == "b" {
		return errors.New("b would not close")
	}
	return nil
}

func TestLifecycleOrder(t *testing.T) {
	newApp := func(t *testing.T, plugins ...framework.Plugin) *framework.App {
		app, err := framework.New(framework.Config{DB: synctest.OpenSQLite(t), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		app.MustUse(plugins...)
		return app
	}
	t.Run("started in order, closed in reverse", func(t *testing.T) {
		var log []string
		app := newApp(t, &step{name: "a", log: &log}, &step{name: "b", log: &log}, &step{name: "c", log: &log})
		if err := app.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := app.Start(context.Background()); err == nil {
			t.Error("a second Start succeeded")
		}
		err := app.Close()
		if err == nil || !strings.Contains(err.Error(), `close plugin "b"`) {
			t.Errorf("Close: %v, want b's error", err)
		}
		if err := app.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		want := []string{"start a", "start b", "start c", "close c", "close b", "close a"}
		if !reflect.DeepEqual(log, want) {
			t.Errorf("calls %v, want %v", log, want)
		}
		if err := app.Use(&step{name: "late", log: &log}); err == nil {
			t.Error("Use after Start succeeded")
		}
	})
	t.Run("a failed start closes what started", func(t *testing.T) {
		var log []string
		app := newApp(t, &step{name: "a", log: &log}, &step{name: "x", log: &log, startErr: errors.New("no listener")}, &step{name: "c", log: &log})
		err := app.Start(context.Background())
		if err == nil || !strings.Contains(err.Error(), `start plugin "x": no listener`) {
			t.Fatalf("Start: %v", err)
		}
		if err := app.Close(); err != nil {
			t.Errorf("Close after a failed Start: %v", err)
		}
		want := []string{"start a", "start x", "close a"}
		if !reflect.DeepEqual(log, want) {
			t.Errorf("calls %v, want %v", log, want)
		}
	})
}

// TestReadOnlyWhatThePrincipalMayRead: App.Read hands out the caller's
// own records, tombstones included, and says nothing of another user's.
func TestReadOnlyWhatThePrincipalMayRead(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		ctx := context.Background()
		app, err := framework.New(framework.Config{DB: db, Schemas: fstest.MapFS{"item.json": testSchemas["item.json"]}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		app.MustRegisterSchema("test.Item", framework.ModelOptions{Schema: "item.json"})
		if err := app.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		ann, bob := framework.Principal{UserID: "ann"}, framework.Principal{UserID: "bob"}
		at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
		gone := item("gone", at, 2)
		gone.IsDeleted = true
		for p, chs := range map[framework.Principal][]*framework.Change{ann: {item("a1", at, 1), gone}, bob: {item("b1", at, 3)}} {
			if _, err := app.Push(ctx, p, chs); err != nil {
				t.Fatal(err)
			}
		}
		recs, err := app.Read(ctx, ann, "test.Item", []string{"b1", "gone", "nope", "a1", "a1"})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range recs {
			got = append(got, fmt.Sprintf("%s:%v", r.UID, r.IsDeleted))
		}
		if want := []string{"gone:true", "a1:false"}; !reflect.DeepEqual(got, want) {
			t.Errorf("ann read %v, want %v", got, want)
		}
		if recs, _ := app.Read(ctx, bob, "test.Item", []string{"a1"}); len(recs) != 0 {
			t.Errorf("bob read ann's record: %+v", recs)
		}
		if _, err := app.Read(ctx, ann, "test.Nope", []string{"a1"}); !errors.Is(err, &framework.Error{Code: framework.CodeUnknownModel}) {
			t.Errorf("unknown model: %v", err)
		}
	})
}

// hello is a plugin with a route outside the sync mount point.
type hello struct{ app *framework.App }

func (*hello) Name() string                     { return "hello" }
func (h *hello) Setup(app *framework.App) error { h.app = app; return nil }

// MountRootRoutes implements framework.RootRouteMounter.
func (h *hello) MountRootRoutes(r gin.IRouter) {
	r.GET("/hello", h.app.Handler(func(c *gin.Context) error {
		who, err := h.app.Authenticate(c.Request)
		if err != nil {
			return err
		}
		c.String(http.StatusOK, "hello "+who.UserID)
		return nil
	}))
}

// TestMountRoot: a plugin's routes outside /sync are mounted by
// MountRoot, are not authenticated by the App, and answer errors in the
// protocol's shape; App.Authenticate gives them the caller.
func TestMountRoot(t *testing.T) {
	app, err := framework.New(framework.Config{DB: synctest.OpenSQLite(t), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	app.MustUse(&hello{})
	app.SetAuthenticator(bearerUser)
	gin.SetMode(gin.TestMode)
	engine := gin.New()
	app.MountRoot(engine)
	app.Mount(engine.Group("/sync"))
	srv := httptest.NewServer(engine)
	defer srv.Close()
	get := func(auth string) (int, string) {
		req, _ := http.NewRequest("GET", srv.URL+"/hello", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, body := get("Bearer user:ann"); status != 200 || body != "hello ann" {
		t.Errorf("with a token: %d %q", status, body)
	}
	if status, body := get(""); status != 401 || !strings.Contains(body, `"code":"unauthenticated"`) {
		t.Errorf("without a token: %d %q", status, body)
	}
	if err := app.Use(&step{name: "late", log: new([]string)}); err == nil {
		t.Error("Use after MountRoot succeeded")
	}
}
