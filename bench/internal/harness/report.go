package harness

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Report holds the measurements of a Run and renders them as markdown.
type Report struct {
	// Config is the configuration the run used, defaults applied.
	Config Config
	// Machine describes the machine the run measured on.
	Machine Machine
	// Brokers describes each measured transport's broker (version, address).
	Brokers map[string]string
	// Unavailable gives, for each transport that could not be opened, why.
	Unavailable map[string]string
	// Started and Elapsed time the run.
	Started time.Time
	Elapsed time.Duration

	results map[resultKey][]measurement
}

type resultKey struct{ transport, scenario, way string }

func newReport(cfg Config) *Report {
	return &Report{
		Config:      cfg,
		Machine:     describeMachine(),
		Brokers:     map[string]string{},
		Unavailable: map[string]string{},
		Started:     time.Now(),
		results:     map[resultKey][]measurement{},
	}
}

func (r *Report) add(transport, scenario, way string, m measurement) {
	k := resultKey{transport, scenario, way}
	r.results[k] = append(r.results[k], m)
}

func (r *Report) finish() {
	r.Elapsed = time.Since(r.Started)
	r.Machine.LoadAfter = loadAverage()
}

// Cell is the summary of one scenario on one way of one transport over the
// runs: medians of the runs that succeeded.
type Cell struct {
	Rate       float64       // msg/s; 0 for the latency scenario
	P50, P99   time.Duration // latency scenario only
	Allocs     float64       // heap allocations per message (e2e scenarios)
	Bytes      float64       // heap bytes per message (e2e scenarios)
	Violations int64         // messages handled out of their key's order, summed over the runs (keyed scenarios)
	Ordered    bool          // per-key order was checked (keyed scenarios)
	Runs       int           // runs that succeeded
	Capped     bool          // some run was cut short by Config.MaxDuration
	Err        error         // the last error, when no run succeeded
}

// Cell returns the summary of scenario on way of transport, and false when
// it was not measured.
func (r *Report) Cell(transport, scenario, way string) (Cell, bool) {
	ms, ok := r.results[resultKey{transport, scenario, way}]
	if !ok {
		return Cell{}, false
	}
	var c Cell
	var rates, p50s, p99s, allocs, bytes []float64
	for _, m := range ms {
		if m.err != nil {
			c.Err = m.err
			continue
		}
		c.Runs++
		c.Capped = c.Capped || m.capped
		c.Violations += m.violations
		c.Ordered = c.Ordered || m.ordered
		rates = append(rates, m.rate)
		p50s = append(p50s, float64(m.p50))
		p99s = append(p99s, float64(m.p99))
		allocs = append(allocs, m.allocs)
		bytes = append(bytes, m.bytes)
	}
	if c.Runs > 0 {
		c.Err = nil
	}
	c.Rate, c.Allocs, c.Bytes = median(rates), median(allocs), median(bytes)
	c.P50, c.P99 = time.Duration(median(p50s)), time.Duration(median(p99s))
	return c, true
}

// rate is a scenario measured on a way: one side of a ratio.
type rate struct{ scenario, way string }

// Ratio returns the median over the runs of num's rate over den's on
// transport, each run's pair measured minutes apart at most, and false when
// no run measured both. A run's ratio is steadier than the ratio of
// medians on a shared machine, whose load changes from one run to the next.
func (r *Report) Ratio(transport string, num, den rate) (float64, bool) {
	v, _, _, ok := r.ratioRange(transport, num, den)
	return v, ok
}

// ratioRange returns Ratio and the lowest and highest of the runs' ratios.
func (r *Report) ratioRange(transport string, num, den rate) (med, lo, hi float64, ok bool) {
	ns := r.results[resultKey{transport, num.scenario, num.way}]
	ds := r.results[resultKey{transport, den.scenario, den.way}]
	var vs []float64
	for i := range min(len(ns), len(ds)) { // index i is run i+1 for both
		n, d := ns[i], ds[i]
		if n.err == nil && d.err == nil && d.rate > 0 {
			vs = append(vs, n.rate/d.rate)
		}
	}
	if len(vs) == 0 {
		return 0, 0, 0, false
	}
	lo, hi = slices.Min(vs), slices.Max(vs)
	return median(vs), lo, hi, true
}

// target is one of the issues' performance targets: on the transports of
// on (every transport when nil), the ratio num ÷ den must reach min. A
// transport outside on shows the ratio without a verdict.
type target struct {
	what     string
	num, den rate
	min      float64
	on       []string
}

