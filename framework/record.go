package framework

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/ferrysync/ferry/framework/wire"
	"github.com/ferrysync/ferry/models"
)

// TimeFormat is how the protocol writes times: RFC 3339, UTC, microseconds.
const TimeFormat = wire.TimeFormat

// Record is a record as it travels on the wire ([wire.Record]).
type Record = wire.Record

func wireRecord(r *models.Record) *Record {
	data := r.Data
	if len(data) == 0 {
		data = json.RawMessage(`{}`)
	}
	return &Record{
		Model: r.Model, UID: r.UID, Space: spaceOf(r.Owner), Owner: r.Owner, ModifyAt: Time{Time: r.ModifyAt},
		IsDeleted: r.IsDeleted, Version: r.Version, Data: data, FieldsModifyAt: wireFieldTimes(r.FieldTimes),
	}
}

// goneRecord is the marker of a record that left a pull's subscriptions:
// its key and version, no data.
func goneRecord(r *models.Record) *Record {
	return &Record{Model: r.Model, UID: r.UID, Space: spaceOf(r.Owner), Owner: r.Owner,
		ModifyAt: Time{Time: r.ModifyAt}, IsDeleted: r.IsDeleted, Version: r.Version, Data: json.RawMessage(`{}`), Gone: true}
}

// Time is a time on the wire ([wire.Time]). It encodes as RFC 3339 UTC
// with microseconds and decodes from an RFC 3339 string in UTC or from a
// JSON number of Unix epoch seconds (a fraction is allowed).
type Time = wire.Time

// parseTime reads modify_at from a decoded JSON value (numbers as
// json.Number), as [wire.ParseTime] does. It returns a message for the
// client when the value is bad.
func parseTime(v any) (time.Time, string) {
	t, err := wire.ParseTime(v)
	if err != nil {
		var te *wire.TimeError
		if errors.As(err, &te) {
			return t, te.Message
		}
		return t, err.Error()
	}
	return t, ""
}

// validUID reports whether s is 1 to 64 letters, digits, '-' or '_'
// ([wire.ValidUID]).
func validUID(s string) bool { return wire.ValidUID(s) }
