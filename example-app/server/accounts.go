package server

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/mail"
	"strings"
	"time"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/framework/hook"
	"github.com/ferrysync/ferry/models"
	"github.com/ferrysync/ferry/plugins/jwtauth"
	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"golang.org/x/crypto/bcrypt"
)

// accounts is the example's account management under /auth (sign-up,
// login, email and password changes, deletion) and the hooks that keep
// data.User consistent when it is written through sync.
//
// Through sync a user may edit their name only: the email is read-only
// (changed by POST /auth/email, which checks the password and is rate
// limited), so a sync write never tells whether an address is taken; and
// an account is deleted by DELETE /auth/account only, never deleted or
// restored by a sync write.
type accounts struct {
	app    *framework.App
	db     *bun.DB
	jwt    *jwtauth.Plugin
	log    *slog.Logger
	cost   int
	limits *authLimits
	gate   *hashGate
	// dummyHash is compared against when the email is unknown, so that a
	// login takes as long for an unknown email as for a known one.
	dummyHash []byte
}

var _ framework.Plugin = (*accounts)(nil)

func newAccounts(db *bun.DB, jwt *jwtauth.Plugin, log *slog.Logger, cfg AuthConfig) (*accounts, error) {
	random := make([]byte, 16)
	if _, err := rand.Read(random); err != nil {
		return nil, err
	}
	dummy, err := bcrypt.GenerateFromPassword([]byte(fmt.Sprintf("%x", random)), cfg.PasswordCost)
	if err != nil {
		return nil, fmt.Errorf("accounts: dummy hash: %w", err)
	}
	return &accounts{
		db: db, jwt: jwt, log: log, cost: cfg.PasswordCost, dummyHash: dummy,
		limits: &authLimits{
			perIP:      newKeyedLimiter(cfg.PerIP, cfg.MaxTrackedKeys, time.Now),
			perAccount: newKeyedLimiter(cfg.PerAccount, cfg.MaxTrackedKeys, time.Now),
		},
		gate: newHashGate(cfg.MaxConcurrentHashes, cfg.HashWait),
	}, nil
}

// Name implements framework.Plugin.
func (a *accounts) Name() string { return "accounts" }

// Setup binds the data.User hooks.
func (a *accounts) Setup(app *framework.App) error {
	a.app = app
	user := []string{"data.User"}
	app.OnValidate().Bind(&hook.Handler[*framework.ValidateEvent]{ID: "accounts.normalize-email", Tags: user, Func: func(e *framework.ValidateEvent) error {
		e.Change.Data = lowerEmail(e.Change.Data)
		return e.Next()
	}})
	app.OnApply().Bind(&hook.Handler[*framework.ApplyEvent]{ID: "accounts.guard-user", Tags: user, Func: a.guardUser})
	return nil
}

// serverWriteKey marks the context of a write the accounts routes make
// themselves (an email change, a deletion), which the data.User guard
// lets through. Clients cannot put values in a request's context, so a
// sync write never carries it.
type serverWriteKey struct{}

func withServerWrite(ctx context.Context) context.Context {
	return context.WithValue(ctx, serverWriteKey{}, true)
}

func isServerWrite(ctx context.Context) bool {
	v, _ := ctx.Value(serverWriteKey{}).(bool)
	return v
}

// Messages of the data.User guard; a sync write gets them whatever the
// address it carries, taken or not.
const (
	msgEmailReadOnly = "is read-only through sync; change it with POST /auth/email"
	msgDeleteAccount = "an account is deleted with DELETE /auth/account, not through sync"
	msgDeleted       = "this account was deleted and cannot be restored"
	msgCreateAccount = "accounts are created with POST /auth/register, not through sync"
)

