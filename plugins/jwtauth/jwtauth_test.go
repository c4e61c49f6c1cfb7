package jwtauth_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/plugins/jwtauth"
	"github.com/golang-jwt/jwt/v5"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

func TestTokens(t *testing.T) {
	now := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	p, err := jwtauth.New(jwtauth.Config{Secret: secret, TTL: time.Hour, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	good, err := p.Issue("user-1")
	if err != nil {
		t.Fatal(err)
	}
	sign := func(claims jwt.Claims, method jwt.SigningMethod, key any) string {
		s, err := jwt.NewWithClaims(method, claims).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	valid := jwt.RegisteredClaims{Subject: "u", Issuer: "ferry", ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour))}
	noSub := valid
	noSub.Subject = ""
	otherIssuer := valid
	otherIssuer.Issuer = "someone"
	expired := valid
	expired.ExpiresAt = jwt.NewNumericDate(now.Add(-time.Second))
	noExp := valid
	noExp.ExpiresAt = nil
	cases := []struct {
		name, header, wantUser, wantMsg string
	}{
		{"issued", "Bearer " + good, "user-1", ""},
		{"lower-case scheme", "bearer " + good, "user-1", ""},
		{"missing", "", "", "Bearer token is required"},
		{"basic", "Basic dXNlcjpwYXNz", "", "Bearer token is required"},
		{"garbage", "Bearer not.a.token", "", "invalid"},
		{"other secret", "Bearer " + sign(valid, jwt.SigningMethodHS256, []byte(strings.Repeat("x", 32))), "", "invalid"},
		{"alg none", "Bearer " + sign(valid, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType), "", "invalid"},
		{"HS512", "Bearer " + sign(valid, jwt.SigningMethodHS512, secret), "", "invalid"},
		{"no subject", "Bearer " + sign(noSub, jwt.SigningMethodHS256, secret), "", "names no user"},
		{"other issuer", "Bearer " + sign(otherIssuer, jwt.SigningMethodHS256, secret), "", "invalid"},
		{"expired", "Bearer " + sign(expired, jwt.SigningMethodHS256, secret), "", "expired"},
		{"no expiry", "Bearer " + sign(noExp, jwt.SigningMethodHS256, secret), "", "invalid"},
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", "/sync/pull", nil)
		if c.header != "" {
			r.Header.Set("Authorization", c.header)
		}
		got, err := p.Authenticate(r)
		if c.wantMsg == "" {
			if err != nil || got.UserID != c.wantUser {
				t.Errorf("%s: %+v %v", c.name, got, err)
			}
			continue
		}
		var pe *framework.Error
		if !errors.As(err, &pe) || pe.Code != framework.CodeUnauthenticated || !strings.Contains(pe.Message, c.wantMsg) {
			t.Errorf("%s: %v, want unauthenticated containing %q", c.name, err, c.wantMsg)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	if _, err := jwtauth.New(jwtauth.Config{Secret: []byte("short")}); err == nil || !strings.Contains(err.Error(), "Config.Secret") {
		t.Fatalf("short secret: %v", err)
	}
}

// TestVerifiedTokens: a token checked once is remembered, but it still
// expires on time, and a token differing in any byte is checked afresh.
func TestVerifiedTokens(t *testing.T) {
	now := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	p, err := jwtauth.New(jwtauth.Config{Secret: secret, TTL: time.Hour, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := p.Issue("user-1")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if got, err := p.Verify(tok); err != nil || got.UserID != "user-1" {
			t.Fatalf("verify: %+v %v", got, err)
		}
	}
	last := tok[len(tok)-1]
	tampered := tok[:len(tok)-1] + string(rune('A'+(last-'A'+1)%26))
	if _, err := p.Verify(tampered); err == nil {
		t.Fatal("a tampered token passed after its original was remembered")
	}
	// Many users: the memory is bounded, and every token still verifies.
	for i := range 10_050 {
		other, _ := p.Issue("user-" + strconv.Itoa(i))
		if got, err := p.Verify(other); err != nil || got.UserID != "user-"+strconv.Itoa(i) {
			t.Fatalf("user %d: %+v %v", i, got, err)
		}
	}
	now = now.Add(time.Hour - time.Second)
	if _, err := p.Verify(tok); err != nil {
		t.Fatalf("a second before expiry: %v", err)
	}
	now = now.Add(time.Second)
	var pe *framework.Error
	if _, err := p.Verify(tok); !errors.As(err, &pe) || !strings.Contains(pe.Message, "expired") {
		t.Fatalf("at expiry: %v, want expired", err)
	}
}

func TestWeakSecrets(t *testing.T) {
	for _, s := range []string{strings.Repeat("a", 64), strings.Repeat("ab", 20), "passwordpasswordpasswordpassword"} {
		if _, err := jwtauth.New(jwtauth.Config{Secret: []byte(s)}); err == nil || !strings.Contains(err.Error(), "openssl rand") {
			t.Errorf("secret %q: %v, want refused", s, err)
		}
	}
	// Random bytes and their hex text are fine.
	for _, s := range []string{"\x8f\x01\x9a\x33\x47\xee\x10\x02\x5c\x7d\x91\xa0\xbb\x0c\xde\x42\x13\x37\x99\x64\xf1\x2a\x0b\x55\x86\xc3\x71\x09\xe8\x4f\xd6\x20",
		"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"} {
		if _, err := jwtauth.New(jwtauth.Config{Secret: []byte(s)}); err != nil {
			t.Errorf("good secret refused: %v", err)
		}
	}
}

// generations is a Revocation over a map that counts its calls.
type generations struct {
	mu    sync.Mutex
	gen   map[string]int64
	calls int
	err   error
}

func (g *generations) Generation(_ context.Context, user string) (int64, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls++
	return g.gen[user], g.err
}

func (g *generations) revoke(user string) {
	g.mu.Lock()
	g.gen[user]++
	g.mu.Unlock()
}

// TestRevocation: a revoked token is refused once the cached generation
// expires (at once after Forget), a token issued afterwards works, tokens
// without a generation (an older release's) work until their user's first
// revocation, and the remembered-token fast path still checks.
func TestRevocation(t *testing.T) {
	now := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	gens := &generations{gen: map[string]int64{}}
	p, err := jwtauth.New(jwtauth.Config{Secret: secret, TTL: time.Hour, Revocation: gens, RevocationCache: 5 * time.Second, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	old, _ := p.Issue("ann")
	// What the previous release issued: no "gen" claim.
	legacy, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{Subject: "ann", Issuer: "ferry",
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour))}).SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	bob, _ := p.Issue("bob")
	for _, tok := range []string{old, legacy, old, legacy, bob} {
		if _, err := p.VerifyContext(ctx, tok); err != nil {
			t.Fatalf("before revocation: %v", err)
		}
	}
	if gens.calls != 2 { // the two issues; every check is answered from the cache
		t.Errorf("%d generation look-ups, want 2 (cached)", gens.calls)
	}
	gens.revoke("ann")
	// Within the cache: still accepted (the documented delay).
	now = now.Add(4 * time.Second)
	if _, err := p.VerifyContext(ctx, old); err != nil {
		t.Fatalf("within the revocation delay: %v", err)
	}
	now = now.Add(2 * time.Second)
	for _, tok := range []string{old, legacy} {
		var pe *framework.Error
		if _, err := p.VerifyContext(ctx, tok); !errors.As(err, &pe) || pe.Code != framework.CodeUnauthenticated || !strings.Contains(pe.Message, "revoked") {
			t.Fatalf("after the delay: %v, want revoked", err)
		}
	}
	if _, err := p.VerifyContext(ctx, bob); err != nil {
		t.Fatalf("another user's token: %v", err)
	}
	fresh, err := p.IssueContext(ctx, "ann")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := p.VerifyContext(ctx, fresh); err != nil || got.UserID != "ann" {
		t.Fatalf("token issued after the revocation: %+v %v", got, err)
	}
	// Forget makes a revocation immediate on this replica.
	gens.revoke("ann")
	if _, err := p.VerifyContext(ctx, fresh); err != nil {
		t.Fatalf("cached: %v", err)
	}
	p.Forget("ann")
	if _, err := p.VerifyContext(ctx, fresh); err == nil {
		t.Fatal("a revoked token passed after Forget")
	}
	// A failing store is an internal error, not a log-out.
	gens.err = errors.New("store down")
	now = now.Add(time.Minute)
	var pe *framework.Error
	if _, err := p.VerifyContext(ctx, bob); !errors.As(err, &pe) || pe.Code != framework.CodeInternal {
		t.Fatalf("failing revocation: %v, want internal", err)
	}
	if _, err := p.IssueContext(ctx, "bob"); err == nil {
		t.Fatal("issued a token without knowing the generation")
	}
}

// BenchmarkVerify is a device's next request: a remembered token, with
// and without a Revocation (answered from its cache).
func BenchmarkVerify(b *testing.B) {
	for _, withRevocation := range []bool{false, true} {
		name := "plain"
		cfg := jwtauth.Config{Secret: secret}
		if withRevocation {
			name = "revocation"
			cfg.Revocation = &generations{gen: map[string]int64{}}
		}
		b.Run(name, func(b *testing.B) {
			p, err := jwtauth.New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			tok, _ := p.Issue("user-1")
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.VerifyContext(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
