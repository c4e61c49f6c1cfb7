package jwtauth_test

import (
	"errors"
	"net/http/httptest"
	"strconv"
	"strings"
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
