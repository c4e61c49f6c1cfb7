package main

import (
	"bytes"
	"context"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferrysync/ferry/framework/synctest"
)

// TestWeb runs the JavaScript client's tests (clients/js, in Node) and
// the web app's browser tests (example-app/web, Debian's Chromium driven
// by playwright-core: two devices of one user, one offline, a reload
// offline, a page of another origin, the inspector's pages) against the
// built example app, on SQLite and on a fresh PostgreSQL schema. It first checks that the
// committed build in web/dist is what the sources build. Like TestE2E it
// needs FERRY_E2E=1, Node 20.19+, npm and network access for `npm ci`;
// the browser is /usr/bin/chromium (FERRY_CHROMIUM names another):
//
//	FERRY_E2E=1 go test -count=1 -run '^TestWeb$' ./example-app/
func TestWeb(t *testing.T) {
	chromium := os.Getenv("FERRY_CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium" // apt-get install chromium
	}
	requireE2E(t, "the web app's browser tests (needs Node, npm and Chromium)", "node", "npm", chromium)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	const client, webapp = "../clients/js", "web"
	for _, dir := range []string{client, webapp} {
		// npm ci needs the registry; one retry rides out a network hiccup.
		if err := tryIn(ctx, dir, nil, "npm", "ci", "--no-audit", "--no-fund"); err != nil {
			t.Logf("npm ci failed, retrying: %v", err)
			runIn(ctx, t, dir, nil, "npm", "ci", "--no-audit", "--no-fund")
		}
	}
	runIn(ctx, t, client, nil, "npm", "run", "build")
	// The server embeds web/dist: it must be what the sources build.
	fresh := t.TempDir()
	runIn(ctx, t, webapp, []string{"FERRY_WEB_OUT_DIR=" + fresh}, "npm", "run", "build")
	sameTree(t, fresh, filepath.Join(webapp, "dist"))

	bin := buildE2EApp(ctx, t)
	for _, store := range []synctest.Store{synctest.SQLite, synctest.Postgres} {
		t.Run(string(store), func(t *testing.T) {
			databaseURL := ""
			if store == synctest.Postgres {
				databaseURL = synctest.PostgresURL(t)
			}
			// The cross-origin test serves the app on this port; the
			// server allows that origin alone.
			_, cross, _ := net.SplitHostPort(crashFreeAddr(t))
			// The inspector's browser test signs in with this admin token.
			const inspectorToken = "web-test-inspector-token-42"
			url := startE2EApp(ctx, t, bin, databaseURL, "FERRY_CORS_ORIGINS=http://127.0.0.1:"+cross, "FERRY_INSPECTOR_TOKEN="+inspectorToken)
			env := []string{"FERRY_URL=" + url, "FERRY_CROSS_ORIGIN_PORT=" + cross, "FERRY_CHROMIUM=" + chromium,
				"FERRY_INSPECTOR_TOKEN=" + inspectorToken}
			runIn(ctx, t, client, env, "npm", "test")
			if store == synctest.SQLite && os.Getenv("FERRY_SCREENSHOT") != "" {
				env = append(env, "FERRY_SCREENSHOT="+os.Getenv("FERRY_SCREENSHOT"))
			}
			runIn(ctx, t, webapp, env, "npm", "test")
		})
	}
}

// sameTree fails the test unless the folders hold the same files with
// the same bytes.
func sameTree(t *testing.T, built, committed string) {
	t.Helper()
	files := func(root string) map[string][]byte {
		m := map[string][]byte{}
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			rel, _ := filepath.Rel(root, p)
			m[filepath.ToSlash(rel)] = b
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	want, got := files(built), files(committed)
	for name, b := range want {
		if !bytes.Equal(got[name], b) {
			t.Errorf("%s/%s is not what the sources build: run `npm ci && npm run build` in example-app/web and commit dist/", committed, name)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s/%s is not built from the sources any more: remove it", committed, name)
		}
	}
}
