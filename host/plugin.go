// Package host runs eventpipe's wasm plugins with wazero: it compiles a
// module once (with a compilation cache kept on disk across restarts),
// checks its ABI marker, manifest, imports and optional sha256 pin, and runs
// a pool of sandboxed instances — no files, network, environment or
// arguments unless the pipeline grants them; memory and time per batch
// capped; a crash kills one instance, a fresh one takes its place.
//
// A loaded Plugin is a pipeline.Stage (filter, transform, route); the
// failure policy, crash-loop backoff and per-plugin metrics wrap it once
// (stage.go). sdk/ABI.md is the contract.
package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"golang.org/x/time/rate"

	"github.com/eventpipe/eventpipe/pipeline"
)

// Host owns what plugins share: the compilation cache and the logger.
type Host struct {
	// One cache serves every build: a metered module is other bytes than
	// its unmetered original, so another entry, and wazero's module id
	// includes whether termination checks are compiled in.
	cache  wazero.CompilationCache
	logger *slog.Logger
	open   atomic.Int64 // wazero runtimes not yet closed
	// meterDir keeps metered modules by the sha256 of the original, so a
	// restart does not meter again ("": not kept).
	meterDir string
}

// Options configure a Host.
type Options struct {
	// CacheDir keeps compiled modules across restarts ("" : in memory only).
	CacheDir string
	Logger   *slog.Logger
}

// New returns a Host.
func New(opts Options) (*Host, error) {
	h := &Host{logger: opts.Logger}
	if h.logger == nil {
		h.logger = slog.Default()
	}
	if opts.CacheDir != "" {
		c, err := wazero.NewCompilationCacheWithDir(opts.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("wasm host: compilation cache %s: %w", opts.CacheDir, err)
		}
		h.cache = c
		h.meterDir = filepath.Join(opts.CacheDir, "metered-v2") // bump when fuel.go changes its output
	} else {
		h.cache = wazero.NewCompilationCache()
	}
	return h, nil
}

// Close releases the compilation cache.
func (h *Host) Close(ctx context.Context) error { return h.cache.Close(ctx) }

// OpenRuntimes is how many plugins are loaded and not yet closed (each has
// a wazero runtime of its own). A reload must bring it back to where it was.
func (h *Host) OpenRuntimes() int { return int(h.open.Load()) }

// The defaults of a plugin entry, written once (NewPluginConfig).
const (
	DefaultPool      = 1
	DefaultMaxMemory = 64 << 20
	DefaultTimeout   = time.Second
	// DefaultLoadTimeout bounds starting an instance. A module that loops
	// there is refused instead of hanging the run, `validate` or a reload.
	DefaultLoadTimeout = 10 * time.Second
	// DefaultFuel and DefaultFuelPerEvent: see PluginConfig.Fuel.
	// The built-in sanitize (Go) uses ~1,400 units per event.
	DefaultFuel         = 100_000_000
	DefaultFuelPerEvent = 1_000_000
	DefaultOnError      = "dead_letter"
)

// Capabilities are the host functions a plugin may be granted.
var Capabilities = []string{"log", "metrics", "http"}

// PluginConfig is one plugin entry of pipeline.yaml (filter.plugins,
// sanitize.plugins, route.plugin, or an output of type plugin).
type PluginConfig struct {
	Path   string `yaml:"path"`   // the .wasm file
	SHA256 string `yaml:"sha256"` // optional pin: "sha256:<hex>" or "<hex>"
	Config any    `yaml:"config"` // handed to eventpipe_init
	// Timeout bounds one batch (default 1s).
	Timeout time.Duration `yaml:"timeout"`
	// Fuel and FuelPerEvent bound the work of one batch: Fuel +
	// FuelPerEvent × events units, one unit per function call and loop
	// iteration. A batch that runs out traps (on_error applies).
	Fuel         int64 `yaml:"fuel"`
	FuelPerEvent int64 `yaml:"fuel_per_event"`
	// LoadTimeout bounds starting an instance: the start function,
	// _initialize, eventpipe_manifest and eventpipe_init (default 10s).
	LoadTimeout time.Duration `yaml:"load_timeout"`
	// MaxMemory bounds linear memory in bytes (default 64 MiB).
	MaxMemory int64 `yaml:"max_memory"`
	// Pool is how many instances may run at once (default 1).
	Pool int `yaml:"pool"`
	// OnError is dead_letter (default), fail_open or fail_closed.
	OnError      string   `yaml:"on_error"`
	Capabilities []string `yaml:"capabilities"`  // granted by the pipeline
	AllowedHosts []string `yaml:"allowed_hosts"` // hosts the http capability may reach
	AllowedPaths []string `yaml:"allowed_paths"` // WASI preopens: "dir" (read-only) or "dir:rw"
	Env          []string `yaml:"env"`           // environment variables passed through
	// Trusted is accepted for configurations written when limits were
	// expensive, and does nothing: every module is metered (fuel.go). An
	// unmetered module stuck in a loop could never be stopped, and would
	// hold Go's stop-the-world garbage collection, and so the whole
	// process, with it.
	Trusted bool `yaml:"trusted"`
}

