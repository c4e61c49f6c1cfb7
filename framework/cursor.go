package framework

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"sort"
	"strings"
)

// cursor is a pull position: per scope, the last version delivered. While
// a pull is paging, Upper freezes each scope's upper bound as read at the
// first page, so paging ends even while writers go on. Filter ties the
// cursor to the models filter it was issued for. Clients see only its
// opaque encoding.
type cursor struct {
	V     int              `json:"v"`
	Pos   map[string]int64 `json:"p,omitempty"`
	Upper map[string]int64 `json:"u,omitempty"`
	// Purged holds, while paging, each scope's purge horizon as of the
	// first page: a purge after that may have removed a tombstone the
	// remaining pages would have carried.
	Purged map[string]int64 `json:"h,omitempty"`
	Filter string           `json:"f,omitempty"`
	// Removed holds, while paging, the spaces the pull's first cursor
	// covered that the user can no longer read: reported with the last
	// page, when the device also stores the cursor, so that a pull cut
	// short never leaves a device that dropped a space with a cursor still
	// past the space's records.
	Removed []string `json:"r,omitempty"`
}

const cursorFormat = 1

// maxCursorBytes bounds an encoded cursor: one of a user in the most spaces
// allowed (maxSpacesLimit), while paging, with the longest space ids and
// versions, is about 180 KB (TestCursorOfTheMostSpaces).
const maxCursorBytes = 256 << 10

func (c *cursor) encode() string {
	c.V = cursorFormat
	b, _ := json.Marshal(c) // maps of strings to ints always encode
	return base64.RawURLEncoding.EncodeToString(b)
}

func errInvalidCursor(why string) *Error {
	return NewError(CodeInvalidCursor, "the cursor is not one this server issued (%s); pull again with an empty cursor", why)
}

func decodeCursor(s, filter string) (*cursor, error) {
	c, err := parseCursor(s, filter)
	if err != nil {
		return nil, err
	}
	if c.Filter != filter {
		return nil, errInvalidCursor("it was issued for other models or spaces filters")
	}
	return c, nil
}

// parseCursor decodes s whatever models filter it was issued for; an
// empty s is the start, for filter.
func parseCursor(s, filter string) (*cursor, error) {
	c := &cursor{V: cursorFormat}
	if s == "" {
		c.Filter = filter
		return c, nil
	}
	if len(s) > maxCursorBytes {
		return nil, errInvalidCursor("too long")
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, errInvalidCursor("not base64url")
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(c); err != nil || dec.More() || c.V != cursorFormat {
		return nil, errInvalidCursor("malformed")
	}
	for scope, pos := range c.Pos {
		if pos < 0 || c.Upper != nil && c.Upper[scope] < pos {
			return nil, errInvalidCursor("bad position")
		}
	}
	for _, uid := range c.Removed {
		if !validUID(uid) || c.Upper == nil {
			return nil, errInvalidCursor("bad removed space")
		}
	}
	return c, nil
}

// filterKey fingerprints a pull's filters, by model, by space and by
// subscription; "" means none (a cursor of every model and space keeps the key it had
// before spaces existed).
func filterKey(models, spaces []string, subscriptions ...string) string {
	if len(models) == 0 && len(spaces) == 0 && len(subscriptions) == 0 {
		return ""
	}
	sorted := func(xs []string) string {
		s := append([]string(nil), xs...)
		sort.Strings(s)
		return strings.Join(s, ",")
	}
	key := sorted(models)
	if len(spaces) > 0 {
		key += "|spaces:" + sorted(spaces)
	}
	if len(subscriptions) > 0 {
		key += "|subscriptions:" + sorted(subscriptions)
	}
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:8])
}
