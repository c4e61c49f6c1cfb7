package blobs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferrysync/ferry/framework/client"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/ferrysync/ferry/framework/wire"
	"github.com/ferrysync/ferry/plugins/blobs"
	"github.com/ferrysync/ferry/plugins/blobs/blobclient"
	"github.com/uptrace/bun"
)

// pushIn pushes one change into the shared space as user and returns its
// result.
func (e *env) pushIn(t *testing.T, user, space, model, uid, data string, deleted bool) wire.Result {
	t.Helper()
	e.advance(time.Millisecond)
	body := fmt.Sprintf(`{"changes":[{"space":%q,"model":%q,"uid":%q,"modify_at":%q,"is_deleted":%t,"data":%s}]}`,
		space, model, uid, time.Unix(0, e.now.Load()).UTC().Format(time.RFC3339Nano), deleted, data)
	resp, b := e.do(t, user, "POST", "/sync/push", strings.NewReader(body), map[string]string{"Content-Type": "application/json"})
	var pr wire.PushResponse
	if err := json.Unmarshal(b, &pr); err != nil || resp.StatusCode != 200 || len(pr.Results) != 1 {
		t.Fatalf("push: %d %s", resp.StatusCode, b)
	}
	return pr.Results[0]
}

// TestBlobsInSpaces: a writer uploads into a shared space; every member
// may read the blob, a stranger and a removed member may not, a reader may
// not upload, and missing_blobs speaks of what the record's space holds.
func TestBlobsInSpaces(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		e := newEnvWith(t, db, "", blobs.Config{}, true)
		ctx := context.Background()
		data := randomBytes(7, 100_000)
		h := hashOf(data)
		if r := e.pushIn(t, "ann", "L", "ferry.Space", "L", `{}`, false); r.Status != "applied" {
			t.Fatalf("create the space: %+v", r)
		}
		e.pushIn(t, "ann", "L", "ferry.Member", "bob", `{"role":"reader"}`, false)
		res := e.pushIn(t, "ann", "L", "data.Note", "n1", note(h), false)
		if res.Status != "applied" || !slices.Equal(res.MissingBlobs, []string{"sha256:" + h}) {
			t.Fatalf("a shared note before its blob: %+v", res)
		}
		// A reader may not upload into the space.
		err := e.client("bob").Send(ctx, &blobclient.Upload{Hash: h, Size: int64(len(data)), Space: "L"}, bytes.NewReader(data), nil)
		if err == nil || !strings.Contains(err.Error(), "403") && !strings.Contains(err.Error(), "forbidden") {
			t.Fatalf("a reader's upload into the space: %v", err)
		}
		if err := e.client("ann").Send(ctx, &blobclient.Upload{Hash: h, Size: int64(len(data)), Type: "image/png", Space: "L"}, bytes.NewReader(data), nil); err != nil {
			t.Fatalf("a writer's upload into the space: %v", err)
		}
		if res := e.pushIn(t, "ann", "L", "data.Note", "n2", note(h), false); len(res.MissingBlobs) != 0 {
			t.Fatalf("a shared note after the upload: %+v", res)
		}
		// The space holds it, not ann alone: her personal note still asks.
		if res := e.push(t, "ann", "data.Note", "mine", note(h), false); !slices.Equal(res.MissingBlobs, []string{"sha256:" + h}) {
			t.Fatalf("ann's personal note: %+v", res)
		}
		for user, want := range map[string]int{"ann": 200, "bob": 200, "carl": 404} {
			resp, got := e.get(t, user, h, nil)
			if resp.StatusCode != want || want == 200 && !bytes.Equal(got, data) {
				t.Errorf("%s GETs the space's blob: %d, want %d", user, resp.StatusCode, want)
			}
		}
		if err := e.client("carl").Fetch(ctx, h, filepath.Join(t.TempDir(), "b")); !errors.Is(err, blobclient.ErrNotFound) {
			t.Errorf("a stranger's fetch: %v", err)
		}
		// Removed, bob reads it no more.
		e.pushIn(t, "ann", "L", "ferry.Member", "bob", `null`, true)
		if resp, _ := e.get(t, "bob", h, nil); resp.StatusCode != 404 {
			t.Fatalf("a removed member GETs the blob: %d", resp.StatusCode)
		}
	})
}

// TestGoClientMissingBlobs: the Go sync client reports the blobs its
// pushed records refer to and the server lacks, for the uploader.
func TestGoClientMissingBlobs(t *testing.T) {
	e := newEnv(t, synctest.OpenSQLite(t), "", blobs.Config{})
	ctx := context.Background()
	c, err := client.New(client.Config{BaseURL: e.url, Token: "ann", Owner: "ann"})
	if err != nil {
		t.Fatal(err)
	}
	data := randomBytes(3, 1000)
	h := hashOf(data)
	if _, err := c.Put(ctx, "data.Note", "n1", json.RawMessage(note(h))); err != nil {
		t.Fatal(err)
	}
	res, err := c.Sync(ctx)
	if err != nil || !slices.Equal(res.MissingBlobs, []string{"sha256:" + h}) {
		t.Fatalf("sync: %+v %v", res, err)
	}
	e.upload(t, "ann", data)
	if _, err := c.Put(ctx, "data.Note", "n2", json.RawMessage(note(h))); err != nil {
		t.Fatal(err)
	}
	if res, err := c.Sync(ctx); err != nil || len(res.MissingBlobs) != 0 {
		t.Fatalf("sync after the upload: %+v %v", res, err)
	}
}