// NewPluginConfig returns a plugin entry with every default.
func NewPluginConfig() *PluginConfig {
	return &PluginConfig{Pool: DefaultPool, MaxMemory: DefaultMaxMemory, Timeout: DefaultTimeout, LoadTimeout: DefaultLoadTimeout,
		Fuel: DefaultFuel, FuelPerEvent: DefaultFuelPerEvent, OnError: DefaultOnError}
}

// Validate reports every problem at once, as *pipeline.FieldError.
func (c *PluginConfig) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, pipeline.FieldErrorf(field, format, args...))
	}
	if c.Path == "" {
		bad("path", "must be set (a .wasm file)")
	}
	if c.SHA256 != "" {
		if h := strings.TrimPrefix(c.SHA256, "sha256:"); len(h) != 64 || strings.Trim(strings.ToLower(h), "0123456789abcdef") != "" {
			bad("sha256", "want sha256: and 64 hex digits")
		}
	}
	switch c.OnError {
	case "fail_open", "fail_closed", "dead_letter":
	default:
		bad("on_error", "want fail_open, fail_closed or dead_letter, got %q", c.OnError)
	}
	if c.Pool < 1 {
		bad("pool", "must be at least 1, got %d", c.Pool)
	}
	if c.MaxMemory < 65536 {
		bad("max_memory", "must be at least one wasm page (65536 bytes), got %d", c.MaxMemory)
	}
	if c.Timeout <= 0 {
		bad("timeout", "must be positive, got %v", c.Timeout)
	}
	if c.Fuel < 0 || c.FuelPerEvent < 0 {
		bad("fuel", "fuel and fuel_per_event must not be negative")
	}
	if c.LoadTimeout < 0 {
		bad("load_timeout", "must not be negative, got %v", c.LoadTimeout)
	}
	for i, cp := range c.Capabilities {
		if !slices.Contains(Capabilities, strings.ToLower(cp)) {
			bad(fmt.Sprintf("capabilities[%d]", i), "unknown capability %q (known: %s)", cp, strings.Join(Capabilities, ", "))
		}
	}
	for i, ap := range c.AllowedPaths {
		if dir, mode, ok := strings.Cut(ap, ":"); dir == "" || ok && mode != "rw" && mode != "ro" {
			bad(fmt.Sprintf("allowed_paths[%d]", i), "want a directory, optionally with :rw or :ro, got %q", ap)
		}
	}
	return errors.Join(errs...)
}

// Spec says how to run one plugin: its entry, and what the pipeline uses
// it as.
type Spec struct {
	PluginConfig
	Name    string   // for logs, metrics and dead letters; default: the file name
	Kind    string   // what the pipeline uses it as
	Outputs []string // route plugins: the pipeline's output names
	// Getenv looks up the variables Env passes through (nil: os.LookupEnv).
	Getenv func(string) (string, bool)
	// Logger receives the plugin's log lines (nil: the host's).
	Logger *slog.Logger
	// Unmetered runs the module without fuel, stack bound or timeout.
	// Only for measuring what the limits cost: a loop in such a module
	// can freeze the process (see PluginConfig.Trusted). Not in YAML.
	Unmetered bool
	// MaxEventSize bounds an event a transform returns (0: the default,
	// pipeline.DefaultMaxEventSize; negative: no bound).
	MaxEventSize int
}

