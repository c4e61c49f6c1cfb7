package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"io/fs"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrysync/ferry/example-app/server"
	"github.com/ferrysync/ferry/example-app/server/servertest"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/ferrysync/ferry/models"
	"github.com/golang-jwt/jwt/v5"
	"github.com/uptrace/bun"
)

// TestJWTSecretRules: FERRY_JWT_SECRET must be hex or base64 of at least
// 32 bytes; passphrases are refused with a message saying how to make a
// secret.
func TestJWTSecretRules(t *testing.T) {
	db, err := models.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "ferry.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	random := bytes.Repeat([]byte{0x8e, 0x21, 0xf3, 0x07, 0x5c, 0xaa, 0x19, 0xd4}, 4)
	build := func(secret string) error {
		cfg := servertest.Config(t)
		cfg.JWTSecret = secret
		_, err := server.New(context.Background(), cfg, db)
		return err
	}
	for _, bad := range []string{
		"correct horse battery staple 123", // 32 printable characters
		"test-secret-test-secret-test-secret-123",
		strings.Repeat("ab", 24),                           // hex of 24 bytes
		base64.StdEncoding.EncodeToString(random[:24]),     // base64 of 24 bytes
		"zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", // base64 of bytes too regular for jwtauth
	} {
		err := build(bad)
		if err == nil || !strings.Contains(err.Error(), "openssl rand -hex 32") {
			t.Errorf("secret %q: %v, want refused with advice", bad, err)
		}
		if err != nil && strings.Contains(err.Error(), bad) {
			t.Errorf("the error repeats the secret: %v", err)
		}
	}
	for _, good := range []string{
		servertest.Secret,
		strings.ToUpper(servertest.Secret),
		base64.StdEncoding.EncodeToString(random),
		base64.RawStdEncoding.EncodeToString(random),
		base64.URLEncoding.EncodeToString(random),
		base64.RawURLEncoding.EncodeToString(random),
		" " + servertest.Secret + "\n",
	} {
		if err := build(good); err != nil {
			t.Errorf("secret %q refused: %v", good, err)
		}
	}
}

// TestConfigFromEnvErrors: a limit the environment gets wrong stops the
// server with the variable's name.
func TestConfigFromEnvErrors(t *testing.T) {
	t.Setenv("FERRY_JWT_SECRET", "a passphrase of thirty-two chars")
	cfg := server.ConfigFromEnv()
	cfg.DataDir = t.TempDir()
	if _, err := server.Open(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "FERRY_JWT_SECRET") || !strings.Contains(err.Error(), "openssl rand -hex 32") {
		t.Fatalf("passphrase in FERRY_JWT_SECRET: %v", err)
	}
	t.Setenv("FERRY_JWT_SECRET", servertest.Secret)
	t.Setenv("FERRY_AUTH_RATE_ACCOUNT", "ten a minute")
	cfg = server.ConfigFromEnv()
	cfg.DataDir = t.TempDir()
	if _, err := server.Open(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "FERRY_AUTH_RATE_ACCOUNT") {
		t.Fatalf("bad rate: %v", err)
	}
	t.Setenv("FERRY_AUTH_RATE_ACCOUNT", "5/30s")
	t.Setenv("FERRY_AUTH_RATE_IP", "off")
	t.Setenv("FERRY_BCRYPT_COST", "11")
	t.Setenv("FERRY_TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.1")
	cfg = server.ConfigFromEnv()
	if cfg.Auth.PerAccount != (server.RateLimit{Requests: 5, Per: 30 * time.Second}) || !cfg.Auth.PerIP.Off() ||
		cfg.Auth.PasswordCost != 11 || len(cfg.TrustedProxies) != 2 || cfg.TrustedProxies[1] != "192.0.2.1" {
		t.Fatalf("read %+v", cfg)
	}
}

// TestLegacyTokensAndStores: a store made by the previous release (no
// token_generations table) gets the table, and a token that release
// issued (no generation claim, signed with the secret's text) keeps
// working until the user's tokens are revoked.
func TestLegacyTokensAndStores(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		e := newEnv(t, db)
		ann := e.signUp("ann-legacy")
		if _, err := db.NewDropTable().Table("token_generations").Exec(context.Background()); err != nil {
			t.Fatal(err)
		}
		e = newEnv(t, db) // the new release starts on the old store
		legacy, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{Subject: ann.ID, Issuer: "ferry",
			IssuedAt: jwt.NewNumericDate(time.Now()), ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}).SignedString([]byte(servertest.Secret))
		if err != nil {
			t.Fatal(err)
		}
		if st := e.do("GET", "/sync/pull", legacy, "", nil); st != 200 {
			t.Fatalf("previous release's token: %d", st)
		}
		a := e.raw("POST", "/auth/password", legacy, `{"password":"correct horse","new_password":"a new secret"}`, nil)
		if a.status != 200 {
			t.Fatalf("password change: %d %s", a.status, a.body)
		}
		if x := e.raw("GET", "/sync/pull", legacy, "", nil); x.status != 401 {
			t.Fatalf("previous release's token after revocation: %d", x.status)
		}
	})
}

// TestDataFileModes: the data directory is 0700 and the database, its
// -wal and -shm files and the generated secret 0600; files left looser by
// an earlier release are tightened, with a warning.
func TestDataFileModes(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	dir := filepath.Join(t.TempDir(), "data")
	cfg := server.Config{DataDir: dir, Logger: log, Auth: servertest.Auth()}
	open := func() {
		t.Helper()
		srv, err := server.Open(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(srv.Handler())
		(&env{t: t, srv: srv, url: hs.URL}).signUp("ann-" + time.Now().Format("150405.000000000"))
		hs.Close()
		if err := srv.Close(); err != nil {
			t.Fatal(err)
		}
	}
	mode := func(name string) fs.FileMode {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return st.Mode().Perm()
	}
	open()
	if m := mode("."); m != 0o700 {
		t.Errorf("data dir %v, want 0700", m)
	}
	for _, f := range []string{"ferry.db", "jwt-secret"} {
		if m := mode(f); m != 0o600 {
			t.Errorf("%s %v, want 0600", f, m)
		}
	}
	// While the store is open, its -wal and -shm files exist: they have
	// the database's mode.
	srv, err := server.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"ferry.db-wal", "ferry.db-shm"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Logf("%s: %v", f, err)
		} else {
			if m := mode(f); m != 0o600 {
				t.Errorf("%s %v, want 0600", f, m)
			}
		}
	}
	srv.Close()

	// An earlier release's loose modes.
	for _, f := range []string{"ferry.db", "jwt-secret"} {
		if err := os.Chmod(filepath.Join(dir, f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	logs.Reset()
	open()
	for _, f := range []string{"ferry.db", "jwt-secret"} {
		if m := mode(f); m != 0o600 {
			t.Errorf("%s %v after reopening, want 0600", f, m)
		}
	}
	if !strings.Contains(logs.String(), "now 0600") || !strings.Contains(logs.String(), "chmod 700") {
		t.Errorf("no warnings about the loose modes:\n%s", logs.String())
	}
	// A secret file that is not a secret stops the server.
	if err := os.WriteFile(filepath.Join(dir, "jwt-secret"), []byte("my dog's name is rex and so on..\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := server.Open(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "openssl rand -hex 32") {
		t.Fatalf("weak secret file: %v", err)
	}
}