var targets = []target{
	{"batch publish ÷ raw pipelined ≥ 0.7×", rate{ScenarioPublishBatch, WayBusline}, rate{ScenarioPublishBatch, WayRaw}, 0.7, []string{RabbitMQ, Redis, Kafka}},
	{"single-event e2e ÷ raw synchronous ≥ 0.8×", rate{ScenarioE2E, WayBusline}, rate{ScenarioE2E, WayRawSync}, 0.8, nil},
	{"typed layer: busline ÷ transport under a plain router, e2e ≥ 0.9×", rate{ScenarioE2E, WayBusline}, rate{ScenarioE2E, WayTransport}, 0.9, nil},
	{"typed layer, batch: busline ÷ transport, publish-batch ≥ 0.9×", rate{ScenarioPublishBatch, WayBusline}, rate{ScenarioPublishBatch, WayTransport}, 0.9, nil},
	{"key-ordered concurrency: e2e-keyed ÷ e2e-keyed-1 ≥ 4× (RabbitMQ, Redis)", rate{ScenarioE2EKeyed, WayBusline}, rate{ScenarioE2EKeyed1, WayBusline}, 4, []string{RabbitMQ, Redis}},
	{"instrumentation: busline-otel ÷ busline, e2e ≥ 0.9×", rate{ScenarioE2E, WayBuslineOtel}, rate{ScenarioE2E, WayBusline}, 0.9, nil},
	{"busline e2e ÷ Watermill GoChannel + router ≥ 0.8× (memory)", rate{ScenarioE2E, WayBusline}, rate{ScenarioE2E, WayWatermill}, 0.8, []string{Memory}},
}

// tableScenarios are the throughput table's columns, in order.
var tableScenarios = []string{ScenarioPublish1, ScenarioPublishN, ScenarioPublishBatch, ScenarioE2E, ScenarioE2EBatch, ScenarioDrain, ScenarioE2EKeyed1, ScenarioE2EKeyed}