// Plugin is a compiled, checked plugin with its pool of instances.
type Plugin struct {
	spec     Spec
	host     *Host
	rt       wazero.Runtime
	compiled wazero.CompiledModule
	modCfg   wazero.ModuleConfig
	manifest Manifest
	reads    fieldSet // the record fields the host copies in (manifest reads)
	initArg  []byte
	pool     chan *instance
	logLimit *rate.Limiter
	metrics  *Metrics
	ext      *extismPlugin // set for Extism plugins
	client   *http.Client  // the http capability's, with the allowlist policy
	closed   atomic.Bool
	// checked is set once the manifest was checked against the grant:
	// host functions serve nothing before.
	checked atomic.Bool
}

// allows reports whether the plugin may use capability c now.
func (p *Plugin) allows(c string) bool {
	return p.checked.Load() && p.manifest.has(c) && p.granted(c)
}

// Load compiles and checks a plugin and starts its first instance; the
// rest of the pool starts on demand.
func (h *Host) Load(ctx context.Context, spec Spec) (*Plugin, error) {
	if spec.Name == "" {
		spec.Name = strings.TrimSuffix(filepath.Base(spec.Path), ".wasm")
	}
	def := NewPluginConfig()
	if spec.Pool <= 0 {
		spec.Pool = def.Pool
	}
	if spec.MaxMemory <= 0 {
		spec.MaxMemory = def.MaxMemory
	}
	if spec.Timeout <= 0 {
		spec.Timeout = def.Timeout
	}
	if spec.LoadTimeout <= 0 {
		spec.LoadTimeout = def.LoadTimeout
	}
	if spec.Fuel == 0 && spec.FuelPerEvent == 0 {
		spec.Fuel, spec.FuelPerEvent = def.Fuel, def.FuelPerEvent
	}
	if spec.OnError == "" {
		spec.OnError = def.OnError
	}
	if spec.Getenv == nil {
		spec.Getenv = os.LookupEnv
	}
	if spec.Logger == nil {
		spec.Logger = h.logger
	}
	if spec.MaxEventSize == 0 {
		spec.MaxEventSize = pipeline.DefaultMaxEventSize
	}
	fail := func(format string, args ...any) (*Plugin, error) {
		return nil, fmt.Errorf("plugin %s: "+format, append([]any{spec.Path}, args...)...)
	}
	if st, err := os.Stat(spec.Path); err != nil {
		return fail("%w", err)
	} else if st.Size() > MaxModuleBytes {
		return fail("the file is %d bytes, over the limit of %d for a module", st.Size(), MaxModuleBytes)
	}
	bin, err := readAtMost(spec.Path, MaxModuleBytes)
	if err != nil {
		return fail("%w", err)
	}
	if spec.SHA256 != "" {
		sum := sha256.Sum256(bin)
		want := strings.ToLower(strings.TrimPrefix(spec.SHA256, "sha256:"))
		if got := hex.EncodeToString(sum[:]); got != want {
			return fail("sha256 mismatch: the file is sha256:%s, the pipeline pins sha256:%s", got, want)
		}
	}
	if bin, err = preflight(bin); err != nil {
		if errors.Is(err, errNotWasm) {
			return fail("%w", err)
		}
		return fail("refused before decoding: %w", err)
	}
	if spec.Trusted {
		spec.Logger.Warn("plugin: trusted is deprecated and has no effect: the module is metered like any other (limits are cheap now)", "plugin", spec.Name)
	}
	if !spec.Unmetered {
		if bin, err = noPanic(func() ([]byte, error) { return h.metered(bin) }); err != nil {
			return fail("cannot meter the module: %w", err)
		}
	}
	pages := uint32((spec.MaxMemory + 65535) / 65536)
	// No termination checks: the fuel stops a metered module (fuel.go).
	rtCfg := wazero.NewRuntimeConfigCompiler().
		WithCompilationCache(h.cache).
		WithMemoryLimitPages(pages).
		WithCloseOnContextDone(false)
	p := &Plugin{spec: spec, host: h, rt: wazero.NewRuntimeWithConfig(ctx, rtCfg),
		logLimit: rate.NewLimiter(10, 10), metrics: newMetrics(),
		client: policyClient(spec.AllowedHosts, spec.Timeout)}
	h.open.Add(1)
	ok := false
	defer func() {
		if !ok {
			_ = p.Close(ctx)
		}
	}()
	if p.compiled, err = noPanic(func() (wazero.CompiledModule, error) { return p.rt.CompileModule(ctx, bin) }); err != nil {
		return fail("not a valid wasm module: %w", err)
	}
	if isExtism(p.compiled) {
		if spec.Kind == KindExport {
			return fail("Extism export plugins are not supported: write the exporter to ABI v1")
		}
		if err := h.loadExtism(ctx, p, bin); err != nil {
			return fail("%w", err)
		}
		ok = true
		return p, nil
	}
	if err := p.checkImports(); err != nil {
		return fail("%w", err)
	}
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, p.rt); err != nil {
		return fail("%w", err)
	}
	if err := p.instantiateHostModule(ctx); err != nil {
		return fail("%w", err)
	}
	if p.modCfg, err = p.moduleConfig(); err != nil {
		return fail("%w", err)
	}
	first, err := p.newInstance(ctx, true)
	if err != nil {
		return fail("%w", err)
	}
	p.pool = make(chan *instance, spec.Pool)
	p.pool <- first
	for i := 1; i < spec.Pool; i++ {
		p.pool <- nil // started lazily
	}
	ok = true
	return p, nil
}

