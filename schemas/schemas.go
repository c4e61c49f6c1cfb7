// Package schemas embeds Ferry's JSON Schema files: the wire protocol's
// request bodies (protocol/) and the example app's models (data/).
package schemas

import (
	"embed"
	"io/fs"
)

//go:embed protocol/*.json data/*.json
var files embed.FS

// Protocol holds the schemas of the protocol's request bodies
// (change.json, push.json); the framework compiles them itself.
var Protocol = mustSub("protocol")

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
