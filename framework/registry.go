package framework

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ferrysync/ferry/models"
)

// Syncable is any record type an app registers. Structs that embed
// [models.Base] get UID, Owner and ModifyAt from it and write
// ResourceType (the stable, persisted model name, e.g. "data.Note") and
// Validate themselves.
type Syncable interface {
	ResourceType() string
	UID() string
	Owner() string
	ModifyAt() time.Time
	Validate() error
}

// ModelOptions describes a registration.
type ModelOptions struct {
	// Schema is the path of the model's JSON Schema in Config.Schemas;
	// required. It validates the record's data object.
	Schema string
	// SelfOwned marks a model whose records own themselves, like a user
	// profile: the record's uid is its owner, and a caller may write only
	// the record whose uid is the caller's user id.
	SelfOwned bool
	// Policy decides conflicts; nil means Config.DefaultPolicy, itself
	// [LastWriterWins] when nil. A policy that implements [StoreRuler]
	// lets the store decide (see [RouteStoreDecided]); asked once, here.
	Policy ConflictPolicy
}

// model is the untyped core of a registration.
type model struct {
	name      string
	selfOwned bool
	schema    checkedSchema
	// fields is what the schema says of the top-level fields, for policies.
	fields *ModelSchema
	policy ConflictPolicy
	// rule is the store rule policy advertises ([StoreRuler]).
	rule models.Rule
	// fieldTimes: the policy decides by per-field times, which the store
	// keeps ([UsesFieldTimes]).
	fieldTimes bool
	// plan decides the model's write route (see planOf).
	plan atomic.Pointer[modelPlan]
	// canonical validates data beyond the schema (typed models decode it
	// and call Validate) and returns the form it will be stored in, so a
	// retried write compares equal to the stored one. decoded is rec.Data
	// already decoded (numbers as json.Number).
	canonical func(rec *models.Record, decoded any) (json.RawMessage, error)
	// spec says where the store keeps the records.
	spec models.TableSpec
	// emptyData is the stored form of a record created without data (a
	// tombstone of a record the server never had): {} for schema-only
	// models, the zero value's encoding for typed ones.
	emptyData json.RawMessage
	// typed is set for typed models (plan A).
	typed bool
	// builtin marks the framework's own models (spaces'): their schemas
	// are the framework's, and their names are reserved.
	builtin bool
}

// Register registers a typed model (plan A): T is a struct embedding
// [models.Base] with its own bun table; its name is T's ResourceType.
// Registering a name twice, a missing schema, or a struct without the base
// fields is an error that says what to fix.
func Register[T any, P interface {
	*T
	Syncable
	models.BaseHolder
}](a *App, opts ModelOptions) error {
	name := P(new(T)).ResourceType()
	codec := models.NewTypedCodec[T, P]()
	m := &model{
		name: name,
		canonical: func(rec *models.Record, _ any) (json.RawMessage, error) {
			v, err := codec.FromRecord(rec) // decodes the data's text
			if err != nil {
				return nil, &ValidationError{Details: []FieldError{{Path: "/data", Message: "data does not fit the model: " + jsonErrorText(err)}}}
			}
			if err := v.Validate(); err != nil {
				return nil, err
			}
			out, err := codec.ToRecord(name, v)
			if err != nil {
				return nil, err
			}
			rec.Value = v
			return out.Data, nil
		},
		spec:      models.Typed[T, P](),
		emptyData: mustJSON(P(new(T))),
		typed:     true,
	}
	return a.register(m, opts)
}

// MustRegister is [Register] that panics; for main and tests.
func MustRegister[T any, P interface {
	*T
	Syncable
	models.BaseHolder
}](a *App, opts ModelOptions) {
	if err := Register[T, P](a, opts); err != nil {
		panic(err)
	}
}

// RegisterSchema registers a model by JSON Schema alone (plan B): its
// records live in the generic record table, keyed by model and uid.
func (a *App) RegisterSchema(name string, opts ModelOptions) error {
	m := &model{
		name: name,
		spec: models.Generic(),
		canonical: func(rec *models.Record, _ any) (json.RawMessage, error) {
			return rec.Data, nil
		},
	}
	return a.register(m, opts)
}

// MustRegisterSchema is [App.RegisterSchema] that panics.
func (a *App) MustRegisterSchema(name string, opts ModelOptions) {
	if err := a.RegisterSchema(name, opts); err != nil {
		panic(err)
	}
}

func (a *App) register(m *model, opts ModelOptions) error {
	if !modelNameRE.MatchString(m.name) || len(m.name) > 128 {
		return fmt.Errorf("framework: model name %q must be dotted identifiers such as \"data.Note\" (at most 128 characters)", m.name)
	}
	if err := a.checkOpen("register " + m.name); err != nil {
		return err
	}
	if strings.HasPrefix(m.name, "ferry.") != m.builtin {
		return fmt.Errorf("framework: model names starting \"ferry.\" are the framework's own; choose another name than %q", m.name)
	}
	set := a.appSchemas
	if m.builtin {
		set = a.builtinSchemas
	}
	if opts.Schema == "" {
		return fmt.Errorf("framework: register %s: ModelOptions.Schema is empty; name the model's JSON Schema file in Config.Schemas", m.name)
	}
	sch, err := set.compile(opts.Schema)
	if err != nil {
		return fmt.Errorf("framework: register %s: %w", m.name, err)
	}
	m.schema = set.checked(sch)
	m.fields = newModelSchema(sch)
	if m.emptyData == nil {
		m.emptyData = json.RawMessage(`{}`)
	}
	m.selfOwned = opts.SelfOwned
	m.policy = opts.Policy
	if m.policy == nil {
		m.policy = a.cfg.DefaultPolicy
	}
	if m.policy == nil {
		m.policy = LastWriterWins{}
	}
	m.rule = StoreRuleOf(m.policy)
	if m.fieldTimes = UsesFieldTimes(m.policy); m.fieldTimes {
		m.spec = models.WithFieldTimes(m.spec)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, dup := a.models[m.name]; dup {
		return fmt.Errorf("framework: model %q is already registered", m.name)
	}
	if err := a.store.Register(m.name, m.spec); err != nil {
		return fmt.Errorf("framework: %w", err)
	}
	a.models[m.name] = m
	return nil
}

// futureSkewGuard rejects changes dated too far in the future.
func (a *App) futureSkewGuard(e *ValidateEvent) error {
	limit := a.cfg.Now().Add(a.cfg.MaxFutureSkew)
	if e.Change.ModifyAt.After(limit) {
		return &ValidationError{Details: []FieldError{{Path: "/modify_at",
			Message: fmt.Sprintf("modify_at is more than %s ahead of the server's clock", a.cfg.MaxFutureSkew)}}}
	}
	return e.Next()
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("framework: encode the zero value of %T: %v", v, err))
	}
	return b
}

func jsonErrorText(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %q must be %s", te.Field, te.Type)
	}
	return err.Error()
}
