package jsonbench

import (
	stdjson "encoding/json"
	"strconv"
	"strings"

	"github.com/ferrysync/ferry/framework/jsonvalue"
)

// prescan is what a parser without limits would need in front of it: one
// pass over the text, building nothing, that checks jsonvalue's limits
// (depth, elements of one container, values of the whole text) and names
// the place as jsonvalue.LimitError does. It does not check the syntax
// (the parser after it does), and counts an object's duplicate keys as
// members (jsonvalue counts distinct keys).
func prescan(s []byte, lim jsonvalue.Limits) error {
	maxDepth := lim.MaxDepth
	if maxDepth <= 0 || maxDepth > 10000 {
		maxDepth = 10000
	}
	var small [65]level
	levels := small[:]
	if maxDepth+1 > len(levels) {
		levels = make([]level, maxDepth+1)
	}
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
				continue
			}
			i = j
		}
		// A value starts at i.
		if depth > 0 {
			levels[depth].count++
			if lim.MaxElements > 0 && levels[depth].count > lim.MaxElements {
				return &jsonvalue.LimitError{Path: prescanPath(s, levels[1:depth]), Limit: "elements", Max: lim.MaxElements}
			}
		}
		values++
		if lim.MaxValues > 0 && values > lim.MaxValues {
			return &jsonvalue.LimitError{Limit: "values", Max: lim.MaxValues}
		}
		switch c {
		case '{', '[':
			if depth+1 > maxDepth {
				if maxDepth < 10000 {
					return &jsonvalue.LimitError{Path: prescanPath(s, levels[1:depth+1]), Limit: "depth", Max: maxDepth}
				}
				return nil
			}
			depth++
			levels[depth] = level{object: c == '{'}
		case '"':
		default:
			for i+1 < len(s) && !delimiter[s[i+1]] {
				i++
			}
		}
	}
	return nil
}

// level is one open array or object: its elements so far and, for an
// object, the current key's text.
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

// prescanPath is the JSON pointer of the current element of each level.
func prescanPath(s []byte, levels []level) string {
	var b strings.Builder
	for _, l := range levels {
		b.WriteByte('/')
		if !l.object {
			b.WriteString(strconv.Itoa(l.count - 1))
			continue
		}
		var key string
		_ = stdjson.Unmarshal(s[l.keyStart:l.keyEnd], &key)
		b.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(key))
	}
	return b.String()
}