// guardUser runs inside the write transaction for every data.User write,
// after the conflict policy decided to write (a stale change never gets
// here), with the stored state at hand, so a concurrent email change
// cannot slip between a check and the write.
func (a *accounts) guardUser(e *framework.ApplyEvent) error {
	if isServerWrite(e.Context) {
		if e.Record.IsDeleted {
			if err := e.Next(); err != nil {
				return err
			}
			return endAccount(e.Context, e.Tx, e.Record.UID)
		}
		{
			var u User
			if err := json.Unmarshal(e.Record.Data, &u); err != nil {
				return err
			}
			n, err := e.Tx.NewSelect().Model((*User)(nil)).
				Where("email = ?", u.Email).Where("uid <> ?", e.Record.UID).Count(e.Context)
			if err != nil {
				return err
			}
			if n > 0 {
				return framework.Invalid("/data/email", "is already registered")
			}
		}
		return e.Next()
	}
	switch {
	case e.Stored == nil:
		return framework.Invalid("/uid", msgCreateAccount)
	case e.Stored.IsDeleted:
		return framework.Invalid("/is_deleted", msgDeleted)
	case e.Record.IsDeleted:
		return framework.Invalid("/is_deleted", msgDeleteAccount)
	}
	if emailOf(e.Record.Data) != emailOf(e.Stored.Data) {
		return framework.Invalid("/data/email", msgEmailReadOnly)
	}
	return e.Next()
}

func emailOf(data json.RawMessage) string {
	var u struct {
		Email string `json:"email"`
	}
	_ = json.Unmarshal(data, &u)
	return strings.ToLower(strings.TrimSpace(u.Email))
}

type credentials struct {
	Email       string `json:"email"`
	Password    string `json:"password"`
	Name        string `json:"name"`
	NewPassword string `json:"new_password"`
}

type authResponse struct {
	Token string            `json:"token"`
	User  *framework.Record `json:"user"`
}

type userResponse struct {
	User *framework.Record `json:"user"`
}

const maxAuthBody = 64 << 10

var _ framework.RootRouteMounter = (*accounts)(nil)

// MountRootRoutes implements framework.RootRouteMounter: the accounts'
// routes live under /auth, beside the sync mount point.
func (a *accounts) MountRootRoutes(r gin.IRouter) { a.mount(r.Group("/auth")) }

func (a *accounts) mount(r gin.IRouter) {
	h := func(fn func(c *gin.Context) error) gin.HandlerFunc { return framework.HandlerFunc(a.log, fn) }
	r.POST("/register", h(a.register))
	r.POST("/login", h(a.login))
	r.POST("/email", h(a.changeEmail))
	r.POST("/password", h(a.changePassword))
	r.DELETE("/account", h(a.deleteAccount))
	r.POST("/logout", h(a.logout))
}

func checkEmail(email string) *framework.FieldError {
	if addr, err := mail.ParseAddress(email); err != nil || addr.Address != email || len(email) > 254 {
		return &framework.FieldError{Path: "/email", Message: "must be an email address"}
	}
	return nil
}

func checkPassword(path, password string) *framework.FieldError {
	if len(password) < 8 || len(password) > 72 {
		return &framework.FieldError{Path: path, Message: "must be 8 to 72 bytes"}
	}
	return nil
}

func normalEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

func (a *accounts) register(c *gin.Context) error {
	var req credentials
	if err := framework.ReadJSONBody(c.Request, maxAuthBody, &req); err != nil {
		return err
	}
	req.Email = normalEmail(req.Email)
	var details []framework.FieldError
	if fe := checkEmail(req.Email); fe != nil {
		details = append(details, *fe)
	}
	if fe := checkPassword("/password", req.Password); fe != nil {
		details = append(details, *fe)
	}
	if strings.TrimSpace(req.Name) == "" || len(req.Name) > 200 {
		details = append(details, framework.FieldError{Path: "/name", Message: "must be 1 to 200 characters"})
	}
	if len(details) > 0 {
		return &framework.Error{Code: framework.CodeInvalid, Message: "invalid sign-up", Details: details}
	}
	// Sign-up must say when an address is taken; the per-IP limit is what
	// keeps that from being a fast way to test addresses.
	refund, err := a.limits.admit(c.ClientIP(), req.Email)
	if err != nil {
		return err
	}
	var hash []byte
	err = a.gate.do(c.Request.Context(), func() (err error) {
		hash, err = bcrypt.GenerateFromPassword([]byte(req.Password), a.cost)
		return err
	})
	if err != nil {
		return err
	}
	id := uuid.NewString()
	u := &User{Base: models.Base{ID: id, OwnerID: id, ModifiedAt: time.Now()}, Name: req.Name, Email: req.Email, PasswordHash: string(hash)}
	rec, err := framework.Insert(c.Request.Context(), a.app, u)
	if errors.Is(err, framework.ErrConflict) {
		return &framework.Error{Code: framework.CodeConflict, Message: "this email is already registered",
			Details: []framework.FieldError{{Path: "/email", Message: "is already registered"}}}
	}
	if err != nil {
		return err
	}
	refund() // a sign-up is no wrong password
	return a.answer(c, http.StatusCreated, rec)
}

