// Package schemas embeds Ferry's JSON Schema files: the wire protocol's
// request bodies (protocol/), the framework's own models (ferry/) and the
// example app's models (data/).
package schemas

import (
	"embed"
	"io/fs"
)

//go:embed protocol/*.json data/*.json ferry/*.json
var files embed.FS

// Protocol holds the schemas of the protocol's request bodies
// (change.json, push.json); the framework compiles them itself.
var Protocol = mustSub("protocol")

// Builtin holds the schemas of the framework's own models (ferry.Space,
// ferry.Member), at paths such as "ferry/space.json".
var Builtin fs.FS = files

// Examples holds the example app's model schemas, at paths such as
// "data/note.json".
var Examples fs.FS = files

func mustSub(dir string) fs.FS {
	sub, err := fs.Sub(files, dir)
	if err != nil {
		panic(err) // the directory is embedded above; this cannot happen
	}
	return sub
}
