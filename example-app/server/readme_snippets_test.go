package server_test

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeSnippets checks that the README's client snippets are exactly
// the files the end-to-end tests run.
func TestReadmeSnippets(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)<!-- file: ([^ ]+) -->\n```[a-z]*\n(.*?)```\n").FindAllStringSubmatch(string(readme), -1)
	want := map[string]bool{"example-app/e2e/watermelon-sync.js": false, "example-app/e2e/rxdb-sync.js": false, "example-app/e2e/watermelon-live.js": false}
	for _, b := range blocks {
		path, text := b[1], b[2]
		file, err := os.ReadFile("../../" + path)
		if err != nil {
			t.Errorf("README shows %s: %v", path, err)
			continue
		}
		if text != string(file) {
			t.Errorf("README's copy of %s differs from the file; paste the file again", path)
		}
		want[path] = true
	}
	for path, found := range want {
		if !found {
			t.Errorf("README lacks the snippet <!-- file: %s -->", path)
		}
	}
	if !strings.Contains(string(readme), "FERRY_E2E=1 go test -count=1 -run '^TestE2E$' ./example-app/") {
		t.Error("README lacks the end-to-end test command")
	}
}
