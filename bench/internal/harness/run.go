package harness

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// runner runs the measurements of one Config.
type runner struct {
	cfg Config
}

// Run opens every transport of cfg, runs every scenario on every way
// cfg.Runs times, and returns the report. A transport that cannot be opened
// (broker not running) is reported as unavailable, and the others are still
// measured; a measurement that fails is reported with its error. Run returns
// an error only for an invalid cfg or when ctx ends, with the report so far.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("bench: invalid config: %w", err)
	}
	r := &runner{cfg: cfg}
	rep := newReport(cfg)
	runID := strconv.FormatInt(time.Now().UnixNano()/int64(time.Millisecond)%1e9, 36)

	plugins := map[string]*plugin{}
	defer func() {
		for _, name := range cfg.Transports {
			if p := plugins[name]; p != nil {
				if err := p.close(); err != nil {
					fmt.Fprintf(cfg.Progress, "%s: close: %v\n", name, err)
				}
			}
		}
	}()
	for _, name := range cfg.Transports {
		p, err := openers[name](ctx, &r.cfg, runID)
		if err != nil {
			rep.Unavailable[name] = err.Error()
			fmt.Fprintf(cfg.Progress, "%s: not measured: %v\n", name, err)
			continue
		}
		plugins[name] = p
		rep.Brokers[name] = p.describe
	}

	measurements := 0
	for run := 1; run <= cfg.Runs; run++ {
		for _, transport := range cfg.Transports {
			p := plugins[transport]
			if p == nil {
				continue
			}
			for _, scenario := range cfg.Scenarios {
				for _, wayName := range cfg.Ways {
					w := p.ways[wayName]
					if w == nil || !RunsOn(scenario, wayName) {
						continue
					}
					measurements++
					s := spec{
						topic:       fmt.Sprintf("bench.%s.%s.%s.%s.%d", runID, transport, scenario, wayName, run),
						group:       fmt.Sprintf("bench-%s-%d", runID, measurements),
						payloadSize: cfg.PayloadSize,
						consumers:   cfg.Consumers,
						publishers:  cfg.Publishers,
					}
					switch scenario {
					case ScenarioE2EKeyed:
						s.keys, s.keyRun, s.consumers = cfg.Keys, cfg.KeyRun, cfg.KeyedConcurrency
					case ScenarioE2EKeyed1:
						s.keys, s.keyRun, s.consumers = cfg.Keys, cfg.KeyRun, 1
					}
					m := r.measure(ctx, w, scenario, s)
					rep.add(transport, scenario, wayName, m)
					fmt.Fprintf(cfg.Progress, "run %d/%d %-8s %-13s %-12s %s\n", run, cfg.Runs, transport, scenario, wayName, m)
					if err := ctx.Err(); err != nil {
						rep.finish()
						return rep, err
					}
				}
			}
		}
	}
	rep.finish()
	return rep, nil
}

// String is the progress line of m.
func (m measurement) String() string {
	var s string
	switch {
	case m.err != nil:
		return "error: " + m.err.Error()
	case m.p50 > 0:
		s = fmt.Sprintf("p50 %s p99 %s (%d msgs)", ms(m.p50), ms(m.p99), m.n)
	default:
		s = fmt.Sprintf("%.0f msg/s (%d msgs)", m.rate, m.n)
		if m.allocs > 0 {
			s += fmt.Sprintf(", %.0f allocs/msg, %.0f B/msg", m.allocs, m.bytes)
		}
		if m.ordered {
			s += fmt.Sprintf(", %d order violations", m.violations)
		}
	}
	if m.capped {
		s += " capped"
	}
	return s
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64) + "ms"
}

// median returns the median of vs, which it sorts; 0 for none.
func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	slices.Sort(vs)
	if len(vs)%2 == 1 {
		return vs[len(vs)/2]
	}
	return (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2
}
