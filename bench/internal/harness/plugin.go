package harness

import (
	"context"
	"errors"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/busline/busline/transports"
)

// plugin is one transport opened for a run: its ways by name, a line that
// describes the broker, and what releases it.
type plugin struct {
	ways     map[string]way
	describe string
	closers  []func() error
}

func (p *plugin) close() error {
	var errs []error
	for _, w := range p.ways {
		errs = append(errs, w.close())
	}
	for i := len(p.closers) - 1; i >= 0; i-- {
		errs = append(errs, p.closers[i]())
	}
	return errors.Join(errs...)
}

// opener opens one transport's plugin with every way of c.Ways. runID is
// unique per run, for names of broker resources that outlive a topic.
type opener func(ctx context.Context, c *Config, runID string) (*plugin, error)

var openers = map[string]opener{
	Memory:   openMemory,
	RabbitMQ: openRabbitMQ,
	Redis:    openRedis,
	Kafka:    openKafka,
}

// brokerTransport is busline's transport for a broker, as the transport and
// busline ways need it.
type brokerTransport interface {
	transports.Transport
	transports.GroupProvisioner
}

// addBuslineWays adds the transport way (bt under a plain router) and the
// busline ways (bus over bt, without and with otelbus) to p. cleanup returns what deletes the broker
// resources of a measurement's topics and group.
func (p *plugin) addBuslineWays(bt brokerTransport, cleanup func(topics []string, group string) func(context.Context) error) error {
	p.closers = append(p.closers, bt.Close)
	pub, err := bt.Publisher()
	if err != nil {
		return err
	}
	p.ways[WayTransport] = wayFuncs{
		prep: func(ctx context.Context, s spec) (topic, error) {
			if err := bt.ProvisionGroup(ctx, s.topic, s.group); err != nil {
				return nil, err
			}
			return &routerTopic{spec: s, pub: pub, cleanup: cleanup([]string{s.topic}, s.group),
				newSub: func() (message.Subscriber, error) { return bt.Subscriber(s.group) }}, nil
		},
		closeFn: pub.Close,
	}
	p.ways[WayBusline] = wayFuncs{prep: func(_ context.Context, s spec) (topic, error) {
		return prepareBusline(bt, s, false, cleanup(buslineTopics(s), s.group))
	}}
	p.ways[WayBuslineOtel] = wayFuncs{prep: func(_ context.Context, s spec) (topic, error) {
		return prepareBusline(bt, s, true, cleanup(buslineTopics(s), s.group))
	}}
	return nil
}
