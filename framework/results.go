package framework

import (
	"context"

	"github.com/ferrysync/ferry/framework/hook"
)

// ResultsEvent is triggered once per push that ended without error, after
// its transaction and its [CommitEvent], with the results about to be
// answered (one per change, in order). It runs outside any transaction.
// Handlers may annotate results (the blobs plugin fills
// Result.MissingBlobs) but must not change their status or record. Its
// error is logged only: the push has committed.
type ResultsEvent struct {
	hook.Event
	Context   context.Context
	Principal Principal
	// DeviceID is the pushing device's id when its protocol carries one
	// (the push body's device_id on POST /sync/push; [PushOptions.DeviceID]
	// for [App.PushWith]); "" when unknown.
	DeviceID string
	Results  []Result
}

// OnResults is the hook run on a push's results before they are answered;
// see [ResultsEvent]. It sees every push: the sync routes', the
// adapters' and [App.Push]'s.
func (a *App) OnResults() *hook.Hook[*ResultsEvent] { return &a.onResults }

// annotateResults runs the results hooks on a push's results.
func (a *App) annotateResults(ctx context.Context, p Principal, deviceID string, results []Result) {
	if a.onResults.Len() == 0 || len(results) == 0 {
		return
	}
	ev := &ResultsEvent{Context: ctx, Principal: p, DeviceID: deviceID, Results: results}
	if err := a.onResults.Trigger(ev, nil); err != nil {
		a.log.ErrorContext(ctx, "results hook failed", "err", err, "user", p.UserID)
	}
}
