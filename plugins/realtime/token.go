package realtime

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// streamToken is what a stream token says: who, until when the token
// opens a stream, and until when the credentials it was issued for hold.
type streamToken struct {
	User string `json:"u"`
	// Until is the token's own expiry (Unix seconds).
	Until int64 `json:"t"`
	// Expires is the issuing credentials' expiry (Unix seconds, 0: none).
	Expires int64 `json:"x,omitempty"`
}

var errBadToken = errors.New("the stream token is not valid")

// signToken encodes t as base64url(JSON) "." base64url(HMAC-SHA256).
func signToken(key []byte, t streamToken) string {
	body, _ := json.Marshal(t) // strings and ints always encode
	b := base64.RawURLEncoding.EncodeToString(body)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(b))
	return b + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// verifyToken checks s's signature and that it has not expired at now.
func verifyToken(key []byte, s string, now time.Time) (streamToken, error) {
	var t streamToken
	if len(s) > 1024 {
		return t, errBadToken
	}
	body, sig, ok := strings.Cut(s, ".")
	if !ok {
		return t, errBadToken
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return t, errBadToken
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(body))
	if !hmac.Equal(got, mac.Sum(nil)) {
		return t, errBadToken
	}
	raw, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil || json.Unmarshal(raw, &t) != nil || t.User == "" {
		return t, errBadToken
	}
	if now.Unix() >= t.Until {
		return t, errors.New("the stream token has expired; ask for a new one")
	}
	return t, nil
}
