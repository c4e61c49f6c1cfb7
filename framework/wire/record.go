package wire

import (
	"bytes"
	"encoding/json"
	"math/big"
	"strconv"
	"strings"
	"time"
)

// TimeFormat is how the protocol writes times: RFC 3339, UTC,
// microseconds.
const TimeFormat = "2006-01-02T15:04:05.000000Z"

// MaxUIDLength is the longest uid the protocol allows.
const MaxUIDLength = 64

// Record is a record as it travels on the wire: in pull pages, in push
// results and in the single-record answer. Owner and Version are set by
// the server. Data is the record's JSON object; the server always sends
// one ({} when the record has none). A record of a shared space carries
// the space's uid in Space, and its Owner is the space's scope
// ("s:" + the space's uid); a personal record has no Space and its Owner
// is its user.
type Record struct {
	Model     string          `json:"model"`
	UID       string          `json:"uid"`
	Space     string          `json:"space,omitempty"`
	Owner     string          `json:"owner"`
	ModifyAt  Time            `json:"modify_at"`
	IsDeleted bool            `json:"is_deleted"`
	Version   int64           `json:"version"`
	Data      json.RawMessage `json:"data"`
	// FieldsModifyAt, for models whose conflict policy merges field by
	// field, says when top-level fields were last edited: a field it does
	// not name was edited at ModifyAt when Data has it, never when Data
	// lacks it; an entry for a field Data lacks says when it was removed.
	FieldsModifyAt map[string]Time `json:"fields_modify_at,omitempty"`
	// Gone, in a pull by subscriptions, marks a record that changed and
	// belongs to none of them any more: the device drops it (Data is {}).
	Gone bool `json:"gone,omitempty"`
}

// Change is one change a client sends: an element of
// [PushRequest.Changes], or the body of POST /sync/ (where OpID is not
// used). Data is nil for a tombstone sent without data (the server keeps
// the data it has). OpID, when set, is echoed in the change's [Result].
type Change struct {
	OpID  *string `json:"op_id,omitempty"`
	Model string  `json:"model"`
	UID   string  `json:"uid"`
	// Space names the shared space the change writes to; empty is the
	// user's personal space.
	Space     string          `json:"space,omitempty"`
	ModifyAt  Time            `json:"modify_at"`
	IsDeleted bool            `json:"is_deleted"`
	Data      json.RawMessage `json:"data,omitempty"`
	// FieldsModifyAt says when the device last edited top-level fields
	// (see [Record.FieldsModifyAt] for fields it does not name); no time
	// may be after ModifyAt. Servers keep them only for models whose
	// policy merges field by field.
	FieldsModifyAt map[string]Time `json:"fields_modify_at,omitempty"`
}

// Time is a time on the wire. It encodes as RFC 3339 UTC with
// microseconds ([TimeFormat]) and decodes as [ParseTime] reads a decoded
// JSON value: an RFC 3339 string in UTC, or a number of Unix epoch
// seconds (a fraction is allowed).
type Time struct{ time.Time }

// MarshalJSON implements json.Marshaler.
func (t Time) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, len(TimeFormat)+2)
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, TimeFormat)
	return append(b, '"'), nil
}

// UnmarshalJSON implements json.Unmarshaler. A refused time is a
// [*TimeError].
func (t *Time) UnmarshalJSON(b []byte) error {
	b = bytes.Trim(b, " \t\r\n")
	var v any
	switch {
	case len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' && bytes.IndexByte(b, '\\') < 0:
		v = string(b[1 : len(b)-1]) // the usual case, a plain string
	case len(b) > 0 && (b[0] == '-' || b[0] >= '0' && b[0] <= '9') && json.Valid(b):
		v = json.Number(b)
	default:
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			return err
		}
	}
	parsed, err := ParseTime(v)
	if err != nil {
		return err
	}
	t.Time = parsed
	return nil
}

// TimeError is a time the protocol refuses. Its Message is meant for the
// client, as the message of a field error at /modify_at ("modify_at must
// be UTC").
type TimeError struct {
	Message string
}

