package main

import (
	"context"
	"fmt"

	"github.com/busline/busline/transports"
)

// removeGroup deletes group's queue or consumer group on topic, through the
// transport's transports.GroupRemover.
func removeGroup(ctx context.Context, t transports.Transport, topic, group string) error {
	r, ok := t.(transports.GroupRemover)
	if !ok {
		return fmt.Errorf("transport %T cannot delete consumer groups: delete group %s on topic %s with the broker's tools", t, group, topic)
	}
	return r.RemoveGroup(ctx, topic, group)
}