// Markdown renders the report: the machine, the throughput table, the
// targets with their ratios, busline's ratio to each other way, latency and
// allocations.
func (r *Report) Markdown() string {
	var b strings.Builder
	c := r.Config
	fmt.Fprintf(&b, "# busline benchmark results\n\n")
	fmt.Fprintf(&b, "Generated by `go run ./bench` on %s (took %s). Figures are medians of %d run(s); payload %d B.\n\n",
		r.Started.UTC().Format("2006-01-02 15:04 UTC"), r.Elapsed.Round(time.Second), c.Runs, c.PayloadSize)
	fmt.Fprintf(&b, "- publish-1 and publish-%d send %d messages, one per call; e2e sends %d from %d goroutines; drain consumes a backlog of %d.\n",
		c.Publishers, c.PublishMessages, c.E2EMessages, c.Publishers, c.Backlog)
	fmt.Fprintf(&b, "- publish-batch sends %d and e2e-batch %d, from %d goroutines, %d messages per call.\n",
		c.PublishMessages, c.E2EMessages, c.BatchPublishers, c.BatchSize)
	fmt.Fprintf(&b, "- e2e-keyed-1 and e2e-keyed-%d send %d messages from %d goroutines over %d ordering keys, %d of a key in a row; each handling takes %v; 1 and %d handlers.\n",
		c.KeyedConcurrency, c.KeyedMessages, c.Publishers, c.Keys, c.KeyRun, c.KeyedWork, c.KeyedConcurrency)
	fmt.Fprintf(&b, "- Every other consumer has concurrency %d. Each measurement is capped at %v (a `*` marks a figure cut short by the cap).\n\n",
		c.Consumers, c.MaxDuration)
	fmt.Fprintf(&b, "Machine: %s.\n\n", r.Machine)
	for _, t := range c.Transports {
		if d, ok := r.Brokers[t]; ok {
			fmt.Fprintf(&b, "- %s: %s\n", t, d)
		} else if e, ok := r.Unavailable[t]; ok {
			fmt.Fprintf(&b, "- %s: **not measured**: %s\n", t, e)
		}
	}
	b.WriteString("\n")

	var footnotes []string
	scenarios := slices.DeleteFunc(slices.Clone(tableScenarios), func(s string) bool { return !slices.Contains(c.Scenarios, s) })
	if len(scenarios) > 0 {
		b.WriteString("## Throughput (msg/s)\n\n| transport | way |")
		for _, s := range scenarios {
			fmt.Fprintf(&b, " %s |", scenarioLabel(s, c))
		}
		b.WriteString("\n|---|---|" + strings.Repeat("---:|", len(scenarios)) + "\n")
		for _, t := range r.measured() {
			for _, w := range c.Ways {
				if !r.hasWay(t, w) {
					continue
				}
				fmt.Fprintf(&b, "| %s | %s |", t, w)
				for _, s := range scenarios {
					b.WriteString(" " + r.rateCell(t, s, w, &footnotes) + " |")
				}
				b.WriteString("\n")
			}
		}
		r.writeTargets(&b)
		r.writeRatios(&b, scenarios)
	}

	if slices.Contains(c.Scenarios, ScenarioLatency) {
		fmt.Fprintf(&b, "\n## Publish-to-handle latency at %d msg/s for %v (p50 / p99, ms)\n\n| transport |", c.LatencyRate, c.LatencyDuration)
		ways := r.waysOf(ScenarioLatency)
		for _, w := range ways {
			fmt.Fprintf(&b, " %s |", w)
		}
		b.WriteString("\n|---|" + strings.Repeat("---:|", len(ways)) + "\n")
		for _, t := range r.measured() {
			fmt.Fprintf(&b, "| %s |", t)
			for _, w := range ways {
				cell, ok := r.Cell(t, ScenarioLatency, w)
				switch {
				case !ok:
					b.WriteString(" – |")
				case cell.Runs == 0:
					b.WriteString(" " + footnote(&footnotes, t, "latency", w, cell.Err) + " |")
				default:
					fmt.Fprintf(&b, " %.2f / %.2f%s |", msf(cell.P50), msf(cell.P99), star(cell.Capped))
				}
			}
			b.WriteString("\n")
		}
	}

	if slices.Contains(c.Scenarios, ScenarioE2E) {
		b.WriteString("\n## Heap allocations per message in e2e (allocs / bytes, whole process)\n\n| transport |")
		ways := r.waysOf(ScenarioE2E)
		for _, w := range ways {
			fmt.Fprintf(&b, " %s |", w)
		}
		b.WriteString("\n|---|" + strings.Repeat("---:|", len(ways)) + "\n")
		for _, t := range r.measured() {
			fmt.Fprintf(&b, "| %s |", t)
			for _, w := range ways {
				cell, ok := r.Cell(t, ScenarioE2E, w)
				if !ok || cell.Runs == 0 {
					b.WriteString(" – |")
					continue
				}
				fmt.Fprintf(&b, " %.0f / %.0f B |", cell.Allocs, cell.Bytes)
			}
			b.WriteString("\n")
		}
		b.WriteString("\nThe counters are the process's: they include the publishers, the consumer and, for memory and kfake, the broker itself.\n")
	}
	if len(footnotes) > 0 {
		b.WriteString("\n## Errors\n\n")
		for _, f := range footnotes {
			b.WriteString(f + "\n")
		}
	}
	return b.String()
}

// writeTargets renders the targets table: one row per target, one column
// per transport, and the keyed scenarios' order violations.
func (r *Report) writeTargets(b *strings.Builder) {
	ts := r.measured()
	b.WriteString("\n## Targets\n\nEach figure is the median of the runs' ratios, each run dividing two measurements taken minutes apart at most; the lowest and highest run follow in brackets.\n\n| target |")
	for _, t := range ts {
		fmt.Fprintf(b, " %s |", t)
	}
	b.WriteString("\n|---|" + strings.Repeat("---:|", len(ts)) + "\n")
	for _, tg := range targets {
		if !r.hasRate(tg.num) || !r.hasRate(tg.den) {
			continue
		}
		fmt.Fprintf(b, "| %s |", tg.what)
		for _, t := range ts {
			v, lo, hi, ok := r.ratioRange(t, tg.num, tg.den)
			spread := ""
			if lo != hi {
				spread = fmt.Sprintf(" (%.2f–%.2f)", lo, hi)
			}
			switch {
			case !ok:
				b.WriteString(" – |")
			case tg.on != nil && !slices.Contains(tg.on, t):
				fmt.Fprintf(b, " %.2f%s, no target |", v, spread)
			case v >= tg.min:
				fmt.Fprintf(b, " %.2f%s yes |", v, spread)
			default:
				fmt.Fprintf(b, " %.2f%s **no**, %.0f%% short |", v, spread, (tg.min-v)/tg.min*100)
			}
		}
		b.WriteString("\n")
	}
	if r.hasRate(rate{ScenarioE2EKeyed, WayBusline}) {
		b.WriteString("| per-key order violations in e2e-keyed and e2e-keyed-1, all runs = 0 |")
		for _, t := range ts {
			var n int64
			checked := false
			for _, s := range []string{ScenarioE2EKeyed, ScenarioE2EKeyed1} {
				if cell, ok := r.Cell(t, s, WayBusline); ok && cell.Ordered {
					n += cell.Violations
					checked = true
				}
			}
			switch {
			case !checked:
				b.WriteString(" – |")
			case n == 0:
				b.WriteString(" 0 yes |")
			default:
				fmt.Fprintf(b, " %s **no** |", thousands(float64(n)))
			}
		}
		b.WriteString("\n")
	}
}

