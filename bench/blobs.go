package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/ferrysync/ferry/internal/faultio"
	"github.com/ferrysync/ferry/plugins/blobs/blobclient"
)

// BlobResult is the blob workload's line: upload and download of one
// file over loopback against a plain io.Copy of it to disk in the same
// run, the server's peak RSS while it takes the upload (it streams: the
// figure must not grow with the file), and what a connection cut at 50%
// costs again. The server syncs a blob to disk (file and directory)
// before it answers the upload as complete, so the baseline the ratio
// is of does the same (CopySyncMBs, UploadRatio); CopyMBs and
// UploadRatioNoSync are against a plain copy that leaves the bytes in
// the page cache.
type BlobResult struct {
	Workload      string  `json:"workload"`
	Store         string  `json:"store"`
	SizeMB        float64 `json:"size_mb"`
	DiskCopyMBs   float64 `json:"file_copy_mb_s"`
	CopyMBs       float64 `json:"baseline_upload_mb_s"`
	CopySyncMBs   float64 `json:"baseline_upload_fsync_mb_s"`
	UploadMBs     float64 `json:"upload_mb_s"`
	UploadRatio   float64 `json:"upload_ratio"`
	UploadNoSync  float64 `json:"upload_ratio_nosync"`
	BaseDownMBs   float64 `json:"baseline_download_mb_s"`
	DownloadMBs   float64 `json:"download_mb_s"`
	DownloadRatio float64 `json:"download_ratio"`
	RSSBeforeMB   float64 `json:"server_rss_before_mb"`
	RSSUploadMB   float64 `json:"server_rss_upload_peak_mb"`
	ChunkMB       float64 `json:"chunk_mb"`
	ResentMB      float64 `json:"resent_after_cut_mb"`
	ResentChunks  float64 `json:"resent_after_cut_chunks"`
	Reps          int     `json:"reps"`
}

