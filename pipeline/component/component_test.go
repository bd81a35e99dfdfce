package component_test

import (
	"context"
	"strings"
	"testing"

	"github.com/eventpipe/eventpipe/pipeline/component"
)

type cfg struct{}

func (*cfg) Validate() error { return nil }

func stageFactory(typ string) component.Factory {
	return component.NewStageFactory(typ, func() *cfg { return &cfg{} },
		func(context.Context, component.Settings, *cfg) (component.Stage, error) { return nil, nil })
}

func TestRegistry(t *testing.T) {
	r, err := component.NewRegistry(stageFactory("a"), stageFactory("b"))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Register(stageFactory("a")); err == nil || !strings.Contains(err.Error(), `stage type "a" registered twice`) {
		t.Errorf("duplicate: %v", err)
	}
	if _, err := r.Lookup(component.ClassOutput, "a"); err == nil || !strings.Contains(err.Error(), "unknown output type \"a\" (known: none)") {
		t.Errorf("classes share types: %v", err)
	}
	c := r.Clone()
	if err := c.Register(stageFactory("c")); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(r.Types(component.ClassStage), ","); got != "a,b" {
		t.Errorf("clone changed the original: %s", got)
	}
	if _, err := c.Lookup(component.ClassStage, "c"); err != nil {
		t.Error(err)
	}
	// A config of another type is refused, not type-asserted into a panic.
	f, _ := r.Lookup(component.ClassStage, "a")
	if _, err := f.Create(context.Background(), component.Settings{}, struct{ component.Config }{}); err == nil {
		t.Error("wrong config type accepted")
	}
}
