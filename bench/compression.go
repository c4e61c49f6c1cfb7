package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ferrysync/ferry/models"
	"github.com/uptrace/bun"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// CompressionResult is one Accept-Encoding's initial pull of the whole
// store: the bytes the answers took on the wire and decoded, and the
// median time of a full pull (requests, transfer on loopback, and the
// driver's decompression, as a device would do it), each against the
// uncompressed pull of the same run.
type CompressionResult struct {
	Workload   string  `json:"workload"`
	Store      string  `json:"store"`
	Encoding   string  `json:"encoding"`
	Records    int     `json:"records"`
	WireBytes  int64   `json:"wire_bytes"`
	JSONBytes  int64   `json:"json_bytes"`
	WireRatio  float64 `json:"wire_ratio"`
	MedianMS   float64 `json:"median_ms"`
	TimeRatio  float64 `json:"time_ratio"`
	At10MbitMS float64 `json:"at_10mbit_ms"`
	Reps       int     `json:"reps"`
}

// compressionPull pulls the whole store once per repetition with each
// Accept-Encoding (none, gzip, zstd), in turns so that the machine's
// load falls on all alike.
func (b *bencher) compressionPull(ps *pullStore) error {
	encodings := []string{"identity", "gzip", "zstd"}
	wire := map[string]int64{}
	plain := map[string]int64{}
	times := map[string][]float64{}
	zr, err := zstd.NewReader(nil)
	if err != nil {
		return err
	}
	defer zr.Close()
	var answer, decoded []byte
	for range max(b.opt.reps, 1) {
		for _, enc := range encodings {
			hdr := http.Header{"Accept-Encoding": {enc}}
			start := time.Now()
			var w, p int64
			cursor, got := "", 0
			for {
				q := url.Values{"limit": {strconv.Itoa(b.opt.pullLimit)}}
				if cursor != "" {
					q.Set("cursor", cursor)
				}
				var h http.Header
				answer, h, err = b.d.doRawWith(b.ctx, http.MethodGet, "/sync/pull?"+q.Encode(), ps.u.Token, hdr, nil, answer)
				if err != nil {
					return err
				}
				if got := h.Get("Content-Encoding"); got != "" && got != enc {
					return fmt.Errorf("asked for %s, the answer is %s", enc, got)
				}
				decoded, err = decode(zr, h.Get("Content-Encoding"), answer, decoded)
				if err != nil {
					return err
				}
				w += int64(len(answer))
				p += int64(len(decoded))
				page, err := scanPage(decoded)
				if err != nil {
					return err
				}
				got += page.Changes
				cursor = page.Cursor
				if !page.HasMore {
					break
				}
			}
			if got != ps.size+1 {
				return fmt.Errorf("a full %s pull gave %d records, want %d", enc, got, ps.size+1)
			}
			times[enc] = append(times[enc], float64(time.Since(start).Microseconds())/1000)
			wire[enc], plain[enc] = w, p
		}
	}
	var rows []CompressionResult
	for _, enc := range encodings {
		r := CompressionResult{Workload: "pull_initial_" + size(ps.size) + "_compressed", Store: b.store, Encoding: enc,
			Records: ps.size + 1, WireBytes: wire[enc], JSONBytes: plain[enc], MedianMS: median(times[enc]), Reps: len(times[enc])}
		// A phone link: the same pull if the wire carried 10 Mbit/s.
		r.At10MbitMS = r.MedianMS + float64(r.WireBytes)*8/10e6*1000
		rows = append(rows, r)
	}
	for i := range rows {
		rows[i].WireRatio = float64(rows[i].WireBytes) / float64(rows[0].WireBytes)
		rows[i].TimeRatio = rows[i].MedianMS / rows[0].MedianMS
		line, _ := json.Marshal(rows[i])
		fmt.Println(string(line))
	}
	b.compressionResults = append(b.compressionResults, rows...)
	return nil
}

