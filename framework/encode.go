package framework

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"unicode/utf8"
)

// Pull pages and push answers are the largest answers; encoding them by
// hand skips encoding/json's reflection and its re-validation of every
// record's data, which is already JSON the server wrote.

// sizeHint is about the length of r as JSON (more if strings need
// escapes), so that an answer's buffer is allocated once.
func (r *Record) sizeHint() int {
	return 128 + len(r.Model) + len(r.UID) + len(r.Owner) + len(r.Data)
}

// sizeHint is about the length of the page as JSON.
func (p *PullResponse) sizeHint() int {
	n := 64 + len(p.Cursor)
	for _, r := range p.Changes {
		n += r.sizeHint()
	}
	return n
}

// sizeHint is about the length of the push answer as JSON.
func (p *pushResponse) sizeHint() int {
	n := 64 + len(p.Cursor)
	for i := range p.Results {
		r := &p.Results[i]
		n += 64 + len(r.Model) + len(r.UID)
		if r.Record != nil {
			n += r.Record.sizeHint()
		}
		for _, e := range r.Errors {
			n += 32 + len(e.Path) + len(e.Message)
		}
	}
	return n
}

// appendJSON appends r as JSON.
func (r *Record) appendJSON(b []byte) []byte {
	b = append(b, `{"model":`...)
	b = appendJSONString(b, r.Model)
	b = append(b, `,"uid":`...)
	b = appendJSONString(b, r.UID)
	b = append(b, `,"owner":`...)
	b = appendJSONString(b, r.Owner)
	b = append(b, `,"modify_at":"`...)
	b = r.ModifyAt.UTC().AppendFormat(b, TimeFormat)
	b = append(b, `","is_deleted":`...)
	b = strconv.AppendBool(b, r.IsDeleted)
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, r.Version, 10)
	b = append(b, `,"data":`...)
	if len(r.Data) == 0 {
		b = append(b, "{}"...)
	} else {
		b = append(b, r.Data...)
	}
	return append(b, '}')
}

// appendJSON appends the page as JSON.
func (p *PullResponse) appendJSON(b []byte) []byte {
	b = append(b, `{"changes":[`...)
	for i, r := range p.Changes {
		if i > 0 {
			b = append(b, ',')
		}
		b = r.appendJSON(b)
	}
	b = append(b, `],"cursor":`...)
	b = appendJSONString(b, p.Cursor)
	b = append(b, `,"has_more":`...)
	b = strconv.AppendBool(b, p.HasMore)
	return append(b, '}')
}

// appendJSON appends the single-record answer as JSON.
func (r *singleResponse) appendJSON(b []byte) []byte {
	b = append(b, `{"status":`...)
	b = appendJSONString(b, r.Status)
	b = append(b, `,"record":`...)
	if r.Record == nil {
		b = append(b, "null"...)
	} else {
		b = r.Record.appendJSON(b)
	}
	return append(b, '}')
}

// appendJSON appends the push answer as JSON.
func (p *pushResponse) appendJSON(b []byte) []byte {
	b = append(b, `{"results":[`...)
	for i := range p.Results {
		if i > 0 {
			b = append(b, ',')
		}
		b = p.Results[i].appendJSON(b)
	}
	b = append(b, ']')
	if p.Cursor != "" {
		b = append(b, `,"cursor":`...)
		b = appendJSONString(b, p.Cursor)
	}
	return append(b, '}')
}

// appendJSON appends one push result as JSON.
func (r *Result) appendJSON(b []byte) []byte {
	b = append(b, '{')
	if r.OpID != nil {
		b = append(b, `"op_id":`...)
		b = appendJSONString(b, *r.OpID)
		b = append(b, ',')
	}
	b = append(b, `"model":`...)
	b = appendJSONString(b, r.Model)
	b = append(b, `,"uid":`...)
	b = appendJSONString(b, r.UID)
	b = append(b, `,"status":`...)
	b = appendJSONString(b, r.Status)
	if r.Record != nil {
		b = append(b, `,"record":`...)
		b = r.Record.appendJSON(b)
	}
	if len(r.Errors) > 0 {
		b = append(b, `,"errors":[`...)
		for i, e := range r.Errors {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"path":`...)
			b = appendJSONString(b, e.Path)
			b = append(b, `,"message":`...)
			b = appendJSONString(b, e.Message)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// appendJSONString appends s as a JSON string, escaping what JSON requires
// (and <, >, & and U+2028/2029 as encoding/json does); invalid UTF-8
// becomes U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			if r == utf8.RuneError {
				b = append(b, `\ufffd`...)
			} else {
				b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			}
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendJSONValue appends a decoded JSON value (numbers as json.Number)
// exactly as json.Marshal would, object keys sorted, without its
// reflection: each change's data is encoded this way once per push.
func appendJSONValue(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case string:
		return appendJSONString(b, v), nil
	case json.Number:
		if v == "" {
			return append(b, '0'), nil // as encoding/json does
		}
		if !isJSONNumber(string(v)) {
			return b, fmt.Errorf("invalid number literal %q", string(v))
		}
		return append(b, v...), nil
	case []any:
		b = append(b, '[')
		for i, item := range v {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendJSONValue(b, item); err != nil {
				return b, err
			}
		}
		return append(b, ']'), nil
	case map[string]any:
		var small [16]string
		keys := small[:0]
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			var err error
			if b, err = appendJSONValue(b, v[k]); err != nil {
				return b, err
			}
		}
		return append(b, '}'), nil
	}
	return b, fmt.Errorf("%T is not a decoded JSON value", v)
}

// isJSONNumber reports whether s is a JSON number literal, as
// json.Marshal checks a json.Number.
func isJSONNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == start {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == start {
			return false
		}
	}
	return i == len(s)
}
