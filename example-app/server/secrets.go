package server

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// minSecretBytes is the least randomness a JWT secret must carry.
const minSecretBytes = 32

const makeSecret = "make one with `openssl rand -hex 32`"

// checkSecret reports whether s is hex, base64 or base64url text of at
// least 32 bytes. A passphrase is refused even when it is long: its
// characters are far from 8 random bits each. The text itself stays the
// HMAC key (not its decoding), so tokens signed by earlier releases with
// the same secret keep verifying.
func checkSecret(s string) error {
	if n, ok := decodedLen(s); !ok {
		return fmt.Errorf("is not hex or base64 text of random bytes; %s", makeSecret)
	} else if n < minSecretBytes {
		return fmt.Errorf("decodes to %d bytes, fewer than %d; %s", n, minSecretBytes, makeSecret)
	}
	return nil
}

// decodedLen is the length of s decoded as hex, base64 or base64url
// (padded or not).
func decodedLen(s string) (int, bool) {
	if b, err := hex.DecodeString(s); err == nil {
		return len(b), true
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return len(b), true
		}
	}
	return 0, false
}

// jwtSecret returns the configured secret, or one generated once and kept
// in the data directory (mode 0600) so tokens survive restarts.
func jwtSecret(cfg Config) ([]byte, error) {
	if cfg.JWTSecret != "" {
		s := strings.TrimSpace(cfg.JWTSecret)
		if err := checkSecret(s); err != nil {
			return nil, fmt.Errorf("FERRY_JWT_SECRET %w", err)
		}
		return []byte(s), nil
	}
	if err := ensureDataDir(cfg.DataDir, cfg.Logger); err != nil {
		return nil, err
	}
	path := filepath.Join(cfg.DataDir, "jwt-secret")
	b, err := os.ReadFile(path)
	if err == nil {
		if err := tightenFile(path, cfg.Logger); err != nil {
			return nil, err
		}
		s := strings.TrimSpace(string(b))
		if err := checkSecret(s); err != nil {
			return nil, fmt.Errorf("the JWT secret in %s %w (or delete the file to have a new one generated, which logs every device out)", path, err)
		}
		return []byte(s), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	raw := make([]byte, minSecretBytes)
	if _, err := rand.Read(raw); err != nil {
		return nil, err
	}
	secret := hex.EncodeToString(raw)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	_, err = f.WriteString(secret + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return []byte(secret), nil
}

// ensureDataDir creates the data directory 0700. One that exists with
// access for others is left as it is (it may not be only ours) with a
// warning; the files Ferry keeps in it are 0600 either way.
func ensureDataDir(dir string, log *slog.Logger) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		log.Warn("the data directory is accessible to other users; consider chmod 700", "dir", dir, "mode", st.Mode().Perm().String())
	}
	return nil
}

// tightenFile makes a file Ferry owns (the database, its -wal and -shm
// files, the secret) readable by its owner only, warning when it was
// not. A missing file is fine.
func tightenFile(path string, log *slog.Logger) error {
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if mode := st.Mode().Perm(); mode&0o077 != 0 {
		if err := os.Chmod(path, 0o600); err != nil {
			return fmt.Errorf("chmod 600 %s: %w", path, err)
		}
		log.Warn("a data file was readable by other users; it is now 0600", "file", path, "was", mode.String())
	}
	return nil
}

// prepareSQLiteFiles creates the database file 0600 before SQLite does
// (SQLite gives the -wal and -shm files the database file's mode), and
// tightens the files of an existing database.
func prepareSQLiteFiles(path string, log *slog.Logger) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	for _, p := range []string{path, path + "-wal", path + "-shm", path + "-journal"} {
		if err := tightenFile(p, log); err != nil {
			return err
		}
	}
	return nil
}
