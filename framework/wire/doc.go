// Package wire holds the types of Ferry's wire protocol v1 (DESIGN.md,
// "Wire protocol v1"), shared by the server ([github.com/ferrysync/ferry/framework])
// and the Go client ([github.com/ferrysync/ferry/framework/client]) so
// that the two cannot drift apart: records, changes, push results and
// their statuses, field errors, the error codes and the error body, the
// push and pull bodies, and the protocol's time format.
//
// The package is a leaf: it imports only the standard library, so a
// client, a test or a tool may use it without pulling in the server. Its
// types are pure data with encoding/json tags; the server writes its
// largest answers (pull pages, push results) with a hand-written encoder
// of its own that says byte for byte what encoding/json says of these
// types, and reads requests with its own decoder into the same shapes.
//
// Times travel as RFC 3339 in UTC with microseconds ([TimeFormat]); a
// JSON number is read as Unix epoch seconds, and a time with another
// offset than UTC is refused with "modify_at must be UTC" ([ParseTime]).
package wire
