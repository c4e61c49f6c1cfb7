package framework

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math"
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

// Cursor formats: 1 was JSON (still read: devices hold such cursors);
// 2 is the compact binary form every cursor is issued in now.
const (
	cursorFormatJSON   = 1
	cursorFormatBinary = 2
)

// maxCursorBytes bounds an encoded cursor. One of a user in the most
// spaces allowed (maxSpacesLimit), while paging, with the longest space
// ids and versions and every space just removed, is about 190 KB
// (TestCursorOfTheMostSpaces); with UUID space ids and versions below ten
// million, a user in 1,000 spaces has a cursor of about 60 KB.
const maxCursorBytes = 256 << 10

// encode is the cursor's binary form, base64url: the format byte, the
// filter, the scopes in order, each with a byte saying which of its
// position, upper bound and purge horizon follow (as uvarints), then the
// removed spaces. Each scope is written once, where JSON wrote it in
// every map.
func (c *cursor) encode() string {
	c.V = cursorFormatBinary
	scopes := make([]string, 0, len(c.Pos)+len(c.Upper))
	for scope := range c.Pos {
		scopes = append(scopes, scope)
	}
	for scope := range c.Upper {
		if _, ok := c.Pos[scope]; !ok {
			scopes = append(scopes, scope)
		}
	}
	for scope := range c.Purged {
		_, inPos := c.Pos[scope]
		_, inUpper := c.Upper[scope]
		if !inPos && !inUpper {
			scopes = append(scopes, scope)
		}
	}
	sort.Strings(scopes)
	b := make([]byte, 0, 16+len(c.Filter)+len(scopes)*48)
	b = append(b, cursorFormatBinary)
	// An empty map is an absent one, as in the JSON form (a cursor pages
	// exactly when it has upper bounds).
	var flags byte
	if len(c.Pos) > 0 {
		flags |= hasPos
	}
	if len(c.Upper) > 0 {
		flags |= hasUpper
	}
	if len(c.Purged) > 0 {
		flags |= hasPurged
	}
	b = append(b, flags)
	b = appendCursorString(b, c.Filter)
	b = binary.AppendUvarint(b, uint64(len(scopes)))
	for _, scope := range scopes {
		b = appendCursorString(b, scope)
		var has byte
		pos, inPos := c.Pos[scope]
		upper, inUpper := c.Upper[scope]
		purged, inPurged := c.Purged[scope]
		if inPos {
			has |= hasPos
		}
		if inUpper {
			has |= hasUpper
		}
		if inPurged {
			has |= hasPurged
		}
		b = append(b, has)
		for _, v := range []struct {
			in bool
			n  int64
		}{{inPos, pos}, {inUpper, upper}, {inPurged, purged}} {
			if v.in {
				b = binary.AppendUvarint(b, uint64(v.n))
			}
		}
	}
	b = binary.AppendUvarint(b, uint64(len(c.Removed)))
	for _, uid := range c.Removed {
		b = appendCursorString(b, uid)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// Which of a cursor's maps a binary cursor has, and which of them name a
// scope.
const (
	hasPos byte = 1 << iota
	hasUpper
	hasPurged
)

func appendCursorString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// cursorReader reads a binary cursor; any fault makes ok false.
type cursorReader struct {
	b  []byte
	ok bool
}

func (r *cursorReader) uvarint() uint64 {
	n, size := binary.Uvarint(r.b)
	if size <= 0 {
		r.ok, r.b = false, nil
		return 0
	}
	r.b = r.b[size:]
	return n
}

func (r *cursorReader) version() int64 {
	n := r.uvarint()
	if n > math.MaxInt64 {
		r.ok = false
	}
	return int64(n)
}

func (r *cursorReader) string() string {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.ok, r.b = false, nil
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *cursorReader) byte() byte {
	if len(r.b) == 0 {
		r.ok = false
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// decodeBinaryCursor reads b (format byte included) into c.
func decodeBinaryCursor(b []byte, c *cursor) bool {
	r := &cursorReader{b: b[1:], ok: true}
	flags := r.byte()
	if flags&^(hasPos|hasUpper|hasPurged) != 0 {
		return false
	}
	c.V = cursorFormatBinary
	c.Filter = r.string()
	n := r.uvarint()
	if n > uint64(len(r.b))/3 { // a scope takes at least 3 bytes: no huge maps from a short text
		return false
	}
	if flags&hasPos != 0 {
		c.Pos = make(map[string]int64, n)
	}
	if flags&hasUpper != 0 {
		c.Upper = make(map[string]int64, n)
	}
	if flags&hasPurged != 0 {
		c.Purged = make(map[string]int64, n)
	}
	prev := ""
	for i := uint64(0); i < n && r.ok; i++ {
		scope := r.string()
		if i > 0 && scope <= prev { // sorted and unique, as encode writes them
			return false
		}
		prev = scope
		has := r.byte()
		if has&^flags != 0 || has == 0 {
			return false
		}
		for _, m := range []struct {
			bit byte
			to  map[string]int64
		}{{hasPos, c.Pos}, {hasUpper, c.Upper}, {hasPurged, c.Purged}} {
			if has&m.bit != 0 {
				m.to[scope] = r.version()
			}
		}
	}
	removed := r.uvarint()
	if removed > uint64(len(r.b)) {
		return false
	}
	for i := uint64(0); i < removed && r.ok; i++ {
		c.Removed = append(c.Removed, r.string())
	}
	return r.ok && len(r.b) == 0
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
	c := &cursor{V: cursorFormatBinary}
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
	switch {
	case len(b) > 0 && b[0] == cursorFormatBinary:
		if !decodeBinaryCursor(b, c) {
			return nil, errInvalidCursor("malformed")
		}
	default:
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(c); err != nil || dec.More() || c.V != cursorFormatJSON {
			return nil, errInvalidCursor("malformed")
		}
	}
	for scope, pos := range c.Pos {
		if pos < 0 || c.Upper != nil && c.Upper[scope] < pos {
			return nil, errInvalidCursor("bad position")
		}
	}
	for _, m := range []map[string]int64{c.Upper, c.Purged} {
		for _, v := range m {
			if v < 0 {
				return nil, errInvalidCursor("bad position")
			}
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
