package framework

import (
	"bytes"
	"sort"
	"strconv"
	"strings"
)

// PostgreSQL cannot store U+0000 in text or jsonb, and a store that
// refuses a value fails its whole statement; so a change carrying one is
// that change's rejection, the same on every store, before any SQL runs.

// hasNULEscape reports whether a valid JSON text holds the escape \u0000
// (JSON texts cannot hold the raw byte): an occurrence preceded by an
// odd number of backslashes is the text "\u0000" instead. It may say true
// for nothing else; the decoded value is then walked for the place.
func hasNULEscape(text []byte) bool {
	for i := 0; ; {
		j := bytes.Index(text[i:], []byte(`\u0000`))
		if j < 0 {
			return false
		}
		at := i + j
		n := 0
		for k := at - 1; k >= 0 && text[k] == '\\'; k-- {
			n++
		}
		if n%2 == 0 {
			return true
		}
		i = at + 1
	}
}

// nulPath returns the JSON pointer of the first string (or object key, in
// key order) of v that contains U+0000.
func nulPath(v any, at string) (string, bool) {
	switch x := v.(type) {
	case string:
		return at, strings.IndexByte(x, 0) >= 0
	case []any:
		for i, e := range x {
			if p, ok := nulPath(e, at+"/"+strconv.Itoa(i)); ok {
				return p, true
			}
		}
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			step := at + "/" + pointerToken(k)
			if strings.IndexByte(k, 0) >= 0 {
				return step, true
			}
			if p, ok := nulPath(x[k], step); ok {
				return p, true
			}
		}
	}
	return "", false
}
