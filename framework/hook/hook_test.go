package hook_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/ferrysync/ferry/framework/hook"
)

type event struct {
	hook.Event
	trace []string
}

func TestChainOrderAndAbort(t *testing.T) {
	var h hook.Hook[*event]
	h.Bind(&hook.Handler[*event]{ID: "b", Priority: 2, Func: func(e *event) error {
		e.trace = append(e.trace, "b-before")
		err := e.Next()
		e.trace = append(e.trace, "b-after")
		return err
	}})
	h.Bind(&hook.Handler[*event]{ID: "a", Priority: 1, Func: func(e *event) error {
		e.trace = append(e.trace, "a")
		return e.Next()
	}})
	e := &event{}
	if err := h.Trigger(e, func(e *event) error { e.trace = append(e.trace, "core"); return nil }); err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(e.trace), "[a b-before core b-after]"; got != want {
		t.Fatalf("trace %s, want %s", got, want)
	}

	// Re-binding an ID replaces the handler; an error aborts before the core.
	veto := errors.New("veto")
	h.Bind(&hook.Handler[*event]{ID: "a", Priority: 1, Func: func(e *event) error { return veto }})
	e = &event{}
	err := h.Trigger(e, func(e *event) error { e.trace = append(e.trace, "core"); return nil })
	if !errors.Is(err, veto) || len(e.trace) != 0 || h.Len() != 2 {
		t.Fatalf("err %v trace %v len %d", err, e.trace, h.Len())
	}
	h.Unbind("a", "b")
	if h.Len() != 0 {
		t.Fatalf("unbind left %d", h.Len())
	}
}

func TestTags(t *testing.T) {
	var h hook.Hook[*event]
	h.Bind(&hook.Handler[*event]{ID: "user-only", Tags: []string{"data.User"}, Func: func(e *event) error {
		e.trace = append(e.trace, "user")
		return e.Next()
	}})
	if h.HasHandlers("data.Note") || !h.HasHandlers("data.User") {
		t.Fatal("HasHandlers ignores tags")
	}
	e := &event{}
	_ = h.Trigger(e, nil, "data.Note")
	_ = h.Trigger(e, nil, "data.User")
	if fmt.Sprint(e.trace) != "[user]" {
		t.Fatalf("trace %v", e.trace)
	}
}

func TestMatchingAndGeneration(t *testing.T) {
	var h hook.Hook[*event]
	g0 := h.Generation()
	h.Bind(&hook.Handler[*event]{ID: "all", Priority: 1, Func: func(e *event) error { return e.Next() }})
	h.Bind(&hook.Handler[*event]{ID: "user", Tags: []string{"data.User"}, Func: func(e *event) error { return e.Next() }})
	g1 := h.Generation()
	if g1 == g0 {
		t.Fatal("Bind did not move the generation")
	}
	ids := func(tags ...string) string {
		var out []string
		for _, hd := range h.Matching(tags...) {
			out = append(out, hd.ID)
		}
		return fmt.Sprint(out)
	}
	if got := ids("data.User"); got != "[user all]" {
		t.Fatalf("matching data.User: %s", got)
	}
	if got := ids("data.Note"); got != "[all]" {
		t.Fatalf("matching data.Note: %s", got)
	}
	h.Unbind("all")
	if h.Generation() == g1 || ids("data.Note") != "[]" {
		t.Fatalf("after Unbind: generation %d, matching %s", h.Generation(), ids("data.Note"))
	}
}
