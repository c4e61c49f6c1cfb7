package framework

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ferrysync/ferry/internal/jsonvalue"
)

// decodeJSON decodes exactly one JSON value, numbers as json.Number.
func decodeJSON(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("unexpected data after the JSON value")
	}
	return nil
}

// BodyLimits bound a request body: its bytes, and what decoding it may
// build (see [Config.MaxDepth], [Config.MaxElements], [Config.MaxValues]).
// A zero field takes the default of the same [Config] field;
// [App.BodyLimits] has the App's.
type BodyLimits struct {
	MaxBytes    int64
	MaxDepth    int
	MaxElements int
	MaxValues   int
}

func (l BodyLimits) withDefaults() BodyLimits {
	var d Config
	d.setDefaults()
	if l.MaxBytes <= 0 {
		l.MaxBytes = d.MaxBodyBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = d.MaxDepth
	}
	if l.MaxElements <= 0 {
		l.MaxElements = d.MaxElements
	}
	if l.MaxValues <= 0 {
		l.MaxValues = d.MaxValues
	}
	return l
}

// BodyLimits returns the limits the App's own routes read bodies with.
// Plugins serving routes of their own read theirs with them too
// ([ReadJSONBodyWithin]), raising MaxElements when their protocol sends
// longer arrays.
func (a *App) BodyLimits() BodyLimits {
	return BodyLimits{
		MaxBytes: a.cfg.MaxBodyBytes, MaxDepth: a.cfg.MaxDepth,
		MaxElements: max(a.cfg.MaxElements, a.cfg.MaxChanges), MaxValues: a.cfg.MaxValues,
	}
}

// ReadJSONBody is [ReadJSONBodyWithin] with a byte limit and the default
// limits on the decoded value.
func ReadJSONBody(r *http.Request, limit int64, v any) error {
	return ReadJSONBodyWithin(r, BodyLimits{MaxBytes: limit}, v)
}

// ReadJSONBodyWithin checks the request's content type and size and
// decodes its body (numbers as json.Number) into v. Bodies over
// lim.MaxBytes are refused with too_large before they are read whole.
// Decoded into an *any, the body must also stay within the depth,
// elements and values limits, checked while it is parsed, so that a
// small text cannot build a huge value: over them it is too_large, with
// the JSON pointer of the place in the details. Plugins serving their own
// routes use it to answer bad bodies the way the core does.
// Decoded into an *any, the strings share the body's memory: copy those
// kept beyond the request (strings.Clone).
func ReadJSONBodyWithin(r *http.Request, lim BodyLimits, v any) error {
	lim = lim.withDefaults()
	limit := lim.MaxBytes
	ct := r.Header.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil || mt != "application/json" {
		return NewError(CodeUnsupportedMedia, "Content-Type must be application/json")
	}
	if cs, ok := params["charset"]; ok && !equalFoldASCII(cs, "utf-8") {
		return NewError(CodeUnsupportedMedia, "the body must be UTF-8 JSON")
	}
	if r.ContentLength > limit {
		return NewError(CodeTooLarge, "the body is larger than %d bytes", limit)
	}
	// Sized from Content-Length, the body is read into one allocation
	// instead of a doubling series; at most 256 KiB (a 500-change push)
	// is trusted up front, so that headers alone cannot make the server
	// allocate the whole limit (thousands of slow clients each declaring
	// 10 MiB would otherwise reserve gigabytes).
	buf := bytes.NewBuffer(make([]byte, 0, min(max(r.ContentLength, 0), limit, 256<<10)+bytes.MinRead))
	_, err = buf.ReadFrom(io.LimitReader(r.Body, limit+1))
	body := buf.Bytes()
	if err != nil && tooLarge(err) {
		// A compressed body over its encoded limit ([Compression]).
		return NewError(CodeTooLarge, "the body is larger than the server accepts")
	}
	if err != nil {
		return NewError(CodeInvalid, "could not read the body")
	}
	if int64(len(body)) > limit {
		return NewError(CodeTooLarge, "the body is larger than %d bytes", limit)
	}
	if dst, ok := v.(*any); ok {
		parsed, err := jsonvalue.ParseWithin(body, jsonvalue.Limits{
			MaxDepth: lim.MaxDepth, MaxElements: lim.MaxElements, MaxValues: lim.MaxValues,
		})
		var le *jsonvalue.LimitError
		switch {
		case err == nil:
			*dst = parsed
			return nil
		case errors.As(err, &le):
			where := le.Path
			if where == "" {
				where = "the body"
			}
			return &Error{Code: CodeTooLarge, Message: "the body is too large: " + where + " " + le.Error(),
				Details: []FieldError{{Path: le.Path, Message: le.Error()}}}
		}
		// Not valid JSON: encoding/json words the error without building
		// the value.
		if err := decodeJSON(bytes.NewReader(body), new(json.RawMessage)); err != nil {
			return NewError(CodeInvalid, "the body is not valid JSON: %s", jsonSyntaxText(err))
		}
	}
	if err := decodeJSON(bytes.NewReader(body), v); err != nil {
		return NewError(CodeInvalid, "the body is not valid JSON: %s", jsonSyntaxText(err))
	}
	return nil
}

