package framework

import (
	"slices"
	"strconv"

	"github.com/ferrysync/ferry/framework/wire"
	"github.com/ferrysync/ferry/internal/jsonvalue"
)

// Pull pages and push answers are the largest answers; encoding them by
// hand skips encoding/json's reflection and its re-validation of every
// record's data, which is already JSON the server wrote. The functions
// here write exactly what encoding/json writes of the wire types
// (TestPullEncodingMatchesEncodingJSON, TestPushEncodingMatchesEncodingJSON),
// except that a record without data gets {} rather than null.

// recordSize is about the length of r as JSON (more if strings need
// escapes), so that an answer's buffer is allocated once.
func recordSize(r *Record) int {
	return 128 + len(r.Model) + len(r.UID) + len(r.Space) + len(r.Owner) + len(r.Data) + 64*len(r.FieldsModifyAt)
}

// appendFieldTimes appends a record's fields_modify_at member, fields in
// name order (encoding/json's order for maps).
func appendFieldTimes(b []byte, ft map[string]Time) []byte {
	names := make([]string, 0, len(ft))
	for k := range ft {
		names = append(names, k)
	}
	slices.Sort(names)
	b = append(b, `,"fields_modify_at":{`...)
	for i, k := range names {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonvalue.AppendString(b, k)
		b = append(b, `:"`...)
		b = ft[k].UTC().AppendFormat(b, TimeFormat)
		b = append(b, '"')
	}
	return append(b, '}')
}

// pullResponseSize is about the length of the page as JSON.
func pullResponseSize(p *PullResponse) int {
	n := 64 + len(p.Cursor)
	for _, uid := range p.Removed {
		n += 8 + len(uid)
	}
	for _, uid := range p.Spaces {
		n += 8 + len(uid)
	}
	for _, r := range p.Changes {
		n += recordSize(r)
	}
	return n
}

// pushResponseSize is about the length of the push answer as JSON.
func pushResponseSize(p *wire.PushResponse) int {
	n := 64 + len(p.Cursor)
	for i := range p.Results {
		r := &p.Results[i]
		n += 64 + len(r.Model) + len(r.UID) + len(r.Code)
		if r.Record != nil {
			n += recordSize(r.Record)
		}
		for _, e := range r.Errors {
			n += 32 + len(e.Path) + len(e.Message)
		}
		n += 80 * len(r.MissingBlobs)
	}
	return n
}

// appendRecord appends r as JSON.
func appendRecord(b []byte, r *Record) []byte {
	b = append(b, `{"model":`...)
	b = jsonvalue.AppendString(b, r.Model)
	b = append(b, `,"uid":`...)
	b = jsonvalue.AppendString(b, r.UID)
	if r.Space != "" {
		b = append(b, `,"space":`...)
		b = jsonvalue.AppendString(b, r.Space)
	}
	b = append(b, `,"owner":`...)
	b = jsonvalue.AppendString(b, r.Owner)
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
	if len(r.FieldsModifyAt) > 0 {
		b = appendFieldTimes(b, r.FieldsModifyAt)
	}
	if r.Gone {
		b = append(b, `,"gone":true`...)
	}
	return append(b, '}')
}

// appendPullResponse appends the page as JSON.
func appendPullResponse(b []byte, p *PullResponse) []byte {
	b = append(b, `{"changes":[`...)
	for i, r := range p.Changes {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendRecord(b, r)
	}
	b = append(b, `],"cursor":`...)
	b = jsonvalue.AppendString(b, p.Cursor)
	b = append(b, `,"has_more":`...)
	b = strconv.AppendBool(b, p.HasMore)
	if len(p.Removed) > 0 {
		b = appendStrings(append(b, `,"removed":`...), p.Removed)
	}
	if len(p.Spaces) > 0 {
		b = appendStrings(append(b, `,"spaces":`...), p.Spaces)
	}
	return append(b, '}')
}

// appendStrings appends a JSON array of strings.
func appendStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonvalue.AppendString(b, s)
	}
	return append(b, ']')
}

// appendSingleResponse appends the single-record answer as JSON.
func appendSingleResponse(b []byte, r *wire.SingleResponse) []byte {
	b = append(b, `{"status":`...)
	b = jsonvalue.AppendString(b, r.Status)
	b = append(b, `,"record":`...)
	if r.Record == nil {
		b = append(b, "null"...)
	} else {
		b = appendRecord(b, r.Record)
	}
	b = appendMissingBlobs(b, r.MissingBlobs)
	return append(b, '}')
}

// appendMissingBlobs appends the missing_blobs member, if any.
func appendMissingBlobs(b []byte, hashes []string) []byte {
	if len(hashes) == 0 {
		return b
	}
	b = append(b, `,"missing_blobs":[`...)
	for i, h := range hashes {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonvalue.AppendString(b, h)
	}
	return append(b, ']')
}

// appendPushResponse appends the push answer as JSON.
func appendPushResponse(b []byte, p *wire.PushResponse) []byte {
	b = append(b, `{"results":[`...)
	for i := range p.Results {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendResult(b, &p.Results[i])
	}
	b = append(b, ']')
	if p.Cursor != "" {
		b = append(b, `,"cursor":`...)
		b = jsonvalue.AppendString(b, p.Cursor)
	}
	return append(b, '}')
}

// appendResult appends one push result as JSON.
func appendResult(b []byte, r *Result) []byte {
	b = append(b, '{')
	if r.OpID != nil {
		b = append(b, `"op_id":`...)
		b = jsonvalue.AppendString(b, *r.OpID)
		b = append(b, ',')
	}
	b = append(b, `"model":`...)
	b = jsonvalue.AppendString(b, r.Model)
	b = append(b, `,"uid":`...)
	b = jsonvalue.AppendString(b, r.UID)
	b = append(b, `,"status":`...)
	b = jsonvalue.AppendString(b, r.Status)
	if r.Code != "" {
		b = append(b, `,"code":`...)
		b = jsonvalue.AppendString(b, r.Code)
	}
	if r.Resolution != "" {
		b = append(b, `,"resolution":`...)
		b = jsonvalue.AppendString(b, r.Resolution)
	}
	if r.Record != nil {
		b = append(b, `,"record":`...)
		b = appendRecord(b, r.Record)
	}
	if len(r.Errors) > 0 {
		b = append(b, `,"errors":[`...)
		for i, e := range r.Errors {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"path":`...)
			b = jsonvalue.AppendString(b, e.Path)
			b = append(b, `,"message":`...)
			b = jsonvalue.AppendString(b, e.Message)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = appendMissingBlobs(b, r.MissingBlobs)
	return append(b, '}')
}
