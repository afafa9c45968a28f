// Package faultproxy is a TCP proxy for tests that cut a client off from
// its broker the ways networks fail: bytes that stop flowing on open
// connections (a dropped link, a stalled broker), and connections refused.
package faultproxy

import (
	"net"
	"sync"
	"testing"
)

// Mode is what the proxy does with traffic.
type Mode int

const (
	// Pass forwards bytes both ways.
	Pass Mode = iota
	// Drop keeps connections open and accepts new ones, but forwards no
	// byte either way: a request is written and never answered.
	Drop
	// Refuse closes every connection and refuses new ones.
	Refuse
)

// Proxy forwards connections from Addr to a target. It is safe for
// concurrent use.
type Proxy struct {
	target string
	ln     net.Listener
	addr   string

	mu     sync.Mutex
	mode   Mode
	resume chan struct{} // closed when the mode leaves Drop
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// New starts a proxy on a free loopback port to target (host:port),
// closed at the end of the test.
func New(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("faultproxy: %v", err)
	}
	p := &Proxy{target: target, ln: ln, addr: ln.Addr().String(), resume: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	close(p.resume)
	p.wg.Add(1)
	go p.accept(ln)
	t.Cleanup(p.Close)
	return p
}

// Addr is the host:port clients dial instead of the target.
func (p *Proxy) Addr() string { return p.addr }

// Set switches the proxy to mode m.
func (p *Proxy) Set(m Mode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || m == p.mode {
		return
	}
	prev := p.mode
	p.mode = m
	if prev == Drop {
		close(p.resume)
	}
	if m == Drop {
		p.resume = make(chan struct{})
	}
	if m == Refuse {
		_ = p.ln.Close()
		p.closeConnsLocked()
	}
	if prev == Refuse {
		ln, err := net.Listen("tcp", p.addr)
		if err != nil {
			panic("faultproxy: listen again on " + p.addr + ": " + err.Error())
		}
		p.ln = ln
		p.wg.Add(1)
		go p.accept(ln)
	}
}

// Close stops the proxy and closes every connection.
func (p *Proxy) Close() {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		_ = p.ln.Close()
		p.closeConnsLocked()
		if p.mode == Drop {
			close(p.resume)
		}
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Proxy) closeConnsLocked() {
	for c := range p.conns {
		_ = c.Close()
	}
	clear(p.conns)
}

func (p *Proxy) accept(ln net.Listener) {
	defer p.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		if p.closed || p.mode == Refuse {
			p.mu.Unlock()
			_ = c.Close()
			_ = up.Close()
			continue
		}
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.wg.Add(2)
		p.mu.Unlock()
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

// pipe copies from src to dst, holding bytes while the mode is Drop (they
// are never sent: the connection is closed before the mode changes back, or
// the bytes flow late, as after a stall).
func (p *Proxy) pipe(src, dst net.Conn) {
	defer p.wg.Done()
	defer func() { _ = src.Close(); _ = dst.Close() }()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			resume := p.resume
			p.mu.Unlock()
			<-resume
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil { // EOF or a closed connection: close the other side too
			return
		}
	}
}
