package policies

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"

	"github.com/ferrysync/ferry/framework"
)

// Counter is the worked example of a policy of your own, written with
// [framework.PolicyFunc]: a counter that devices increment offline
// without losing each other's increments. The data's field holds one
// count per device ({"phone": 3, "laptop": 5}; the counter's value is
// their sum); a device only ever raises its own entry. The merge keeps
// every device's highest count, so it is commutative and idempotent (a
// retried change merges to the stored record and makes no new version),
// and takes the other fields from the record with the later modify_at
// (last-writer-wins). A count that is not a number loses to one that is.
//
// It is the grow-only counter of the CRDT literature (Shapiro et al.,
// 2011); a counter that also goes down keeps two such fields and
// subtracts.
func Counter(field string) framework.PolicyFunc {
	return func(_ context.Context, c *framework.Conflict) (framework.Resolution, error) {
		stored, err := decodeObject(c.Stored.Data)
		if err != nil {
			return framework.Resolution{}, fmt.Errorf("stored data: %w", err)
		}
		incoming, err := decodeObject(c.Incoming.Data)
		if err != nil {
			return framework.Resolution{}, fmt.Errorf("incoming data: %w", err)
		}
		newer, older, at := incoming, stored, c.Incoming.ModifyAt.Time
		if c.Incoming.ModifyAt.Before(c.Stored.ModifyAt.Time) {
			newer, older, at = stored, incoming, c.Stored.ModifyAt.Time
		}
		counts := map[string]any{}
		for _, side := range []map[string]any{older, newer} {
			m, _ := side[field].(map[string]any)
			for device, v := range m {
				if higher(v, counts[device]) {
					counts[device] = v
				}
			}
		}
		merged := make(map[string]any, len(newer)+1)
		for k, v := range newer {
			merged[k] = v
		}
		merged[field] = counts
		data, err := json.Marshal(merged)
		if err != nil {
			return framework.Resolution{}, fmt.Errorf("encode merged counter: %w", err)
		}
		deleted := c.Stored.IsDeleted
		if !c.Incoming.ModifyAt.Before(c.Stored.ModifyAt.Time) {
			deleted = c.Incoming.IsDeleted
		}
		return framework.Resolution{Outcome: framework.Merge, Data: data, Deleted: &deleted, ModifyAt: at}, nil
	}
}

// higher reports whether count a beats b: a number beats anything that
// is not one, and a larger number a smaller one.
func higher(a, b any) bool {
	na, ok := a.(json.Number)
	if !ok {
		return false
	}
	ra, ok := new(big.Rat).SetString(string(na))
	if !ok {
		return false
	}
	nb, ok := b.(json.Number)
	if !ok {
		return true
	}
	rb, ok := new(big.Rat).SetString(string(nb))
	return !ok || ra.Cmp(rb) > 0
}
