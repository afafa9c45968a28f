package redis

import (
	"context"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// maxPipeline bounds how many commands one pipeline carries.
const maxPipeline = 1000

// publishMargin is how long after its context ends a Publish or
// PublishDelayed may return; the package documentation states it.
const publishMargin = 100 * time.Millisecond

// lateAnswer is how long a caller whose context ended waits for the
// answer of the pipeline it is in, within publishMargin. The pipeline's
// socket deadline is the latest of its callers' deadlines, so for the
// caller with that deadline the answer (a reply, a timeout, a refused
// dial) comes at once, and says whether anything was sent.
const lateAnswer = publishMargin / 2

// request is one caller's commands, waiting for the batcher.
type request struct {
	ctx  context.Context
	cmds []goredis.Cmder
	done chan struct{} // closed when every command of cmds has its reply or error
	err  error         // set before done is closed: an *unsentError, or nil once sent
}

// batcher sends the commands of concurrent callers (Publish's XADDs,
// PublishDelayed's scripts) in shared pipelines: it takes every request
// waiting when it is free, sends them as one pipeline, and answers each.
// A lone publisher still gets one round trip per call and no added wait;
// many publishers share round trips.
//
// Each caller's context bounds its own wait, not its neighbours': a
// request whose context ends before its pipeline is written is left out of
// it, and a caller whose context ends while its pipeline is in flight
// returns and leaves the pipeline to finish for the others. The pipeline
// runs until the latest deadline among its requests (none when one has
// none), and its commands are never retried by go-redis (noRetry).
type batcher struct {
	ctx    context.Context // ended by the transport's Close
	client goredis.UniversalClient
	reqs   chan *request
	stop   chan struct{}
	done   chan struct{}
}

func newBatcher(ctx context.Context, client goredis.UniversalClient) *batcher {
	b := &batcher{ctx: ctx, client: client, reqs: make(chan *request), stop: make(chan struct{}), done: make(chan struct{})}
	go b.run()
	return b
}

// unsentError is do's error when none of the request's commands was sent:
// its context ended before its pipeline was written.
type unsentError struct{ err error }

func (e *unsentError) Error() string { return e.err.Error() }
func (e *unsentError) Unwrap() error { return e.err }

// inFlightError is do's error when the caller's context ended while its
// pipeline was written, or being written, and not answered.
type inFlightError struct{ err error }

func (e *inFlightError) Error() string { return e.err.Error() }
func (e *inFlightError) Unwrap() error { return e.err }

// do sends cmds in a shared pipeline and waits for their replies, which it
// leaves in cmds, until ctx ends (and lateAnswer more for an answer in
// flight). It returns nil once every command has its reply or error (see
// each command's Err), ErrClosed once the batcher stopped, an *unsentError
// when ctx ended before cmds were sent, and an *inFlightError when it ended
// while they were in flight. After an error other than nil, do never reads
// or writes cmds again, though the batcher may still send them.
func (b *batcher) do(ctx context.Context, cmds []goredis.Cmder) error {
	r := &request{ctx: ctx, cmds: cmds, done: make(chan struct{})}
	select {
	case b.reqs <- r:
	case <-ctx.Done():
		return &unsentError{ctx.Err()}
	case <-b.stop:
		return ErrClosed
	}
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
	}
	late := time.NewTimer(lateAnswer)
	defer late.Stop()
	select {
	case <-r.done:
		return r.err
	case <-late.C:
		return &inFlightError{ctx.Err()}
	}
}

func (b *batcher) run() {
	defer close(b.done)
	for {
		var batch []*request
		select {
		case r := <-b.reqs:
			batch = append(batch, r)
		case <-b.stop:
			return
		}
		n := len(batch[0].cmds)
	gather:
		for n < maxPipeline {
			select {
			case r := <-b.reqs:
				batch = append(batch, r)
				n += len(r.cmds)
			default:
				break gather
			}
		}
		b.send(batch)
	}
}

// send runs one pipeline for the requests of batch whose context has not
// ended, and answers every request.
func (b *batcher) send(batch []*request) {
	live := batch[:0]
	var latest time.Time
	bounded := true
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.err = &unsentError{err}
			close(r.done)
			continue
		}
		live = append(live, r)
		if d, ok := r.ctx.Deadline(); !ok {
			bounded = false
		} else if d.After(latest) {
			latest = d
		}
	}
	if len(live) == 0 {
		return
	}
	ctx, cancel := b.ctx, context.CancelFunc(func() {})
	if bounded {
		ctx, cancel = context.WithDeadline(b.ctx, latest)
	}
	defer cancel()
	// Every command gets its reply or the pipeline's error; the error
	// Pipelined returns is one of those.
	_, _ = b.client.Pipelined(ctx, func(pipe goredis.Pipeliner) error {
		for _, r := range live {
			for _, c := range r.cmds {
				_ = pipe.Process(ctx, noRetry{c})
			}
		}
		return nil
	})
	for _, r := range live {
		close(r.done)
	}
}

// close stops the batcher once the requests it took are answered.
func (b *batcher) close() {
	close(b.stop)
	<-b.done
}

// noRetry is a command go-redis must not retry. A retried XADD whose reply
// was lost stores its entry twice; and after a retry the transport could no
// longer tell from the last error whether an earlier attempt was sent
// (a refused redial after a lost reply).
type noRetry struct{ goredis.Cmder }

// NoRetry tells go-redis not to retry the command.
func (noRetry) NoRetry() bool { return true }