// noPanic runs f, a step that reads a module's bytes (metering, wazero's
// decoder and validator), and turns a panic in it into an error: preflight
// refuses what is known to make them panic (FuzzMeterKeepsModulesValid
// found a wazero validator panic), and a file built to find the next one
// must not take a running pipeline down either.
func noPanic[T any](f func() (T, error)) (v T, err error) {
	defer func() {
		if r := recover(); r != nil {
			var zero T
			v, err = zero, fmt.Errorf("the module made the wasm loader fail: %v", r)
		}
	}()
	return f()
}

// callContext is the context of one batch's calls into the module. Only a
// plugin that may make HTTP requests gets a deadline in it, so that a
// request in flight ends with the batch: the module's own code is stopped
// by the watchdog (arm), and a context with a timer costs ~0.35 µs a
// batch, 5 ns an event in a batch of 64.
func (p *Plugin) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if p.allows("http") {
		return context.WithTimeout(ctx, p.spec.Timeout)
	}
	return ctx, func() {}
}

// batchFuel is the fuel of a batch of n events.
func (p *Plugin) batchFuel(n int) uint64 {
	f := uint64(p.spec.Fuel) + uint64(p.spec.FuelPerEvent)*uint64(n)
	return min(f, 1<<62)
}

// deadlineOf is ctx's deadline (newInstance always sets one).
func deadlineOf(ctx context.Context) time.Time {
	d, ok := ctx.Deadline()
	if !ok {
		return time.Now().Add(DefaultLoadTimeout)
	}
	return d
}

// metered returns bin with fuel metering, from the host's cache when a
// previous run metered the same module. The cache is trusted as wazero's
// compilation cache beside it is: both live in the host's cache directory.
func (h *Host) metered(bin []byte) ([]byte, error) {
	if h.meterDir == "" {
		return meter(bin)
	}
	sum := sha256.Sum256(bin)
	path := filepath.Join(h.meterDir, fmt.Sprintf("%s-m%d.wasm", hex.EncodeToString(sum[:]), meterRevision))
	if b, err := os.ReadFile(path); err == nil {
		return b, nil
	}
	m, err := meter(bin)
	if err != nil {
		return nil, err
	}
	// Written whole or not at all: a temporary file renamed into place.
	if err := os.MkdirAll(h.meterDir, 0o700); err == nil {
		if tmp, err := os.CreateTemp(h.meterDir, "tmp-*"); err == nil {
			_, werr := tmp.Write(m)
			if cerr := tmp.Close(); werr == nil && cerr == nil {
				_ = os.Rename(tmp.Name(), path)
			} else {
				_ = os.Remove(tmp.Name())
			}
		}
	}
	return m, nil
}

// readAtMost reads a file, failing if it holds more than limit bytes (it
// may have grown since it was looked at).
func readAtMost(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("the file is %d bytes, over the limit of %d for a module", st.Size(), limit)
	}
	b := make([]byte, st.Size(), st.Size()+1)
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, err
	}
	if n, _ := f.Read(b[len(b):cap(b)]); n > 0 {
		return nil, errors.New("the file grew while it was read")
	}
	return b, nil
}

