package blobs

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"
)

// Collected counts what one [Plugin.Collect] removed.
type Collected struct {
	// Uploads is the partial uploads abandoned for Config.AbandonAfter.
	Uploads int
	// Holdings is the users' holdings of blobs none of their records
	// referred to for Config.GracePeriod.
	Holdings int
	// Blobs and Bytes are the blobs nobody holds any more.
	Blobs int
	Bytes int64
}

// Collect removes partial uploads untouched for Config.AbandonAfter,
// each user's hold on blobs none of their live records has referred to
// for Config.GracePeriod, and then the blobs nobody holds. It is safe to
// run beside pushes, uploads and other collections, on any replica: a
// blob being stored again while it is collected is either kept or
// stored anew. The plugin runs it every Config.CollectEvery.
func (p *Plugin) Collect(ctx context.Context) (Collected, error) {
	var got Collected
	now := p.unixNow()
	var ids []string
	if err := p.db.NewRaw(`SELECT id FROM ferry_blob_uploads WHERE touched_at < ?`, now-p.cfg.AbandonAfter.Microseconds()).Scan(ctx, &ids); err != nil {
		return got, fmt.Errorf("blobs: collect uploads: %w", err)
	}
	for _, id := range ids {
		p.discard(ctx, id)
		got.Uploads++
	}
	res, err := p.db.ExecContext(ctx, `DELETE FROM ferry_blob_holdings WHERE refs <= 0 AND (NOT held OR since < ?)`,
		now-p.cfg.GracePeriod.Microseconds())
	if err != nil {
		return got, fmt.Errorf("blobs: collect holdings: %w", err)
	}
	n, _ := res.RowsAffected()
	got.Holdings = int(n)
	var orphans []string
	if err := p.db.NewRaw(`SELECT hash FROM ferry_blobs b WHERE NOT EXISTS
		(SELECT 1 FROM ferry_blob_holdings h WHERE h.hash = b.hash AND h.held)`).Scan(ctx, &orphans); err != nil {
		return got, fmt.Errorf("blobs: collect blobs: %w", err)
	}
	for _, h := range orphans {
		size, err := p.collectBlob(ctx, h)
		if err != nil {
			return got, err
		}
		if size >= 0 {
			got.Blobs++
			got.Bytes += size
		}
	}
	return got, nil
}

// collectBlob removes blob h if still nobody holds it, holding its row
// so that an upload storing it again waits; it returns the size removed,
// or -1 when the blob was kept.
func (p *Plugin) collectBlob(ctx context.Context, h string) (int64, error) {
	size := int64(-1)
	err := p.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if err := lockBlob(ctx, tx, h); err != nil {
			return err
		}
		// A new statement after the lock: it sees holdings committed
		// while we waited.
		var n int
		if err := tx.NewRaw(`SELECT COUNT(*) FROM ferry_blob_holdings WHERE hash = ? AND held`, h).Scan(ctx, &n); err != nil {
			return fmt.Errorf("blobs: collect %s: %w", h, err)
		}
		if n > 0 {
			return nil
		}
		var s []int64
		if err := tx.NewRaw(`DELETE FROM ferry_blobs WHERE hash = ? RETURNING size`, h).Scan(ctx, &s); err != nil {
			return fmt.Errorf("blobs: collect %s: %w", h, err)
		}
		if err := p.store.Delete(ctx, h); err != nil {
			return err
		}
		if len(s) > 0 {
			size = s[0]
		}
		return nil
	})
	return size, err
}
