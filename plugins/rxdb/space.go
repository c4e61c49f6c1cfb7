package rxdb

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/wire"
	"github.com/gin-gonic/gin"
)

// MinCheckpointSecret is the shortest [Config].CheckpointSecret (and
// previous secret) accepted, in bytes.
const MinCheckpointSecret = 32

// sigContext starts every signed message, so the key signs nothing else
// that could be mistaken for a checkpoint.
const sigContext = "ferry.rxdb.checkpoint.v1"

// spaceParam returns the request's ?space= ("" for the personal space).
// A server without a checkpoint secret serves no space: it could not
// prove a former member's checkpoint at revoke.
func (p *Plugin) spaceParam(c *gin.Context) (string, error) {
	s, ok := c.GetQuery("space")
	if !ok {
		return "", nil
	}
	if len(p.cfg.CheckpointSecret) == 0 {
		return "", invalidParam("space", "this server serves no shared spaces through RxDB (rxdb.Config.CheckpointSecret is not set)")
	}
	if !wire.ValidUID(s) {
		return "", invalidParam("space", "must be a space uid: 1 to 64 letters, digits, - or _")
	}
	return s, nil
}

// sign is the checkpoint signature of user's read of space through seq:
// HMAC-SHA256 over the context, user, space and seq (and, in a removed
// member's listing, "upto=" and its bound), joined by NUL bytes,
// base64url without padding.
func sign(key []byte, user, space string, seq int64, upto *int64) string {
	m := hmac.New(sha256.New, key)
	msg := sigContext + "\x00" + user + "\x00" + space + "\x00" + strconv.FormatInt(seq, 10)
	if upto != nil {
		msg += "\x00upto=" + strconv.FormatInt(*upto, 10)
	}
	m.Write([]byte(msg))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// verify reports whether sig is the signature of (user, space, seq, upto)
// under the current secret or a previous one.
func (p *Plugin) verify(user, space string, seq int64, upto *int64, sig string) bool {
	if sig == "" || len(p.cfg.CheckpointSecret) == 0 {
		return false
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return false
	}
	for _, key := range append([][]byte{p.cfg.CheckpointSecret}, p.cfg.PreviousCheckpointSecrets...) {
		want, _ := base64.RawURLEncoding.DecodeString(sign(key, user, space, seq, upto))
		if hmac.Equal(got, want) {
			return true
		}
	}
	return false
}

// checkpoint is the checkpoint of a read through seq: signed for a
// shared space.
func (p *Plugin) checkpoint(who framework.Principal, space string, seq int64) Checkpoint {
	cp := Checkpoint{Seq: seq}
	if space != "" {
		cp.Sig = sign(p.cfg.CheckpointSecret, who.UserID, space, seq, nil)
	}
	return cp
}

// int64Param parses an optional non-negative integer query parameter.
func int64Param(c *gin.Context, name string) (*int64, error) {
	s, ok := c.GetQuery(name)
	if !ok {
		return nil, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return nil, invalidParam(name, "must be the checkpoint's "+name+" as this server returned it")
	}
	return &n, nil
}

// key is the hub's key of the streams of a scope's collection.
func key(who framework.Principal, space, collection string) string {
	if space == "" {
		return who.UserID + "\x00" + collection
	}
	return wire.SpaceOwner(space) + "\x00" + collection
}

// pullSpace serves a pull of a shared space's collection: the space's
// documents after seq to a member, and to a former member whose
// checkpoint is signed the ids the device may hold, as deleted documents.
func (p *Plugin) pullSpace(c *gin.Context, who framework.Principal, model, space string, seq int64, limit int) error {
	drop, err := int64Param(c, "drop")
	if err != nil {
		return err
	}
	upto, err := int64Param(c, "upto")
	if err != nil {
		return err
	}
	ctx := c.Request.Context()
	after := seq
	if drop != nil || upto != nil {
		// The device dropped (or is dropping) the space; a member again
		// reads it whole.
		after = 0
	}
	req := framework.SinceRequest{Models: []string{model}, After: after, Limit: limit, Space: space}
	resp, err := p.app.ReadSince(ctx, who, req)
	if errors.Is(err, framework.ErrForbidden) {
		return p.pullLost(c, who, model, space, seq, upto, drop, limit, err)
	}
	if err != nil {
		return fmt.Errorf("rxdb: pull: %w", err)
	}
	if after > resp.Version {
		after, req.After = 0, 0
		if resp, err = p.app.ReadSince(ctx, who, req); err != nil {
			return fmt.Errorf("rxdb: pull: %w", err)
		}
	}
	b, err := batch(resp.Records, after)
	if err != nil {
		return err
	}
	b.Checkpoint = p.checkpoint(who, space, b.Checkpoint.Seq)
	c.JSON(200, b)
	return nil
}

// pullLost answers a pull of a space the caller does not read. Only a
// checkpoint the server signed for this user and space proves the device
// read it; it gets, page by page, every document of the space it may
// hold as {"id", "_deleted": true} (ids only), and then nothing: the
// listing's bound (upto) is fixed by its first page and signed. Any other
// pull gets refused, the answer a space that does not exist gets.
func (p *Plugin) pullLost(c *gin.Context, who framework.Principal, model, space string, seq int64, upto, drop *int64, limit int, refused error) error {
	if !p.verify(who.UserID, space, seq, upto, c.Query("sig")) {
		return refused
	}
	req := framework.LostRequest{Space: space, Model: model, Seen: seq, Limit: limit}
	if upto != nil {
		req.UpTo = max(*upto, 1) // 0 would mean "first page"; a bound of 0 lists nothing either way
	}
	if drop != nil {
		req.After = *drop
	}
	lost, err := p.app.ReadLost(c.Request.Context(), who, req)
	if err != nil {
		return fmt.Errorf("rxdb: pull of a lost space: %w", err)
	}
	bound := lost.UpTo
	cp := Checkpoint{Seq: seq, UpTo: &bound, Sig: sign(p.cfg.CheckpointSecret, who.UserID, space, seq, &bound)}
	b := &Batch{Documents: make([]map[string]json.RawMessage, 0, len(lost.UIDs)), Checkpoint: cp}
	for _, uid := range lost.UIDs {
		doc, err := Document(&framework.Record{UID: uid, IsDeleted: true})
		if err != nil {
			return err
		}
		b.Documents = append(b.Documents, doc)
	}
	last := lost.Last
	b.Checkpoint.Drop = &last
	if len(lost.UIDs) > 0 {
		p.app.Logger().Info("rxdb pull of a lost space", "user", who.UserID, "deleted", len(lost.UIDs), "done", lost.Done)
	}
	c.JSON(200, b)
	return nil
}

// readSpace checks that who reads space now: nil, or the answer a space
// that does not exist gets.
func (p *Plugin) readSpace(ctx context.Context, who framework.Principal, model, space string) error {
	_, err := p.app.ReadSince(ctx, who, framework.SinceRequest{Models: []string{model}, After: math.MaxInt64, Space: space})
	return err
}

// serverState reads the server's state of refused documents: of the
// caller's personal space, or of the shared space (nothing when the caller
// lost it meanwhile).
func (p *Plugin) serverState(ctx context.Context, who framework.Principal, space, model string, uids []string) (map[string]*framework.Record, error) {
	var recs []*framework.Record
	var err error
	if space == "" {
		recs, err = p.app.Read(ctx, who, model, uids)
	} else {
		recs, err = p.app.ReadInSpace(ctx, who, space, model, uids)
		if errors.Is(err, framework.ErrForbidden) {
			recs, err = nil, nil
		}
	}
	if err != nil {
		return nil, err
	}
	out := make(map[string]*framework.Record, len(recs))
	for _, r := range recs {
		out[r.UID] = r
	}
	return out, nil
}

// RefusedHeader is the push answer's header that says why rows were
// refused: a JSON array (ASCII, non-ASCII escaped) of [Refusal], in row
// order, as many as fit in [MaxRefusedHeader] bytes;
// [RefusedCountHeader] counts them all.
const (
	RefusedHeader      = "Ferry-Refused"
	RefusedCountHeader = "Ferry-Refused-Count"
	MaxRefusedHeader   = 4096
)

// Refusal is one refused row in [RefusedHeader].
type Refusal struct {
	ID     string                 `json:"id"`
	Status string                 `json:"status"`
	Code   string                 `json:"code,omitempty"`
	Errors []framework.FieldError `json:"errors,omitempty"`
}

// refusedHeader encodes refusals for [RefusedHeader]: each row's first
// three errors, messages cut at 200 bytes, rows up to the byte cap.
func refusedHeader(rows []Refusal) string {
	out := []byte{'['}
	for _, r := range rows {
		if len(r.Errors) > 3 {
			r.Errors = r.Errors[:3]
		}
		for i := range r.Errors {
			r.Errors[i].Message = cut(r.Errors[i].Message, 200)
			r.Errors[i].Path = cut(r.Errors[i].Path, 200)
		}
		raw, err := json.Marshal(r)
		if err != nil {
			continue
		}
		raw = asciiJSON(raw)
		if len(out)+len(raw)+2 > MaxRefusedHeader {
			break
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(out, raw...)
	}
	return string(append(out, ']'))
}

// cut shortens s to at most n bytes, on a rune boundary.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// asciiJSON escapes the non-ASCII runes of a JSON text as \uXXXX (header
// values are read as Latin-1 by most clients).
func asciiJSON(raw []byte) []byte {
	out := make([]byte, 0, len(raw))
	for _, r := range string(raw) {
		switch {
		case r < utf8.RuneSelf:
			out = append(out, byte(r))
		case r > 0xFFFF:
			r -= 0x10000
			out = fmt.Appendf(out, `\u%04x\u%04x`, 0xD800+(r>>10), 0xDC00+(r&0x3FF))
		default:
			out = fmt.Appendf(out, `\u%04x`, r)
		}
	}
	return out
}
