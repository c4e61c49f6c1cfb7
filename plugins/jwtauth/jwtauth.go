// Package jwtauth authenticates sync requests with HS256 JSON Web Tokens
// carried as "Authorization: Bearer <token>". The token's subject is the
// user id, which becomes the request's [framework.Principal].
package jwtauth

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/ferrysync/ferry/framework"
	"github.com/golang-jwt/jwt/v5"
)

// Config configures the plugin. Only Secret is required.
type Config struct {
	// Secret is the HMAC key, at least 32 bytes.
	Secret []byte
	// Issuer is written to and required in tokens (default "ferry").
	Issuer string
	// TTL is how long an issued token is valid (default 30 days).
	TTL time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Plugin issues and checks tokens; attach it with app.Use.
type Plugin struct {
	cfg    Config
	parser *jwt.Parser
	// verified remembers tokens whose signature and claims were checked,
	// so a device's next request costs a map lookup and an expiry check
	// instead of parsing and an HMAC (a tenth of a single-record sync).
	mu       sync.Mutex
	verified map[string]verifiedToken
}

type verifiedToken struct {
	userID  string
	expires time.Time
}

// maxVerified bounds the memory of verified tokens: only valid tokens
// enter, and when full the cache starts over.
const maxVerified = 10_000

var (
	_ framework.Plugin        = (*Plugin)(nil)
	_ framework.Authenticator = (*Plugin)(nil)
)

// New validates cfg and returns the plugin.
func New(cfg Config) (*Plugin, error) {
	if len(cfg.Secret) < 32 {
		return nil, fmt.Errorf("jwtauth: Config.Secret must be at least 32 bytes, got %d", len(cfg.Secret))
	}
	if cfg.Issuer == "" {
		cfg.Issuer = "ferry"
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 30 * 24 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(cfg.Now),
	)
	return &Plugin{cfg: cfg, parser: parser, verified: map[string]verifiedToken{}}, nil
}

// Name implements [framework.Plugin].
func (p *Plugin) Name() string { return "jwtauth" }

// Setup makes the plugin the App's authenticator.
func (p *Plugin) Setup(app *framework.App) error {
	app.SetAuthenticator(p)
	return nil
}

// Issue returns a signed token for userID.
func (p *Plugin) Issue(userID string) (string, error) {
	now := p.cfg.Now()
	claims := jwt.RegisteredClaims{
		Subject:   userID,
		Issuer:    p.cfg.Issuer,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(p.cfg.TTL)),
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(p.cfg.Secret)
	if err != nil {
		return "", fmt.Errorf("jwtauth: sign: %w", err)
	}
	return tok, nil
}

// Authenticate implements [framework.Authenticator].
func (p *Plugin) Authenticate(r *http.Request) (framework.Principal, error) {
	h := r.Header.Get("Authorization")
	scheme, raw, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(raw) == "" {
		return framework.Principal{}, framework.NewError(framework.CodeUnauthenticated, "an Authorization: Bearer token is required")
	}
	return p.Verify(strings.TrimSpace(raw))
}

// Verify checks a token and returns its principal.
func (p *Plugin) Verify(token string) (framework.Principal, error) {
	p.mu.Lock()
	known, ok := p.verified[token]
	p.mu.Unlock()
	if ok && p.cfg.Now().Before(known.expires) {
		return framework.Principal{UserID: known.userID, ExpiresAt: known.expires}, nil
	}
	var claims jwt.RegisteredClaims
	_, err := p.parser.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) { return p.cfg.Secret, nil })
	if err != nil {
		msg := "the token is invalid"
		if errors.Is(err, jwt.ErrTokenExpired) {
			msg = "the token has expired"
		}
		return framework.Principal{}, framework.NewError(framework.CodeUnauthenticated, "%s", msg)
	}
	if claims.Subject == "" {
		return framework.Principal{}, framework.NewError(framework.CodeUnauthenticated, "the token names no user")
	}
	// The parser requires an expiry; a token with a not-before time in
	// the future was refused above, and only grows more valid.
	p.mu.Lock()
	if len(p.verified) >= maxVerified {
		clear(p.verified)
	}
	p.verified[token] = verifiedToken{userID: claims.Subject, expires: claims.ExpiresAt.Time}
	p.mu.Unlock()
	return framework.Principal{UserID: claims.Subject, ExpiresAt: claims.ExpiresAt.Time}, nil
}