// words make the varied notes of the compression workload.
var words = strings.Fields(`milk bread eggs call mum dentist tuesday meeting notes project deadline
	draft review budget invoice flight hotel passport garden water plants book library return
	parcel post office birthday cake gift ideas recipe tomatoes basil garlic olive oil pasta
	train ticket platform seven thirty monday friday weekend hike lake rain jacket charger
	laptop repair warranty receipt plumber kitchen sink quote paint blue green window frame
	school pickup homework maths piano lesson swimming kit towel vet appointment cat food`)

// varyNotes gives each note of a seeded store a title and body of its own
// (a few random words, and 8 to 40 for the body), so that the compression
// workload compresses text like people's notes rather than one body
// repeated: repeated bodies make every encoding look far better than it
// is.
func varyNotes(ctx context.Context, db *bun.DB, prefix string, n int) error {
	const chunk = 500
	rng := rand.New(rand.NewPCG(uint64(n), 16))
	phrase := func(lo, hi int) string {
		k := lo + rng.IntN(hi-lo+1)
		ws := make([]string, k)
		for i := range ws {
			ws[i] = words[rng.IntN(len(words))]
		}
		return strings.Join(ws, " ")
	}
	for start := 1; start <= n; start += chunk {
		end := min(start+chunk-1, n)
		var q strings.Builder
		args := make([]any, 0, 4*(end-start+1)+end-start+1)
		q.WriteString("UPDATE notes SET title = CASE uid")
		for g := start; g <= end; g++ {
			q.WriteString(" WHEN ? THEN ?")
			args = append(args, prefix+strconv.Itoa(g), phrase(2, 5))
		}
		q.WriteString(" END, body = CASE uid")
		for g := start; g <= end; g++ {
			q.WriteString(" WHEN ? THEN ?")
			args = append(args, prefix+strconv.Itoa(g), phrase(8, 40))
		}
		q.WriteString(" END WHERE uid IN (?" + strings.Repeat(", ?", end-start) + ")")
		for g := start; g <= end; g++ {
			args = append(args, prefix+strconv.Itoa(g))
		}
		if _, err := db.ExecContext(ctx, q.String(), args...); err != nil {
			return fmt.Errorf("vary notes: %w", err)
		}
	}
	// The updates left a dead copy of every row: clean up as autovacuum
	// would, so the pulls read what a store of such notes holds.
	if models.IsPostgres(db) {
		if _, err := db.ExecContext(ctx, `VACUUM ANALYZE notes`); err != nil {
			return fmt.Errorf("vacuum notes: %w", err)
		}
		return nil
	}
	return analyze(ctx, db)
}

// decode appends the decoded answer to dst[:0].
func decode(zr *zstd.Decoder, enc string, src, dst []byte) ([]byte, error) {
	switch enc {
	case "":
		return append(dst[:0], src...), nil
	case "zstd":
		return zr.DecodeAll(src, dst[:0])
	case "gzip":
		gr, err := gzip.NewReader(bytes.NewReader(src))
		if err != nil {
			return dst, err
		}
		buf := bytes.NewBuffer(dst[:0])
		_, err = io.Copy(buf, gr)
		return buf.Bytes(), err
	}
	return dst, fmt.Errorf("unknown Content-Encoding %q", enc)
}

func printCompression(rs []CompressionResult) {
	if len(rs) == 0 {
		return
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "initial pull\tencoding\twire MB\tJSON MB\twire ratio\tmedian ms\ttime ratio\tat 10 Mbit/s ms\t")
	for _, r := range rs {
		fmt.Fprintf(w, "%s\t%s\t%.2f\t%.2f\t%.3f\t%.0f\t%.2f\t%.0f\t\n", r.Workload, r.Encoding,
			float64(r.WireBytes)/1e6, float64(r.JSONBytes)/1e6, r.WireRatio, r.MedianMS, r.TimeRatio, r.At10MbitMS)
	}
	w.Flush()
}
