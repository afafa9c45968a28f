package main_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill/message"
	amqp "github.com/rabbitmq/amqp091-go"
	goredis "github.com/redis/go-redis/v9"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/config"
	"github.com/busline/busline/transports"
	"github.com/busline/busline/transports/rabbitmq"
	"github.com/busline/busline/wire"
)

// laneList is the JSON of busctl poison list --json.
type laneList struct {
	Lane     string `json:"lane"`
	Total    int    `json:"total"`
	Messages []struct {
		ID           string `json:"id"`
		Event        string `json:"event"`
		Reason       string `json:"reason"`
		Error        string `json:"error"`
		Attempts     int    `json:"attempts"`
		Group        string `json:"group"`
		FirstFailure string `json:"first_failure"`
		LastFailure  string `json:"last_failure"`
		Malformed    string `json:"malformed"`
	} `json:"messages"`
}

// sweepResult is the JSON of busctl poison replay/purge --json.
type sweepResult struct {
	Selected int    `json:"selected"`
	Done     int    `json:"done"`
	To       string `json:"to"`
	Error    string `json:"error"`
}

func listLane(t *testing.T, lane ...string) laneList {
	t.Helper()
	r := mustRun(t, append([]string{"poison", "list", "--json"}, lane...)...)
	var l laneList
	if err := json.Unmarshal([]byte(r.stdout), &l); err != nil {
		t.Fatalf("poison list --json: %v\n%s", err, r)
	}
	return l
}

