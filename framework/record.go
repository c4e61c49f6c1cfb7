package framework

import (
	"encoding/json"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/ferrysync/ferry/models"
)

// TimeFormat is how the protocol writes times: RFC 3339, UTC, microseconds.
const TimeFormat = "2006-01-02T15:04:05.000000Z"

// Record is a record as it travels on the wire.
type Record struct {
	Model     string          `json:"model"`
	UID       string          `json:"uid"`
	Owner     string          `json:"owner"`
	ModifyAt  Time            `json:"modify_at"`
	IsDeleted bool            `json:"is_deleted"`
	Version   int64           `json:"version"`
	Data      json.RawMessage `json:"data"`
}

func wireRecord(r *models.Record) *Record {
	data := r.Data
	if len(data) == 0 {
		data = json.RawMessage(`{}`)
	}
	return &Record{
		Model: r.Model, UID: r.UID, Owner: r.Owner, ModifyAt: Time{r.ModifyAt},
		IsDeleted: r.IsDeleted, Version: r.Version, Data: data,
	}
}

// Time is a time on the wire. It encodes as RFC 3339 UTC with microseconds
// and decodes from an RFC 3339 string in UTC or from a JSON number of Unix
// epoch seconds (a fraction is allowed).
type Time struct{ time.Time }

// MarshalJSON implements json.Marshaler.
func (t Time) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, len(TimeFormat)+2)
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, TimeFormat)
	return append(b, '"'), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (t *Time) UnmarshalJSON(b []byte) error {
	var v any
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return err
	}
	parsed, msg := parseTime(v)
	if msg != "" {
		return &ValidationError{Details: []FieldError{{Path: "", Message: msg}}}
	}
	t.Time = parsed
	return nil
}

// Bounds on modify_at: the year 1 and anything past 9999 cannot be stored
// the same way by both stores.
var (
	minTime = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)
)

// parseTime reads modify_at from a decoded JSON value (numbers as
// json.Number). It returns a message for the client when the value is bad.
// Times are cut to microseconds, the precision both stores keep, so that a
// retried write compares equal to the stored one.
func parseTime(v any) (time.Time, string) {
	var t time.Time
	switch x := v.(type) {
	case string:
		p, err := time.Parse(time.RFC3339Nano, x)
		if err != nil {
			return t, "modify_at must be an RFC 3339 time such as 2026-11-25T10:00:00.123456Z, or epoch seconds"
		}
		if _, off := p.Zone(); off != 0 {
			return t, "modify_at must be UTC"
		}
		t = p.UTC()
	case json.Number:
		// ParseFloat first bounds the value, so big.Rat never sees an
		// exponent that would make it allocate without end.
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil || len(x) > 40 || f < 0 || f > 253402300799 {
			return t, "modify_at is out of range (1970 to 9999)"
		}
		r, ok := new(big.Rat).SetString(string(x))
		if !ok {
			return t, "modify_at must be a number of epoch seconds"
		}
		micros := new(big.Rat).Mul(r, big.NewRat(1_000_000, 1))
		q := new(big.Int).Quo(micros.Num(), micros.Denom())
		if !q.IsInt64() {
			return t, "modify_at is out of range"
		}
		t = time.UnixMicro(q.Int64()).UTC()
	case nil:
		return t, "modify_at is required"
	default:
		return t, "modify_at must be an RFC 3339 string or a number of epoch seconds"
	}
	if t.Before(minTime) || t.After(maxTime) {
		return time.Time{}, "modify_at is out of range (1970 to 9999)"
	}
	return t.Truncate(time.Microsecond), ""
}

// validUID reports whether s is 1 to 64 letters, digits, '-' or '_'.
func validUID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
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
