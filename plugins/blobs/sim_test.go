package blobs_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/ferrysync/ferry/framework/client"
	"github.com/ferrysync/ferry/framework/synctest"
	"github.com/ferrysync/ferry/internal/faultio"
	"github.com/ferrysync/ferry/plugins/blobs"
	"github.com/ferrysync/ferry/plugins/blobs/blobclient"
	"github.com/uptrace/bun"
)

// faults is a transport that, while on, fails some requests before they
// leave and cuts some PATCH bodies at a random byte.
type faults struct {
	mu  sync.Mutex
	r   *rand.Rand
	on  bool
	cut int
}

func (f *faults) RoundTrip(req *http.Request) (*http.Response, error) {
	f.mu.Lock()
	on, p, at := f.on, f.r.Float64(), f.r.Int64N(max(req.ContentLength, 1))
	f.mu.Unlock()
	if on && p < 0.15 {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, fmt.Errorf("fault: request to %s failed", req.URL.Path)
	}
	if on && p < 0.5 && req.Method == http.MethodPatch && req.Body != nil {
		f.mu.Lock()
		f.cut++
		f.mu.Unlock()
		req.Body = &faultio.CutReader{R: req.Body, Left: at}
	}
	return http.DefaultTransport.RoundTrip(req)
}

func (f *faults) set(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.on = on
}

// simDevice is one device: its records (the framework's Go client) and
// its blobs (a blobclient.Device).
type simDevice struct {
	user  string
	recs  *client.Client
	blobs *blobclient.Device
}

// TestSimBlobConvergence: devices of two users attach files offline to
// notes, edit and delete notes, sync records and upload blobs while
// requests fail and uploads are cut at random bytes; once the faults stop
// and every device has uploaded and synced, every device can fetch every
// blob the records it holds refer to, and the bytes are the ones
// attached.
func TestSimBlobConvergence(t *testing.T) {
	synctest.ForEachStore(t, func(t *testing.T, db *bun.DB) {
		e := newEnv(t, db, "", blobs.Config{})
		ctx := context.Background()
		f := &faults{r: rand.New(rand.NewPCG(42, 42))}
		hc := &http.Client{Transport: f, Timeout: 30 * time.Second}
		var devices []*simDevice
		for _, user := range []string{"ann", "ann", "ann", "ben", "ben"} {
			recs, err := client.New(client.Config{BaseURL: e.url, Owner: user, Token: user, HTTPClient: hc,
				Store: client.NewMemoryStore(), Retry: client.Retry{MaxAttempts: 1}})
			if err != nil {
				t.Fatal(err)
			}
			bc := e.client(user)
			bc.HTTP, bc.ChunkSize = hc, 64<<10
			dev, err := blobclient.OpenDevice(bc, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			devices = append(devices, &simDevice{user: user, recs: recs, blobs: dev})
		}
		r := rand.New(rand.NewPCG(7, 7))
		attached := map[string][]byte{} // hash → bytes
		f.set(true)
		for round := 0; round < 120; round++ {
			d := devices[r.IntN(len(devices))]
			switch op := r.IntN(10); {
			case op < 4: // attach a file offline to a new or existing note
				b := randomBytes(r.Uint64(), 1+r.IntN(300_000))
				ref, err := d.blobs.PutBlob(ctx, bytes.NewReader(b), "application/octet-stream")
				if err != nil {
					t.Fatal(err)
				}
				attached[ref.Hash()] = b
				uid := fmt.Sprintf("note-%d", r.IntN(6))
				if _, err := d.recs.Put(ctx, "data.Note", uid, map[string]any{"title": uid, "file": ref}); err != nil {
					t.Fatal(err)
				}
			case op < 5: // delete a note
				_ = d.recs.Delete(ctx, "data.Note", fmt.Sprintf("note-%d", r.IntN(6)))
			case op < 7:
				_, _ = d.recs.Sync(ctx)
			default:
				_ = d.blobs.UploadAll(ctx)
			}
		}
		f.set(false)
		if f.cut == 0 {
			t.Fatal("no upload was cut: the simulation tests nothing")
		}
		// Quiet: every device uploads what it captured and syncs, twice
		// over, so each has the others' last writes.
		for range 2 {
			for _, d := range devices {
				if err := d.blobs.UploadAll(ctx); err != nil {
					t.Fatalf("%s: upload: %v", d.user, err)
				}
				if _, err := d.recs.Sync(ctx); err != nil {
					t.Fatalf("%s: sync: %v", d.user, err)
				}
			}
		}
		refs := 0
		for i, d := range devices {
			if p, _ := d.blobs.Pending(); len(p) != 0 {
				t.Fatalf("device %d: %d uploads pending", i, len(p))
			}
			notes, err := d.recs.List(ctx, "data.Note")
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range notes {
				if n.IsDeleted {
					continue
				}
				var data struct{ File blobclient.Ref }
				if err := n.Decode(&data); err != nil {
					t.Fatal(err)
				}
				fh, err := d.blobs.Open(ctx, data.File)
				if err != nil {
					t.Fatalf("device %d (%s): %s refers to %s: %v", i, d.user, n.UID, data.File.Blob, err)
				}
				got, err := io.ReadAll(fh)
				fh.Close()
				if err != nil || !bytes.Equal(got, attached[data.File.Hash()]) {
					t.Fatalf("device %d: %s: the bytes differ (%v)", i, data.File.Blob, err)
				}
				refs++
			}
		}
		if refs == 0 {
			t.Fatal("no device holds a reference: the simulation tests nothing")
		}
		t.Logf("%d references fetched on %d devices, %d uploads cut", refs, len(devices), f.cut)
	})
}
