package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// driver is a lean HTTP client for the wire protocol: request bodies are
// appended by hand and only the answer fields the checks need are
// decoded, so the driver takes as little of the shared CPU as it can.
type driver struct {
	base string
	hc   *http.Client
}

func newDriver(addr string, conns int) *driver {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        conns * 2,
		MaxIdleConnsPerHost: conns * 2,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	return &driver{base: "http://" + addr, hc: &http.Client{Transport: tr, Timeout: 5 * time.Minute}}
}

// user is a signed-up account.
type user struct {
	ID    string
	Token string
}

func (d *driver) do(ctx context.Context, method, path, token string, body []byte, out any) error {
	answer, err := d.doRaw(ctx, method, path, token, body, nil)
	if err != nil {
		return err
	}
	return json.Unmarshal(answer, out)
}

// doRaw sends a request and appends the answer's body to answer[:0], so a
// worker can reuse one buffer for all its answers.
func (d *driver) doRaw(ctx context.Context, method, path, token string, body, answer []byte) ([]byte, error) {
	answer, _, err := d.doRawWith(ctx, method, path, token, nil, body, answer)
	return answer, err
}

// doRawWith is doRaw with extra request headers; it also returns the
// answer's headers.
func (d *driver) doRawWith(ctx context.Context, method, path, token string, hdr http.Header, body, answer []byte) ([]byte, http.Header, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, d.base+path, rd)
	if err != nil {
		return answer, nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := d.hc.Do(req)
	if err != nil {
		return answer, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
		return answer, resp.Header, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, b)
	}
	buf := bytes.NewBuffer(answer[:0])
	_, err = buf.ReadFrom(resp.Body)
	return buf.Bytes(), resp.Header, err
}

// buffers are one worker's request and answer bodies, reused.
type buffers struct{ req, answer []byte }

// register signs a new user up.
func (d *driver) register(ctx context.Context, email string) (user, error) {
	body, _ := json.Marshal(map[string]string{"email": email, "password": "bench password", "name": "Bench"})
	var out struct {
		Token string `json:"token"`
		User  struct {
			UID string `json:"uid"`
		} `json:"user"`
	}
	if err := d.do(ctx, http.MethodPost, "/auth/register", "", body, &out); err != nil {
		return user{}, err
	}
	return user{ID: out.User.UID, Token: out.Token}, nil
}

// note is one change of data.Note as the driver sends it.
type note struct {
	// Model is the change's model ("": data.Note).
	Model    string
	UID      string
	ModifyAt time.Time
	Title    string
	Body     string
	Pinned   bool
	// FieldsAt, when set, is sent as the time of every field but the
	// title (fields_modify_at).
	FieldsAt time.Time
}

const wireTime = "2006-01-02T15:04:05.000000Z"

func appendNote(b []byte, n *note) []byte {
	if n.Model == "" {
		b = append(b, `{"model":"data.Note","uid":`...)
	} else {
		b = append(b, `{"model":`...)
		b = strconv.AppendQuote(b, n.Model)
		b = append(b, `,"uid":`...)
	}
	b = strconv.AppendQuote(b, n.UID)
	b = append(b, `,"modify_at":"`...)
	b = n.ModifyAt.UTC().AppendFormat(b, wireTime)
	b = append(b, `","data":{"title":`...)
	b = strconv.AppendQuote(b, n.Title)
	b = append(b, `,"body":`...)
	b = strconv.AppendQuote(b, n.Body)
	b = append(b, `,"tags":["work","home"],"pinned":`...)
	b = strconv.AppendBool(b, n.Pinned)
	b = append(b, '}')
	if !n.FieldsAt.IsZero() {
		// A device that edited the title alone names the other fields
		// at the time they had.
		b = append(b, `,"fields_modify_at":{"body":"`...)
		b = n.FieldsAt.UTC().AppendFormat(b, wireTime)
		b = append(b, `","tags":"`...)
		b = n.FieldsAt.UTC().AppendFormat(b, wireTime)
		b = append(b, `","pinned":"`...)
		b = n.FieldsAt.UTC().AppendFormat(b, wireTime)
		b = append(b, `"}`...)
	}
	return append(b, '}')
}

