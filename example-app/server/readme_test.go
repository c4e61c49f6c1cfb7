package server_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/ferrysync/ferry/framework/synctest"
)

// TestReadmeCurl runs the README's curl walk-through against a real server
// on SQLite, so the README cannot drift from what the server does.
func TestReadmeCurl(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed")
	}
	e := newEnv(t, synctest.OpenSQLite(t))
	s := runReadmeBlock(t, "curl-demo", e.url)
	for _, want := range []string{
		`{"status":"applied","record":{"model":"data.Note","uid":"note-1"`,
		`"op_id":"1","model":"data.Note","uid":"note-1","status":"stale"`,
		`"op_id":"2","model":"data.Setting","uid":"theme","status":"applied"`,
		`"model":"data.User"`,
		`"has_more":false`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("README output lacks %s:\n%s", want, s)
		}
	}
	if n := strings.Count(s, `"model":"data.Note","uid":"note-1","owner"`); n < 3 {
		t.Errorf("expected the note in the applied, stale and pull answers, saw it %d times:\n%s", n, s)
	}
}

// TestReadmeCurlBlobs runs the README's curl walk-through of blobs: a
// record before its blob, a tus upload in two halves, a range back.
func TestReadmeCurlBlobs(t *testing.T) {
	for _, tool := range []string{"curl", "sha256sum", "base64", "cmp"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	e := newEnv(t, synctest.OpenSQLite(t))
	s := runReadmeBlock(t, "curl-blobs", e.url)
	for _, want := range []string{`"status":"applied"`, `"missing_blobs":["sha256:`, "Ferry-Blob: sha256:", "same bytes"} {
		if !strings.Contains(s, want) {
			t.Errorf("README output lacks %s:\n%s", want, s)
		}
	}
}

// runReadmeBlock runs the README's sh block after <!-- name --> with bash
// in a temporary folder, FERRY set to url, and returns its output.
func runReadmeBlock(t *testing.T, name, url string) string {
	t.Helper()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(readme), "<!-- "+name+" -->\n```sh\n")
	script, _, ok2 := strings.Cut(after, "```")
	if !ok || !ok2 {
		t.Fatalf("README lacks the %s block", name)
	}
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "FERRY="+url)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("README script %s failed: %v\n%s", name, err, out)
	}
	return string(out)
}

// TestReadmeCurlSpaces runs the README's sharing walk-through: both users
// see the shared list, and the removed one is told to drop it.
func TestReadmeCurlSpaces(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed")
	}
	e := newEnv(t, synctest.OpenSQLite(t))
	s := runReadmeBlock(t, "curl-spaces", e.url)
	if n := strings.Count(s, `"status":"applied"`); n != 6 {
		t.Errorf("%d changes applied, want 6 (four in the push, Kim's edit, the removal):\n%s", n, s)
	}
	for _, want := range []string{
		`"model":"ferry.Member","uid":"`,             // the creator's and Kim's memberships
		`"model":"data.Task","uid":"milk","space":"`, // the task reached Kim, then Lee
		`"done":true`,                   // Kim's edit reached Lee
		`"has_more":false,"removed":["`, // Kim is told to drop the space
		`{"changes":[{"model":"data.Task","uid":"milk","space":"`, // the subscription pull: the list's task alone
	} {
		if !strings.Contains(s, want) {
			t.Errorf("README output lacks %s:\n%s", want, s)
		}
	}
	last := s[strings.LastIndex(s, `{"changes":`):]
	if !strings.HasPrefix(last, `{"changes":[]`) {
		t.Errorf("after the removal Kim's pull brought records: %s", last)
	}
}
