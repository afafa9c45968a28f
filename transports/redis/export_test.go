package redis

import "context"

// MoveDue runs the mover of topic's delayed set once, moving at most limit
// due entries, and returns how many it moved.
func (t *Transport) MoveDue(ctx context.Context, topic string, limit int) (int, error) {
	key, _ := delayedKey(t.Stream(topic))
	n, _, err := t.moveOnce(ctx, topic, key, limit)
	return n, err
}
