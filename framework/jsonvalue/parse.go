// Package jsonvalue parses JSON into the values encoding/json decodes
// into an any with UseNumber: map[string]any, []any, string, json.Number,
// bool and nil.
//
// Decoding push bodies was the largest single cost of a push. Parse
// reads the text once, where encoding/json scans it twice, and its strings
// share one copy of the body instead of one allocation each. It does not
// word errors: on anything it does not accept it returns false, and the
// caller asks encoding/json, which either explains the error or, should
// the two ever disagree, decodes the text itself.
package jsonvalue

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth is encoding/json's nesting limit.
const maxDepth = 10000

// Limits bound what [ParseWithin] may build from a text, so that a small
// hostile text cannot make a large value: parsed, a JSON value takes about
// 50 bytes of memory per scalar, twenty-five times its two bytes of text.
// A zero field is no limit (depth: encoding/json's 10,000).
type Limits struct {
	// MaxDepth caps the nesting of arrays and objects.
	MaxDepth int
	// MaxElements caps the elements of one array and the members of one
	// object.
	MaxElements int
	// MaxValues caps the values of the whole text: scalars, arrays and
	// objects, object keys not counted.
	MaxValues int
}

// LimitError is a text that went over one of its [Limits]. Parsing stops
// there, having built no more than the limits allow.
type LimitError struct {
	// Path is the JSON pointer of the array or object that went over
	// ("" for the whole text when MaxValues was reached).
	Path string
	// Limit names the limit: "depth", "elements" or "values".
	Limit string
	// Max is the limit's value.
	Max int
}

// Error implements error.
func (e *LimitError) Error() string {
	switch e.Limit {
	case "depth":
		return fmt.Sprintf("nested more than %d levels deep", e.Max)
	case "elements":
		return fmt.Sprintf("has more than %d elements", e.Max)
	default:
		return fmt.Sprintf("holds more than %d JSON values", e.Max)
	}
}

// ErrSyntax is returned by [ParseWithin] for a text that is not exactly
// one valid JSON value; encoding/json words the error.
var ErrSyntax = errors.New("jsonvalue: not a valid JSON text")

// Parse returns the value of a JSON text (surrounding whitespace allowed),
// or false when the text is not exactly one valid JSON value.
func Parse(text []byte) (any, bool) {
	v, err := ParseWithin(text, Limits{})
	return v, err == nil
}

// ParseWithin is [Parse] within limits. It returns [ErrSyntax] for a text
// that is not one JSON value and a *[LimitError] for one that goes over a
// limit (whichever comes first in the text).
func ParseWithin(text []byte, lim Limits) (any, error) {
	p := parser{s: string(text), lim: lim}
	if p.lim.MaxDepth <= 0 || p.lim.MaxDepth > maxDepth {
		p.lim.MaxDepth = maxDepth
	}
	p.values = p.lim.MaxValues
	p.skipSpace()
	v, ok := p.value(0)
	if !ok {
		if p.over != nil {
			return nil, p.over
		}
		return nil, ErrSyntax
	}
	p.skipSpace()
	if p.i != len(p.s) {
		return nil, ErrSyntax
	}
	return v, nil
}

type parser struct {
	s   string
	i   int
	lim Limits
	// values counts down what MaxValues still allows (unused when it is 0).
	values int
	// over is set when a limit stopped the parse; the frames it unwinds
	// through prepend their key or index to its path.
	over *LimitError
}

// overLimit stops the parse at a limit.
func (p *parser) overLimit(limit string, max int) (any, bool) {
	p.over = &LimitError{Limit: limit, Max: max}
	return nil, false
}

// inside prepends one step to the path of a limit error unwinding through
// a container.
func (p *parser) inside(step string) {
	if p.over != nil && p.over.Limit != "values" { // the values cap is the whole text's
		p.over.Path = "/" + escapePointer(step) + p.over.Path
	}
}

// escapePointer escapes a JSON pointer step (RFC 6901).
func escapePointer(s string) string {
	if !strings.ContainsAny(s, "~/") {
		return s
	}
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}

func (p *parser) skipSpace() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *parser) value(depth int) (any, bool) {
	if p.i >= len(p.s) {
		return nil, false
	}
	if p.lim.MaxValues > 0 {
		if p.values == 0 {
			return p.overLimit("values", p.lim.MaxValues)
		}
		p.values--
	}
	switch c := p.s[p.i]; {
	case c == '{':
		return p.object(depth + 1)
	case c == '[':
		return p.array(depth + 1)
	case c == '"':
		s, ok := p.str()
		return s, ok
	case c == '-' || '0' <= c && c <= '9':
		return p.number()
	case c == 't':
		return true, p.literal("true")
	case c == 'f':
		return false, p.literal("false")
	case c == 'n':
		return nil, p.literal("null")
	}
	return nil, false
}

func (p *parser) literal(word string) bool {
	if len(p.s)-p.i < len(word) || p.s[p.i:p.i+len(word)] != word {
		return false
	}
	p.i += len(word)
	return true
}

