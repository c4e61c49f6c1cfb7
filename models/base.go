// Package models is Ferry's persistence layer, built on bun: the base fields
// every synced record carries, the generic record table for models
// registered by JSON Schema alone, the per-scope version counters, the feed
// that pulls read (each record table by its (owner, version) index), the
// schema migrations, and the few places
// where PostgreSQL and SQLite differ.
//
// Nothing here knows about HTTP, users or conflict policies; the framework
// package decides what to write and calls the store inside one transaction.
package models

import "time"

// Base holds the fields every synced record carries. Embed it in a typed
// model (plan A: one table per model):
//
//	type Note struct {
//		bun.BaseModel `bun:"table:notes"`
//		models.Base
//		Title string `bun:"title" json:"title"`
//	}
//
// Its fields are tagged `json:"-"` so that encoding the model yields only the
// model's own data; the envelope (uid, owner, modify_at…) travels beside it.
// The column names are fixed: owner, uid, modify_at, is_deleted, version,
// created_at and updated_at. Give a model's own columns no bun `default:`
// tag: in a multi-row insert bun replaces a zero value in the first row by
// the default for every row.
type Base struct {
	// OwnerID is the user id that owns the record (its scope). A record is
	// identified by owner and uid: two users may hold the same uid.
	OwnerID string `bun:"owner,pk,type:varchar(255)" json:"-"`
	// ID is the record's client-chosen uid.
	ID string `bun:"uid,pk,type:varchar(64)" json:"-"`
	// ModifiedAt is the client's modification time, used only by conflict
	// policies.
	ModifiedAt time.Time `bun:"modify_at,notnull" json:"-"`
	// IsDeleted marks a tombstone.
	IsDeleted bool `bun:"is_deleted,notnull" json:"-"`
	// Version is assigned by the server on every accepted write; it is
	// counted per owner and orders pulls.
	Version int64 `bun:"version,notnull" json:"-"`
	// CreatedAt and UpdatedAt are the server's own clock, for operators.
	CreatedAt time.Time `bun:"created_at,notnull" json:"-"`
	UpdatedAt time.Time `bun:"updated_at,notnull" json:"-"`
}

// UID returns the record's uid.
func (b *Base) UID() string { return b.ID }

// Owner returns the owner's user id.
func (b *Base) Owner() string { return b.OwnerID }

// ModifyAt returns the client's modification time.
func (b *Base) ModifyAt() time.Time { return b.ModifiedAt }

// SyncBase gives the store access to the embedded fields through an
// interface; any struct embedding Base has it.
func (b *Base) SyncBase() *Base { return b }

// BaseHolder is implemented by every pointer to a struct that embeds Base.
type BaseHolder interface {
	SyncBase() *Base
}

// BaseColumns are the column names Base contributes, in table order.
var baseColumns = []string{"owner", "uid", "modify_at", "is_deleted", "version", "created_at", "updated_at"}

// IsBaseColumn reports whether name is one of Base's columns.
func IsBaseColumn(name string) bool {
	for _, c := range baseColumns {
		if c == name {
			return true
		}
	}
	return false
}
