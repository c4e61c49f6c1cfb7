package framework

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/ferrysync/ferry/models"
)

// Subscription is a named filter a device may pull by (partial sync). The
// application registers it in Go with [App.Subscribe]; a client names it
// and gives its parameters (GET /sync/pull?subscription=tasks_of_list(L1)),
// never a filter of its own.
type Subscription struct {
	// Name is what clients write: a lower-case letter, then lower-case
	// letters, digits or '_' (at most 64).
	Name string
	// Model is the registered model whose records it selects.
	Model string
	// Params names its parameters, in the order clients give them.
	Params []string
	// Match reports whether a record's data belongs to the subscription,
	// given the parameters' values by name. It must be pure and fast: it
	// runs on every changed record of Model a pull reads. A record's
	// tombstone is matched on the data it last had.
	Match func(params map[string]string, data json.RawMessage) bool
}

// FieldEquals is a [Subscription.Match] selecting the records whose
// top-level field equals the parameter param (a string field, or a number
// or boolean written the way JSON writes it).
func FieldEquals(field, param string) func(map[string]string, json.RawMessage) bool {
	return func(params map[string]string, data json.RawMessage) bool {
		var obj map[string]json.RawMessage
		if json.Unmarshal(data, &obj) != nil {
			return false
		}
		raw, ok := obj[field]
		if !ok {
			return false
		}
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s == params[param]
		}
		return string(raw) == params[param]
	}
}

var subscriptionNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// Subscribe registers a subscription. Register it before serving, after its
// model.
func (a *App) Subscribe(s Subscription) error {
	if !subscriptionNameRE.MatchString(s.Name) {
		return fmt.Errorf("framework: subscription name %q must be a lower-case letter, then lower-case letters, digits or '_' (at most 64)", s.Name)
	}
	if s.Match == nil {
		return fmt.Errorf("framework: subscription %s has no Match", s.Name)
	}
	if err := a.checkOpen("subscribe " + s.Name); err != nil {
		return err
	}
	if _, ok := a.model(s.Model); !ok {
		return fmt.Errorf("framework: subscription %s: model %q is not registered", s.Name, s.Model)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.subscriptions == nil {
		a.subscriptions = map[string]*Subscription{}
	}
	if _, dup := a.subscriptions[s.Name]; dup {
		return fmt.Errorf("framework: subscription %q is already registered", s.Name)
	}
	s.Params = slices.Clone(s.Params)
	a.subscriptions[s.Name] = &s
	return nil
}

// MustSubscribe is [App.Subscribe] that panics; for main and tests.
func (a *App) MustSubscribe(s Subscription) {
	if err := a.Subscribe(s); err != nil {
		panic(err)
	}
}

// subscribed is one subscription a pull asked for, with its parameters.
type subscribed struct {
	sub    *Subscription
	params map[string]string
	text   string // canonical: name(v1,v2)
}

// maxSubscriptions bounds the subscriptions of one pull.
const maxSubscriptions = 32

// parseSubscriptions checks a pull's subscriptions ("name(v1,v2)", values
// uids), at most maxSubscriptions, repeats once.
func (a *App) parseSubscriptions(texts []string) ([]subscribed, error) {
	if len(texts) == 0 {
		return nil, nil
	}
	bad := func(msg string) error {
		return &Error{Code: CodeInvalid, Message: "subscription: " + msg, Details: []FieldError{{Path: "subscription", Message: msg}}}
	}
	if len(texts) > maxSubscriptions {
		return nil, bad(fmt.Sprintf("at most %d subscriptions", maxSubscriptions))
	}
	var out []subscribed
	for _, text := range texts {
		name, rest, ok := strings.Cut(text, "(")
		args, closed := strings.CutSuffix(rest, ")")
		if !ok || !closed {
			return nil, bad(fmt.Sprintf("%.80q is not name(parameters)", text))
		}
		a.mu.RLock()
		sub := a.subscriptions[name]
		a.mu.RUnlock()
		if sub == nil {
			return nil, &Error{Code: CodeInvalid, Message: fmt.Sprintf("unknown subscription %.80q", name),
				Details: []FieldError{{Path: "subscription", Message: "not registered"}}}
		}
		var vals []string
		if args != "" {
			vals = strings.Split(args, ",")
		}
		if len(vals) != len(sub.Params) {
			return nil, bad(fmt.Sprintf("%s takes %d parameters (%s)", name, len(sub.Params), strings.Join(sub.Params, ", ")))
		}
		params := make(map[string]string, len(vals))
		for i, v := range vals {
			if !validUID(v) {
				return nil, bad("a parameter is 1 to 64 letters, digits, '-' or '_'")
			}
			params[sub.Params[i]] = v
		}
		canon := name + "(" + strings.Join(vals, ",") + ")"
		if !slices.ContainsFunc(out, func(s subscribed) bool { return s.text == canon }) {
			out = append(out, subscribed{sub: sub, params: params, text: canon})
		}
	}
	return out, nil
}

// subscriptionModels are the models a pull by subs reads.
func subscriptionModels(subs []subscribed) []string {
	var out []string
	for _, s := range subs {
		if !slices.Contains(out, s.sub.Model) {
			out = append(out, s.sub.Model)
		}
	}
	return out
}

// subscriptionTexts are the subscriptions' canonical texts, for the
// cursor's filter.
func subscriptionTexts(subs []subscribed) []string {
	out := make([]string, len(subs))
	for i, s := range subs {
		out[i] = s.text
	}
	return out
}

// matchSubscriptions reports whether rec belongs to one of subs.
func matchSubscriptions(subs []subscribed, rec *models.Record) bool {
	for _, s := range subs {
		if s.sub.Model == rec.Model && s.sub.Match(s.params, rec.Data) {
			return true
		}
	}
	return false
}
