package framework

import (
	"context"
	"errors"
	"fmt"

	"github.com/ferrysync/ferry/models"
)

// UsageAccounting says whether the store keeps exact usage counters
// (what [App.Usage] reports and quotas are checked against) in every
// write. Keeping them costs every write a second update of the user's
// scope row in the same statement: on PostgreSQL about 15 % of
// single-record throughput. Only quotas need them.
type UsageAccounting int

const (
	// UsageAuto, the default, keeps the counters exactly when a quota is
	// configured (Config.Quota limits something, or Config.QuotaFor is
	// set).
	UsageAuto UsageAccounting = iota
	// UsageOn always keeps them (an application that reads App.Usage
	// often, say, without quotas).
	UsageOn
	// UsageOff never keeps them; quotas cannot be configured with it.
	UsageOff
)

// String names the setting as the README does.
func (u UsageAccounting) String() string {
	switch u {
	case UsageAuto:
		return "auto"
	case UsageOn:
		return "on"
	case UsageOff:
		return "off"
	}
	return fmt.Sprintf("UsageAccounting(%d)", int(u))
}

// checkUsage validates Config.UsageAccounting against the quotas and
// resolves it: whether this App keeps the counters.
func (c *Config) checkUsage() (bool, error) {
	quota := c.Quota.limited() || c.QuotaFor != nil
	switch c.UsageAccounting {
	case UsageAuto:
		return quota, nil
	case UsageOn:
		return true, nil
	case UsageOff:
		if quota {
			return false, errors.New("framework: Config.UsageAccounting is UsageOff but a quota is configured (Config.Quota or Config.QuotaFor): quotas are checked against the usage counters; use UsageAuto")
		}
		return false, nil
	}
	return false, fmt.Errorf("framework: Config.UsageAccounting %d is not UsageAuto, UsageOn or UsageOff", int(c.UsageAccounting))
}

// UsageAccountingOn reports whether the App keeps exact usage counters
// (Config.UsageAccounting resolved). When it does not, [App.Usage] counts
// the user's records instead (slower, as exact), and operators' tools
// should not show the counters of [models.Scope], which may be stale.
func (a *App) UsageAccountingOn() bool { return a.usageOn }

// setUsageAccounting brings the store's usage accounting to the App's
// configuration, after its migrations (see [models.UsageAccounter] for
// the rule when several replicas share a database). A store without the
// interface keeps whatever it does.
func (a *App) setUsageAccounting(ctx context.Context) error {
	ua, ok := a.store.(models.UsageAccounter)
	if !ok {
		return nil
	}
	st, err := ua.SetUsageAccounting(ctx, models.SetUsageAccountingParams{On: a.usageOn})
	if err != nil {
		return fmt.Errorf("framework: %w", err)
	}
	a.mu.Lock()
	old := a.usageHold
	a.usageHold = st.Hold
	a.mu.Unlock()
	if old != nil {
		if err := old.Close(); err != nil {
			a.log.WarnContext(ctx, "releasing the previous usage accounting hold failed", "err", err)
		}
	}
	switch {
	case st.Recounted:
		a.log.InfoContext(ctx, "usage accounting turned on: every user's usage was recounted", "setting", a.cfg.UsageAccounting.String())
	case st.KeptOn:
		a.log.InfoContext(ctx, "usage accounting stays on: another replica on this database needs it (it has a quota or UsageOn); this one counts usage when asked",
			"setting", a.cfg.UsageAccounting.String())
	}
	return nil
}

// releaseUsageHold lets other replicas turn usage accounting off.
func (a *App) releaseUsageHold() error {
	a.mu.Lock()
	h := a.usageHold
	a.usageHold = nil
	a.mu.Unlock()
	if h == nil {
		return nil
	}
	if err := h.Close(); err != nil {
		return fmt.Errorf("framework: release the usage accounting hold: %w", err)
	}
	return nil
}
