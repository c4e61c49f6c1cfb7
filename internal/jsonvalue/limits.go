package jsonvalue

import (
	"encoding/json"
	"strconv"
	"strings"
)

// CheckLimits reports the first place, in the order of the text, where
// text goes over lim, as a *[LimitError]; nil when it stays within. It
// reads the text once and builds nothing (one array of at most
// MaxDepth+1 counters), so it may run on any text before a parser that
// has no limits of its own. It does not check the syntax: on a text that
// is not JSON it answers something, and the parser after it refuses the
// text.
func CheckLimits(text []byte, lim Limits) error {
	depthCap := lim.MaxDepth
	if depthCap <= 0 || depthCap > maxDepth {
		depthCap = maxDepth
	}
	var small [65]level
	levels := small[:]
	if depthCap+1 > len(levels) {
		levels = make([]level, depthCap+1)
	}
	s := text
	depth, values := 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case ' ', '\t', '\n', '\r', ',', ':':
			continue
		case ']', '}':
			if depth == 0 {
				return nil // not JSON: the parser says so
			}
			depth--
			continue
		case '"':
			j := i + 1
			for j < len(s) && s[j] != '"' {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			k := j + 1
			for k < len(s) && (s[k] == ' ' || s[k] == '\t' || s[k] == '\n' || s[k] == '\r') {
				k++
			}
			if k < len(s) && s[k] == ':' && depth > 0 && levels[depth].object {
				levels[depth].keyStart, levels[depth].keyEnd = i, min(j+1, len(s))
				i = k
				continue // a key, not a value
			}
			i = j
		}
		// A value starts at i.
		if depth > 0 {
			levels[depth].count++
			if lim.MaxElements > 0 && levels[depth].count > lim.MaxElements {
				return &LimitError{Path: pointer(s, levels[1:depth]), Limit: "elements", Max: lim.MaxElements}
			}
		}
		values++
		if lim.MaxValues > 0 && values > lim.MaxValues {
			return &LimitError{Limit: "values", Max: lim.MaxValues}
		}
		switch c {
		case '{', '[':
			if depth+1 > depthCap {
				if depthCap < maxDepth {
					return &LimitError{Path: pointer(s, levels[1:depth+1]), Limit: "depth", Max: depthCap}
				}
				return nil // past encoding/json's own limit, which the parser applies
			}
			depth++
			levels[depth] = level{object: c == '{'}
		case '"':
		default: // a number or a literal
			for i+1 < len(s) && !delimiter[s[i+1]] {
				i++
			}
		}
	}
	return nil
}

// level is one open array or object: its elements so far and, for an
// object, where the current key's text is.
type level struct {
	count            int
	keyStart, keyEnd int
	object           bool
}

// delimiter marks the bytes that end a number or a literal.
var delimiter = func() (d [256]bool) {
	for _, c := range []byte(" \t\r\n,:[]{}\"") {
		d[c] = true
	}
	return d
}()

// pointer is the JSON pointer (RFC 6901) of the current element of each
// level.
func pointer(s []byte, levels []level) string {
	var b strings.Builder
	for _, l := range levels {
		b.WriteByte('/')
		if !l.object {
			b.WriteString(strconv.Itoa(l.count - 1))
			continue
		}
		var key string
		_ = json.Unmarshal(s[l.keyStart:l.keyEnd], &key)
		b.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(key))
	}
	return b.String()
}