// TestPoisonLifecycle produces poison messages with a failing handler, lists
// and shows them, replays some to the now healthy handler of that group only,
// purges the rest, on every broker.
func TestPoisonLifecycle(t *testing.T) {
	for _, b := range brokers(t) {
		t.Run(strings.ToUpper(b.kind[:1])+b.kind[1:], func(t *testing.T) {
			t.Parallel()
			topic := "orders.placed." + uniqueID()
			path := writeConfig(t, b, topic)
			lane := []string{"--config", path, "--group", "billing", "--event", "orders.placed"}

			// A service whose billing handler fails every order.
			failed, shipped := make(chan string, 100), make(chan string, 100)
			first := startService(t, path,
				func(_ context.Context, o orderPlaced) error {
					failed <- o.ID
					return errors.New("card declined for " + o.ID)
				},
				func(_ context.Context, o orderPlaced) error { shipped <- o.ID; return nil })
			orders := []string{"o-1", "o-2", "o-3", "o-4"}
			for _, id := range orders {
				r := mustRun(t, "publish", "--config", path, "--event", "orders.placed", "--key", id, "--data", `{"id":"`+id+`"}`)
				if !strings.Contains(r.stdout, "published orders.placed to topic "+topic) {
					t.Fatalf("publish: %s", r)
				}
			}
			receive(t, failed, len(orders), time.Minute, "billing failures")
			receive(t, shipped, len(orders), time.Minute, "shipping")

			// The lane fills once each failure is written to it.
			var l laneList
			for deadline := time.Now().Add(time.Minute); ; {
				if l = listLane(t, lane...); l.Total == len(orders) || time.Now().After(deadline) {
					break
				}
			}
			if l.Total != len(orders) || l.Lane != topic+".billing.poison" {
				t.Fatalf("poison list: want %d messages in %s.billing.poison, got %+v", len(orders), topic, l)
			}
			var ids []string
			for _, m := range l.Messages {
				if m.Event != "orders.placed" || !strings.HasPrefix(m.Error, "card declined for o-") || m.Attempts != 1 ||
					m.Reason != "error" || m.Group != "billing" || m.FirstFailure == "" || m.LastFailure == "" || m.Malformed != "" {
					t.Errorf("poison list: unexpected entry %+v", m)
				}
				ids = append(ids, m.ID)
			}
			table := mustRun(t, append([]string{"poison", "list"}, lane...)...)
			if !strings.Contains(table.stdout, "ATTEMPTS") || !strings.Contains(table.stdout, ids[0]) || !strings.Contains(table.stdout, "card declined") {
				t.Errorf("poison list table:\n%s", table.stdout)
			}
			show := mustRun(t, append([]string{"poison", "show", "--id", ids[0]}, lane...)...)
			for _, want := range []string{"card declined for o-", "ce_source: busctl-test", "busline_reason: error", `"id": "o-`} {
				if !strings.Contains(show.stdout, want) {
					t.Errorf("poison show: no %q in\n%s", want, show.stdout)
				}
			}
			expectExit(t, 3, "no message nope", append([]string{"poison", "show", "--id", "nope"}, lane...)...)
			first.stop()

			// The bug is fixed: a new service handles what billing is given.
			handled, shipped2 := make(chan string, 100), make(chan string, 100)
			startService(t, path,
				func(_ context.Context, o orderPlaced) error { handled <- o.ID; return nil },
				func(_ context.Context, o orderPlaced) error { shipped2 <- o.ID; return nil })
			r := mustRun(t, append([]string{"poison", "replay", "--json", "--rate", "20", "--id", strings.Join(ids[:3], ",")}, lane...)...)
			var res sweepResult
			if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || res.Selected != 3 || res.Done != 3 || res.To != topic+".billing.retry" {
				t.Fatalf("poison replay: %v %+v\n%s", err, res, r)
			}
			got := receive(t, handled, 3, time.Minute, "billing replays")
			slices.Sort(got)
			if want := []string{"o-1", "o-2", "o-3", "o-4"}; len(slices.Compact(got)) != 3 || !isSubset(got, want) {
				t.Errorf("billing handled %v after the replay, want 3 of %v", got, want)
			}
			if l := listLane(t, lane...); l.Total != 1 || l.Messages[0].ID != ids[3] {
				t.Fatalf("after replaying 3: want only %s in the lane, got %+v", ids[3], l)
			}

			// Purge asks first; "no" deletes nothing.
			purge := append([]string{"poison", "purge", "--all"}, lane...)
			if r := busctl(t, "no\n", purge...); r.code != 1 || !strings.Contains(r.stderr, "nothing was purged") || !strings.Contains(r.stderr, ids[3]) {
				t.Fatalf("purge answered no: %s", r)
			}
			if l := listLane(t, lane...); l.Total != 1 {
				t.Fatalf("purge answered no deleted messages: %+v", l)
			}
			if r := busctl(t, "yes\n", purge...); r.code != 0 || !strings.Contains(r.stdout, "purged 1 message") {
				t.Fatalf("purge answered yes: %s", r)
			}
			if r := mustRun(t, append([]string{"poison", "list"}, lane...)...); !strings.Contains(r.stdout, "is empty") {
				t.Fatalf("lane not empty after purge: %s", r)
			}
			expectExit(t, 3, "nothing was replayed", append([]string{"poison", "replay", "--all"}, lane...)...)

			// Shipping, which handled every order the first time, saw none of it.
			select {
			case id := <-shipped2:
				t.Errorf("shipping handled %s again: a replay reached another group", id)
			default:
			}
		})
	}
}

