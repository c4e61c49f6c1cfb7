package models

import (
	"bytes"
	"strconv"
)

// Rule names a conflict rule that a store can apply by itself, inside the
// statement that writes, instead of the framework reading the stored
// record and asking a policy in Go. The framework's conflict policies
// advertise the rule they follow (framework.StoreRuler); a table applies
// it through [NewerWriter].
type Rule uint8

const (
	// NoRule is a rule only Go code can apply: the framework reads the
	// stored record and asks the policy.
	NoRule Rule = iota
	// NewerWins is last-writer-wins on modify_at, the framework's default
	// policy: the incoming state replaces the stored one when its
	// modify_at is later, or equal with other content (a tie goes to the
	// incoming change); an equal modify_at with the same content is a
	// repeat (a retried write: nothing to write); an earlier one loses.
	//
	// [Rule.Decide] states it in Go; [NewerWriter.WriteIfNewer]'s
	// statement (newer.go, beside its description) states it in SQL:
	//
	//	t.modify_at < EXCLUDED.modify_at OR
	//	(t.modify_at = EXCLUDED.modify_at AND (t.is_deleted, t.<data>…) IS DISTINCT FROM (EXCLUDED.is_deleted, EXCLUDED.<data>…))
	//
	// where <data> is the generic table's data text or a typed table's
	// data columns. TestRuleSQLAgreesWithGo checks on PostgreSQL that the
	// two agree, equal times, microseconds and tombstones included.
	NewerWins
)

// String returns the rule's name.
func (r Rule) String() string {
	switch r {
	case NoRule:
		return "none"
	case NewerWins:
		return "newer-wins"
	}
	return "rule(" + strconv.Itoa(int(r)) + ")"
}

// Verdict is what a rule says of an incoming state of a record.
type Verdict uint8

const (
	// Write: the incoming state replaces the stored one (or there is none).
	Write Verdict = iota + 1
	// Repeat: the incoming state is the stored one (same modify_at,
	// is_deleted and data); a retried write, answered applied with the
	// stored record and no new version.
	Repeat
	// Lose: the stored state stays; the change is answered stale.
	Lose
)

// String returns the verdict's name.
func (v Verdict) String() string {
	switch v {
	case Write:
		return "write"
	case Repeat:
		return "repeat"
	case Lose:
		return "lose"
	}
	return "verdict(" + strconv.Itoa(int(v)) + ")"
}

// Decide applies r to incoming against stored (nil when the store holds
// no such record). Data is compared as canonical text, byte for byte, as
// the store compares it: the framework puts every record in its model's
// canonical form before it is compared or stored. NoRule always says
// Write unless the states are the same: the policy decides the rest.
func (r Rule) Decide(stored, incoming *Record) Verdict {
	if stored == nil {
		return Write
	}
	if SameState(stored, incoming) {
		return Repeat
	}
	if r == NewerWins && incoming.ModifyAt.Before(stored.ModifyAt) {
		return Lose
	}
	return Write
}

// SameState reports whether a and b hold the same state of a record: the
// same modify_at, is_deleted, data (canonical text, byte for byte) and
// field times.
// Writing b over a would change nothing but the version: the framework
// answers such a write applied with a's record and writes nothing.
func SameState(a, b *Record) bool {
	return a.ModifyAt.Equal(b.ModifyAt) && a.IsDeleted == b.IsDeleted && bytes.Equal(a.Data, b.Data) &&
		a.FieldTimes.Equal(b.FieldTimes)
}
