package host

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
)

func section(id byte, body ...byte) []byte {
	return append(append([]byte{id}, uleb(uint32(len(body)))...), body...)
}

func module(sections ...[]byte) []byte {
	m := []byte("\x00asm\x01\x00\x00\x00")
	for _, s := range sections {
		m = append(m, s...)
	}
	return m
}

var (
	typeVoidToI32 = section(1, 1, 0x60, 0, 1, 0x7f)
	oneFunc       = section(3, 1, 0)
	exportF       = section(7, 1, 1, 'f', 0, 0)
)

// code builds a code section of one function body.
func code(locals []byte, instrs ...byte) []byte {
	body := append(append([]byte(nil), locals...), instrs...)
	body = append(body, 0x0b)
	return section(10, append(append([]byte{1}, uleb(uint32(len(body)))...), body...)...)
}

// Modules a few bytes long that declare counts no decoder should believe.
func TestPreflightRefusesDeclaredCounts(t *testing.T) {
	huge := uleb(1<<32 - 1)
	for _, tc := range []struct {
		name string
		bin  []byte
		want string
	}{
		{"locals", module(typeVoidToI32, oneFunc, code(append(append([]byte{1}, huge...), 0x7f), 0x41, 0)), "locals"},
		{"data segments", module(section(11, huge...)), "declares 4294967295 items"},
		{"functions", module(section(3, huge...)), "declares 4294967295 items"},
		{"data count", module(section(12, huge...)), "data count"},
		{"section size", append(module(), 1, 0xff, 0xff, 0xff, 0x0f), "declares"},
		{"table", module(section(4, 1, 0x70, 0, 0xff, 0xff, 0xff, 0x0f)), "starts with"},
		{"header", []byte("\x00asm\x02\x00\x00\x00"), "not version 1"},
		// wazero v1.12's validator panics on a call to a function whose
		// type index is out of range (found by FuzzMeterKeepsModulesValid).
		{"function type", module(typeVoidToI32, section(3, 2, 0, 48)), "function 1 has type 48; the module declares 1 types"},
		{"import type", module(typeVoidToI32, section(2, 1, 1, 'm', 1, 'f', 0, 7)), "import 0 has type 7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := preflight(tc.bin)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// A table declared without a maximum is given its initial size as one,
// so table.grow in a loop fails instead of taking memory.
func TestPreflightCapsTableGrowth(t *testing.T) {
	grow := []byte{
		0x03, 0x40, // loop
		0xd0, 0x70, 0x41, 0x01, 0xfc, 0x0f, 0x00, // ref.null func; i32.const 1; table.grow 0
		0x41, 0x7f, 0x47, 0x0d, 0x00, // i32.const -1; i32.ne; br_if 0
		0x0b,             // end
		0xfc, 0x10, 0x00, // table.size 0
	}
	bin := module(typeVoidToI32, oneFunc, section(4, 1, 0x70, 0, 1), exportF, code([]byte{0}, grow...))
	safe, err := preflight(bin)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	mod, err := rt.Instantiate(ctx, safe)
	if err != nil {
		t.Fatal(err)
	}
	res, err := mod.ExportedFunction("f").Call(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res[0] != 1 {
		t.Fatalf("table grew to %d elements", res[0])
	}
}

// A panic while a module is read becomes the plugin's load error.
func TestNoPanicTurnsAPanicIntoAnError(t *testing.T) {
	v, err := noPanic(func() (int, error) { panic("index out of range [48] with length 5") })
	if v != 0 || err == nil || !strings.Contains(err.Error(), "index out of range [48]") {
		t.Fatalf("%d, %v", v, err)
	}
	if v, err := noPanic(func() (int, error) { return 7, nil }); v != 7 || err != nil {
		t.Fatalf("%d, %v", v, err)
	}
}

// A call to a function whose type index is out of range: wazero v1.12's
// validator panics on it (a later version may refuse it instead). Load
// refuses the file with preflight's reason, and the process goes on.
func TestLoadRefusesAModuleThatCrashesTheValidator(t *testing.T) {
	bin := module(typeVoidToI32, section(3, 2, 0, 48),
		section(10, 2, 4, 0, 0x10, 1, 0x0b, 4, 0, 0x41, 0, 0x0b))
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	if _, err := noPanic(func() (wazero.CompiledModule, error) { return rt.CompileModule(ctx, bin) }); err == nil {
		t.Fatal("wazero accepted the module")
	}
	path := filepath.Join(t.TempDir(), "crash.wasm")
	if err := os.WriteFile(path, bin, 0o600); err != nil {
		t.Fatal(err)
	}
	h, err := New(Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)
	_, err = h.Load(ctx, Spec{PluginConfig: PluginConfig{Path: path}, Kind: KindFilter})
	if err == nil || !strings.Contains(err.Error(), "function 1 has type 48") {
		t.Fatalf("load: %v", err)
	}
}
