package eventpipe

import (
	"encoding/binary"
	"encoding/json"
	"errors"
)

// Plugin describes the plugin a module is. Exactly one of Filter,
// Transform and Route is set, matching Kind.
type Plugin struct {
	Name         string
	Version      string
	Kind         string
	Capabilities []string
	// Reads lists the record fields the plugin looks at ("type",
	// "source", "id", "correlation_id", "causation_id", "language",
	// "tags", "data", "attributes"); nil: all of them. The host copies
	// only these into the plugin's memory and leaves the others empty, so
	// a filter on types and sources that says so costs the host a
	// fraction of one that is given every payload. Not for transforms.
	Reads []string
	// Init receives the plugin's config from pipeline.yaml (JSON) and, for
	// route plugins, the pipeline's output names. Optional.
	Init func(config []byte, outputs []string) error
	// Filter decides keep, drop or dead-letter for each event.
	Filter func(e *Event) Verdict
	// Transform may change e in place; returning false drops it.
	Transform func(e *Event) bool
	// Route returns a bit set of output indexes (bit k: outputs[k]).
	Route func(e *Event) uint64
	// Export delivers a batch; the events are valid only during the call.
	Export func(events []Event) (Status, string)
}

// Status is an exporter's answer for a batch.
type Status uint32

const (
	Delivered Status = 0 // every event was taken
	Retryable Status = 1 // failed; the host retries with backoff
	Permanent Status = 2 // failed; retrying cannot help (dead-lettered)
)

var (
	registered *Plugin
	lastErr    string
	in         []byte // the buffer the host writes into
	out        []byte // the output of the last call
)

// Register makes p the module's plugin. Call it from an init function.
func Register(p Plugin) {
	if registered != nil {
		panic("eventpipe: Register called twice")
	}
	registered = &p
}

func manifestJSON() []byte {
	p := registered
	if p == nil {
		return []byte(`{"name":"","kind":""}`)
	}
	caps := p.Capabilities
	if caps == nil {
		caps = []string{}
	}
	m := map[string]any{"name": p.Name, "version": p.Version, "kind": p.Kind, "capabilities": caps, "abi": 2}
	if p.Reads != nil {
		m["reads"] = p.Reads
	}
	b, _ := json.Marshal(m)
	return b
}

func initWith(arg []byte) error {
	if registered == nil {
		return errors.New("no plugin registered (call eventpipe.Register in an init function)")
	}
	var a struct {
		Config  json.RawMessage `json:"config"`
		Outputs []string        `json:"outputs"`
	}
	if err := json.Unmarshal(arg, &a); err != nil {
		return err
	}
	if registered.Init != nil {
		return registered.Init(a.Config, a.Outputs)
	}
	return nil
}

// processBatch runs the registered plugin over one batch and returns its
// output (sdk/ABI.md, "Output of eventpipe_process").
func processBatch(batch []byte) ([]byte, error) {
	p := registered
	out = out[:0]
	switch p.Kind {
	case KindFilter:
		err := DecodeBatch(batch, func(_ int, e *Event) error {
			out = append(out, byte(p.Filter(e)))
			return nil
		})
		return out, err
	case KindRoute:
		err := DecodeBatch(batch, func(_ int, e *Event) error {
			out = binary.LittleEndian.AppendUint64(out, p.Route(e))
			return nil
		})
		return out, err
	case KindExport:
		var events []Event
		err := DecodeBatch(batch, func(_ int, e *Event) error {
			events = append(events, *e)
			return nil
		})
		if err != nil {
			return nil, err
		}
		st, msg := p.Export(events)
		out = binary.LittleEndian.AppendUint32(out, uint32(st))
		return append(out, msg...), nil
	case KindTransform:
		if len(batch) < 8 {
			return nil, ErrMalformed
		}
		out = AppendBatchHeader(out, int(binary.LittleEndian.Uint32(batch[4:])))
		err := DecodeBatch(batch, func(_ int, e *Event) error {
			if p.Transform(e) {
				out = AppendRecord(out, e)
			} else {
				out = AppendRecord(out, nil)
			}
			return nil
		})
		return out, err
	}
	return nil, errors.New("unknown kind " + p.Kind)
}