// TestPoisonMalformed lists, shows and replays a poison message whose
// failure record is malformed and whose payload is not JSON, as a plain
// client or an old version could leave it.
func TestPoisonMalformed(t *testing.T) {
	for _, b := range brokers(t) {
		t.Run(strings.ToUpper(b.kind[:1])+b.kind[1:], func(t *testing.T) {
			t.Parallel()
			topic := "orders.placed." + uniqueID()
			path := writeConfig(t, b, topic)
			lane := []string{"--config", path, "--group", "billing", "--topic", topic}
			handled := make(chan string, 10)
			s := startService(t, path, func(_ context.Context, o orderPlaced) error { handled <- o.ID; return nil },
				func(context.Context, orderPlaced) error { return nil })
			pub, err := s.bus.Transport().Publisher()
			if err != nil {
				t.Fatal(err)
			}
			defer pub.Close()
			bad := newMessage("not json at all", map[string]string{
				bus.MetaID: "bad-1", "busline_attempts": "many", "busline_error": "boom", "busline_last_failure": "yesterday",
			})
			good := newMessage(`{"id":"o-9"}`, map[string]string{bus.MetaID: "good-1", bus.MetaType: "orders.placed", "busline_attempts": "2"})
			lanePub := topic + ".billing.poison"
			if err := s.bus.Transport().(transports.GroupProvisioner).ProvisionGroup(context.Background(), lanePub, "billing"); err != nil {
				t.Fatal(err)
			}
			if err := pub.Publish(lanePub, bad, good); err != nil {
				t.Fatal(err)
			}
			l := listLane(t, lane...)
			if l.Total != 2 || !strings.Contains(l.Messages[0].Malformed, "busline_attempts") || l.Messages[1].Malformed != "" {
				t.Fatalf("poison list of a malformed message: %+v", l)
			}
			show := mustRun(t, append([]string{"poison", "show", "bad-1"}, lane...)...)
			if !strings.Contains(show.stdout, "not json at all") || !strings.Contains(show.stdout, "malformed") {
				t.Errorf("poison show of a malformed message:\n%s", show.stdout)
			}
			mustRun(t, append([]string{"poison", "replay", "--id", "good-1", "--quiet"}, lane...)...)
			if got := receive(t, handled, 1, time.Minute, "replayed good message"); got[0] != "o-9" {
				t.Errorf("billing handled %v, want o-9", got)
			}
			if l := listLane(t, lane...); l.Total != 1 || l.Messages[0].ID != "bad-1" {
				t.Errorf("after replaying good-1: %+v", l)
			}
		})
	}
}

func isSubset(got, want []string) bool {
	for _, g := range got {
		if !slices.Contains(want, g) {
			return false
		}
	}
	return true
}

func newMessage(payload string, md map[string]string) *message.Message {
	m := message.NewMessage(md[bus.MetaID], []byte(payload))
	for k, v := range md {
		m.Metadata.Set(k, v)
	}
	return m
}

// TestPoisonMistypedLaneChangesNothing works the lane of a misspelt group
// and of a misspelt topic, on every broker: each command fails naming the
// groups that have a lane, and the broker's queues, exchanges, streams,
// topics and groups are the same before and after.
func TestPoisonMistypedLaneChangesNothing(t *testing.T) {
	for _, b := range brokers(t) {
		t.Run(strings.ToUpper(b.kind[:1])+b.kind[1:], func(t *testing.T) {
			t.Parallel()
			topic := "orders.placed." + uniqueID()
			path := writeConfig(t, b, topic)
			provisionLanes(t, path, topic, "billing", "shipping")
			before := brokerObjects(t, b, topic)
			if !slices.ContainsFunc(before, func(s string) bool { return strings.Contains(s, topic+".billing.poison") }) {
				t.Fatalf("the lanes were not provisioned: %v", before)
			}
			for _, args := range [][]string{
				{"poison", "list", "--group", "biling", "--topic", topic},
				{"poison", "list", "--group", "biling", "--event", "orders.placed", "--json"},
				{"poison", "show", "--group", "biling", "--topic", topic, "--id", "x"},
				{"poison", "replay", "--group", "biling", "--topic", topic, "--all"},
				{"poison", "purge", "--group", "biling", "--topic", topic, "--all", "--yes"},
			} {
				r := expectExit(t, 1, "group biling has no poison lane for topic "+topic, append(args, "--config", path)...)
				if !strings.Contains(r.stderr, "with a poison lane for topic "+topic+": billing, shipping (check --group)") {
					t.Errorf("%v: the error does not name the groups that have a lane:\n%s", args, r.stderr)
				}
			}
			expectExit(t, 1, "has a poison lane for topic "+topic+"x: check --topic", "poison", "list", "--config", path, "--group", "billing", "--topic", topic+"x")
			if after := brokerObjects(t, b, topic); !slices.Equal(before, after) {
				t.Errorf("the broker changed:\nbefore %v\nafter  %v", before, after)
			}
			// The lane that exists is read.
			if r := mustRun(t, "poison", "list", "--config", path, "--group", "billing", "--topic", topic); !strings.Contains(r.stdout, "is empty") {
				t.Errorf("poison list of billing: %s", r)
			}
		})
	}
}

