package blobs

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/ferrysync/ferry/framework"
)

// RefKey is the member that makes a JSON object in a record's data a
// reference to a blob: {"$blob": "sha256:<64 lowercase hex>", "size": n,
// "type": "image/jpeg"}. Only "$blob" is required; "size" and "type" are
// the client's own notes (the server serves the type the upload declared).
const RefKey = "$blob"

// HashPrefix starts every blob name: the hash function, then the
// lowercase hex digest.
const HashPrefix = "sha256:"

// Name returns the blob name of a SHA-256 digest: "sha256:<hex>".
func Name(sum [32]byte) string { return HashPrefix + hex.EncodeToString(sum[:]) }

// ParseName checks a blob name ("sha256:<64 lowercase hex>") and returns
// its hex digest.
func ParseName(name string) (string, error) {
	h, ok := strings.CutPrefix(name, HashPrefix)
	if !ok {
		return "", fmt.Errorf("a blob name starts with %q", HashPrefix)
	}
	if !validHex(h) {
		return "", fmt.Errorf("a blob name is %q and 64 lowercase hex digits", HashPrefix)
	}
	return h, nil
}

// validHex reports whether h is 64 lowercase hex digits.
func validHex(h string) bool {
	if len(h) != 64 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Refs returns the hex digests a record's data refers to, each once, in
// the order of first appearance. A malformed reference is a
// *framework.ValidationError naming its JSON pointer (relative to the
// data, prefixed with base); more than max distinct references is one
// too (max <= 0: no cap).
func Refs(data json.RawMessage, base string, max int) ([]string, error) {
	if !mayRefer(data) {
		return nil, nil
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, nil // the framework has already refused bad JSON
	}
	w := refWalker{seen: map[string]bool{}, max: max}
	w.walk(v, base)
	if w.err != nil {
		return nil, w.err
	}
	return w.refs, nil
}

// mayRefer is the fast path: data without the key's text (escaped or
// not) holds no reference.
func mayRefer(data []byte) bool {
	return bytes.Contains(data, []byte(`"$blob"`)) || bytes.Contains(data, []byte(`\u`))
}

type refWalker struct {
	seen map[string]bool
	refs []string
	max  int
	err  error
}

func (w *refWalker) walk(v any, path string) {
	if w.err != nil {
		return
	}
	switch v := v.(type) {
	case map[string]any:
		if raw, ok := v[RefKey]; ok {
			s, _ := raw.(string)
			h, err := ParseName(s)
			if err != nil {
				w.err = framework.Invalid(path+"/"+RefKey, err.Error())
				return
			}
			if !w.seen[h] {
				if w.max > 0 && len(w.refs) >= w.max {
					w.err = framework.Invalid(path, fmt.Sprintf("a record refers to at most %d blobs", w.max))
					return
				}
				w.seen[h] = true
				w.refs = append(w.refs, h)
			}
			return
		}
		// Sorted, so the order of the references and the error found
		// first do not change from one run to the next.
		for _, k := range slices.Sorted(maps.Keys(v)) {
			w.walk(v[k], path+"/"+escapePointer(k))
		}
	case []any:
		for i, e := range v {
			w.walk(e, fmt.Sprintf("%s/%d", path, i))
		}
	}
}

// escapePointer escapes a JSON pointer token (RFC 6901).
func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}
