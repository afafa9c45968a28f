package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/rcrowley/go-metrics.(*meterArbiter).tick"))
}

// TestMetricsEndpoint runs the service on the memory transport, scrapes
// /metrics over HTTP and checks the metrics of what happened: three orders
// sent, two charged, one poisoned after four failed attempts.
func TestMetricsEndpoint(t *testing.T) {
	topic := "example.observability." + uuid.NewString()[:8]
	env := map[string]string{"BUSLINE_TRANSPORT": "memory", "ORDERS_TOPIC": topic}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var traces strings.Builder
	s, err := start(ctx, defaultConfig, func(k string) (string, bool) { v, ok := env[k]; return v, ok }, "127.0.0.1:0", &traces)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	defer s.Close()
	var out strings.Builder
	if err := s.Work(ctx, &out); err != nil {
		t.Fatalf("Work: %v\n%s", err, out.String())
	}
	if want := "B-2 failed 4 times (error: card declined) and is in the poison lane"; !strings.Contains(out.String(), want) {
		t.Errorf("output lacks %q:\n%s", want, out.String())
	}

	type check struct {
		name   string
		labels []string
		want   float64
	}
	retry, poison := topic+".billing.retry", topic+".billing.poison"
	checks := []check{
		{"messaging_client_sent_messages_total", []string{`messaging_destination_name="` + topic + `"`, `messaging_system="memory"`}, 3},
		{"messaging_client_sent_messages_total", []string{`messaging_destination_name="` + retry + `"`}, 1},
		{"messaging_client_sent_messages_total", []string{`messaging_destination_name="` + poison + `"`}, 1},
		{"messaging_client_consumed_messages_total", []string{`messaging_destination_name="` + topic + `"`, `messaging_consumer_group_name="billing"`}, 3},
		{"messaging_client_consumed_messages_total", []string{`messaging_destination_name="` + retry + `"`}, 1},
		{"messaging_process_duration_seconds_count", []string{`messaging_destination_name="` + topic + `"`, `error_type="*errors.errorString"`}, 2},
		{"messaging_process_duration_seconds_count", []string{`messaging_destination_name="` + retry + `"`, `error_type="*errors.errorString"`}, 2},
		{"messaging_client_operation_duration_seconds_count", []string{`messaging_destination_name="` + topic + `"`, `messaging_operation_name="send"`}, 3},
		{"busline_consumer_retries_total", []string{`busline_retry_kind="immediate"`}, 2},
		{"busline_consumer_retries_total", []string{`busline_retry_kind="delayed"`}, 1},
		{"busline_consumer_diversions_total", []string{`busline_reason="error"`, `busline_tier="1"`}, 1},
		{"busline_consumer_poisonings_total", []string{`busline_reason="error"`, `messaging_destination_name="` + topic + `"`}, 1},
		{"busline_consumer_lag", []string{`messaging_destination_name="` + topic + `"`}, 0},
		{"busline_lane_depth", []string{`messaging_destination_name="` + retry + `"`}, 0},
		{"busline_poison_depth", []string{`messaging_destination_name="` + poison + `"`}, 1},
	}
	// The poison write is visible before the original's ack and the
	// counters that follow it: scrape until what happened is all counted.
	var metrics []string
	var wrong []string
	for deadline := time.Now().Add(10 * time.Second); ; {
		metrics, wrong = scrape(t, "http://"+s.Addr+"/metrics"), nil
		for _, c := range checks {
			if got, ok := value(metrics, c.name, c.labels); !ok || got != c.want {
				wrong = append(wrong, fmt.Sprintf("%s%v = %v (found: %v), want %v", c.name, c.labels, got, ok, c.want))
			}
		}
		if len(wrong) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // polling a metrics endpoint
	}
	for _, w := range wrong {
		t.Error(w)
	}
	if _, ok := value(metrics, "busline_oldest_message_age_seconds", []string{`busline_lane="poison"`}); !ok {
		t.Errorf("no busline_oldest_message_age_seconds for the poison lane")
	}
	for _, probe := range []string{"/livez", "/readyz"} {
		resp, err := http.Get("http://" + s.Addr + probe)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(body) != "ok" {
			t.Errorf("%s = %d %q, want 200 ok", probe, resp.StatusCode, body)
		}
	}
	s.Close() // flushes the traces
	for _, want := range []string{`"Name":"send ` + topic + `"`, `"Name":"process ` + retry + `"`, `"Name":"send ` + poison + `"`, `"Name":"busline.lane.move"`} {
		if !strings.Contains(traces.String(), want) {
			t.Errorf("traces on stdout lack %s", want)
		}
	}
}

// scrape returns the sample lines of the Prometheus text at url.
func scrape(t *testing.T, url string) []string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	var lines []string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if l := sc.Text(); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

// value sums the samples of metric name whose labels include every one of
// labels.
func value(lines []string, name string, labels []string) (float64, bool) {
	var sum float64
	found := false
	for _, l := range lines {
		if !strings.HasPrefix(l, name+"{") && !strings.HasPrefix(l, name+" ") {
			continue
		}
		ok := true
		for _, want := range labels {
			ok = ok && strings.Contains(l, want)
		}
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64)
		if err != nil {
			continue
		}
		sum += v
		found = true
	}
	return sum, found
}
