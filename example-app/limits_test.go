package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/ferrysync/ferry/example-app/server/servertest"
)

// TestHostileBodiesKeepMemoryBounded sends the example app binary four
// 8 MB bodies at once, built to make the most memory a parse could build
// (one array of four million numbers; many arrays just under the element
// cap until the values cap; objects nested past the depth cap), and
// checks that each is refused with too_large in the error shape, that the
// server's peak RSS stays under 250 MB, and that the server still serves.
// Before the parse limits, one such body took the server from 29 MB to
// 480 MB and four reached 1.5 GB.
func TestHostileBodiesKeepMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	bin := buildApp(t)
	dir := t.TempDir()
	addr := crashFreeAddr(t)
	app := startApp(t, bin, addr, []string{"FERRY_DATA_DIR=" + filepath.Join(dir, "data"), "DATABASE_URL="})
	base := "http://" + addr
	acc := servertest.SignUpAt(t, base, "hostile")

	const size = 8 << 20
	oneArray := func() []byte {
		var b bytes.Buffer
		b.WriteString(`{"model":"data.Note","uid":"n1","modify_at":"2026-11-25T10:00:00Z","data":{"title":"x","list":[`)
		for b.Len() < size-4 {
			b.WriteString("1,")
		}
		b.WriteString("1]}}")
		return b.Bytes()
	}
	manyArrays := func() []byte {
		var b bytes.Buffer
		b.WriteString(`{"device_id":"d","changes":[`)
		for i := 0; b.Len() < size-60000; i++ {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"model":"data.Setting","uid":"s%d","modify_at":1764064800,"data":{"key":"k","value":[`, i)
			for j := 0; j < 9999; j++ {
				b.WriteString("1,")
			}
			b.WriteString("1]}}")
		}
		b.WriteString("]}")
		return b.Bytes()
	}
	deep := func() []byte {
		var b bytes.Buffer
		b.WriteString(`{"model":"data.Note","uid":"n1","modify_at":"2026-11-25T10:00:00Z","data":{"title":"x","deep":`)
		n := (size - 200) / 2
		b.WriteString(strings.Repeat("[", n))
		b.WriteString(strings.Repeat("]", n))
		b.WriteString("}}")
		return b.Bytes()
	}
	bodies := []struct {
		path string
		body []byte
	}{{"/sync/", oneArray()}, {"/sync/push", manyArrays()}, {"/sync/push", manyArrays()}, {"/sync/", deep()}}

	sampler := newPeakRSS(t, app.cmd.Process.Pid)
	var wg sync.WaitGroup
	for _, b := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", base+b.path, bytes.NewReader(b.body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+acc.Token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Errorf("POST %s: %v", b.path, err)
				return
			}
			defer resp.Body.Close()
			var shape struct {
				Error struct {
					Code    string `json:"code"`
					Message string `json:"message"`
					Details []struct {
						Path string `json:"path"`
					} `json:"details"`
				} `json:"error"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&shape); err != nil || resp.StatusCode != 413 || shape.Error.Code != "too_large" || len(shape.Error.Details) != 1 {
				t.Errorf("POST %s (%d bytes): status %d, answer %+v (%v); want 413 too_large with the place", b.path, len(b.body), resp.StatusCode, shape, err)
				return
			}
			t.Logf("POST %s: %s", b.path, shape.Error.Message)
		}()
	}
	wg.Wait()
	peak := sampler.stop()
	t.Logf("server peak RSS while refusing four 8 MB hostile bodies: %.0f MB", peak)
	if peak > 250 {
		t.Errorf("server peak RSS %.0f MB, want under 250 MB", peak)
	}
	// Still serving.
	req, _ := http.NewRequest("POST", base+"/sync/", strings.NewReader(`{"model":"data.Note","uid":"ok","modify_at":"2026-11-25T10:00:00Z","data":{"title":"fine"}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+acc.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("after the hostile bodies: %v %v", resp, err)
	}
	resp.Body.Close()
}

// peakRSS tracks a process's peak resident memory: it resets the kernel's
// high-water mark (5 to /proc/pid/clear_refs) and reads VmHWM at the end.
type peakRSS struct {
	t   *testing.T
	pid int
}

func newPeakRSS(t *testing.T, pid int) *peakRSS {
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		t.Skipf("cannot reset the peak RSS of the server (%v); this test needs Linux's /proc", err)
	}
	return &peakRSS{t: t, pid: pid}
}

func (p *peakRSS) stop() float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.pid))
	if err != nil {
		p.t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	p.t.Fatal("no VmHWM in /proc status")
	return 0
}
