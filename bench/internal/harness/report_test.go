package harness

import (
	"errors"
	"strings"
	"testing"
)

func TestRatioIsTheMedianOfEachRunsRatio(t *testing.T) {
	t.Parallel()
	rep := newReport(Config{Transports: []string{Redis}, Ways: []string{WayRawSync, WayBusline}, Scenarios: []string{ScenarioE2E}, Runs: 4})
	rep.Brokers[Redis] = "test"
	// Run 2 is on a loaded machine: both ways slow; run 3's busline failed.
	for i, pair := range [][2]measurement{
		{{rate: 100}, {rate: 90}},
		{{rate: 40}, {rate: 20}},
		{{rate: 100}, {err: errors.New("broker gone")}},
		{{rate: 110}, {rate: 88}},
	} {
		rep.add(Redis, ScenarioE2E, WayRawSync, pair[0])
		rep.add(Redis, ScenarioE2E, WayBusline, pair[1])
		if got := len(rep.results[resultKey{Redis, ScenarioE2E, WayBusline}]); got != i+1 {
			t.Fatalf("%d results after run %d", got, i+1)
		}
	}
	// Runs 1, 2 and 4: 0.9, 0.5, 0.8. The ratio of the medians would be
	// 88/100 = 0.88.
	got, ok := rep.Ratio(Redis, rate{ScenarioE2E, WayBusline}, rate{ScenarioE2E, WayRawSync})
	if !ok || got < 0.799 || got > 0.801 {
		t.Errorf("Ratio = %v, %v; want 0.8 (the median of 0.9, 0.5, 0.8), true", got, ok)
	}
	if _, ok := rep.Ratio(Redis, rate{ScenarioE2E, WayBusline}, rate{ScenarioE2E, WayRaw}); ok {
		t.Error("Ratio over a way that was not measured reports a value")
	}
	md := rep.Markdown()
	if want := "| single-event e2e ÷ raw synchronous ≥ 0.8× | 0.80 (0.50–0.90) yes |"; !strings.Contains(md, want) {
		t.Errorf("report lacks %q:\n%s", want, md)
	}
}