// Manifest is what the plugin declared.
func (p *Plugin) Manifest() Manifest { return p.manifest }

// Name is the plugin's name in logs, metrics and dead letters.
func (p *Plugin) Name() string { return p.spec.Name }

// Close stops every instance and releases the plugin's runtime. It is
// safe to call more than once.
func (p *Plugin) Close(ctx context.Context) error {
	if !p.closed.CompareAndSwap(false, true) {
		return nil
	}
	defer p.host.open.Add(-1)
	if p.ext != nil {
		_ = p.ext.compiled.Close(ctx)
	}
	return p.rt.Close(ctx)
}

func (p *Plugin) checkImports() error {
	for _, f := range p.compiled.ImportedFunctions() {
		mod, name, _ := f.Import()
		switch mod {
		case "wasi_snapshot_preview1":
		case "eventpipe":
			c, ok := importCapability[name]
			if !ok {
				return fmt.Errorf("imports unknown host function eventpipe.%s", name)
			}
			if !p.granted(c) {
				return fmt.Errorf("imports eventpipe.%s, which needs capability %q; the pipeline does not grant it (capabilities: [%s])", name, c, strings.Join(p.spec.Capabilities, ", "))
			}
		default:
			return fmt.Errorf("imports %s.%s, which the host does not provide", mod, name)
		}
	}
	return nil
}

// importCapability is the capability each host function needs.
var importCapability = map[string]string{"log": "log", "metric_add": "metrics", "http_request": "http"}

func (p *Plugin) granted(c string) bool {
	for _, g := range p.spec.Capabilities {
		if strings.EqualFold(g, c) {
			return true
		}
	}
	return false
}

// instantiateHostModule provides the eventpipe host functions. Whether a
// plugin may use them is checked against its manifest and the grant.
func (p *Plugin) instantiateHostModule(ctx context.Context) error {
	_, err := p.rt.NewHostModuleBuilder("eventpipe").
		NewFunctionBuilder().WithFunc(func(ctx context.Context, m api.Module, level, ptr, n uint32) {
		// Nothing is done for a module before its manifest was checked
		// against the pipeline's grant (a start function that logs).
		if !p.allows("log") || !p.logLimit.Allow() {
			p.metrics.logsDropped.Add(1)
			return
		}
		if _, ok := m.Memory().Read(ptr, n); !ok {
			return
		}
		msg, _ := m.Memory().Read(ptr, min(n, MaxLogText))
		lv := []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError}[min(level, 3)]
		p.spec.Logger.Log(ctx, lv, pluginTextOf(msg, int(n), MaxLogText), "plugin", p.spec.Name)
	}).Export("log").
		NewFunctionBuilder().WithFunc(func(ctx context.Context, m api.Module, ptr, n uint32, delta int64) {
		if !p.allows("metrics") {
			return
		}
		name, ok := m.Memory().Read(ptr, n)
		if !ok || !validMetricName(name) || !p.metrics.addCustom(string(name), delta) {
			p.metrics.fail("bad_metric")
		}
	}).Export("metric_add").
		NewFunctionBuilder().WithFunc(p.httpCall).Export("http_request").
		Instantiate(ctx)
	return err
}

func (p *Plugin) moduleConfig() (wazero.ModuleConfig, error) {
	cfg := wazero.NewModuleConfig().WithName("").WithStartFunctions()
	if len(p.spec.AllowedPaths) > 0 {
		fs := wazero.NewFSConfig()
		for _, ap := range p.spec.AllowedPaths {
			dir, mode, _ := strings.Cut(ap, ":")
			if _, err := os.Stat(dir); err != nil {
				return nil, pipeline.FieldErrorf("allowed_paths", "%w", err)
			}
			abs, err := filepath.Abs(dir)
			if err != nil {
				return nil, err
			}
			if mode == "rw" {
				fs = fs.WithDirMount(abs, abs)
			} else {
				fs = fs.WithReadOnlyDirMount(abs, abs)
			}
		}
		cfg = cfg.WithFSConfig(fs)
	}
	for _, k := range p.spec.Env {
		if v, ok := p.spec.Getenv(k); ok {
			cfg = cfg.WithEnv(k, v)
		}
	}
	return cfg, nil
}

