package jsonbench

import (
	"fmt"
	"strings"
)

// pushBody500 is a 500-change push as the bench program's clients send
// it: 250 typed data.Note changes and 250 generic data.Task ones, with a
// few escapes and non-ASCII letters, as real text has.
func pushBody500() []byte {
	var b strings.Builder
	b.WriteString(`{"device_id":"bench","changes":[`)
	for i := range 500 {
		if i > 0 {
			b.WriteByte(',')
		}
		if i%2 == 0 {
			fmt.Fprintf(&b, `{"model":"data.Note","uid":"w1b2n%d","modify_at":"2026-11-26T08:00:00.%06dZ","data":{"title":"Note %d","body":"Lorem ipsum dolor sit amet, consectetur.\nCafé \"quoted\" — %d","tags":["work","home"],"pinned":%v}}`, i, i, i, i, i%3 == 0)
		} else {
			fmt.Fprintf(&b, `{"model":"data.Task","uid":"w1b2t%d","op_id":"op-%d","modify_at":"2026-11-26T08:00:00.%06dZ","is_deleted":false,"data":{"title":"Task %d","body":"Buy milk, eggs and bread before 18:00.","count":%d,"done":%v}}`, i, i, i, i, i*7, i%2 == 0)
		}
	}
	b.WriteString("]}")
	return []byte(b.String())
}

// note is the example app's data.Note without its bun and base fields
// (all `json:"-"` or unexported there).
type note struct {
	Title  string   `json:"title"`
	Body   string   `json:"body"`
	Tags   []string `json:"tags"`
	Pinned bool     `json:"pinned"`
}