// single sends one change to POST /sync/ and returns its status.
func (d *driver) single(ctx context.Context, u user, n *note, bb *buffers) (string, error) {
	bb.req = appendNote(bb.req[:0], n)
	var err error
	bb.answer, err = d.doRaw(ctx, http.MethodPost, "/sync/", u.Token, bb.req, bb.answer)
	if err != nil {
		return "", err
	}
	st, err := statuses(bb.answer, nil)
	if err != nil || len(st) != 1 {
		return "", fmt.Errorf("POST /sync/ answered %d statuses (%v): %.200s", len(st), err, bb.answer)
	}
	return st[0], nil
}

// push sends a batch to POST /sync/push and returns the statuses.
func (d *driver) push(ctx context.Context, u user, ns []note, bb *buffers) ([]string, error) {
	b := append(bb.req[:0], `{"device_id":"bench","changes":[`...)
	for i := range ns {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendNote(b, &ns[i])
	}
	bb.req = append(b, "]}"...)
	var err error
	bb.answer, err = d.doRaw(ctx, http.MethodPost, "/sync/push", u.Token, bb.req, bb.answer)
	if err != nil {
		return nil, err
	}
	return statuses(bb.answer, make([]string, 0, len(ns)))
}

// statuses lists the values of the "status" keys of an answer in order,
// without decoding the rest: the records in a push answer are most of its
// bytes, and decoding them took most of the driver's CPU. Inside a JSON
// string a quote is always escaped, so the pattern only matches keys; the
// bench's notes have no "status" key of their own.
func statuses(answer []byte, dst []string) ([]string, error) {
	const key = `"status":"`
	for {
		i := bytes.Index(answer, []byte(key))
		if i < 0 {
			return dst, nil
		}
		answer = answer[i+len(key):]
		end := bytes.IndexByte(answer, '"')
		if end < 0 {
			return dst, fmt.Errorf("unterminated status")
		}
		dst = append(dst, statusString(answer[:end]))
		answer = answer[end:]
	}
}

// statusString returns the protocol's statuses without allocating.
func statusString(b []byte) string {
	for _, s := range [...]string{"applied", "stale", "rejected", "forbidden"} {
		if string(b) == s {
			return s
		}
	}
	return string(b)
}

// pullPage is the part of a pull answer the driver checks.
type pullPage struct {
	Changes int // records in the page
	Cursor  string
	HasMore bool
}

// pull fetches one page into bb.answer.
func (d *driver) pull(ctx context.Context, u user, cursor string, limit int, bb *buffers) (pullPage, error) {
	q := url.Values{}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	q.Set("limit", strconv.Itoa(limit))
	var err error
	bb.answer, err = d.doRaw(ctx, http.MethodGet, "/sync/pull?"+q.Encode(), u.Token, nil, bb.answer)
	if err != nil {
		return pullPage{}, err
	}
	return scanPage(bb.answer)
}

// scanPage reads a pull answer's record count, cursor and has_more
// without decoding the records, which decoding made the driver's largest
// cost in pulls. Every record starts with its "model" key; the notes'
// data has no such key, and inside strings quotes are escaped.
func scanPage(answer []byte) (pullPage, error) {
	const start, cursorKey, moreKey = `{"changes":[`, `"cursor":"`, `"has_more":`
	if !bytes.HasPrefix(answer, []byte(start)) {
		return pullPage{}, fmt.Errorf("a pull answer starts %.40q", answer)
	}
	page := pullPage{Changes: bytes.Count(answer, []byte(`{"model":`))}
	i := bytes.LastIndex(answer, []byte(cursorKey))
	j := bytes.LastIndex(answer, []byte(moreKey))
	if i < 0 || j < i {
		return pullPage{}, fmt.Errorf("a pull answer ends %.80q", answer[max(0, len(answer)-80):])
	}
	cur := answer[i+len(cursorKey):]
	end := bytes.IndexByte(cur, '"')
	if end < 0 {
		return pullPage{}, fmt.Errorf("unterminated cursor")
	}
	page.Cursor = string(cur[:end])
	page.HasMore = bytes.HasPrefix(answer[j+len(moreKey):], []byte("true"))
	return page, nil
}
