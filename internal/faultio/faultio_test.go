package faultio

import (
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
)

func TestCutReader(t *testing.T) {
	for _, c := range []struct {
		left int64
		want string
		err  error
	}{{0, "", ErrCut}, {3, "abc", ErrCut}, {-1, "abcdef", nil}, {100, "abcdef", nil}} {
		var sent atomic.Int64
		r := &CutReader{R: io.NopCloser(strings.NewReader("abcdef")), Left: c.left, Sent: &sent}
		got, err := io.ReadAll(r)
		if string(got) != c.want || !errors.Is(err, c.err) || sent.Load() != int64(len(c.want)) {
			t.Errorf("left %d: %q %v, sent %d", c.left, got, err, sent.Load())
		}
	}
}
