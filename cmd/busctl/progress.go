package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// progress reports a sweep's progress on stderr: a bar redrawn in place on a
// terminal, a line every few seconds otherwise.
type progress struct {
	w     io.Writer
	verb  string // "replayed"
	total int
	done  int
	tty   bool
	start time.Time
	last  time.Time
}

func newProgress(w io.Writer, verb string, total int, quiet bool) *progress {
	if quiet {
		w = io.Discard
	}
	now := time.Now()
	return &progress{w: w, verb: verb, total: total, tty: isTerminal(w), start: now, last: now}
}

// tick counts one message done.
func (p *progress) tick() {
	p.done++
	now := time.Now()
	switch {
	case p.tty && (now.Sub(p.last) >= 100*time.Millisecond || p.done == p.total):
		p.last = now
		width := 30
		filled := width * p.done / max(p.total, 1)
		fmt.Fprintf(p.w, "\r%s %d/%d [%s%s] %3d%% %s", p.verb, p.done, p.total,
			strings.Repeat("#", filled), strings.Repeat(".", width-filled), 100*p.done/max(p.total, 1), p.rate(now))
	case !p.tty && now.Sub(p.last) >= 2*time.Second:
		p.last = now
		fmt.Fprintf(p.w, "%s %d/%d %s\n", p.verb, p.done, p.total, p.rate(now))
	}
}

// finish ends the bar's line.
func (p *progress) finish() {
	if p.tty && p.done > 0 {
		fmt.Fprintln(p.w)
	}
}

func (p *progress) rate(now time.Time) string {
	s := now.Sub(p.start).Seconds()
	if s < 0.001 {
		return ""
	}
	return fmt.Sprintf("%.0f msg/s", float64(p.done)/s)
}

func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// pacer spaces events to at most rate per second; rate 0 does not wait.
type pacer struct {
	every time.Duration
	next  time.Time
}

func newPacer(rate float64) *pacer {
	if rate <= 0 {
		return &pacer{}
	}
	return &pacer{every: time.Duration(float64(time.Second) / rate)}
}

// wait blocks until the next event may happen; it returns false if ctx is
// done first.
func (p *pacer) wait(ctx context.Context) bool {
	if p.every == 0 {
		return ctx.Err() == nil
	}
	now := time.Now()
	if p.next.Before(now) {
		p.next = now
	}
	d := p.next.Sub(now)
	p.next = p.next.Add(p.every)
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
