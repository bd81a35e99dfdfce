package host

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// moduleFiles are the modules of the repository: the hostile suite, the
// reference and conformance plugins, and the built-in plugins when built.
func moduleFiles(t testing.TB) []string {
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

// Whatever bytes a plugin file holds, the load path before wazero neither
// panics nor hands on a module that metering breaks: a module preflight
// accepts and wazero validates is metered, and the metered module is valid
// too (a metering bug would be a way past the fuel). Seeds: the
// repository's small modules.
func FuzzMeterKeepsModulesValid(f *testing.F) {
	for _, file := range moduleFiles(f) {
		if bin, err := os.ReadFile(file); err == nil && len(bin) < 64<<10 {
			f.Add(bin)
		}
	}
	ctx := context.Background()
	// The interpreter validates as the compiler does, and compiles fast.
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	f.Cleanup(func() { _ = rt.Close(ctx) })
	f.Fuzz(func(t *testing.T, bin []byte) {
		bin, err := preflight(bin)
		if err != nil {
			return
		}
		// Load meters before wazero validates: meter sees invalid modules
		// too, and may refuse them, but not panic.
		metered, meterErr := meter(bin)
		cm, err := rt.CompileModule(ctx, bin)
		if err != nil {
			return // not valid wasm: Load refuses it
		}
		_ = cm.Close(ctx)
		if meterErr != nil {
			t.Fatalf("a valid module could not be metered: %v", meterErr)
		}
		cm, err = rt.CompileModule(ctx, metered)
		if err != nil {
			t.Fatalf("the metered module is not valid: %v", err)
		}
		_ = cm.Close(ctx)
	})
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

// Leaf loops (no call, no loop inside) are rewritten with their yield
// outside them and the branches that leave them renumbered: every function
// of testdata/plugins/leafloops.wat gives the same result metered and not,
// a loop iteration still costs one unit, across yields too, and a loop
// still stops when the fuel runs out.
func TestMeteredLeafLoopsKeepTheirMeaning(t *testing.T) {
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	bin, err := os.ReadFile("testdata/plugins/leafloops.wasm")
	if err != nil {
		t.Fatal(err)
	}
	metered, err := meter(bin)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := rt.InstantiateWithConfig(ctx, bin, wazero.NewModuleConfig().WithName("plain"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := rt.InstantiateWithConfig(ctx, metered, wazero.NewModuleConfig().WithName("metered"))
	if err != nil {
		t.Fatal(err)
	}
	fuel := m.ExportedGlobal(FuelExport).(api.MutableGlobal)
	call := func(mod api.Module, fn string, n uint64) (uint64, error) {
		res, err := mod.ExportedFunction(fn).Call(ctx, n)
		if err != nil {
			return 0, err
		}
		return res[0], nil
	}
	for _, fn := range []string{"sum", "brout", "table", "ret", "nested", "typed"} {
		for _, n := range []uint64{0, 1, 2, 3, 4, 7, 8, 9, 13, 50, 1000} {
			fuel.Set(1 << 26) // enough; a loop the rewrite broke runs out instead of hanging
			want, err := call(plain, fn, n)
			if err != nil {
				t.Fatal(err)
			}
			got, err := call(m, fn, n)
			if err != nil || got != want {
				t.Errorf("%s(%d) = %d, %v metered; %d unmetered", fn, n, int32(got), err, int32(want))
			}
		}
	}
	used := func(n uint64) int64 {
		fuel.Set(1 << 26)
		if _, err := call(m, "sum", n); err != nil {
			t.Fatal(err)
		}
		return 1<<26 - int64(fuel.Get())
	}
	// One unit an iteration, and one more at each yield (every 65,536
	// units: the loop is entered again at its check), the same every time.
	if a, b := used(100_000), used(300_000); b-a < 200_000 || b-a > 200_000+200_000/YieldEvery+1 {
		t.Errorf("200,000 more iterations cost %d units", b-a)
	}
	if a, b := used(300_000), used(300_000); a != b {
		t.Errorf("the same call cost %d and %d units", a, b)
	}
	want := uint64(0) // i32 arithmetic wraps
	for i := range uint32(300_000) {
		want = uint64(uint32(want) + i)
	}
	fuel.Set(1 << 26)
	if got, err := call(m, "sum", 300_000); err != nil || got != want {
		t.Errorf("sum(300000) = %d, %v metered; want %d", got, err, want)
	}
	// Out of fuel: the loop traps and the tank reads empty.
	fuel.Set(500)
	if _, err := call(m, "sum", 1_000_000); err == nil {
		t.Error("a loop on 500 units of fuel ran 1,000,000 iterations")
	}
	if left := int64(fuel.Get()); left != 0 {
		t.Errorf("%d units left after running out", left)
	}
}