func (a *accounts) login(c *gin.Context) error {
	var req credentials
	if err := framework.ReadJSONBody(c.Request, maxAuthBody, &req); err != nil {
		return err
	}
	email := normalEmail(req.Email)
	refund, err := a.limits.admit(c.ClientIP(), email)
	if err != nil {
		return err
	}
	ctx := c.Request.Context()
	var u User
	err = a.db.NewSelect().Model(&u).Where("email = ?", email).Where("is_deleted = ?", false).Limit(1).Scan(ctx)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	found := err == nil
	ok := false
	err = a.gate.do(ctx, func() error {
		if !found {
			// Spend the same time as a real check (a hash of the same
			// cost), so timing does not tell which emails exist.
			_ = bcrypt.CompareHashAndPassword(a.dummyHash, []byte(req.Password))
			return nil
		}
		ok = bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(req.Password)) == nil
		if ok {
			a.upgradeHash(ctx, &u, req.Password)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !ok {
		return framework.NewError(framework.CodeUnauthenticated, "wrong email or password")
	}
	refund()
	rec, err := a.app.Get(ctx, u.ID, "data.User", u.ID)
	if err != nil {
		return err
	}
	return a.answer(c, http.StatusOK, rec)
}

// upgradeHash rehashes a correct password whose hash has a lower cost than
// the configured one (hashes from before the cost was raised), so old
// accounts get the new strength as their users log in. A failure only
// leaves the old hash in place.
func (a *accounts) upgradeHash(ctx context.Context, u *User, password string) {
	if cost, err := bcrypt.Cost([]byte(u.PasswordHash)); err != nil || cost >= a.cost {
		return
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), a.cost)
	if err != nil {
		return
	}
	_, err = a.db.NewUpdate().Model((*User)(nil)).Set("password_hash = ?", string(hash)).
		Where("uid = ?", u.ID).Where("password_hash = ?", u.PasswordHash).Exec(ctx)
	if err != nil {
		a.log.Warn("could not upgrade a password hash", "user", u.ID, "err", err)
	}
}

// reauth authenticates the bearer token, loads the caller's account and
// checks its password, under the same limits as a login (the account's
// bucket is its email's, shared with logins).
func (a *accounts) reauth(c *gin.Context, password string) (*User, error) {
	p, err := a.jwt.Authenticate(c.Request)
	if err != nil {
		c.Header("WWW-Authenticate", `Bearer realm="ferry"`)
		return nil, err
	}
	ctx := c.Request.Context()
	var u User
	err = a.db.NewSelect().Model(&u).Where("uid = ?", p.UserID).Where("is_deleted = ?", false).Limit(1).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, framework.NewError(framework.CodeUnauthenticated, "this account was deleted")
	}
	if err != nil {
		return nil, err
	}
	refund, err := a.limits.admit(c.ClientIP(), u.Email)
	if err != nil {
		return nil, err
	}
	ok := false
	if err := a.gate.do(ctx, func() error {
		ok = bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(password)) == nil
		return nil
	}); err != nil {
		return nil, err
	}
	if !ok {
		// Not 401: the token is fine, and a client that takes 401 for
		// "log in again" must not log its user out over a typo.
		return nil, &framework.Error{Code: framework.CodeForbidden, Message: "wrong password",
			Details: []framework.FieldError{{Path: "/password", Message: "is wrong"}}}
	}
	refund()
	return &u, nil
}

