package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferrysync/ferry/example-app/server/servertest"
)

// TestMeasureStreamRSS measures, and only reports, the example app's peak
// resident memory in issue 10's scenario: 40 RxDB event streams of one
// user that never read, then one 9 MB push to that user's collection. It
// is a measurement, not an assertion (memory depends on the machine), so
// it runs only with FERRY_MEASURE_RSS=1; FERRY_RSS_BIN names another build
// of the example app to measure (for a before/after comparison):
//
//	FERRY_MEASURE_RSS=1 go test -count=1 -v -run '^TestMeasureStreamRSS$' ./example-app/
func TestMeasureStreamRSS(t *testing.T) {
	if os.Getenv("FERRY_MEASURE_RSS") != "1" {
		t.Skip("set FERRY_MEASURE_RSS=1 to measure the server's peak RSS with 40 non-reading streams and a 9 MB push")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin := os.Getenv("FERRY_RSS_BIN")
	if bin == "" {
		bin = filepath.Join(t.TempDir(), "example-app")
		if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
			t.Fatalf("build: %v\n%s", err, out)
		}
	}
	t.Run("issue 10: 40 non-reading streams, one 9 MB push", func(t *testing.T) {
		m := startMeasured(ctx, t, bin)
		u := servertest.SignUpAt(t, m.url, "rss")
		base := m.rss("VmRSS")
		for range 40 {
			m.stuckStream(ctx, u.Token)
		}
		// 90 documents of 100 KB (the schema's longest body): 9 MB.
		body := m.push(ctx, u.Token, 90, 100_000)
		peak := m.watch(10 * time.Second)
		t.Logf("push body %d bytes; RSS before the streams %d MiB, peak sampled RSS %d MiB, VmHWM %d MiB; /healthz %s",
			body, base>>10, peak>>10, m.rss("VmHWM")>>10, m.health())
	})
	t.Run("one 9 MB push, no streams", func(t *testing.T) {
		m := startMeasured(ctx, t, bin)
		u := servertest.SignUpAt(t, m.url, "rss")
		base := m.rss("VmRSS")
		m.push(ctx, u.Token, 90, 100_000)
		peak := m.watch(3 * time.Second)
		t.Logf("RSS before %d MiB, peak sampled RSS %d MiB, VmHWM %d MiB", base>>10, peak>>10, m.rss("VmHWM")>>10)
	})
	t.Run("2000 connections sending a body slowly", func(t *testing.T) {
		m := startMeasured(ctx, t, bin)
		u := servertest.SignUpAt(t, m.url, "slow")
		base := m.rss("VmRSS")
		for range 2000 {
			conn, err := net.Dial("tcp", m.addr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { conn.Close() })
			fmt.Fprintf(conn, "POST /sync/push HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{", u.Token)
		}
		time.Sleep(time.Second)
		now := m.rss("VmRSS")
		t.Logf("RSS %d MiB before, %d MiB with 2000 slow bodies: %d KiB per connection; /healthz %s",
			base>>10, now>>10, (now-base)/2000, m.health())
	})
	t.Run("1000 idle streams of 10 users", func(t *testing.T) {
		m := startMeasured(ctx, t, bin)
		var tokens []string
		for i := range 10 {
			tokens = append(tokens, servertest.SignUpAt(t, m.url, fmt.Sprintf("idle%d", i)).Token)
		}
		base := m.rss("VmRSS")
		for i := range 1000 {
			m.stuckStream(ctx, tokens[i%10])
		}
		time.Sleep(time.Second)
		now := m.rss("VmRSS")
		t.Logf("RSS %d MiB before, %d MiB with 1000 streams: %d KiB per stream", base>>10, now>>10, (now-base)/1000)
	})
	t.Run("100 non-reading streams, repeated pushes just under the event caps", func(t *testing.T) {
		m := startMeasured(ctx, t, bin)
		u := servertest.SignUpAt(t, m.url, "caps")
		base := m.rss("VmRSS")
		for range 100 {
			m.stuckStream(ctx, u.Token)
		}
		// 100 documents of 1,200 bytes: about 127 KiB of events each time,
		// 40 times: more than the sockets' buffers hold.
		for range 40 {
			m.push(ctx, u.Token, 100, 1200)
		}
		peak := m.watch(5 * time.Second)
		t.Logf("RSS before the streams %d MiB, peak sampled RSS %d MiB, VmHWM %d MiB; /healthz %s",
			base>>10, peak>>10, m.rss("VmHWM")>>10, m.health())
	})
}

// measured is a running example app whose memory is measured.
type measured struct {
	t    *testing.T
	pid  int
	addr string
	url  string
}

func startMeasured(ctx context.Context, t *testing.T, bin string) *measured {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	var logs bytes.Buffer
	srv := exec.Command(bin)
	srv.Env = append(os.Environ(), "FERRY_ADDR="+addr, "FERRY_DATA_DIR="+filepath.Join(t.TempDir(), "data"), "DATABASE_URL=")
	srv.Stdout, srv.Stderr = &logs, &logs
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	m := &measured{t: t, pid: srv.Process.Pid, addr: addr, url: "http://" + addr}
	for {
		if resp, err := http.Get(m.url + "/healthz"); err == nil {
			resp.Body.Close()
			return m
		}
		if ctx.Err() != nil {
			t.Fatalf("never healthy:\n%s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stuckStream opens a stream with a small receive window, reads its first
// event and then nothing, as a hostile client would hold it.
func (m *measured) stuckStream(ctx context.Context, token string) {
	t := m.t
	t.Helper()
	dialer := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		if err != nil {
			return err
		}
		return serr
	}}
	conn, err := dialer.DialContext(ctx, "tcp", m.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "GET /sync/rxdb/tasks/pull/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", token)
	br := bufio.NewReader(conn)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("stream: %v", err)
		}
		if strings.Contains(line, "RESYNC") {
			return
		}
	}
}

// push pushes n RxDB documents with bodies of size bytes; it returns the
// body's size.
func (m *measured) push(ctx context.Context, token string, n, size int) int {
	t := m.t
	t.Helper()
	rows := make([]map[string]any, n)
	for i := range rows {
		rows[i] = map[string]any{"newDocumentState": map[string]any{
			"id": fmt.Sprintf("doc%d", i), "title": "t", "body": strings.Repeat("x", size), "_deleted": false,
		}}
	}
	body, _ := json.Marshal(rows)
	req, _ := http.NewRequestWithContext(ctx, "POST", m.url+"/sync/rxdb/tasks/push", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("push: %d", resp.StatusCode)
	}
	return len(body)
}

// watch samples RSS for d and returns the largest.
func (m *measured) watch(d time.Duration) int64 {
	var peak int64
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		peak = max(peak, m.rss("VmRSS"))
	}
	return peak
}

func (m *measured) health() string {
	start := time.Now()
	resp, err := http.Get(m.url + "/healthz")
	if err != nil {
		return err.Error()
	}
	resp.Body.Close()
	return fmt.Sprintf("%d in %s", resp.StatusCode, time.Since(start).Round(time.Microsecond))
}

func (m *measured) rss(field string) int64 { return rss(m.t, m.pid, field) }

// rss reads a kB field of /proc/<pid>/status.
func rss(t *testing.T, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}
