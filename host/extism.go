package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"unsafe"

	extism "github.com/extism/go-sdk"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/eventpipe/eventpipe/pipeline"
)

// The Extism compatibility path (sdk/ABI.md, "Extism plugins"): a module
// built with an Extism PDK runs through github.com/extism/go-sdk. It gets
// the same batches as JSON, one call per batch, with the same memory cap,
// fuel, timeout, failure policy and counters. Slower than ABI v1: Extism
// copies input and output through host calls.
//
// The module is metered as an ABI v1 module is (fuel.go), and run without
// wazero's termination checks: the go-sdk turns those on whenever it has a
// timeout, and they made the Go PDK's byte-at-a-time input loops 6x
// slower. The watchdog reaches the module's fuel and stop globals through
// its main module, which the go-sdk does not export (extismMain).

type extismPlugin struct {
	compiled *extism.CompiledPlugin
	pool     chan *extismInstance
}

// extismInstance is an Extism plugin instance and the meter of its main
// module (fuel nil when unmetered).
type extismInstance struct {
	*extism.Plugin
	meter instance
}

// extismMain is the main module of an Extism plugin instance: the go-sdk
// keeps it in an unexported field. Reading it is tied to the go-sdk
// version go.mod pins; TestExtismPluginIsMetered fails if an upgrade
// moves it, and Load refuses Extism plugins (with this error) rather than
// run them unbounded.
func extismMain(p *extism.Plugin) (api.Module, error) {
	f := reflect.ValueOf(p).Elem().FieldByName("mainModule")
	if !f.IsValid() || f.Type() != reflect.TypeFor[api.Module]() {
		return nil, errors.New("extism: this go-sdk version does not keep its main module where eventpipe looks for it (mainModule): cannot meter the plugin")
	}
	m, _ := reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().Interface().(api.Module)
	if m == nil {
		return nil, errors.New("extism: the plugin instance has no main module")
	}
	return m, nil
}

func isExtism(compiled wazero.CompiledModule) bool {
	for _, f := range compiled.ImportedFunctions() {
		if mod, _, _ := f.Import(); mod == "extism:host/env" {
			return true
		}
	}
	return false
}

func (h *Host) loadExtism(ctx context.Context, p *Plugin, bin []byte) error {
	pages := uint32((p.spec.MaxMemory + 65535) / 65536)
	m := extism.Manifest{
		Wasm:   []extism.Wasm{extism.WasmData{Data: bin}},
		Memory: &extism.ManifestMemory{MaxPages: pages},
		// No Extism timeout: with one the go-sdk turns on wazero's
		// termination checks. The watchdog bounds a call (fuel.go).
	}
	for _, ap := range p.spec.AllowedPaths {
		dir, mode, _ := strings.Cut(ap, ":")
		if m.AllowedPaths == nil {
			m.AllowedPaths = map[string]string{}
		}
		if mode == "rw" {
			m.AllowedPaths[dir] = dir
		} else {
			m.AllowedPaths["ro:"+dir] = dir
		}
	}
	rtCfg := wazero.NewRuntimeConfig().WithCompilationCache(h.cache).WithCloseOnContextDone(false)
	cp, err := extism.NewCompiledPlugin(ctx, m, extism.PluginConfig{EnableWasi: true, RuntimeConfig: rtCfg}, nil)
	if err != nil {
		return fmt.Errorf("extism: %w", err)
	}
	p.ext = &extismPlugin{compiled: cp, pool: make(chan *extismInstance, p.spec.Pool)}
	first, err := p.newExtismInstance(ctx)
	if err != nil {
		_ = cp.Close(ctx)
		return err
	}
	// The guest runtime's initialisation runs in this first call: both on
	// the load's fuel and within load_timeout.
	first.meter.arm(LoadFuel, p.spec.LoadTimeout)
	_, out, err := first.CallWithContext(ctx, "eventpipe_manifest", nil)
	if err != nil {
		if err = first.meter.loadFailure(err); first.meter.fired { // loadFailure disarms
			err = loadTimeout(p.spec.LoadTimeout, err)
		}
	}
	first.meter.disarm() // (again: a no-op once disarmed)
	if err != nil {
		_ = cp.Close(ctx)
		return fmt.Errorf("extism plugin: eventpipe_manifest: %w (an Extism plugin exports eventpipe_manifest and eventpipe_process, see sdk/ABI.md)", err)
	}
	if err := json.Unmarshal(out, &p.manifest); err != nil {
		_ = cp.Close(ctx)
		return fmt.Errorf("extism plugin: manifest is not JSON: %w", err)
	}
	if p.manifest.Kind != p.spec.Kind {
		_ = cp.Close(ctx)
		return fmt.Errorf("is a %s plugin, used here as %s", p.manifest.Kind, p.spec.Kind)
	}
	if !first.FunctionExists("eventpipe_process") {
		_ = cp.Close(ctx)
		return errors.New("extism plugin does not export eventpipe_process")
	}
	p.ext.pool <- first
	for i := 1; i < p.spec.Pool; i++ {
		p.ext.pool <- nil
	}
	return nil
}