// provisionLanes provisions topic and each group's lanes, as a service
// subscribing the groups would.
func provisionLanes(t *testing.T, path, topic string, groups ...string) {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tr, err := cfg.OpenTransport(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	p := tr.(transports.GroupProvisioner)
	for _, g := range groups {
		for _, tp := range []string{topic, wire.RetryTopic(topic, g), wire.PoisonTopic(topic, g)} {
			if err := p.ProvisionGroup(ctx, tp, g); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// brokerObjects lists, sorted, what the broker holds for topic and its
// lanes: RabbitMQ queues and exchanges (rabbitmqctl), Redis keys and their
// consumer groups, Kafka topics and consumer groups.
func brokerObjects(t *testing.T, b broker, topic string) []string {
	t.Helper()
	var out []string
	switch b.kind {
	case "rabbitmq":
		for _, what := range []string{"queues", "exchanges"} {
			lines, err := exec.Command("rabbitmqctl", "list_"+what, "-q", "name").Output()
			if err != nil { // no rabbitmqctl here, or not root: check the names busctl could create
				t.Logf("rabbitmqctl list_%s: %v; checking the queues and exchanges of the lanes by name", what, err)
				return rabbitObjects(t, topic)
			}
			for _, l := range strings.Split(string(lines), "\n") {
				if strings.Contains(l, topic) {
					out = append(out, what+" "+strings.TrimSpace(l))
				}
			}
		}
	case "redis":
		c := goredis.NewClient(&goredis.Options{Addr: envOr("BUSLINE_REDIS_ADDR", "127.0.0.1:6379")})
		defer c.Close()
		ctx := context.Background()
		keys, err := c.Keys(ctx, "*"+topic+"*").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			out = append(out, "key "+k)
			if typ, _ := c.Type(ctx, k).Result(); typ == "stream" {
				groups, err := c.XInfoGroups(ctx, k).Result()
				if err != nil {
					t.Fatal(err)
				}
				for _, g := range groups {
					out = append(out, "group "+k+" "+g.Name)
				}
			}
		}
	case "kafka":
		sc := sarama.NewConfig()
		sc.Version = sarama.V2_8_0_0
		admin, err := sarama.NewClusterAdmin(kafkaAddrs(t, b), sc)
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close()
		topics, err := admin.ListTopics()
		if err != nil {
			t.Fatal(err)
		}
		for name := range topics {
			if strings.Contains(name, topic) {
				out = append(out, "topic "+name)
			}
		}
		groups, err := admin.ListConsumerGroups()
		if err != nil {
			t.Fatal(err)
		}
		for name := range groups {
			if strings.Contains(name, topic) { // lane groups are named after their lane
				out = append(out, "group "+name)
			}
		}
	}
	slices.Sort(out)
	return out
}

// rabbitObjects lists which of the exchanges and queues of topic, topic+"x"
// and their lanes for the groups billing, shipping and biling exist, by
// passive declares, where rabbitmqctl cannot list them.
func rabbitObjects(t *testing.T, topic string) []string {
	t.Helper()
	conn, err := amqp.Dial(envOr("BUSLINE_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	exists := func(declare func(*amqp.Channel) error) bool {
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		err = declare(ch)
		var ae *amqp.Error
		if errors.As(err, &ae) && ae.Code == amqp.NotFound {
			return false
		}
		if err != nil {
			t.Fatal(err)
		}
		_ = ch.Close()
		return true
	}
	var out []string
	for _, tp := range []string{topic, topic + "x"} {
		for _, g := range []string{"billing", "shipping", "biling"} {
			for _, name := range []string{tp, wire.RetryTopic(tp, g), wire.PoisonTopic(tp, g)} {
				if exists(func(ch *amqp.Channel) error {
					return ch.ExchangeDeclarePassive(rabbitmq.ExchangeName(name), amqp.ExchangeFanout, true, false, false, false, nil)
				}) {
					out = append(out, "exchanges "+rabbitmq.ExchangeName(name))
				}
				if exists(func(ch *amqp.Channel) error {
					_, err := ch.QueueDeclarePassive(rabbitmq.QueueName(name, g), true, false, false, false, nil)
					return err
				}) {
					out = append(out, "queues "+rabbitmq.QueueName(name, g))
				}
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