// instance is one running copy of the module with its function handles
// looked up once.
type instance struct {
	mod     api.Module
	mem     api.Memory
	buffer  api.Function
	process api.Function
	errFn   api.Function
	stack   [2]uint64
	fuel    api.MutableGlobal // nil for an unmetered module (Spec.Unmetered, benchmarks)
	stackW  api.MutableGlobal // the stack words of the calls in progress
	stop    api.MutableGlobal // set by the watchdog; every loop header reads it
	// The watchdog, one timer reset for each call: it empties the tank
	// when the call's time is up (expire); fired says it did.
	watch   *time.Timer
	watched chan struct{}
	armed   bool
	fired   bool
	budget  uint64
	scratch []byte // tags and attributes JSON while a batch is encoded
	bufMax  int    // the largest buffer eventpipe_buffer has given
}

// arm fills the tank with budget units and starts the watchdog.
func (in *instance) arm(budget uint64, timeout time.Duration) {
	if in.fuel == nil {
		return
	}
	in.fuel.Set(budget)
	if in.stackW != nil {
		in.stackW.Set(0)
	}
	if in.stop != nil {
		in.stop.Set(0)
	}
	in.budget, in.armed, in.fired = budget, true, false
	// One timer per instance, reset for each call: disarm waits for a
	// firing to finish, so none is left over to fire into the next call.
	if in.watch == nil {
		in.watched = make(chan struct{}, 1)
		in.watch = time.AfterFunc(timeout, in.expire)
	} else {
		in.watch.Reset(timeout)
	}
}

// expire is the watchdog: the call's time is up.
func (in *instance) expire() {
	if in.stop != nil {
		in.stop.Set(1) // loops
	}
	in.fuel.Set(0) // function entries
	in.watched <- struct{}{}
}

// loadFailure explains a call that failed while the instance loaded.
func (in *instance) loadFailure(err error) error {
	// disarm first: it waits for a watchdog that fired, which writes the
	// globals read here.
	if left, fired := in.disarm(); in.fuel != nil && !fired && left <= 0 {
		return fmt.Errorf("ran out of its load fuel (%d units): %w", uint64(LoadFuel), err)
	}
	return err
}

// stackOver reports whether the last call trapped on the stack bound.
func (in *instance) stackOver() bool {
	return in.stackW != nil && in.stackW.Get() > MaxStackWords
}

// disarm stops the watchdog and returns what is left in the tank (below
// zero: the module ran out and trapped) and whether the watchdog fired.
func (in *instance) disarm() (left int64, fired bool) {
	if in.fuel == nil {
		return 0, false
	}
	if !in.armed {
		return int64(in.fuel.Get()), in.fired
	}
	in.armed = false
	if !in.watch.Stop() {
		<-in.watched // it fired: wait until it has emptied the tank
		in.fired = true
	}
	return int64(in.fuel.Get()), in.fired
}

// newInstance starts an instance within the load timeout. A metered module
// is stopped by its load fuel or the watchdog; an unmetered one (benchmarks
// only) cannot be, so it is left behind, spinning, and the load fails all
// the same.
func (p *Plugin) newInstance(ctx context.Context, first bool) (*instance, error) {
	limit := p.spec.LoadTimeout
	deadline := time.Now().Add(limit)
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	type result struct {
		in  *instance
		err error
	}
	done := make(chan result, 1)
	go func() {
		in, err := p.startInstance(ctx, first)
		done <- result{in, err}
	}()
	select {
	case r := <-done:
		// The clock, not ctx.Err(): on a loaded machine the context's
		// timer may not have fired yet when the stopped module returns.
		if r.err != nil && !time.Now().Before(deadline) {
			return nil, loadTimeout(limit, r.err)
		}
		return r.in, r.err
	case <-ctx.Done():
		return nil, loadTimeout(limit, nil)
	}
}

// loadTimeout is the error of a module that did not finish loading within
// limit; err, if any, is how its call ended.
func loadTimeout(limit time.Duration, err error) error {
	const why = "did not finish loading within %s (a loop in its start function, _initialize, eventpipe_manifest or eventpipe_init?)"
	if err == nil {
		return fmt.Errorf(why, limit)
	}
	return fmt.Errorf(why+": %w", limit, err)
}

