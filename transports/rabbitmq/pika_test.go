package rabbitmq_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/transports/rabbitmq"
)

// pikaPython returns a python3 that imports pika (Debian's python3-pika,
// which scripts/brokers.sh installs). Without one the test fails, saying
// how to install it; it skips instead when BUSLINE_ALLOW_SKIP is set.
func pikaPython(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"/usr/bin/python3", "python3"} {
		path, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		if exec.Command(path, "-c", "import pika").Run() == nil {
			return path
		}
	}
	msg := "no python3 with pika: install it with `apt-get install python3-pika` (bash scripts/brokers.sh does, as root)"
	if os.Getenv("BUSLINE_ALLOW_SKIP") != "" {
		t.Skip(msg + "; skipped because BUSLINE_ALLOW_SKIP is set")
	}
	t.Fatal(msg)
	return ""
}

// pikaEvent is one event pika_publish.py publishes.
type pikaEvent struct {
	Mode          string      `json:"mode"` // binary | structured
	Prefix        string      `json:"prefix"`
	ContentType   string      `json:"content_type"`
	ID            string      `json:"id"`
	Type          string      `json:"type"`
	Source        string      `json:"source"`
	CorrelationID string      `json:"correlationid"`
	Data          OrderPlaced `json:"data"`
}

// Events a Python service publishes with pika, in binary mode under every
// header prefix in use and with content-type spellings that differ from
// busline's, and in structured mode, are handled by a typed handler with
// their attributes.
func TestPikaPublishesBuslineHandles(t *testing.T) {
	requireBroker(t)
	python := pikaPython(t)
	t.Parallel()
	tr := newTransport(t, rabbitmq.Config{})
	topic, group := ids("interop.pika.in")
	type handled struct {
		e  OrderPlaced
		md bus.Metadata
	}
	got := make(chan handled, 16)
	newBus(t, tr, topic, func(b *bus.Bus) {
		err := bus.Subscribe(b, group, func(ctx context.Context, e OrderPlaced) error {
			md, _ := bus.MetadataFrom(ctx)
			got <- handled{e, md}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	var events []pikaEvent
	add := func(mode, prefix, contentType string) {
		i := len(events)
		events = append(events, pikaEvent{
			Mode: mode, Prefix: prefix, ContentType: contentType,
			ID: fmt.Sprintf("py-%d", i), Type: OrderPlaced{}.EventName(), Source: "/python/" + mode + "/" + prefix,
			CorrelationID: fmt.Sprintf("corr-%d", i), Data: OrderPlaced{Order: "P-" + mode, Seq: i},
		})
	}
	add("binary", rabbitmq.PrefixAMQP, "application/json; charset=utf-8")
	add("binary", rabbitmq.PrefixAMQPUnderscore, "Application/JSON")
	add("binary", rabbitmq.PrefixKnative, "application/json")
	add("binary", rabbitmq.PrefixBusline, "application/json; charset=utf-8")
	add("binary", rabbitmq.PrefixAMQP, "Application/JSON; charset=UTF-8")
	add("structured", "", "application/cloudevents+json")
	add("structured", "", "Application/CloudEvents+JSON; charset=utf-8")
	input, err := json.Marshal(events)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, filepath.Join("testdata", "pika_publish.py"), brokerURL(), rabbitmq.ExchangeName(topic))
	cmd.Stdin = bytes.NewReader(input)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pika_publish.py: %v\n%s", err, out)
	}
	byID := map[string]handled{}
	for range events {
		select {
		case h := <-got:
			byID[h.md.ID] = h
		case <-time.After(15 * time.Second):
			t.Fatalf("handled %d of the %d events pika published: %v", len(byID), len(events), byID)
		}
	}
	for _, e := range events {
		h, ok := byID[e.ID]
		what := fmt.Sprintf("%s %q %q", e.Mode, e.Prefix, e.ContentType)
		switch {
		case !ok:
			t.Errorf("%s: event %s not handled", what, e.ID)
		case h.e != e.Data:
			t.Errorf("%s: handled %+v, want %+v", what, h.e, e.Data)
		case h.md.Event != e.Type || h.md.Source != e.Source || h.md.CorrelationID != e.CorrelationID || h.md.PublishedAt.IsZero():
			t.Errorf("%s: metadata %+v, want type %s, source %s, correlation id %s and a time", what, h.md, e.Type, e.Source, e.CorrelationID)
		}
	}
}

// pikaRead is what pika_consume.py prints for each message.
type pikaRead struct {
	Error        string            `json:"error"`
	Event        map[string]any    `json:"event"`
	Headers      map[string]string `json:"headers"`
	ContentType  string            `json:"content_type"`
	MessageID    string            `json:"message_id"`
	DeliveryMode int               `json:"delivery_mode"`
}

// An event busline publishes is read by a Python service with pika as the
// CloudEvents AMQP binding says: attributes in cloudEvents: headers, the
// data content type in the content-type property, the data in the body.
func TestBuslinePublishesPikaReads(t *testing.T) {
	requireBroker(t)
	python := pikaPython(t)
	t.Parallel()
	tr := newTransport(t, rabbitmq.Config{})
	topic, _ := ids("interop.pika.out")
	const n = 3
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, filepath.Join("testdata", "pika_consume.py"), brokerURL(), rabbitmq.ExchangeName(topic), fmt.Sprint(n))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	next := func(what string) string {
		t.Helper()
		select {
		case l, ok := <-lines:
			if !ok {
				_ = cmd.Wait()
				t.Fatalf("pika_consume.py ended before %s: %s", what, stderr.String())
			}
			return l
		case <-time.After(30 * time.Second):
			t.Fatalf("pika_consume.py printed no %s within 30s: %s", what, stderr.String())
			return ""
		}
	}
	if l := next("ready"); l != "ready" {
		t.Fatalf("pika_consume.py printed %q, want ready", l)
	}
	b := newBus(t, tr, topic, nil)
	for i := range n {
		if err := bus.Publish(context.Background(), b, OrderPlaced{Order: "G-1", Seq: i}, bus.WithCorrelationID(fmt.Sprintf("corr-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		var r pikaRead
		l := next(fmt.Sprintf("message %d", i))
		if err := json.Unmarshal([]byte(l), &r); err != nil || r.Error != "" {
			t.Fatalf("pika_consume.py printed %q (%v)", l, err)
		}
		for _, attr := range []string{"id", "type", "source", "specversion", "time", "correlationid"} {
			if s, _ := r.Event[attr].(string); s == "" {
				t.Errorf("message %d: pika read no %s attribute (headers %v)", i, attr, r.Headers)
			}
		}
		if r.Event["type"] != (OrderPlaced{}).EventName() || r.Event["specversion"] != "1.0" || r.Event["source"] != "interop-test" || r.Event["correlationid"] != fmt.Sprintf("corr-%d", i) {
			t.Errorf("message %d: pika read the event %v", i, r.Event)
		}
		if _, err := time.Parse(time.RFC3339Nano, fmt.Sprint(r.Event["time"])); err != nil {
			t.Errorf("message %d: time attribute %v is not RFC 3339: %v", i, r.Event["time"], err)
		}
		if r.ContentType != "application/json" || r.MessageID != r.Event["id"] || r.DeliveryMode != 2 {
			t.Errorf("message %d: properties content-type %q message-id %q delivery-mode %d, want application/json, the id, persistent", i, r.ContentType, r.MessageID, r.DeliveryMode)
		}
		data, _ := json.Marshal(r.Event["data"])
		var e OrderPlaced
		if err := json.Unmarshal(data, &e); err != nil || e != (OrderPlaced{Order: "G-1", Seq: i}) {
			t.Errorf("message %d: data %s, want order G-1 seq %d", i, data, i)
		}
		for k := range r.Headers {
			if strings.HasPrefix(k, rabbitmq.PrefixBusline) {
				t.Errorf("message %d: header %s under busline's own prefix, not the binding's", i, k)
			}
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("pika_consume.py: %v: %s", err, stderr.String())
	}
}