func (p *parser) object(depth int) (any, bool) {
	if depth > p.lim.MaxDepth {
		if p.lim.MaxDepth < maxDepth {
			return p.overLimit("depth", p.lim.MaxDepth)
		}
		return nil, false
	}
	p.i++ // {
	obj := map[string]any{}
	p.skipSpace()
	if p.i < len(p.s) && p.s[p.i] == '}' {
		p.i++
		return obj, true
	}
	for {
		if p.i >= len(p.s) || p.s[p.i] != '"' {
			return nil, false
		}
		key, ok := p.str()
		if !ok {
			return nil, false
		}
		p.skipSpace()
		if p.i >= len(p.s) || p.s[p.i] != ':' {
			return nil, false
		}
		p.i++
		p.skipSpace()
		if p.lim.MaxElements > 0 && len(obj) >= p.lim.MaxElements {
			if _, dup := obj[key]; !dup {
				return p.overLimit("elements", p.lim.MaxElements)
			}
		}
		v, ok := p.value(depth)
		if !ok {
			p.inside(key)
			return nil, false
		}
		obj[key] = v
		if more, ok := p.separator('}'); !more {
			return obj, ok
		}
	}
}

func (p *parser) array(depth int) (any, bool) {
	if depth > p.lim.MaxDepth {
		if p.lim.MaxDepth < maxDepth {
			return p.overLimit("depth", p.lim.MaxDepth)
		}
		return nil, false
	}
	p.i++ // [
	arr := make([]any, 0)
	p.skipSpace()
	if p.i < len(p.s) && p.s[p.i] == ']' {
		p.i++
		return arr, true
	}
	for {
		if p.lim.MaxElements > 0 && len(arr) >= p.lim.MaxElements {
			return p.overLimit("elements", p.lim.MaxElements)
		}
		v, ok := p.value(depth)
		if !ok {
			p.inside(strconv.Itoa(len(arr)))
			return nil, false
		}
		arr = append(arr, v)
		if more, ok := p.separator(']'); !more {
			return arr, ok
		}
	}
}

// separator reads what follows a member: a comma (more follows) or the
// closing bracket (the container is done, ok). Anything else is an error.
func (p *parser) separator(closing byte) (more, ok bool) {
	p.skipSpace()
	if p.i >= len(p.s) {
		return false, false
	}
	switch p.s[p.i] {
	case ',':
		p.i++
		p.skipSpace()
		return true, true
	case closing:
		p.i++
		return false, true
	}
	return false, false
}

// str reads a string at p.i (its opening quote). A string without escapes
// or invalid UTF-8 is a slice of the text; others are rebuilt.
func (p *parser) str() (string, bool) {
	start := p.i + 1
	for i := start; i < len(p.s); {
		c := p.s[i]
		switch {
		case c == '"':
			p.i = i + 1
			return p.s[start:i], true
		case c == '\\' || c < 0x20:
			return p.unquote(start)
		case c < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRuneInString(p.s[i:])
			if r == utf8.RuneError && size == 1 {
				return p.unquote(start)
			}
			i += size
		}
	}
	return "", false
}

// unquote decodes the string starting at start as encoding/json does:
// escapes resolved, invalid UTF-8 and unpaired surrogates become U+FFFD.
func (p *parser) unquote(start int) (string, bool) {
	b := make([]byte, 0, 32)
	for i := start; i < len(p.s); {
		c := p.s[i]
		switch {
		case c == '"':
			p.i = i + 1
			return string(b), true
		case c < 0x20:
			return "", false
		case c == '\\':
			if i+1 >= len(p.s) {
				return "", false
			}
			switch e := p.s[i+1]; e {
			case '"', '\\', '/':
				b = append(b, e)
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r, ok := hex4(p.s, i+2)
				if !ok {
					return "", false
				}
				i += 6
				if utf16.IsSurrogate(r) {
					if r2, ok := hex4(p.s, i+2); ok && i+1 < len(p.s) && p.s[i] == '\\' && p.s[i+1] == 'u' {
						if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
							b = utf8.AppendRune(b, dec)
							i += 6
							continue
						}
					}
					r = utf8.RuneError
				}
				b = utf8.AppendRune(b, r)
				continue
			default:
				return "", false
			}
			i += 2
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, size := utf8.DecodeRuneInString(p.s[i:])
			b = utf8.AppendRune(b, r) // RuneError for invalid bytes
			i += size
		}
	}
	return "", false
}

// hex4 reads the four hex digits at s[i:].
func hex4(s string, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range []byte(s[i : i+4]) {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r*16 + rune(c)
	}
	return r, true
}

// number reads a number by JSON's grammar, kept as written.
func (p *parser) number() (any, bool) {
	s, i := p.s, p.i
	start := i
	if s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && '1' <= s[i] && s[i] <= '9':
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
	default:
		return nil, false
	}
	if i < len(s) && s[i] == '.' {
		i++
		digits := i
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
		if i == digits {
			return nil, false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		digits := i
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
		if i == digits {
			return nil, false
		}
	}
	p.i = i
	return json.Number(s[start:i]), true
}