func (p *Plugin) startInstance(ctx context.Context, first bool) (*instance, error) {
	mod, err := p.rt.InstantiateModule(ctx, p.compiled, p.modCfg)
	if err != nil {
		if !p.spec.Unmetered && strings.Contains(err.Error(), "unreachable") {
			// A metered start function traps when its load fuel is spent.
			return nil, fmt.Errorf("instantiate (a start function that loops stops after %d units of fuel): %w", uint64(LoadFuel), err)
		}
		return nil, fmt.Errorf("instantiate: %w", err)
	}
	in := &instance{mod: mod, mem: mod.Memory()}
	bad := func(format string, args ...any) (*instance, error) {
		_ = mod.Close(ctx)
		return nil, fmt.Errorf(format, args...)
	}
	if g, ok := mod.ExportedGlobal(FuelExport).(api.MutableGlobal); ok && !p.spec.Unmetered {
		in.fuel = g
		in.stackW, _ = mod.ExportedGlobal(StackExport).(api.MutableGlobal)
		in.stop, _ = mod.ExportedGlobal(StopExport).(api.MutableGlobal)
		// The rest of the load runs on LoadFuel, and stops when the load
		// timeout passes.
		in.arm(LoadFuel, time.Until(deadlineOf(ctx)))
		defer in.disarm()
	}
	if in.mem == nil {
		return bad("exports no memory")
	}
	if f := mod.ExportedFunction("_initialize"); f != nil {
		if _, err := f.Call(ctx); err != nil {
			return bad("_initialize: %v", in.loadFailure(err))
		}
	}
	marker := mod.ExportedFunction("eventpipe_abi_v1")
	if marker == nil {
		return bad("not an eventpipe v1 plugin: it does not export eventpipe_abi_v1 (see sdk/ABI.md)")
	}
	if res, err := marker.Call(ctx); err != nil || len(res) != 1 || uint32(res[0]) != 1 {
		return bad("not an eventpipe v1 plugin: eventpipe_abi_v1 did not return 1 (%v)", err)
	}
	for _, name := range []string{"eventpipe_manifest", "eventpipe_buffer", "eventpipe_init", "eventpipe_process"} {
		if mod.ExportedFunction(name) == nil {
			return bad("does not export %s (see sdk/ABI.md)", name)
		}
	}
	in.buffer = mod.ExportedFunction("eventpipe_buffer")
	in.process = mod.ExportedFunction("eventpipe_process")
	in.errFn = mod.ExportedFunction("eventpipe_error")
	if first {
		res, err := mod.ExportedFunction("eventpipe_manifest").Call(ctx)
		if err != nil {
			return bad("eventpipe_manifest: %v", in.loadFailure(err))
		}
		raw, ok := in.read(res[0])
		if !ok {
			return bad("eventpipe_manifest returned a pointer outside memory")
		}
		var m Manifest
		if err := json.Unmarshal(raw, &m); err != nil {
			return bad("manifest is not JSON: %v", err)
		}
		if !validKind(m.Kind) {
			return bad("manifest kind %q (want filter, transform, route or export)", m.Kind)
		}
		if m.Kind != p.spec.Kind {
			return bad("is a %s plugin, used here as %s", m.Kind, p.spec.Kind)
		}
		if m.ABI < 0 || m.ABI > 2 {
			return bad("manifest abi %d (this host reads 1 and 2)", m.ABI)
		}
		reads, err := parseReads(m.Reads)
		if err != nil {
			return bad("%v", err)
		}
		if m.Reads != nil && m.Kind == KindTransform {
			return bad("a transform may not declare reads: its output records replace whole events, so it is given every field")
		}
		for _, c := range m.Capabilities {
			if !p.granted(c) {
				return bad("asks for capability %q, which the pipeline does not grant (capabilities: [%s])", c, strings.Join(p.spec.Capabilities, ", "))
			}
		}
		if m.has("http") && len(p.spec.AllowedHosts) == 0 {
			return bad("asks for the http capability but the pipeline allows no hosts (allowed_hosts)")
		}
		for _, f := range p.compiled.ImportedFunctions() {
			mod, name, _ := f.Import()
			if mod == "eventpipe" {
				if c := importCapability[name]; !m.has(c) {
					return bad("imports eventpipe.%s without declaring the %q capability", name, c)
				}
			}
		}
		p.manifest, p.reads = m, reads
		p.checked.Store(true)
		if p.spec.Name == "" && m.Name != "" {
			p.spec.Name = m.Name
		}
		p.initArg, _ = json.Marshal(map[string]any{"name": p.spec.Name, "config": p.spec.Config, "outputs": p.spec.Outputs})
	}
	ptr, err := in.write(ctx, p.initArg)
	if err != nil {
		return bad("init: %v", err)
	}
	res, err := mod.ExportedFunction("eventpipe_init").Call(ctx, uint64(ptr), uint64(len(p.initArg)))
	if err != nil {
		return bad("eventpipe_init: %v", in.loadFailure(err))
	}
	if int32(res[0]) != 0 {
		return bad("eventpipe_init refused the configuration: %s", in.lastError(ctx))
	}
	return in, nil
}

