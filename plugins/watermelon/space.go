package watermelon

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/wire"
	"github.com/gin-gonic/gin"
)

// A WatermelonDB database syncs one space: the personal one by default, a
// shared space with ?space=<uid> (one local database per space on the
// device, since a WatermelonDB row cannot say which space it is of).
// Versions are per space, so a shared space's timestamps are its own.
//
// A member removed from a space is told to delete what it may hold: its
// next pull lists, as "deleted" ids, every record of the exposed tables
// written to the space before the removal (never one created after), in
// pages whose timestamps are listingBase plus the space's version listed
// through, and every such answer says "space_removed": true, so the app
// can drop the space's database. WatermelonDB's last_pulled_at is a bare
// number the server cannot sign, so the listing is given only to a user
// the space's records name as a former member, and only up to when they
// lost it ([framework.LostRequest].Unproven): a made-up last_pulled_at
// learns nothing a real one would not.

// listingBase marks a removed member's listing timestamps: above every
// version a space reaches, below 2^53 (JavaScript's exact integers).
const listingBase int64 = 1 << 52

// spaceParam returns the request's ?space= ("" for the personal space).
func (p *Plugin) spaceParam(c *gin.Context) (string, error) {
	s, ok := c.GetQuery("space")
	if !ok {
		return "", nil
	}
	if !p.app.Config().Spaces {
		return "", invalidParam("space", "this server has no shared spaces (framework.Config.Spaces is off)")
	}
	if !wire.ValidUID(s) {
		return "", invalidParam("space", "must be a space uid: 1 to 64 letters, digits, - or _")
	}
	return s, nil
}

// pullLost answers the pull of a space who may not read: a former
// member's device with a last_pulled_at gets the listing, anyone else the
// refusal a space that does not exist gets.
func (p *Plugin) pullLost(c *gin.Context, who framework.Principal, space string, since int64, limit int, refused error) error {
	if since == 0 {
		return refused
	}
	req := framework.LostRequest{Space: space, Models: p.models, Unproven: true, Limit: limit}
	if since > listingBase {
		req.After = since - listingBase
	} else {
		req.Seen = since - 1
	}
	lost, err := p.app.ReadLost(c.Request.Context(), who, req)
	if errors.Is(err, framework.ErrForbidden) {
		return refused
	}
	if err != nil {
		return fmt.Errorf("watermelon: pull of a lost space: %w", err)
	}
	ans := p.emptyAnswer()
	for _, r := range lost.Records {
		if t, ok := p.byModel[r.Model]; ok {
			ans.Changes[t].Deleted = append(ans.Changes[t].Deleted, r.UID)
		}
	}
	ans.Timestamp = listingBase + lost.Last
	ans.HasMore = !lost.Done
	ans.SpaceRemoved = true
	if len(lost.Records) > 0 {
		p.app.Logger().Info("watermelon pull of a lost space", "user", who.UserID, "space", space, "deleted", len(lost.Records), "done", lost.Done)
	}
	c.JSON(http.StatusOK, ans)
	return nil
}
