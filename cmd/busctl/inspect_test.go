package main

import (
	"context"
	"strings"
	"testing"

	"github.com/busline/busline/wire"
)

// fakeInspector holds the groups provisioned per topic; listable false
// makes Groups fail as over AMQP.
type fakeInspector struct {
	groups   map[string][]string
	listable bool
}

func (f fakeInspector) GroupExists(_ context.Context, topic, group string) (bool, error) {
	for _, g := range f.groups[topic] {
		if g == group {
			return true, nil
		}
	}
	return false, nil
}

func (f fakeInspector) Groups(_ context.Context, topic string) ([]string, error) {
	if !f.listable {
		return nil, errNotListable
	}
	return f.groups[topic], nil
}

func (f fakeInspector) TopicExists(_ context.Context, topic string) (bool, error) {
	_, ok := f.groups[topic]
	return ok, nil
}

func TestCheckLane(t *testing.T) {
	t.Parallel()
	lanes := map[string][]string{
		"orders":                               {"billing", "busctl-tail-1", "shipping"},
		wire.PoisonTopic("orders", "billing"):  {"billing"},
		wire.PoisonTopic("orders", "shipping"): {"shipping"},
	}
	for _, c := range []struct {
		name, topic, group string
		listable           bool
		want               string // "" for no error
	}{
		{"Exists", "orders", "billing", true, ""},
		{"ExistsNotListable", "orders", "billing", false, ""},
		{"MisspeltGroup", "orders", "biling", true, "group biling has no poison lane for topic orders (orders.biling.poison does not exist; nothing was created); groups with a poison lane for topic orders: billing, shipping (check --group)"},
		{"MisspeltGroupNotListable", "orders", "biling", false, "; groups of the config with a poison lane for topic orders: billing, shipping (check --group)"},
		{"MisspeltTopic", "ordres", "billing", true, "; no group has a poison lane for topic ordres: check --topic or --event"},
		{"MisspeltTopicNotListable", "ordres", "billing", false, "; none of the config's groups (billing, shipping) has a poison lane for topic ordres: check --topic"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			err := checkLane(context.Background(), fakeInspector{lanes, c.listable}, c.topic, c.group, []string{"billing", "shipping"})
			switch {
			case c.want == "" && err != nil:
				t.Errorf("checkLane: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Errorf("checkLane: %v, want an error with %q", err, c.want)
			}
		})
	}
}