// writeRatios renders busline's rate over each other way's, per scenario.
func (r *Report) writeRatios(b *strings.Builder, scenarios []string) {
	others := slices.DeleteFunc(slices.Clone(r.Config.Ways), func(w string) bool { return w == WayBusline || w == WayBuslineOtel })
	if !slices.Contains(r.Config.Ways, WayBusline) || len(others) == 0 {
		return
	}
	b.WriteString("\n## busline ÷ each other way, by scenario (median of the runs' ratios)\n\n| transport | scenario |")
	for _, w := range others {
		fmt.Fprintf(b, " ÷ %s |", w)
	}
	b.WriteString("\n|---|---|" + strings.Repeat("---:|", len(others)) + "\n")
	for _, t := range r.measured() {
		for _, s := range scenarios {
			if !RunsOn(s, WayTransport) {
				continue // busline only: no other way to divide by
			}
			fmt.Fprintf(b, "| %s | %s |", t, scenarioLabel(s, r.Config))
			for _, w := range others {
				if v, ok := r.Ratio(t, rate{s, WayBusline}, rate{s, w}); ok {
					fmt.Fprintf(b, " %.2f |", v)
				} else {
					b.WriteString(" – |")
				}
			}
			b.WriteString("\n")
		}
	}
}

// hasWay reports whether way was measured on transport at all.
func (r *Report) hasWay(transport, way string) bool {
	for k := range r.results {
		if k.transport == transport && k.way == way {
			return true
		}
	}
	return false
}

// hasRate reports whether the run measured x anywhere.
func (r *Report) hasRate(x rate) bool {
	for k := range r.results {
		if k.scenario == x.scenario && k.way == x.way {
			return true
		}
	}
	return false
}

// waysOf returns the ways of the config that scenario runs on.
func (r *Report) waysOf(scenario string) []string {
	return slices.DeleteFunc(slices.Clone(r.Config.Ways), func(w string) bool { return !RunsOn(scenario, w) })
}

// measured returns the transports that were opened, in config order.
func (r *Report) measured() []string {
	var ts []string
	for _, t := range r.Config.Transports {
		if _, ok := r.Brokers[t]; ok {
			ts = append(ts, t)
		}
	}
	return ts
}

func (r *Report) rateCell(t, s, w string, footnotes *[]string) string {
	cell, ok := r.Cell(t, s, w)
	switch {
	case !ok:
		return "–"
	case cell.Runs == 0:
		return footnote(footnotes, t, s, w, cell.Err)
	}
	return fmt.Sprintf("%s%s", thousands(cell.Rate), star(cell.Capped))
}

func footnote(footnotes *[]string, t, s, w string, err error) string {
	*footnotes = append(*footnotes, fmt.Sprintf("%d. %s %s %s: %v", len(*footnotes)+1, t, s, w, err))
	return fmt.Sprintf("error %d", len(*footnotes))
}

func scenarioLabel(s string, c Config) string {
	switch s {
	case ScenarioPublishN:
		return fmt.Sprintf("publish-%d", c.Publishers)
	case ScenarioE2EKeyed:
		return fmt.Sprintf("e2e-keyed-%d", c.KeyedConcurrency)
	}
	return s
}

func star(capped bool) string {
	if capped {
		return "*"
	}
	return ""
}

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// thousands formats v rounded, with a comma every three digits.
func thousands(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}