// read resolves a packed (ptr<<32 | len) result to a view of memory.
func (in *instance) read(packed uint64) ([]byte, bool) {
	if int64(packed) < 0 {
		return nil, false
	}
	return in.mem.Read(uint32(packed>>32), uint32(packed))
}

// view asks the guest for a buffer of n bytes and returns a view of it.
func (in *instance) view(ctx context.Context, n int) (uint32, []byte, error) {
	in.stack[0] = uint64(n)
	if err := in.buffer.CallWithStack(ctx, in.stack[:]); err != nil {
		return 0, nil, err
	}
	ptr := uint32(in.stack[0])
	if ptr == 0 {
		return 0, nil, fmt.Errorf("eventpipe_buffer(%d) returned 0", n)
	}
	b, ok := in.mem.Read(ptr, uint32(n))
	if !ok {
		return 0, nil, fmt.Errorf("eventpipe_buffer(%d) returned a pointer outside memory", n)
	}
	in.bufMax = max(in.bufMax, n)
	return ptr, b, nil
}

// encode writes events (the fields in fs) into a guest buffer and returns
// where and how many bytes. It asks for the largest buffer the guest has
// given before, which the guest holds already, and writes the batch in
// one pass; only a batch larger than any before is sized first (a pass
// over the events that cost 2 ns an event) and written again.
func (in *instance) encode(ctx context.Context, events []pipeline.Event, attrs bool, fs fieldSet) (uint32, int, error) {
	if in.bufMax > 0 {
		ptr, view, err := in.view(ctx, in.bufMax)
		if err != nil {
			return 0, 0, err
		}
		n, err := encodeBatch(view, events, attrs, fs, &in.scratch)
		if !errors.Is(err, errShortBuffer) {
			return ptr, n, err
		}
	}
	ptr, view, err := in.view(ctx, encodedSize(events, attrs, fs, &in.scratch))
	if err != nil {
		return 0, 0, err
	}
	n, err := encodeBatch(view, events, attrs, fs, &in.scratch)
	return ptr, n, err
}

func (in *instance) write(ctx context.Context, data []byte) (uint32, error) {
	ptr, b, err := in.view(ctx, max(len(data), 1))
	if err != nil {
		return 0, err
	}
	copy(b, data)
	return ptr, nil
}

func (in *instance) lastError(ctx context.Context) string {
	if in.errFn == nil {
		return "(no eventpipe_error export)"
	}
	res, err := in.errFn.Call(ctx)
	if err != nil || len(res) == 0 {
		return "(eventpipe_error failed)"
	}
	b, ok := in.read(res[0])
	if !ok {
		return "(eventpipe_error returned a pointer outside memory)"
	}
	return pluginTextOf(b[:min(len(b), MaxErrorText)], len(b), MaxErrorText)
}

// acquire takes an instance from the pool, starting one if the slot is empty.
func (p *Plugin) acquire(ctx context.Context) (*instance, error) {
	var in *instance
	select {
	case in = <-p.pool:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if in != nil {
		return in, nil
	}
	in, err := p.newInstance(ctx, false)
	if err != nil {
		p.pool <- nil
		return nil, err
	}
	return in, nil
}

// release returns an instance; a broken one is closed and its slot emptied
// so a fresh instance takes its place.
func (p *Plugin) release(ctx context.Context, in *instance, broken bool) {
	if broken {
		_ = in.mod.Close(context.WithoutCancel(ctx))
		p.metrics.restarts.Add(1)
		p.pool <- nil
		return
	}
	p.pool <- in
}