// blobs runs the blob workload with a file of sizeMB.
func (b *bencher) blobs(sizeMB, chunkMB int) error {
	us, err := b.users(1)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "ferry-bench-blobs-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	size := int64(sizeMB) << 20
	src := filepath.Join(tmp, "src")
	data := make([]byte, size)
	if _, err := io.ReadFull(newPRNG(1), data); err != nil {
		return err
	}
	if err := os.WriteFile(src, data, 0o644); err != nil {
		return err
	}
	data = nil
	tr := &countingTransport{base: b.d.hc.Transport}
	hc := &http.Client{Transport: tr}
	c := &blobclient.Client{ChunkSize: int64(chunkMB) << 20, URL: b.d.base + "/sync", HTTP: hc, Authorize: func(r *http.Request) {
		r.Header.Set("Authorization", "Bearer "+us[0].Token)
	}}
	res := BlobResult{Workload: fmt.Sprintf("blobs_%dmb", sizeMB), Store: b.store, SizeMB: float64(sizeMB),
		ChunkMB: float64(c.ChunkSize) / (1 << 20), Reps: b.opt.reps}
	res.RSSBeforeMB, _, _ = procMem(b.pid)
	base, err := startPlainServer(tmp)
	if err != nil {
		return err
	}
	defer base.Close()
	var disks, copies, syncCopies, ups, baseDowns, downs []float64
	for rep := range b.opt.reps {
		// For reference: the bytes copied file to file (the kernel may
		// do it without userspace).
		t0 := time.Now()
		if err := copyFile(src, filepath.Join(tmp, "copy")); err != nil {
			return err
		}
		disks = append(disks, mbs(size, time.Since(t0)))
		os.Remove(filepath.Join(tmp, "copy"))
		// The baseline: the same bytes sent over loopback to a plain
		// net/http handler that io.Copies the body to disk, and read back
		// by one that io.Copies the file to the answer.
		t0 = time.Now()
		if err := plainUpload(b, hc, base.URL+"/up", src, size); err != nil {
			return err
		}
		copies = append(copies, mbs(size, time.Since(t0)))
		os.Remove(filepath.Join(tmp, "plain"))
		// And durably, as the server stores a blob: synced before the
		// answer.
		t0 = time.Now()
		if err := plainUpload(b, hc, base.URL+"/up?sync=1", src, size); err != nil {
			return err
		}
		syncCopies = append(syncCopies, mbs(size, time.Since(t0)))
		t0 = time.Now()
		if err := plainDownload(b, hc, base.URL+"/down", filepath.Join(tmp, "down")); err != nil {
			return err
		}
		baseDowns = append(baseDowns, mbs(size, time.Since(t0)))
		os.Remove(filepath.Join(tmp, "down"))
		os.Remove(filepath.Join(tmp, "plain"))

		// Each repetition uploads other bytes (else it is deduplicated):
		// its number in the first 8 bytes.
		f, err := os.OpenFile(src, os.O_RDWR, 0)
		if err != nil {
			return err
		}
		var stamp [8]byte
		binary.BigEndian.PutUint64(stamp[:], uint64(rep)+1)
		if _, err := f.WriteAt(stamp[:], 0); err != nil {
			f.Close()
			return err
		}
		hash, _, err := blobclient.Sum(f)
		if err != nil {
			f.Close()
			return err
		}
		u := &blobclient.Upload{Hash: hash, Size: size, Type: "video/mp4"}
		rss := startRSS(b.pid)
		t0 = time.Now()
		err = c.Send(b.ctx, u, f, nil)
		elapsed := time.Since(t0)
		res.RSSUploadMB = max(res.RSSUploadMB, rss.peak())
		f.Close()
		if err != nil {
			return fmt.Errorf("upload: %w", err)
		}
		ups = append(ups, mbs(size, elapsed))

		// Download into a file, as a device keeps it.
		t0 = time.Now()
		if err := download(b, hc, c, hash, us[0].Token, filepath.Join(tmp, "down")); err != nil {
			return err
		}
		downs = append(downs, mbs(size, time.Since(t0)))
		os.Remove(filepath.Join(tmp, "down"))
	}
	res.DiskCopyMBs, res.CopyMBs, res.BaseDownMBs = round(median(disks), 1), round(median(copies), 1), round(median(baseDowns), 1)
	res.UploadMBs, res.DownloadMBs = round(median(ups), 1), round(median(downs), 1)
	res.CopySyncMBs = round(median(syncCopies), 1)
	res.UploadRatio = round(median(ups)/median(syncCopies), 3)
	res.UploadNoSync = round(median(ups)/median(copies), 3)
	res.DownloadRatio = round(median(downs)/median(baseDowns), 3)

	// Cut at 50%, then resume: what crossed the wire twice.
	f, err := os.OpenFile(src, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte("cut-at-half"), 0); err != nil {
		return err
	}
	hash, _, err := blobclient.Sum(f)
	if err != nil {
		return err
	}
	u := &blobclient.Upload{Hash: hash, Size: size}
	tr.sent.Store(0)
	tr.cutAt.Store(size / 2)
	if err := c.Send(b.ctx, u, f, nil); err == nil {
		return errors.New("the cut upload did not fail")
	}
	if err := c.Send(b.ctx, u, f, nil); err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	resent := tr.sent.Load() - size
	res.ResentMB = round(float64(resent)/(1<<20), 2)
	res.ResentChunks = round(float64(resent)/float64(c.ChunkSize), 3)

	line, _ := json.Marshal(res)
	fmt.Println(string(line))
	b.blobResults = append(b.blobResults, res)
	return nil
}

func mbs(n int64, d time.Duration) float64 { return float64(n) / (1 << 20) / d.Seconds() }

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// startPlainServer is the baseline: PUT /up io.Copies the body to
// dir/plain (with ?sync=1 then syncs the file and dir, as the blob
// store does), GET /down io.Copies dir/plain to the answer.
func startPlainServer(dir string) (*httptest.Server, error) {
	path := filepath.Join(dir, "plain")
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /up", func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Create(path)
		if err == nil {
			_, err = io.Copy(f, r.Body)
			if err == nil && r.URL.Query().Get("sync") == "1" {
				err = f.Sync()
				if err == nil {
					err = syncPath(dir)
				}
			}
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /down", func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(path)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer f.Close()
		st, _ := f.Stat()
		w.Header().Set("Content-Length", strconv.FormatInt(st.Size(), 10))
		_, _ = io.Copy(w, f)
	})
	return httptest.NewServer(mux), nil
}

