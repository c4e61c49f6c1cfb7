package inspector

import (
	"container/list"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/ferrysync/ferry/framework"
)

// activity is what the inspector remembers of pushes and pulls, in memory,
// on this replica alone, bounded: at most maxUsers users (the least
// recently active forgotten first), and per user at most maxPushes recent
// pushes, each with at most maxChanges changes, and maxDevices devices.
type activity struct {
	maxUsers, maxDevices, maxPushes, maxChanges int

	mu    sync.Mutex
	users map[string]*list.Element // of *userActivity
	lru   *list.List               // front: most recently active
	// forgot counts the users forgotten for the cap, so the page can say
	// that the list is not everything.
	forgot int64
	// tick orders devices' activity (clocks may tie).
	tick uint64
}

// userActivity is one user's recent pushes and devices.
type userActivity struct {
	user     string
	lastSeen time.Time
	pushes   []pushEntry // a ring: next is where the next push goes
	next     int
	pushed   int64 // pushes seen since tracked, for "showing n of m"
	devices  map[string]*deviceState
}

// pushEntry is one push as its results hook saw it.
type pushEntry struct {
	At      time.Time
	Device  string
	Total   int
	Counts  map[string]int // per status
	Changes []changeEntry  // the first maxChanges
}

// changeEntry is one change's result.
type changeEntry struct {
	Model, UID, Space, Status, Code string
	Version                         int64
	Errors                          string
}

// deviceState is what one device did last.
type deviceState struct {
	ID                 string
	LastPush, LastPull time.Time
	Pushes, Pulls      int64
	// Positions and Heads are, per scope, the cursor's position and the
	// scope's version at the device's last pull page; PullHasMore says the
	// page was not the last of its pull.
	Positions, Heads map[string]int64
	PullHasMore      bool
	// seq is the activity's tick at the device's last push or pull.
	seq uint64
}

func newActivity(maxUsers, maxDevices, maxPushes, maxChanges int) *activity {
	return &activity{maxUsers: maxUsers, maxDevices: maxDevices, maxPushes: maxPushes, maxChanges: maxChanges,
		users: map[string]*list.Element{}, lru: list.New()}
}

// user returns the user's activity, tracked from now if it was not, and
// marks it the most recent; a.mu is held.
func (a *activity) user(id string, now time.Time) *userActivity {
	if el, ok := a.users[id]; ok {
		a.lru.MoveToFront(el)
		u := el.Value.(*userActivity)
		u.lastSeen = now
		return u
	}
	u := &userActivity{user: id, lastSeen: now, devices: map[string]*deviceState{}}
	a.users[id] = a.lru.PushFront(u)
	for a.lru.Len() > a.maxUsers {
		old := a.lru.Back()
		a.lru.Remove(old)
		delete(a.users, old.Value.(*userActivity).user)
		a.forgot++
	}
	return u
}

// device returns the user's device, tracked from now if it was not; the
// least recently active device goes when there are too many. a.mu is held.
func (a *activity) device(u *userActivity, id string) *deviceState {
	if d, ok := u.devices[id]; ok {
		return d
	}
	if len(u.devices) >= a.maxDevices {
		var oldest *deviceState
		for _, d := range u.devices {
			if oldest == nil || d.seq < oldest.seq {
				oldest = d
			}
		}
		delete(u.devices, oldest.ID)
	}
	d := &deviceState{ID: id}
	u.devices[id] = d
	return d
}

// touch marks d the user's most recently active device; a.mu is held.
func (a *activity) touch(d *deviceState) {
	a.tick++
	d.seq = a.tick
}

// The longest texts kept of a change: its model and uid, its errors.
const (
	maxField  = 128
	maxErrors = 200
)

// clip cuts s to at most n bytes, on a character boundary, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// pushed records a push's results.
func (a *activity) pushed(ev *framework.ResultsEvent, now time.Time) {
	e := pushEntry{At: now, Device: ev.DeviceID, Total: len(ev.Results), Counts: map[string]int{}}
	for i := range ev.Results {
		r := &ev.Results[i]
		e.Counts[r.Status]++
		if len(e.Changes) == a.maxChanges {
			continue
		}
		// Clipped: a rejected change's model name or error path may be
		// long client input, and this is kept in memory.
		c := changeEntry{Model: clip(r.Model, maxField), UID: clip(r.UID, maxField), Status: r.Status, Code: r.Code}
		if r.Record != nil {
			c.Version, c.Space = r.Record.Version, r.Record.Space
		}
		var errs strings.Builder
		for j, fe := range r.Errors {
			if j > 0 {
				errs.WriteString("; ")
			}
			errs.WriteString(fe.Path + ": " + fe.Message)
			if errs.Len() > maxErrors {
				break
			}
		}
		c.Errors = clip(errs.String(), maxErrors)
		e.Changes = append(e.Changes, c)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	u := a.user(ev.Principal.UserID, now)
	if len(u.pushes) < a.maxPushes {
		u.pushes = append(u.pushes, e)
	} else {
		u.pushes[u.next] = e
	}
	u.next = (u.next + 1) % a.maxPushes
	u.pushed++
	d := a.device(u, ev.DeviceID)
	d.LastPush = now
	d.Pushes++
	a.touch(d)
}

// pulled records a pull page.
func (a *activity) pulled(ev *framework.PulledEvent, now time.Time) {
	pos := make(map[string]int64, len(ev.Positions))
	for s, v := range ev.Positions {
		pos[s] = v
	}
	heads := make(map[string]int64, len(ev.Heads))
	for s, v := range ev.Heads {
		heads[s] = v
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	u := a.user(ev.Principal.UserID, now)
	d := a.device(u, ev.DeviceID)
	d.LastPull, d.Positions, d.Heads, d.PullHasMore = now, pos, heads, ev.HasMore
	d.Pulls++
	a.touch(d)
}

// userView is a copy of a user's activity, safe to read without the lock.
type userView struct {
	Tracked  bool
	LastSeen time.Time
	Pushes   []pushEntry // newest first
	Pushed   int64
	Devices  []deviceState // most recently active first
}

// view copies the user's activity.
func (a *activity) view(id string) userView {
	a.mu.Lock()
	defer a.mu.Unlock()
	el, ok := a.users[id]
	if !ok {
		return userView{}
	}
	u := el.Value.(*userActivity)
	v := userView{Tracked: true, LastSeen: u.lastSeen, Pushed: u.pushed}
	for i := range u.pushes {
		// Newest first: the one before next, then backwards around the ring.
		j := (u.next - 1 - i + 2*len(u.pushes)) % len(u.pushes)
		v.Pushes = append(v.Pushes, u.pushes[j])
	}
	for _, d := range u.devices {
		v.Devices = append(v.Devices, *d)
	}
	sort.Slice(v.Devices, func(i, j int) bool { return v.Devices[i].seq > v.Devices[j].seq })
	return v
}

// trackedUser is one line of the index's list of active users.
type trackedUser struct {
	User     string
	LastSeen time.Time
	Devices  int
}

// recent lists up to n tracked users, most recently active first, and how
// many are tracked and were forgotten.
func (a *activity) recent(n int) (users []trackedUser, tracked int, forgot int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for el := a.lru.Front(); el != nil && len(users) < n; el = el.Next() {
		u := el.Value.(*userActivity)
		users = append(users, trackedUser{User: u.user, LastSeen: u.lastSeen, Devices: len(u.devices)})
	}
	return users, a.lru.Len(), a.forgot
}
