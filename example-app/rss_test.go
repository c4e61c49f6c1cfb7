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
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin := os.Getenv("FERRY_RSS_BIN")
	if bin == "" {
		bin = filepath.Join(t.TempDir(), "example-app")
		if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
			t.Fatalf("build: %v\n%s", err, out)
		}
	}
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
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	url := "http://" + addr
	for {
		if resp, err := http.Get(url + "/healthz"); err == nil {
			resp.Body.Close()
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("never healthy:\n%s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	u := servertest.SignUpAt(t, url, "rss")
	base := rss(t, srv.Process.Pid, "VmRSS")

	// 40 streams that read their first event and then nothing, with a small
	// receive window, as a hostile client would hold them.
	dialer := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		if err != nil {
			return err
		}
		return serr
	}}
	for i := range 40 {
		conn, err := dialer.DialContext(ctx, "tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "GET /sync/rxdb/tasks/pull/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", u.Token)
		br := bufio.NewReader(conn)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("stream %d: %v", i, err)
			}
			if strings.Contains(line, "RESYNC") {
				break
			}
		}
	}
	// One push of 90 documents of 100 KB (the schema's longest body): 9 MB.
	rows := make([]map[string]any, 90)
	for i := range rows {
		rows[i] = map[string]any{"newDocumentState": map[string]any{
			"id": fmt.Sprintf("big%d", i), "title": "t", "body": strings.Repeat("x", 100_000), "_deleted": false,
		}}
	}
	body, _ := json.Marshal(rows)
	req, _ := http.NewRequestWithContext(ctx, "POST", url+"/sync/rxdb/tasks/push", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+u.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("push: %d", resp.StatusCode)
	}
	peak := base
	for range 100 { // 10 s
		peak = max(peak, rss(t, srv.Process.Pid, "VmRSS"))
		time.Sleep(100 * time.Millisecond)
	}
	hwm := rss(t, srv.Process.Pid, "VmHWM")
	start := time.Now()
	hr, err := http.Get(url + "/healthz")
	if err != nil {
		t.Fatalf("healthz after the push: %v", err)
	}
	hr.Body.Close()
	t.Logf("push body %d bytes; RSS before streams %d MiB, peak sampled RSS %d MiB, VmHWM %d MiB, RSS now %d MiB; /healthz answered %d in %s",
		len(body), base>>10, peak>>10, hwm>>10, rss(t, srv.Process.Pid, "VmRSS")>>10, hr.StatusCode, time.Since(start))
}

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