// changeEmail is POST /auth/email {password, email}: the only way to
// change a data.User's email. The new address reaches every device as an
// ordinary data.User change.
func (a *accounts) changeEmail(c *gin.Context) error {
	var req credentials
	if err := framework.ReadJSONBody(c.Request, maxAuthBody, &req); err != nil {
		return err
	}
	req.Email = normalEmail(req.Email)
	if fe := checkEmail(req.Email); fe != nil {
		return &framework.Error{Code: framework.CodeInvalid, Message: "invalid email change", Details: []framework.FieldError{*fe}}
	}
	u, err := a.reauth(c, req.Password)
	if err != nil {
		return err
	}
	ctx := c.Request.Context()
	if req.Email != u.Email {
		data, _ := json.Marshal(map[string]string{"name": u.Name, "email": req.Email})
		res, err := a.serverWrite(ctx, u.ID, &framework.Change{Model: "data.User", UID: u.ID, Data: data})
		if err != nil {
			return err
		}
		if res.Status == framework.StatusRejected {
			// Authenticated and rate limited, so saying so reveals little.
			return &framework.Error{Code: framework.CodeConflict, Message: "this email is already registered",
				Details: []framework.FieldError{{Path: "/email", Message: "is already registered"}}}
		}
	}
	rec, err := a.app.Get(ctx, u.ID, "data.User", u.ID)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, userResponse{User: rec})
	return nil
}

// changePassword is POST /auth/password {password, new_password}: it
// stores the new hash, ends every token issued before, and answers a
// fresh one.
func (a *accounts) changePassword(c *gin.Context) error {
	var req credentials
	if err := framework.ReadJSONBody(c.Request, maxAuthBody, &req); err != nil {
		return err
	}
	if fe := checkPassword("/new_password", req.NewPassword); fe != nil {
		return &framework.Error{Code: framework.CodeInvalid, Message: "invalid password change", Details: []framework.FieldError{*fe}}
	}
	u, err := a.reauth(c, req.Password)
	if err != nil {
		return err
	}
	ctx := c.Request.Context()
	var hash []byte
	if err := a.gate.do(ctx, func() (err error) {
		hash, err = bcrypt.GenerateFromPassword([]byte(req.NewPassword), a.cost)
		return err
	}); err != nil {
		return err
	}
	err = a.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		res, err := tx.NewUpdate().Model((*User)(nil)).Set("password_hash = ?", string(hash)).
			Where("uid = ?", u.ID).Where("is_deleted = ?", false).Exec(ctx)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return framework.NewError(framework.CodeUnauthenticated, "this account was deleted")
		}
		return revokeTokens(ctx, tx, u.ID)
	})
	if err != nil {
		return err
	}
	a.jwt.Forget(u.ID)
	rec, err := a.app.Get(ctx, u.ID, "data.User", u.ID)
	if err != nil {
		return err
	}
	return a.answer(c, http.StatusOK, rec)
}

// logout is POST /auth/logout: it ends every token of the caller, on
// every device ("log out everywhere"; tokens are not revoked one by one).
// It needs no password: whoever holds a token may end it.
func (a *accounts) logout(c *gin.Context) error {
	p, err := a.jwt.Authenticate(c.Request)
	if err != nil {
		c.Header("WWW-Authenticate", `Bearer realm="ferry"`)
		return err
	}
	if err := revokeTokens(c.Request.Context(), a.db, p.UserID); err != nil {
		return err
	}
	a.jwt.Forget(p.UserID)
	c.Status(http.StatusNoContent)
	return nil
}

