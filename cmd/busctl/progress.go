package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/time/rate"
)

// progress reports a sweep's progress on stderr: a progressbar redrawn in
// place on a terminal. Elsewhere (a log file, CI) it writes a line every
// few seconds instead, since the library only redraws one line with carriage
// returns, which a log keeps as a single ever-growing line.
type progress struct {
	bar   *progressbar.ProgressBar // on a terminal, else nil
	w     io.Writer                // off a terminal, else nil; both nil: quiet
	verb  string
	total int
	done  int
	start time.Time
	last  time.Time
}

// progressEvery is how often progress writes a line off a terminal.
const progressEvery = 2 * time.Second

// newProgress returns the progress of a sweep of total messages, whose verb
// is "replayed" or "purged", written to w; quiet writes nothing.
func newProgress(w io.Writer, verb string, total int, quiet bool) *progress {
	now := time.Now()
	p := &progress{verb: verb, total: total, start: now, last: now}
	switch {
	case quiet:
	case isTerminal(w):
		p.bar = progressbar.NewOptions(total,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription(verb),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("msg"),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
		)
	default:
		p.w = w
	}
	return p
}

// Add counts n messages done.
func (p *progress) Add(n int) {
	p.done += n
	if p.bar != nil {
		_ = p.bar.Add(n)
		return
	}
	if now := time.Now(); p.w != nil && now.Sub(p.last) >= progressEvery {
		p.last = now
		fmt.Fprintf(p.w, "%s %d/%d (%.0f msg/s)\n", p.verb, p.done, p.total, float64(p.done)/now.Sub(p.start).Seconds())
	}
}

// Finish ends the bar's line, if it drew one; a sweep that stopped part-way
// leaves the bar where it got to.
func (p *progress) Finish() {
	if p.bar == nil || p.done == 0 || p.bar.IsFinished() {
		return
	}
	_ = p.bar.Exit()
}

func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// newPacer returns the limiter that spaces a sweep's messages to at most
// perSecond; 0 does not wait. The first message goes at once.
func newPacer(perSecond float64) *rate.Limiter {
	if perSecond <= 0 {
		return rate.NewLimiter(rate.Inf, 1)
	}
	return rate.NewLimiter(rate.Limit(perSecond), 1)
}
