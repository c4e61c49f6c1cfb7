// Package jwtauth authenticates sync requests with HS256 JSON Web Tokens
// carried as "Authorization: Bearer <token>". The token's subject is the
// user id, which becomes the request's [framework.Principal].
//
// Tokens can be revoked when the application gives a [Revocation]: every
// token carries its user's token generation at issue (claim "gen"), and a
// token whose generation is below the user's current one is refused. The
// plugin remembers each user's generation for Config.RevocationCache
// (default 5 seconds), so a revocation takes effect within that delay on
// every replica, and a request costs no store query while it is
// remembered.
package jwtauth

import (
	"context"
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
	// Secret is the HMAC key: at least 32 bytes, and not an obviously
	// weak one (fewer than 8 distinct byte values, such as a repeated
	// character). Use random bytes (`openssl rand -hex 32`).
	Secret []byte
	// Issuer is written to and required in tokens (default "ferry").
	Issuer string
	// TTL is how long an issued token is valid (default 30 days).
	TTL time.Duration
	// Revocation, when set, is asked for a user's token generation; see
	// [Revocation]. Without it tokens are valid until they expire.
	Revocation Revocation
	// RevocationCache is how long a user's generation is remembered
	// (default 5 seconds): the longest a revoked token keeps working on a
	// replica that did not revoke it. Negative asks on every request.
	RevocationCache time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Revocation tells the plugin which tokens of a user are revoked. Each
// user has a token generation, a number that only grows; a token carries
// the generation its user had when it was issued and is refused once the
// user's generation is higher. Revoking every token of a user ("log out
// everywhere", a password change, account deletion) is raising the
// generation by one. A user the store knows nothing of has generation 0,
// which is also the generation of tokens issued without one (by an older
// release, or before Revocation was configured), so those keep working
// until their user's first revocation.
//
// Generation is called from request handlers, concurrently; an error
// fails the request with 500 (it is not taken as a revocation, so a store
// hiccup does not log users out).
type Revocation interface {
	Generation(ctx context.Context, userID string) (int64, error)
}

// RevocationFunc adapts a function to [Revocation].
type RevocationFunc func(ctx context.Context, userID string) (int64, error)

// Generation implements [Revocation].
func (f RevocationFunc) Generation(ctx context.Context, userID string) (int64, error) {
	return f(ctx, userID)
}

// Plugin issues and checks tokens; attach it with app.Use. It is safe for
// concurrent use.
type Plugin struct {
	cfg    Config
	parser *jwt.Parser
	// verified remembers tokens whose signature and claims were checked,
	// so a device's next request costs a map lookup and an expiry check
	// instead of parsing and an HMAC (a tenth of a single-record sync).
	// The revocation check still runs on every request, through gens.
	mu       sync.Mutex
	verified map[string]verifiedToken
	// gens remembers users' token generations for cfg.RevocationCache.
	gens map[string]knownGeneration
	// forgets counts Forget calls: a generation read before a Forget is
	// not remembered after it (it may predate the revocation).
	forgets uint64
}

type verifiedToken struct {
	userID     string
	generation int64
	expires    time.Time
}

type knownGeneration struct {
	generation int64
	until      time.Time
}

// claims are the token's claims: the registered ones and the generation.
type claims struct {
	jwt.RegisteredClaims
	// Generation is the user's token generation at issue; omitted when 0,
	// so tokens without revocation look as they always did.
	Generation int64 `json:"gen,omitempty"`
}

// maxVerified bounds the memory of verified tokens and of known
// generations: only valid tokens enter, and when full a map starts over.
const maxVerified = 10_000

var (
	_ framework.Plugin        = (*Plugin)(nil)
	_ framework.Authenticator = (*Plugin)(nil)
)

// minDistinctSecretBytes refuses secrets such as 32 times "a" or
// "passwordpasswordpassword…": random keys, and hex or base64 text of
// random keys, have far more distinct bytes.
const minDistinctSecretBytes = 8

// New validates cfg and returns the plugin.
func New(cfg Config) (*Plugin, error) {
	if len(cfg.Secret) < 32 {
		return nil, fmt.Errorf("jwtauth: Config.Secret must be at least 32 bytes, got %d; make one with `openssl rand -hex 32`", len(cfg.Secret))
	}
	if distinctBytes(cfg.Secret) < minDistinctSecretBytes {
		return nil, fmt.Errorf("jwtauth: Config.Secret is too regular to be a random key (fewer than %d distinct bytes); make one with `openssl rand -hex 32`", minDistinctSecretBytes)
	}
	if cfg.Issuer == "" {
		cfg.Issuer = "ferry"
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 30 * 24 * time.Hour
	}
	if cfg.RevocationCache == 0 {
		cfg.RevocationCache = 5 * time.Second
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
	return &Plugin{cfg: cfg, parser: parser, verified: map[string]verifiedToken{}, gens: map[string]knownGeneration{}}, nil
}

func distinctBytes(b []byte) int {
	var seen [256]bool
	n := 0
	for _, c := range b {
		if !seen[c] {
			seen[c] = true
			n++
		}
	}
	return n
}

// Name implements [framework.Plugin].
func (p *Plugin) Name() string { return "jwtauth" }

// Setup makes the plugin the App's authenticator.
func (p *Plugin) Setup(app *framework.App) error {
	app.SetAuthenticator(p)
	return nil
}

// Issue returns a signed token for userID; see [Plugin.IssueContext].
func (p *Plugin) Issue(userID string) (string, error) {
	return p.IssueContext(context.Background(), userID)
}

// IssueContext returns a signed token for userID. With a Revocation it
// carries the user's current generation, asked afresh (not from the
// cache), so a token issued right after a revocation is valid at once.
func (p *Plugin) IssueContext(ctx context.Context, userID string) (string, error) {
	now := p.cfg.Now()
	c := claims{RegisteredClaims: jwt.RegisteredClaims{
		Subject:   userID,
		Issuer:    p.cfg.Issuer,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(p.cfg.TTL)),
	}}
	if p.cfg.Revocation != nil {
		epoch := p.epoch()
		gen, err := p.cfg.Revocation.Generation(ctx, userID)
		if err != nil {
			return "", fmt.Errorf("jwtauth: token generation of %s: %w", userID, err)
		}
		c.Generation = gen
		p.rememberSince(epoch, userID, gen)
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(p.cfg.Secret)
	if err != nil {
		return "", fmt.Errorf("jwtauth: sign: %w", err)
	}
	return tok, nil
}

// Forget drops what this replica remembers of userID's generation, so its
// next request asks the Revocation: call it after revoking, and the
// revocation takes effect at once here (other replicas follow within
// Config.RevocationCache).
func (p *Plugin) Forget(userID string) {
	p.mu.Lock()
	delete(p.gens, userID)
	p.forgets++
	p.mu.Unlock()
}

// Authenticate implements [framework.Authenticator].
func (p *Plugin) Authenticate(r *http.Request) (framework.Principal, error) {
	h := r.Header.Get("Authorization")
	scheme, raw, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(raw) == "" {
		return framework.Principal{}, framework.NewError(framework.CodeUnauthenticated, "an Authorization: Bearer token is required")
	}
	return p.VerifyContext(r.Context(), strings.TrimSpace(raw))
}

// Verify checks a token and returns its principal; see
// [Plugin.VerifyContext].
func (p *Plugin) Verify(token string) (framework.Principal, error) {
	return p.VerifyContext(context.Background(), token)
}

// VerifyContext checks a token's signature, issuer and expiry, and with a
// Revocation whether it was revoked, and returns its principal. A bad,
// expired or revoked token is an error matching
// [framework.ErrUnauthenticated]; a failing Revocation is an internal
// error.
func (p *Plugin) VerifyContext(ctx context.Context, token string) (framework.Principal, error) {
	now := p.cfg.Now()
	p.mu.Lock()
	known, ok := p.verified[token]
	p.mu.Unlock()
	if !ok || !now.Before(known.expires) {
		var c claims
		_, err := p.parser.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return p.cfg.Secret, nil })
		if err != nil {
			msg := "the token is invalid"
			if errors.Is(err, jwt.ErrTokenExpired) {
				msg = "the token has expired"
			}
			return framework.Principal{}, framework.NewError(framework.CodeUnauthenticated, "%s", msg)
		}
		if c.Subject == "" {
			return framework.Principal{}, framework.NewError(framework.CodeUnauthenticated, "the token names no user")
		}
		// The parser requires an expiry; a token with a not-before time in
		// the future was refused above, and only grows more valid.
		known = verifiedToken{userID: c.Subject, generation: c.Generation, expires: c.ExpiresAt.Time}
		p.mu.Lock()
		if len(p.verified) >= maxVerified {
			clear(p.verified)
		}
		p.verified[token] = known
		p.mu.Unlock()
	}
	if p.cfg.Revocation != nil {
		gen, err := p.generation(ctx, known.userID, now)
		if err != nil {
			return framework.Principal{}, &framework.Error{Code: framework.CodeInternal, Message: "internal error", Err: err}
		}
		if known.generation < gen {
			return framework.Principal{}, framework.NewError(framework.CodeUnauthenticated, "the token was revoked; log in again")
		}
	}
	return framework.Principal{UserID: known.userID, ExpiresAt: known.expires}, nil
}

// generation returns userID's generation, from the cache while it is
// fresh.
func (p *Plugin) generation(ctx context.Context, userID string, now time.Time) (int64, error) {
	p.mu.Lock()
	g, ok := p.gens[userID]
	epoch := p.forgets
	p.mu.Unlock()
	if ok && now.Before(g.until) {
		return g.generation, nil
	}
	gen, err := p.cfg.Revocation.Generation(ctx, userID)
	if err != nil {
		return 0, fmt.Errorf("jwtauth: token generation of %s: %w", userID, err)
	}
	p.rememberSince(epoch, userID, gen)
	return gen, nil
}

func (p *Plugin) epoch() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.forgets
}

// rememberSince caches gen unless a Forget happened since epoch.
func (p *Plugin) rememberSince(epoch uint64, userID string, gen int64) {
	if p.cfg.RevocationCache < 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.forgets != epoch {
		return
	}
	if len(p.gens) >= maxVerified {
		clear(p.gens)
	}
	p.gens[userID] = knownGeneration{generation: gen, until: p.cfg.Now().Add(p.cfg.RevocationCache)}
}