// deleteAccount is DELETE /auth/account {password}: it tombstones the
// data.User record (its name and email are replaced, so the address is
// free again and no personal data stays on the tombstone), clears the
// password hash and ends every token of the user, in one transaction.
// The user's other records stay in the store, unreadable and unwritable
// by anyone (no token of the user works and no login can succeed); an
// application with a retention duty deletes them with its own job.
func (a *accounts) deleteAccount(c *gin.Context) error {
	var req credentials
	if err := framework.ReadJSONBody(c.Request, maxAuthBody, &req); err != nil {
		return err
	}
	u, err := a.reauth(c, req.Password)
	if err != nil {
		return err
	}
	ctx := c.Request.Context()
	data, _ := json.Marshal(map[string]string{"name": "deleted account", "email": "deleted-" + u.ID + "@deleted.invalid"})
	res, err := a.serverWrite(ctx, u.ID, &framework.Change{Model: "data.User", UID: u.ID, IsDeleted: true, Data: data})
	if err != nil {
		return err
	}
	if res.Status != framework.StatusApplied {
		return fmt.Errorf("delete account %s: %s %v", u.ID, res.Status, res.Errors)
	}
	a.jwt.Forget(u.ID)
	c.JSON(http.StatusOK, userResponse{User: res.Record})
	return nil
}

// serverWrite applies one data.User change as the server: through the
// App, so it gets a version and reaches every device's pull and the
// commit hooks, with the guard's server marker and a policy under which
// the server's change always wins. A deletion also clears the password
// hash and revokes the user's tokens in the same transaction.
func (a *accounts) serverWrite(ctx context.Context, userID string, ch *framework.Change) (*framework.Result, error) {
	ch.ModifyAt = framework.Time{Time: time.Now().UTC()}
	results, err := a.app.PushWith(withServerWrite(ctx), framework.Principal{UserID: userID}, []*framework.Change{ch},
		framework.PushOptions{Policy: serverWins})
	if err != nil {
		return nil, err
	}
	return &results[0], nil
}

var serverWins = framework.PolicyFunc(func(context.Context, *framework.Conflict) (framework.Resolution, error) {
	return framework.Resolution{Outcome: framework.TakeIncoming}, nil
})

// endAccount is the part of a deletion that lives beside the data.User
// record, run by guardUser inside the deletion's write transaction.
func endAccount(ctx context.Context, tx bun.Tx, userID string) error {
	if _, err := tx.NewUpdate().Model((*User)(nil)).Set("password_hash = ''").Where("uid = ?", userID).Exec(ctx); err != nil {
		return fmt.Errorf("clear password of %s: %w", userID, err)
	}
	return revokeTokens(ctx, tx, userID)
}

// revokeTokens raises userID's token generation: every token issued
// before stops working (within the revocation delay on other replicas).
func revokeTokens(ctx context.Context, db bun.IDB, userID string) error {
	_, err := db.ExecContext(ctx, `INSERT INTO token_generations (user_id, generation) VALUES (?, 1)
		ON CONFLICT (user_id) DO UPDATE SET generation = token_generations.generation + 1`, userID)
	if err != nil {
		return fmt.Errorf("revoke tokens of %s: %w", userID, err)
	}
	return nil
}

// tokenGenerationOf is the example's jwtauth.Revocation.
func tokenGenerationOf(db *bun.DB) jwtauth.RevocationFunc {
	return func(ctx context.Context, userID string) (int64, error) {
		var g tokenGeneration
		err := db.NewSelect().Model(&g).Where("user_id = ?", userID).Scan(ctx)
		if errors.Is(err, sql.ErrNoRows) {
			return 0, nil
		}
		return g.Generation, err
	}
}

func (a *accounts) answer(c *gin.Context, status int, user *framework.Record) error {
	tok, err := a.jwt.IssueContext(c.Request.Context(), user.UID)
	if err != nil {
		return err
	}
	c.JSON(status, authResponse{Token: tok, User: user})
	return nil
}

// lowerEmail lower-cases data.email, leaving anything it cannot read as it
// is for validation to report.
func lowerEmail(data json.RawMessage) json.RawMessage {
	var m map[string]json.RawMessage
	if json.Unmarshal(data, &m) != nil {
		return data
	}
	var email string
	if json.Unmarshal(m["email"], &email) != nil {
		return data
	}
	m["email"], _ = json.Marshal(strings.ToLower(strings.TrimSpace(email)))
	out, err := json.Marshal(m)
	if err != nil {
		return data
	}
	return out
}
