package harness

import (
	"context"
	"errors"
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
