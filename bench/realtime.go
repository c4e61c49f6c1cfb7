package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"
)

// RealtimeResult is the realtime workload's line: what idle live streams
// cost the replica that holds them, and how long a hint takes from a
// push's answer on replica A to a stream on replica B.
type RealtimeResult struct {
	Workload string `json:"workload"`
	Bus      string `json:"bus"`
	// Streams idle streams on replica B; its RSS before and with them.
	Streams        int     `json:"idle_streams"`
	RSSBeforeMB    float64 `json:"server_rss_before_mb"`
	RSSWithMB      float64 `json:"server_rss_with_streams_mb"`
	KBPerStream    float64 `json:"kb_per_stream"`
	Hints          int     `json:"hints"`
	HintP50        float64 `json:"hint_p50_ms"`
	HintP99        float64 `json:"hint_p99_ms"`
	HintMax        float64 `json:"hint_max_ms"`
	StreamsPerUser int     `json:"streams_per_user"`
}

// realtime runs the workload on the bus the two server processes were
// started with (FERRY_REALTIME_BUS): b.d is replica A, and it starts
// replica B itself.
func (b *bencher) realtime(args []string, bus string) error {
	ctx := b.ctx
	cb, err := startChild(ctx, args)
	if err != nil {
		return fmt.Errorf("replica B: %w", err)
	}
	defer cb.stop()
	onB := newDriver(cb.addr, 8)
	perUser := 100 // the plugin's cap per user
	// The streams the replica holds: the idle ones and one that watches
	// the hints.
	idle := b.opt.streams - 1
	nUsers := (idle + perUser - 1) / perUser
	us, err := b.users(nUsers + 1) // the last one watches the hints
	if err != nil {
		return err
	}
	res := RealtimeResult{Workload: "realtime_" + bus, Bus: bus, Streams: idle, StreamsPerUser: min(perUser, idle)}
	time.Sleep(500 * time.Millisecond) // let B settle after its start
	if res.RSSBeforeMB, _, err = procMem(cb.pid()); err != nil {
		return err
	}

	// Idle streams on B: each connection its own, read by one goroutine
	// that only discards.
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	tr := &http.Transport{DialContext: (&net.Dialer{Timeout: 10 * time.Second}).DialContext, MaxConnsPerHost: 0, DisableCompression: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	var wg sync.WaitGroup
	var opened, failed atomic.Int64
	var firstErr atomic.Value
	sem := make(chan struct{}, 64) // connect a few at a time
	for i := range idle {
		u := us[i/perUser]
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := openStream(sctx, hc, onB.base, u.Token)
			if err == nil {
				// The first event arrived: the stream is open.
				opened.Add(1)
				<-sem
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				return
			}
			<-sem
			failed.Add(1)
			firstErr.CompareAndSwap(nil, err)
		}()
	}
	for opened.Load()+failed.Load() < int64(idle) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	if n := failed.Load(); n > 0 {
		return fmt.Errorf("%d of %d streams failed to open: %v", n, idle, firstErr.Load())
	}
	time.Sleep(time.Second)
	if res.RSSWithMB, _, err = procMem(cb.pid()); err != nil {
		return err
	}
	res.KBPerStream = (res.RSSWithMB - res.RSSBeforeMB) * 1024 / float64(max(idle, 1))

	// Hint latency: a push through A, a stream on B of another user than
	// the idle ones' first (so the idle streams of that user are not
	// woken too).
	watcher := us[len(us)-1]
	resp, err := openStream(ctx, hc, onB.base, watcher.Token)
	if err != nil {
		return fmt.Errorf("latency stream: %w", err)
	}
	defer resp.Body.Close()
	events := make(chan time.Time, 16)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if sc.Text() == "event: changes" {
				events <- time.Now()
			}
		}
		close(events)
	}()
	var lat []time.Duration
	var bufs buffers
	for i := range b.opt.hints {
		n := note{UID: fmt.Sprintf("rt%s-%d", b.runID, i), ModifyAt: time.Now().UTC(), Title: "hint", Body: "x"}
		if _, err := b.d.single(ctx, watcher, &n, &bufs); err != nil {
			return fmt.Errorf("push: %w", err)
		}
		answered := time.Now()
		select {
		case at, ok := <-events:
			if !ok {
				return errors.New("the latency stream ended")
			}
			lat = append(lat, max(0, at.Sub(answered)))
		case <-time.After(10 * time.Second):
			return fmt.Errorf("no hint on replica B within 10 s of push %d", i)
		case <-ctx.Done():
			return ctx.Err()
		}
		// Drain a late duplicate so each sample waits for its own hint.
		time.Sleep(2 * time.Millisecond)
		for len(events) > 0 {
			<-events
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	res.Hints = len(lat)
	res.HintP50, res.HintP99, res.HintMax = percentile(lat, 50), percentile(lat, 99), percentile(lat, 100)
	cancel()
	wg.Wait()
	line, _ := json.Marshal(res)
	fmt.Println(string(line))
	b.realtimeResults = append(b.realtimeResults, res)
	runtime.GC()
	return nil
}

// openStream opens a live stream and returns once its first event came.
func openStream(ctx context.Context, hc *http.Client, base, token string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/sync/stream", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("stream: %s", resp.Status)
	}
	// Read up to the end of the first event (retry line, blank, event).
	r := bufio.NewReaderSize(resp.Body, 512)
	for blank := 0; blank < 2; {
		line, err := r.ReadString('\n')
		if err != nil {
			resp.Body.Close()
			return nil, fmt.Errorf("stream: %w", err)
		}
		if line == "\n" {
			blank++
		}
	}
	resp.Body = struct {
		*bufio.Reader
		closer
	}{r, closer{resp.Body}}
	return resp, nil
}

type closer struct{ c interface{ Close() error } }

func (c closer) Close() error { return c.c.Close() }

// natsReachable says whether the NATS server of the example app's
// default answers.
func natsReachable() bool {
	addr := strings.TrimPrefix(os.Getenv("FERRY_NATS_URL"), "nats://")
	if addr == "" {
		addr = "127.0.0.1:4222"
	}
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func printRealtime(rs []RealtimeResult) {
	if len(rs) == 0 {
		return
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "workload\tidle streams\tRSS before MB\tRSS with MB\tKB/stream\thints\thint p50 ms\thint p99 ms\thint max ms\t")
	for _, r := range rs {
		fmt.Fprintf(w, "%s\t%d\t%.1f\t%.1f\t%.1f\t%d\t%.2f\t%.2f\t%.2f\t\n",
			r.Workload, r.Streams, r.RSSBeforeMB, r.RSSWithMB, r.KBPerStream, r.Hints, r.HintP50, r.HintP99, r.HintMax)
	}
	w.Flush()
}
