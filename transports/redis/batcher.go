package redis

import (
	"context"

	goredis "github.com/redis/go-redis/v9"
)

// maxPipeline bounds how many XADDs one pipeline carries.
const maxPipeline = 1000

// xaddRequest is one Publish call's XADDs, waiting for the batcher.
type xaddRequest struct {
	args []*goredis.XAddArgs
	cmds []*goredis.StringCmd
	err  error         // set by the batcher before done is closed
	done chan struct{} // closed when every XADD of args has its reply
}

// batcher sends the XADDs of concurrent Publish calls in shared pipelines:
// it takes every request waiting when it is free, sends them as one
// pipeline, and answers each. A lone publisher still gets one round trip per
// call and no added wait; many publishers share round trips.
type batcher struct {
	client goredis.UniversalClient
	reqs   chan *xaddRequest
	stop   chan struct{}
	done   chan struct{}
}

func newBatcher(client goredis.UniversalClient) *batcher {
	b := &batcher{client: client, reqs: make(chan *xaddRequest), stop: make(chan struct{}), done: make(chan struct{})}
	go b.run()
	return b
}

// do sends args and waits for their replies. Once the batcher stopped it
// sends nothing and returns ErrClosed.
func (b *batcher) do(args []*goredis.XAddArgs) ([]*goredis.StringCmd, error) {
	r := &xaddRequest{args: args, done: make(chan struct{})}
	select {
	case b.reqs <- r:
	case <-b.stop:
		return nil, ErrClosed
	}
	<-r.done
	return r.cmds, r.err
}

func (b *batcher) run() {
	defer close(b.done)
	for {
		var batch []*xaddRequest
		select {
		case r := <-b.reqs:
			batch = append(batch, r)
		case <-b.stop:
			return
		}
		n := len(batch[0].args)
	gather:
		for n < maxPipeline {
			select {
			case r := <-b.reqs:
				batch = append(batch, r)
				n += len(r.args)
			default:
				break gather
			}
		}
		b.send(batch)
	}
}

// send runs one pipeline for batch and answers every request.
func (b *batcher) send(batch []*xaddRequest) {
	ctx := context.Background()
	_, err := b.client.Pipelined(ctx, func(pipe goredis.Pipeliner) error {
		for _, r := range batch {
			r.cmds = make([]*goredis.StringCmd, len(r.args))
			for i, a := range r.args {
				r.cmds[i] = pipe.XAdd(ctx, a)
			}
		}
		return nil
	})
	for _, r := range batch {
		r.err = err
		close(r.done)
	}
}

// close stops the batcher once the requests it took are answered.
func (b *batcher) close() {
	close(b.stop)
	<-b.done
}
