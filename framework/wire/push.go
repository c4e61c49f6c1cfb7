package wire

// Statuses of a change in a push result.
// ResolutionMerged is [Result].Resolution of a change the policy merged.
const ResolutionMerged = "merged"

const (
	// StatusApplied: the change is stored; the result's record is the
	// stored state with its version. A retried change the server already
	// applied is answered applied again, with the same version.
	StatusApplied = "applied"
	// StatusStale: the change lost to the conflict policy; the result's
	// record is the server's winning state.
	StatusStale = "stale"
	// StatusRejected: the change is invalid; the result's code says why
	// and its errors where.
	StatusRejected = "rejected"
	// StatusForbidden: the record belongs to someone else; nothing about
	// it is revealed.
	StatusForbidden = "forbidden"
)

// FieldError is one problem with one place in a request, named by a JSON
// pointer relative to the request body or to one change ("/data/title").
type FieldError struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

// Result is the outcome of one change of a push, in the order of the
// changes. OpID is echoed only when the change carried one.
type Result struct {
	OpID   *string `json:"op_id,omitempty"`
	Model  string  `json:"model"`
	UID    string  `json:"uid"`
	Status string  `json:"status"`
	// Code says why a change was rejected, machine-readably: invalid,
	// unknown_model, conflict (a unique field), quota_exceeded, … (the
	// protocol's error codes); empty for other statuses.
	Code string `json:"code,omitempty"`
	// Resolution is "merged" on an applied result whose record the
	// conflict policy merged from the change and the stored record (the
	// record is the merge, not the change as sent); empty otherwise.
	Resolution string `json:"resolution,omitempty"`
	// Record is set for applied and stale results.
	Record *Record `json:"record,omitempty"`
	// Errors lists what is wrong with a rejected change.
	Errors []FieldError `json:"errors,omitempty"`
	// MissingBlobs lists, for an applied or stale result, the blobs the
	// record refers to that the server holds no upload of from this user
	// ("sha256:<hex>"), when the blobs plugin is on: the device uploads
	// them.
	MissingBlobs []string `json:"missing_blobs,omitempty"`
}

// PushRequest is the body of POST /sync/push. Cursor, when set, is the
// device's pull cursor: the answer then carries it moved past the
// device's own writes when that skips nothing.
type PushRequest struct {
	DeviceID string   `json:"device_id,omitempty"`
	Cursor   string   `json:"cursor,omitempty"`
	Changes  []Change `json:"changes"`
}

// PushResponse is the answer of POST /sync/push: one result per change,
// in order, and the moved cursor when the request carried one.
type PushResponse struct {
	Results []Result `json:"results"`
	Cursor  string   `json:"cursor,omitempty"`
}

// SingleResponse is the answer of POST /sync/ (one record): the status,
// applied or stale, and the record stored (on stale, the server's
// winning state).
type SingleResponse struct {
	Status string  `json:"status"`
	Record *Record `json:"record"`
	// MissingBlobs is as in [Result].
	MissingBlobs []string `json:"missing_blobs,omitempty"`
}

// PullResponse is the answer of GET /sync/pull: one page of changes, the
// latest state of each record changed after the request's cursor,
// tombstones included, in version order. A client pulls again with
// Cursor while HasMore is true, and keeps the cursor only after the last
// page.
type PullResponse struct {
	Changes []*Record `json:"changes"`
	Cursor  string    `json:"cursor"`
	HasMore bool      `json:"has_more"`
	// Removed lists the spaces the user can no longer read that the
	// request's cursor still covered: the device drops every record of
	// them (and their unsynced changes are refused from now on). A pull
	// restarted from the same cursor reports them again.
	Removed []string `json:"removed,omitempty"`
	// Spaces, on the last page (HasMore false), lists every shared space
	// the returned cursor covers; absent, none. A device drops the records
	// of any other shared space it holds: that also covers what a pull
	// cut short had brought of a space lost since.
	Spaces []string `json:"spaces,omitempty"`
}

// PullRequest is the body of POST /sync/pull: GET /sync/pull's
// parameters, for a cursor too long for a URL (a user in many spaces).
// The answer is a [PullResponse], as for GET.
type PullRequest struct {
	Cursor        string   `json:"cursor,omitempty"`
	Limit         int      `json:"limit,omitempty"`
	Models        []string `json:"models,omitempty"`
	Spaces        []string `json:"spaces,omitempty"`
	Subscriptions []string `json:"subscriptions,omitempty"`
	DeviceID      string   `json:"device_id,omitempty"`
}

// MaxPullURL is the longest pull URL query a client should send: past
// it, clients send the parameters in POST /sync/pull's body (proxies
// refuse long request lines; nginx's default line is 8 KB).
const MaxPullURL = 4 << 10

// Query parameters of GET /sync/pull, and the limits the protocol fixes
// for its page size.
const (
	// QueryCursor is the opaque cursor of the previous pull; empty or
	// missing for an initial sync.
	QueryCursor = "cursor"
	// QueryLimit caps the page: a positive integer, [DefaultPullLimit]
	// when missing, capped at [MaxPullLimit].
	QueryLimit = "limit"
	// QueryModels filters by model: names separated by commas.
	QueryModels = "models"
	// QueryDeviceID names the pulling device (optional, at most 256
	// characters, as a push's device_id): it changes nothing in the
	// answer; observers of the server (the inspector plugin) show each
	// device's last pull and how far behind it is.
	QueryDeviceID = "device_id"

	DefaultPullLimit = 500
	MaxPullLimit     = 5000
)
