// Package sqlitedsn builds the data source names Ferry opens SQLite
// files with.
package sqlitedsn

import (
	"net/url"
	"path/filepath"
	"strings"
)

// FileURI returns the SQLite URI of the file at path with the given
// query (pragmas), for sqlite3_open_v2 with SQLITE_OPEN_URI, which the
// modernc driver uses.
//
// The path is percent-encoded: pasted into "file:" as it is, a '#' or
// '?' in it ends the path (SQLite reads the rest as a fragment or a
// query) and a '%' starts an escape, so "/tmp/a#1/x.db" would open
// "/tmp/a" — another file, perhaps one an earlier process left behind.
// Go test directories contain '#' for repeated subtest names.
func FileURI(path string, query url.Values) string {
	p := filepath.ToSlash(path)
	// Only the characters SQLite's URI parser treats specially are
	// escaped, so the rest of the name stays readable in errors.
	p = strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23").Replace(p)
	if strings.HasPrefix(p, "//") {
		// "file://" would make the first element an authority.
		p = "/" + strings.TrimLeft(p, "/")
	}
	s := "file:" + p
	if len(query) > 0 {
		s += "?" + query.Encode()
	}
	return s
}
