package framework

import (
	"context"

	"github.com/ferrysync/ferry/framework/hook"
)

// PulledEvent is triggered once per pull page answered (the sync route's
// and [App.Pull]'s), after its read, outside any transaction. It is for
// observers (an inspector, metrics): what a device has seen and how far it
// is behind. Its error is logged only: the page is answered anyway.
type PulledEvent struct {
	hook.Event
	Context   context.Context
	Principal Principal
	// DeviceID is the pulling device's id when it sent one (GET
	// /sync/pull?device_id=…, [PullRequest.DeviceID]); "" when unknown.
	DeviceID string
	// Positions is, per scope the page read, the version the returned
	// cursor stands at; Heads the scope's version in the page's snapshot.
	// Heads[s] − Positions[s] is how many versions of scope s the device
	// still has to pull (more pages of this pull, or later writes). The
	// maps are the page's own: read them, copy what you keep, change
	// nothing.
	Positions, Heads map[string]int64
	// Records is the number of records in the page; HasMore is the page's
	// has_more.
	Records int
	HasMore bool
}

// OnPulled is the hook run after each pull page; see [PulledEvent].
func (a *App) OnPulled() *hook.Hook[*PulledEvent] { return &a.onPulled }

// reportPulled runs the pulled hooks on a page.
func (a *App) reportPulled(ctx context.Context, p Principal, deviceID string, positions map[string]int64, heads map[string]int64, resp *PullResponse) {
	if a.onPulled.Len() == 0 {
		return
	}
	ev := &PulledEvent{Context: ctx, Principal: p, DeviceID: deviceID, Positions: positions, Heads: heads,
		Records: len(resp.Changes), HasMore: resp.HasMore}
	if err := a.onPulled.Trigger(ev, nil); err != nil {
		a.log.ErrorContext(ctx, "pulled hook failed", "err", err, "user", p.UserID)
	}
}
