package jsonbench

import (
	stdjson "encoding/json"
	"strconv"
	"testing"
	"time"

	gojson "github.com/goccy/go-json"
	segjson "github.com/segmentio/encoding/json"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/internal/jsonvalue"
)

// pullPage is a full 5000-record page of notes, as the pull handler
// encodes it.
func pullPage() *framework.PullResponse {
	now := time.Date(2026, 11, 26, 8, 0, 0, 123456000, time.UTC)
	page := &framework.PullResponse{Cursor: "eyJ2IjoxMjM0NX0", HasMore: true}
	for i := range 5000 {
		data, _ := stdjson.Marshal(note{Title: "Note " + strconv.Itoa(i), Body: "Lorem ipsum dolor sit amet, consectetur.\nCafé — " + strconv.Itoa(i), Tags: []string{"work", "home"}, Pinned: i%3 == 0})
		page.Changes = append(page.Changes, &framework.Record{Model: "data.Note", UID: "w1b2n" + strconv.Itoa(i), Owner: "user-1",
			ModifyAt: framework.Time{Time: now}, Version: int64(i + 1), Data: data})
	}
	return page
}

// appendPage is a copy of framework/encode.go's PullResponse.appendJSON
// (unexported there).
func appendPage(b []byte, p *framework.PullResponse) []byte {
	b = append(b, `{"changes":[`...)
	for i, r := range p.Changes {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"model":`...)
		b = jsonvalue.AppendString(b, r.Model)
		b = append(b, `,"uid":`...)
		b = jsonvalue.AppendString(b, r.UID)
		b = append(b, `,"owner":`...)
		b = jsonvalue.AppendString(b, r.Owner)
		b = append(b, `,"modify_at":"`...)
		b = r.ModifyAt.UTC().AppendFormat(b, framework.TimeFormat)
		b = append(b, `","is_deleted":`...)
		b = strconv.AppendBool(b, r.IsDeleted)
		b = append(b, `,"version":`...)
		b = strconv.AppendInt(b, r.Version, 10)
		b = append(b, `,"data":`...)
		b = append(b, r.Data...)
		b = append(b, '}')
	}
	b = append(b, `],"cursor":`...)
	b = jsonvalue.AppendString(b, p.Cursor)
	b = append(b, `,"has_more":`...)
	b = strconv.AppendBool(b, p.HasMore)
	return append(b, '}')
}

// pullPageCandidates: a 5000-record page to its answer's bytes.
func pullPageCandidates(t testing.TB) []candidate {
	page := pullPage()
	want, _ := stdjson.Marshal(page)
	size := len(want) + 64
	check := func(name string, enc func() ([]byte, error)) candidate {
		if got, err := enc(); err != nil || string(got) != string(want) {
			t.Fatalf("%s differs from json.Marshal: %v\n%.300s", name, err, got)
		}
		return candidate{name, func() error { _, err := enc(); return err }}
	}
	return []candidate{
		check("encode.go (appendJSON)", func() ([]byte, error) { return appendPage(make([]byte, 0, size), page), nil }),
		check("encoding-json", func() ([]byte, error) { return stdjson.Marshal(page) }),
		check("goccy", func() ([]byte, error) { return gojson.Marshal(page) }),
		check("sonic ConfigStd", func() ([]byte, error) { return sonicStd.Marshal(page) }),
		check("segmentio", func() ([]byte, error) { return segjson.Marshal(page) }),
		check("segmentio TrustRawMessage", func() ([]byte, error) {
			return segjson.Append(make([]byte, 0, size), page, segjson.EscapeHTML|segjson.SortMapKeys|segjson.TrustRawMessage)
		}),
	}
}