func jsonSyntaxText(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%s (at byte %d)", se.Error(), se.Offset)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "unexpected end of input"
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("%s must be %s", te.Field, te.Type)
	}
	return err.Error()
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i]|0x20, b[i]|0x20
		if x != y {
			return false
		}
	}
	return true
}

// decodeChange turns one decoded change object into a Change, checking it
// against the protocol's change schema. Errors are field errors relative
// to the change.
func (a *App) decodeChange(v any) (*Change, []FieldError) {
	obj, ok := v.(map[string]any)
	if !ok {
		return &Change{}, []FieldError{{Path: "", Message: "a change must be a JSON object"}}
	}
	// The parsed strings share the request body's memory; the ones that
	// leave the request in results and events (to hooks that may keep
	// them) are copied, so that they do not pin a body of megabytes.
	ch := &Change{}
	model, _ := obj["model"].(string)
	uid, _ := obj["uid"].(string)
	ch.Model, ch.UID = strings.Clone(model), strings.Clone(uid)
	if space, ok := obj["space"].(string); ok {
		ch.Space = strings.Clone(space)
	}
	if op, ok := obj["op_id"].(string); ok {
		op = strings.Clone(op)
		ch.OpID = &op
	}
	// The envelope check is hand-written for speed; the protocol's JSON
	// Schema runs only when it fails, to word the errors.
	if !envelopeOK(obj) {
		if errs := schemaErrors(a.protocol.change, v, ""); len(errs) > 0 {
			return ch, errs
		}
	}
	t, msg := parseTime(obj["modify_at"])
	if msg != "" {
		return ch, []FieldError{{Path: "/modify_at", Message: msg}}
	}
	ch.ModifyAt = Time{Time: t}
	ch.IsDeleted, _ = obj["is_deleted"].(bool)
	if f, ok := obj["fields_modify_at"].(map[string]any); ok && len(f) > 0 {
		ch.FieldsModifyAt = make(map[string]Time, len(f))
		for name, v := range f {
			t, msg := parseTime(v)
			if msg != "" {
				return ch, []FieldError{{Path: "/fields_modify_at/" + pointerToken(name), Message: msg}}
			}
			ch.FieldsModifyAt[strings.Clone(name)] = Time{Time: t}
		}
	}
	if d, ok := obj["data"]; ok && d != nil {
		raw, err := jsonvalue.Append(make([]byte, 0, 256), d)
		if err != nil {
			return ch, []FieldError{{Path: "/data", Message: "data is not valid JSON"}}
		}
		ch.Data, ch.decoded, ch.decodedFrom = raw, d, raw
	}
	return ch, nil
}

// envelopeOK reports whether a change object surely satisfies
// schemas/protocol/change.json. It may say false for a valid change (the
// schema then decides); it must never say true for an invalid one
// (FuzzEnvelopeFastPath checks this).
func envelopeOK(obj map[string]any) bool {
	model, ok := obj["model"].(string)
	if !ok || model == "" || utf8.RuneCountInString(model) > 128 {
		return false
	}
	if _, ok := obj["uid"].(string); !ok {
		return false
	}
	switch obj["modify_at"].(type) {
	case string, json.Number:
	default:
		return false
	}
	for key, val := range obj {
		switch key {
		case "is_deleted":
			if _, ok := val.(bool); !ok {
				return false
			}
		case "data":
			if _, ok := val.(map[string]any); !ok && val != nil {
				return false
			}
		case "op_id":
			if s, ok := val.(string); !ok || utf8.RuneCountInString(s) > 128 {
				return false
			}
		case "fields_modify_at":
			if !fieldTimesShapeOK(val) {
				return false
			}
		case "owner", "space":
			if _, ok := val.(string); !ok {
				return false
			}
		case "version":
			n, ok := val.(json.Number)
			if !ok {
				return false
			}
			if _, err := strconv.ParseInt(string(n), 10, 64); err != nil {
				return false
			}
		}
	}
	return true
}