func (p *Plugin) newExtismInstance(ctx context.Context) (*extismInstance, error) {
	cfg := wazero.NewModuleConfig()
	for _, k := range p.spec.Env {
		if v, ok := p.spec.Getenv(k); ok {
			cfg = cfg.WithEnv(k, v)
		}
	}
	in, err := p.ext.compiled.Instance(ctx, extism.PluginInstanceConfig{ModuleConfig: cfg})
	if err != nil {
		return nil, fmt.Errorf("extism instance: %w", err)
	}
	arg, _ := json.Marshal(map[string]any{"name": p.spec.Name, "config": p.spec.Config, "outputs": p.spec.Outputs})
	in.Config = map[string]string{"eventpipe": string(arg)}
	in.SetLogger(func(level extism.LogLevel, msg string) {
		if p.logLimit.Allow() {
			p.spec.Logger.Info(msg, "plugin", p.spec.Name, "extism_level", level.String())
		}
	})
	ei := &extismInstance{Plugin: in}
	if !p.spec.Unmetered {
		mod, err := extismMain(in)
		if err != nil {
			_ = in.Close(ctx)
			return nil, err
		}
		fuel, ok := mod.ExportedGlobal(FuelExport).(api.MutableGlobal)
		if !ok {
			_ = in.Close(ctx)
			return nil, errors.New("extism: the main module is not metered")
		}
		ei.meter.fuel = fuel
		ei.meter.stackW, _ = mod.ExportedGlobal(StackExport).(api.MutableGlobal)
		ei.meter.stop, _ = mod.ExportedGlobal(StopExport).(api.MutableGlobal)
	}
	return ei, nil
}

// runExtism is run for an Extism plugin: the kept events as a JSON array in,
// the kind's output as JSON out.
func (s *Stage) runExtism(ctx context.Context, b *pipeline.Batch) error {
	var in *extismInstance
	select {
	case in = <-s.ext.pool:
	case <-ctx.Done():
		return &failure{FailStart, ctx.Err()}
	}
	if in == nil {
		var err error
		if in, err = s.newExtismInstance(ctx); err != nil {
			s.ext.pool <- nil
			return &failure{FailStart, err}
		}
	}
	broken := false
	defer func() {
		if broken {
			_ = in.Close(context.WithoutCancel(ctx))
			s.metrics.restarts.Add(1)
			s.ext.pool <- nil
			return
		}
		s.ext.pool <- in
	}()
	s.jsonBuf = append(s.jsonBuf[:0], '[')
	for k := range s.view {
		if k > 0 {
			s.jsonBuf = append(s.jsonBuf, ',')
		}
		s.jsonBuf = s.view[k].AppendJSON(s.jsonBuf)
	}
	s.jsonBuf = append(s.jsonBuf, ']')
	cctx, cancel := context.WithTimeout(ctx, s.spec.Timeout)
	defer cancel()
	in.meter.arm(s.batchFuel(len(s.view)), s.spec.Timeout)
	rc, out, err := in.CallWithContext(cctx, "eventpipe_process", s.jsonBuf)
	if err != nil {
		broken = true
		return s.classify(cctx, &in.meter, err)
	}
	s.disarm(&in.meter)
	if rc != 0 {
		return &failure{FailError, fmt.Errorf("eventpipe_process returned %d: %s", rc, in.GetError())}
	}
	n := len(s.kept)
	bad := func(format string, args ...any) error {
		return &failure{FailBadOutput, fmt.Errorf(format, args...)}
	}
	switch s.manifest.Kind {
	case KindFilter, KindRoute:
		var vals []uint64
		if err := json.Unmarshal(out, &vals); err != nil || len(vals) != n {
			return bad("output must be a JSON array of %d numbers (%v)", n, err)
		}
		for k, i := range s.kept {
			v := vals[k]
			if s.manifest.Kind == KindFilter {
				switch v {
				case 0:
				case 1:
					b.Mark(i, pipeline.Drop, s.by, "dropped by plugin")
				case 2:
					b.Mark(i, pipeline.DeadLetter, s.by, "refused by plugin")
				default:
					return bad("verdict %d for event %d", v, k)
				}
				continue
			}
			if v>>uint(len(s.spec.Outputs)) != 0 {
				return bad("event %d routed beyond the %d outputs", k, len(s.spec.Outputs))
			}
			b.Routes[i] = v
			if v == 0 {
				b.Mark(i, pipeline.Drop, s.by, "unrouted")
			}
		}
	case KindTransform:
		var items []json.RawMessage
		if err := json.Unmarshal(out, &items); err != nil || len(items) != n {
			return bad("output must be a JSON array of %d events or nulls (%v)", n, err)
		}
		for k, i := range s.kept {
			if string(items[k]) == "null" {
				b.Mark(i, pipeline.Drop, s.by, "dropped by plugin")
				continue
			}
			ev, err := pipeline.Decode(items[k], pipeline.DecodeOptions{MaxSize: s.spec.MaxEventSize})
			if err != nil {
				return bad("event %d: %v", k, err)
			}
			if ev.Time.IsZero() {
				ev.Time = b.Events[i].Time
			}
			// id and sequence are the host's (sdk/ABI.md).
			if ev.ID != b.Events[i].ID || ev.Sequence != b.Events[i].Sequence {
				s.metrics.fail("host_field")
				ev.ID, ev.Sequence = b.Events[i].ID, b.Events[i].Sequence
			}
			b.Events[i] = ev
		}
	}
	return nil
}
