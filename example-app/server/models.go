package server

import (
	"strings"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/models"
	"github.com/uptrace/bun"
)

// User is the example's account and, like the original design's Django
// proxy model, the synced data.User over the same rows: a user owns
// itself and is found by uid alone. The password hash never leaves the
// server (json:"-" keeps it out of sync and out of sync updates).
type User struct {
	bun.BaseModel `bun:"table:users"`
	models.Base

	Name         string `bun:"name,notnull" json:"name"`
	Email        string `bun:"email,notnull,unique" json:"email"`
	PasswordHash string `bun:"password_hash,notnull" json:"-"`
}

// ResourceType implements framework.Syncable.
func (*User) ResourceType() string { return "data.User" }

// Validate implements framework.Syncable.
func (u *User) Validate() error {
	if strings.TrimSpace(u.Name) == "" {
		return framework.Invalid("/data/name", "must not be blank")
	}
	return nil
}

// Note is an ordinary owned model.
type Note struct {
	bun.BaseModel `bun:"table:notes"`
	models.Base

	Title  string   `bun:"title,notnull" json:"title"`
	Body   string   `bun:"body,notnull" json:"body"`
	Tags   []string `bun:"tags" json:"tags"`
	Pinned bool     `bun:"pinned,notnull" json:"pinned"`
}

// ResourceType implements framework.Syncable.
func (*Note) ResourceType() string { return "data.Note" }

// Validate implements framework.Syncable.
func (n *Note) Validate() error {
	if strings.TrimSpace(n.Title) == "" {
		return framework.Invalid("/data/title", "must not be blank")
	}
	return nil
}

// tokenGeneration is a user's token generation (see jwtauth.Revocation):
// revoking every token of a user is raising it by one. Users without a
// row have generation 0, like every token issued before revocation
// existed, so the table is created empty on existing stores and their
// tokens keep working until revoked.
type tokenGeneration struct {
	bun.BaseModel `bun:"table:token_generations"`

	UserID     string `bun:"user_id,pk"`
	Generation int64  `bun:"generation,notnull"`
}