// syncPath syncs a file or directory to disk.
func syncPath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func plainUpload(b *bencher, hc *http.Client, url, src string, size int64) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	// The body type blobclient sends (a section of the file), so both
	// sides pay the same client: the comparison is of the servers.
	req, err := http.NewRequestWithContext(b.ctx, http.MethodPut, url, io.NewSectionReader(f, 0, size))
	if err != nil {
		return err
	}
	req.ContentLength = size
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("baseline upload: %s", resp.Status)
	}
	return nil
}

func plainDownload(b *bencher, hc *http.Client, url, path string) error {
	req, err := http.NewRequestWithContext(b.ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	return getInto(hc, req, path)
}

// download GETs the blob into path (the server's streaming, without the
// client's hash check, which Device.Open adds).
func download(b *bencher, hc *http.Client, c *blobclient.Client, hash, token, path string) error {
	req, err := http.NewRequestWithContext(b.ctx, http.MethodGet, c.URL+"/blobs/sha256:"+hash, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	return getInto(hc, req, path)
}

// getInto writes the answer's body to path.
func getInto(hc *http.Client, req *http.Request, path string) error {
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("download: %s", resp.Status)
	}
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	n, err := io.Copy(out, resp.Body)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
		err = fmt.Errorf("download: %d of %d bytes", n, resp.ContentLength)
	}
	return err
}

// countingTransport counts the PATCH body bytes sent and cuts the PATCH
// carrying byte cutAt of the file (once; 0: none).
type countingTransport struct {
	base  http.RoundTripper
	sent  atomic.Int64
	cutAt atomic.Int64
}

func (t *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPatch && r.Body != nil {
		off, _ := strconv.ParseInt(r.Header.Get("Upload-Offset"), 10, 64)
		left := int64(-1)
		if c := t.cutAt.Load(); c > 0 && c >= off && c < off+r.ContentLength {
			left = c - off
			t.cutAt.Store(0)
		}
		r.Body = &faultio.CutReader{R: r.Body, Left: left, Sent: &t.sent}
	}
	return t.base.RoundTrip(r)
}

// prng is a fast reproducible byte stream (SHA-256 in counter mode):
// incompressible like media.
type prng struct {
	ctr uint64
	buf bytes.Buffer
}

func newPRNG(seed uint64) *prng { return &prng{ctr: seed << 32} }

func (p *prng) Read(b []byte) (int, error) {
	for p.buf.Len() < len(b) {
		var in [8]byte
		binary.BigEndian.PutUint64(in[:], p.ctr)
		p.ctr++
		s := sha256.Sum256(in[:])
		p.buf.Write(s[:])
	}
	return p.buf.Read(b)
}

func printBlobs(rs []BlobResult) {
	if len(rs) == 0 {
		return
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "workload\tfile copy MB/s\tplain up MB/s\tplain+fsync up MB/s\tupload MB/s\tratio\tratio no fsync\tplain down MB/s\tdownload MB/s\tratio\tRSS before MB\tRSS upload MB\tresent after cut MB\tchunks\t")
	for _, r := range rs {
		fmt.Fprintf(w, "%s\t%.0f\t%.0f\t%.0f\t%.0f\t%.3f\t%.3f\t%.0f\t%.0f\t%.3f\t%.1f\t%.1f\t%.2f\t%.2f\t\n", r.Workload, r.DiskCopyMBs, r.CopyMBs, r.CopySyncMBs, r.UploadMBs, r.UploadRatio, r.UploadNoSync,
			r.BaseDownMBs, r.DownloadMBs, r.DownloadRatio, r.RSSBeforeMB, r.RSSUploadMB, r.ResentMB, r.ResentChunks)
	}
	w.Flush()
}
