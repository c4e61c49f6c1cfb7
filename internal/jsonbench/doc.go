// Package jsonbench measures Ferry's JSON pieces (internal/jsonvalue,
// the answer encoder) against maintained libraries (encoding/json,
// goccy/go-json, bytedance/sonic, segmentio/encoding) on Ferry's own
// bodies, and probes where the libraries decode differently from
// encoding/json. It has no code of its own outside its tests. The
// hand-written parser and struct filler that round 6 removed were
// measured by this package at the commit "jsonbench: candidates take
// turns call by call within a round".
//
//	go test -run '^$' -bench . -benchmem -count 6 ./internal/jsonbench
//	go test -run TestLibraryDifferences -v ./internal/jsonbench
//
// docs/PERFORMANCE.md ("Round 6") has the numbers and the decisions.
package jsonbench
