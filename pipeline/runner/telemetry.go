package runner

import (
	"sort"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventpipe/eventpipe/pipeline/component"
)

// componentMetrics registers components' own counters in the runner's
// Prometheus registry, labelled with the component's name. A counter is
// made once per name and label set and kept across reloads.
type componentMetrics struct {
	reg  *prometheus.Registry
	mu   sync.Mutex
	vecs map[string]*prometheus.CounterVec
}

type componentScope struct {
	m    *componentMetrics
	name string
}

func (m *metrics) forComponent(name string) component.Metrics {
	return componentScope{m: &m.components, name: name}
}

func (s componentScope) Counter(name, help string, labels map[string]string) component.Counter {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	full := "eventpipe_" + name
	id := full + "{" + strings.Join(keys, ",") + "}"
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	if s.m.vecs == nil {
		s.m.vecs = map[string]*prometheus.CounterVec{}
	}
	vec, ok := s.m.vecs[id]
	if !ok {
		vec = prometheus.NewCounterVec(prometheus.CounterOpts{Name: full, Help: help}, append([]string{"component"}, keys...))
		if err := s.m.reg.Register(vec); err != nil {
			return component.NopMetrics{}.Counter(name, help, labels) // a clash of names: count nothing rather than fail
		}
		s.m.vecs[id] = vec
	}
	values := []string{s.name}
	for _, k := range keys {
		values = append(values, labels[k])
	}
	return vec.WithLabelValues(values...)
}
