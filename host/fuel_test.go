package host

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/tetratelabs/wazero"
)

// moduleFiles are the modules of the repository: the hostile suite, the
// reference and conformance plugins, and the built-in plugins when built.
func moduleFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, pat := range []string{"testdata/plugins/*.wasm", "testdata/conformance/*.wasm", "../sdk/wat/*.wasm", "../bin/plugins/*.wasm"} {
		m, err := filepath.Glob(pat)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 10 {
		t.Fatalf("found %d modules", len(files))
	}
	return files
}

// Every module of the repository stays valid once metered.
func TestMeterKeepsModulesValid(t *testing.T) {
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	for _, f := range moduleFiles(t) {
		bin, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bin, err = preflight(bin); err != nil {
			continue // refused before metering (hostile)
		}
		metered, err := meter(bin)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		cm, err := rt.CompileModule(ctx, metered)
		if err != nil {
			t.Errorf("%s: metered module does not compile: %v", f, err)
			continue
		}
		_ = cm.Close(ctx)
	}
}
