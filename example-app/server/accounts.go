package server

import (
	"encoding/json"
	"errors"
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
	"golang.org/x/crypto/bcrypt"
)

// accounts is the example's sign-up and login, and the hooks that keep
// data.User consistent when it is edited through sync.
type accounts struct {
	app *framework.App
	jwt *jwtauth.Plugin
}

var _ framework.Plugin = (*accounts)(nil)

// Name implements framework.Plugin.
func (a *accounts) Name() string { return "accounts" }

// Setup binds the data.User hooks: emails are compared lower-cased, and an
// email another account holds is rejected inside the write transaction.
func (a *accounts) Setup(app *framework.App) error {
	a.app = app
	user := []string{"data.User"}
	app.OnValidate().Bind(&hook.Handler[*framework.ValidateEvent]{ID: "accounts.normalize-email", Tags: user, Func: func(e *framework.ValidateEvent) error {
		e.Change.Data = lowerEmail(e.Change.Data)
		return e.Next()
	}})
	app.OnApply().Bind(&hook.Handler[*framework.ApplyEvent]{ID: "accounts.unique-email", Tags: user, Func: func(e *framework.ApplyEvent) error {
		if e.Record.IsDeleted {
			return e.Next()
		}
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
		return e.Next()
	}})
	return nil
}

type registerRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	Name     string `json:"name"`
}

type authResponse struct {
	Token string            `json:"token"`
	User  *framework.Record `json:"user"`
}

const maxAuthBody = 64 << 10

func (a *accounts) mount(r gin.IRouter) {
	r.POST("/register", a.wrap(a.register))
	r.POST("/login", a.wrap(a.login))
}

func (a *accounts) wrap(fn func(c *gin.Context) error) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := fn(c); err != nil {
			var pe *framework.Error
			if !errors.As(err, &pe) || pe.Code == framework.CodeInternal {
				a.app.Logger().Error("auth request failed", "err", err)
			}
			framework.WriteError(c, err)
		}
	}
}

func (a *accounts) register(c *gin.Context) error {
	var req registerRequest
	if err := framework.ReadJSONBody(c.Request, maxAuthBody, &req); err != nil {
		return err
	}
	req.Email = strings.ToLower(strings.TrimSpace(req.Email))
	var details []framework.FieldError
	if addr, err := mail.ParseAddress(req.Email); err != nil || addr.Address != req.Email || len(req.Email) > 254 {
		details = append(details, framework.FieldError{Path: "/email", Message: "must be an email address"})
	}
	if len(req.Password) < 8 || len(req.Password) > 72 {
		details = append(details, framework.FieldError{Path: "/password", Message: "must be 8 to 72 bytes"})
	}
	if strings.TrimSpace(req.Name) == "" || len(req.Name) > 200 {
		details = append(details, framework.FieldError{Path: "/name", Message: "must be 1 to 200 characters"})
	}
	if len(details) > 0 {
		return &framework.Error{Code: framework.CodeInvalid, Message: "invalid sign-up", Details: details}
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(req.Password), bcrypt.DefaultCost)
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
	return a.answer(c, http.StatusCreated, rec)
}

func (a *accounts) login(c *gin.Context) error {
	var req registerRequest
	if err := framework.ReadJSONBody(c.Request, maxAuthBody, &req); err != nil {
		return err
	}
	email := strings.ToLower(strings.TrimSpace(req.Email))
	var u User
	err := a.app.DB().NewSelect().Model(&u).Where("email = ?", email).Where("is_deleted = ?", false).Limit(1).Scan(c.Request.Context())
	bad := framework.NewError(framework.CodeUnauthenticated, "wrong email or password")
	if err != nil {
		// Spend the same time as a real check, so timing does not tell
		// which emails exist.
		_ = bcrypt.CompareHashAndPassword([]byte("$2a$10$7EqJtq98hPqEX7fNZaFWoOhi5BWX4Z1D.p5QX0ZgGqQW/Z/Xyk2a."), []byte(req.Password))
		return bad
	}
	if bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(req.Password)) != nil {
		return bad
	}
	rec, err := a.app.Get(c.Request.Context(), "data.User", u.ID)
	if err != nil {
		return err
	}
	return a.answer(c, http.StatusOK, rec)
}

func (a *accounts) answer(c *gin.Context, status int, user *framework.Record) error {
	tok, err := a.jwt.Issue(user.UID)
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
