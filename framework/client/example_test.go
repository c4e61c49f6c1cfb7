package client_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/ferrysync/ferry/example-app/server"
	"github.com/ferrysync/ferry/framework/client"
	"github.com/ferrysync/ferry/models"
)

// Two devices of one user: the laptop writes a note offline and syncs; the
// phone syncs and has it.
func Example() {
	ctx := context.Background()

	// The example app on SQLite in a temporary directory, over real HTTP.
	baseURL, acc, stop := exampleServer()
	defer stop()

	newDevice := func() *client.Client {
		c, err := client.New(client.Config{
			BaseURL:  baseURL,
			Token:    acc.Token,
			Owner:    acc.ID,
			Store:    client.NewMemoryStore(),
			DeviceID: client.NewUID(),
			OnRejected: func(_ context.Context, r client.Rejection) {
				fmt.Println("rejected:", r.Change.UID, r.Errors[0].Path)
			},
		})
		if err != nil {
			panic(err)
		}
		return c
	}
	laptop, phone := newDevice(), newDevice()

	// Offline on the laptop: a note edited twice, and an invalid one.
	type Note struct {
		Title string `json:"title"`
	}
	for _, title := range []string{"Buy milk", "Buy oat milk"} {
		if _, err := laptop.Put(ctx, "data.Note", "shopping", Note{title}); err != nil {
			panic(err)
		}
	}
	if _, err := laptop.Put(ctx, "data.Note", "untitled", Note{""}); err != nil {
		panic(err)
	}
	res, err := laptop.Sync(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Printf("laptop pushed %d, applied %d, rejected %d\n", res.Pushed, res.Applied, res.Rejected)

	if _, err := phone.Sync(ctx); err != nil {
		panic(err)
	}
	rec, err := phone.Get(ctx, "data.Note", "shopping")
	if err != nil {
		panic(err)
	}
	var n Note
	if err := rec.Decode(&n); err != nil {
		panic(err)
	}
	fmt.Printf("phone has %q (synced: %v)\n", n.Title, rec.Synced)

	// Output:
	// rejected: untitled /data/title
	// laptop pushed 2, applied 1, rejected 1
	// phone has "Buy oat milk" (synced: true)
}

// exampleServer starts the example app on SQLite in a temporary
// directory, over real HTTP, and signs a user up.
func exampleServer() (baseURL string, acc account, stop func()) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "ferry-client-example")
	if err != nil {
		panic(err)
	}
	db, err := models.OpenSQLite(ctx, filepath.Join(dir, "ferry.db"))
	if err != nil {
		panic(err)
	}
	srv, err := server.New(ctx, server.Config{
		DataDir:   dir,
		JWTSecret: "5f2b8e0c9d1a47e3b6c4f8a2d0e9b7c15a3e6d8f2c4b1a09e7d5c3b2a1f0e9d8", // openssl rand -hex 32,
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, db)
	if err != nil {
		panic(err)
	}
	hs := httptest.NewServer(srv.Handler())
	acc, err = register(hs.URL, "Ada")
	if err != nil {
		panic(err)
	}
	return hs.URL, acc, func() {
		srv.Close() // ends the live streams first
		hs.Close()
		os.RemoveAll(dir)
	}
}

// Run syncs in the background; with the server's live stream, a note
// written on the laptop reaches the phone within moments, without the
// phone polling.
func ExampleClient_Run() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	baseURL, acc, stop := exampleServer()
	defer stop()
	newDevice := func() *client.Client {
		c, err := client.New(client.Config{BaseURL: baseURL, Token: acc.Token, Owner: acc.ID})
		if err != nil {
			panic(err)
		}
		return c
	}
	laptop, phone := newDevice(), newDevice()

	up := make(chan struct{}, 1)
	synced := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		done <- phone.Run(ctx, client.RunOptions{
			Interval: -1, // no polling: only hints (and local changes) make syncs
			OnSync: func(_ client.SyncResult, err error) {
				if err != nil {
					log.Print(err) // the loop retries with backoff
				}
				select {
				case synced <- struct{}{}:
				default:
				}
			},
			Stream: client.StreamOptions{OnState: func(s client.StreamState, err error) {
				if s == client.StreamUp {
					select {
					case up <- struct{}{}:
					default:
					}
				}
			}},
		})
	}()
	<-up
	fmt.Println("phone: the live stream is up")

	type Note struct {
		Title string `json:"title"`
	}
	if _, err := laptop.Put(ctx, "data.Note", "shopping", Note{"Buy milk"}); err != nil {
		panic(err)
	}
	if _, err := laptop.Sync(ctx); err != nil {
		panic(err)
	}
	// The server hints the phone, which syncs.
	for {
		<-synced
		if rec, err := phone.Get(ctx, "data.Note", "shopping"); err == nil {
			var n Note
			if err := rec.Decode(&n); err != nil {
				panic(err)
			}
			fmt.Printf("phone has %q\n", n.Title)
			break
		}
	}
	cancel()
	fmt.Println("Run returned:", <-done)

	// Output:
	// phone: the live stream is up
	// phone has "Buy milk"
	// Run returned: context canceled
}
