package client_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/ferrysync/ferry/framework/client"
)

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// FuzzServerAnswers feeds Sync arbitrary answers: it must never panic, a
// non-2xx answer must come back as an *Error, and a change leaves the
// queue only with an answer about it.
func FuzzServerAnswers(f *testing.F) {
	f.Add(200, `{"results":[{"op_id":"1","model":"data.Note","uid":"n1","status":"applied","record":{"model":"data.Note","uid":"n1","owner":"me","modify_at":"2026-11-25T10:00:00.000000Z","version":3,"data":{"title":"x"}}}],"changes":[],"cursor":"c","has_more":false}`)
	f.Add(200, `{"results":[{"model":"data.Note","uid":"n1","status":"stale","record":null}],"changes":[{"model":"data.Note","uid":"n2","modify_at":1700000000.5,"data":null}],"has_more":false}`)
	f.Add(200, `{"results":[{"model":"data.Note","uid":"n1","status":"rejected","errors":[{"path":"/data","message":"bad"}]}],"has_more":true}`)
	f.Add(200, `{"results":[]}`)
	f.Add(200, `not json`)
	f.Add(400, `{"error":{"code":"invalid","message":"m","details":[{"path":"/x","message":"y"}]}}`)
	f.Add(401, `{"error":{"code":"unauthenticated","message":"no"}}`)
	f.Add(410, `{"error":{"code":"reset_required","message":"again"}}`)
	f.Add(413, ``)
	f.Add(500, `<html>`)
	f.Fuzz(func(t *testing.T, status int, body string) {
		if status < 100 || status > 599 {
			return
		}
		calls := 0
		c, err := client.New(client.Config{
			BaseURL: "http://ferry.invalid",
			Token:   "t",
			Owner:   "me",
			Retry:   client.Retry{MaxAttempts: 1},
			HTTPClient: &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
				calls++
				if calls > 50 {
					return nil, errors.New("too many requests")
				}
				return &http.Response{
					StatusCode: status, Header: http.Header{"Content-Type": {"application/json"}},
					Body: io.NopCloser(strings.NewReader(body)), Request: r,
				}, nil
			})},
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		if _, err := c.Put(ctx, "data.Note", "n1", map[string]any{"title": "x"}); err != nil {
			t.Fatal(err)
		}
		_, err = c.Sync(ctx)
		var pe *client.Error
		if (status < 200 || status > 299) && !errors.As(err, &pe) {
			t.Fatalf("status %d: err = %v, want an *Error", status, err)
		}
		if pe != nil && (pe.Code == "" || pe.Message == "") {
			t.Fatalf("error without code or message: %#v", pe)
		}
		// 413 on a single change drops it as too large to ever push.
		if n, _ := c.PendingCount(ctx); n == 0 && status != http.StatusRequestEntityTooLarge && !strings.Contains(body, `"results"`) {
			t.Fatalf("the change left the queue without an answer about it")
		}
	})
}