// Error implements error.
func (e *TimeError) Error() string { return "wire: " + e.Message }

// Bounds on times: before 1970 and after 9999 the stores would not keep a
// time the same way.
var (
	minTime = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)
)

// The errors ParseTime returns; shared, so that a refusal allocates
// nothing.
var (
	errTimeSyntax   = &TimeError{"modify_at must be an RFC 3339 time such as 2026-11-25T10:00:00.123456Z, or epoch seconds"}
	errTimeNotUTC   = &TimeError{"modify_at must be UTC"}
	errTimeRange    = &TimeError{"modify_at is out of range (1970 to 9999)"}
	errTimeNumber   = &TimeError{"modify_at must be a number of epoch seconds"}
	errTimeRequired = &TimeError{"modify_at is required"}
	errTimeType     = &TimeError{"modify_at must be an RFC 3339 string or a number of epoch seconds"}
)

// ParseTime reads a time (a change's modify_at) from a decoded JSON value:
// a string is RFC 3339 with the offset Z or +00:00 (any other offset is
// refused with "modify_at must be UTC"); a json.Number or float64 is Unix
// epoch seconds, a fraction allowed. The result is in UTC, cut to
// microseconds (the precision the stores keep, so that a retried write
// compares equal to the stored one), and lies between 1970 and 9999. A
// refusal is a [*TimeError] whose message is meant for the client.
func ParseTime(v any) (time.Time, error) {
	var t time.Time
	switch x := v.(type) {
	case string:
		p, err := time.Parse(time.RFC3339Nano, x)
		if err != nil {
			return t, errTimeSyntax
		}
		if _, off := p.Zone(); off != 0 {
			return t, errTimeNotUTC
		}
		t = p.UTC()
	case json.Number:
		var err error
		if t, err = epochSeconds(string(x)); err != nil {
			return t, err
		}
	case float64:
		var err error
		if t, err = epochSeconds(strconv.FormatFloat(x, 'f', -1, 64)); err != nil {
			return t, err
		}
	case nil:
		return t, errTimeRequired
	default:
		return t, errTimeType
	}
	if t.Before(minTime) || t.After(maxTime) {
		return time.Time{}, errTimeRange
	}
	return t.Truncate(time.Microsecond), nil
}

// epochSeconds reads a JSON number of seconds exactly, to the
// microsecond.
func epochSeconds(x string) (time.Time, error) {
	// ParseFloat first bounds the value, so big.Rat never sees an
	// exponent that would make it allocate without end.
	f, err := strconv.ParseFloat(x, 64)
	if err != nil || len(x) > 40 || f < 0 || f > 253402300799 {
		return time.Time{}, errTimeRange
	}
	r, ok := new(big.Rat).SetString(x)
	if !ok {
		return time.Time{}, errTimeNumber
	}
	micros := new(big.Rat).Mul(r, big.NewRat(1_000_000, 1))
	q := new(big.Int).Quo(micros.Num(), micros.Denom())
	if !q.IsInt64() {
		return time.Time{}, errTimeRange
	}
	return time.UnixMicro(q.Int64()).UTC(), nil
}

// ValidUID reports whether s is a uid the protocol allows: 1 to
// [MaxUIDLength] letters, digits, '-' or '_'.
func ValidUID(s string) bool {
	if len(s) == 0 || len(s) > MaxUIDLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// spaceOwnerPrefix starts the owner of every shared space's records, so
// that a space's scope can never be a user's (user ids hold no colon).
const spaceOwnerPrefix = "s:"

// SpaceOwner is the [Record.Owner] of the records of the shared space
// uid: its scope on the server.
func SpaceOwner(uid string) string { return spaceOwnerPrefix + uid }

// SpaceOf returns the space uid of a record's owner, or "" when the owner
// is a user (a personal record).
func SpaceOf(owner string) string {
	if uid, ok := strings.CutPrefix(owner, spaceOwnerPrefix); ok {
		return uid
	}
	return ""
}
