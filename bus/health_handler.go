package bus

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// healthTimeout bounds the transport's Health call of one probe.
const healthTimeout = 5 * time.Second

// HealthHandler returns an http.Handler for Kubernetes probes that reads
// b.Health at every request:
//
//   - GET /livez answers 200 "ok" while Health.Live, else 503: it fails
//     only when a subscription stopped consuming while the bus runs, which
//     a restart mends; a broker that is down is no reason to restart.
//   - GET /readyz answers 200 "ok" while Health.Ready, else 503: the bus
//     runs, the transport is healthy and every subscription consumes.
//
// A path ending in /livez or /readyz is served, so the handler can be
// mounted under a prefix. With ?verbose the body lists every check, one a
// line, "[+]name ok" or "[-]name failed: reason", as the Kubernetes API
// server's probes do; a failed probe always lists them. Each probe waits at
// most 5s for the transport (less if the request's context ends first).
// Error texts come from the transport, which redacts credentials.
func HealthHandler(b *Bus) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ready bool
		switch {
		case strings.HasSuffix(r.URL.Path, "/readyz"):
			ready = true
		case strings.HasSuffix(r.URL.Path, "/livez"):
		default:
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
		defer cancel()
		h := b.Health(ctx)
		checks := h.checks(ready)
		ok := true
		for _, c := range checks {
			ok = ok && c.err == nil
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_, verbose := r.URL.Query()["verbose"]
		if verbose || !ok {
			for _, c := range checks {
				if c.err == nil {
					fmt.Fprintf(w, "[+]%s ok\n", c.name)
				} else {
					fmt.Fprintf(w, "[-]%s failed: %v\n", c.name, c.err)
				}
			}
		}
		if ok {
			probe := "livez"
			if ready {
				probe = "readyz"
			}
			if verbose {
				fmt.Fprintf(w, "%s check passed\n", probe)
			} else {
				fmt.Fprint(w, "ok")
			}
		} else {
			fmt.Fprintln(w, "health check failed")
		}
	})
}

type healthCheck struct {
	name string
	err  error
}

// checks lists the checks of the readiness probe (ready) or the liveness
// probe; Ready and Live are true exactly when every check passes.
func (h Health) checks(ready bool) []healthCheck {
	var checks []healthCheck
	if ready {
		var err error
		if !h.Running {
			err = errors.New("the bus is not running (Run not started, or Close started)")
		}
		checks = append(checks, healthCheck{"bus", err}, healthCheck{"transport " + h.Transport, h.TransportErr})
	}
	for _, s := range h.Subscriptions {
		c := healthCheck{name: "subscription " + s.Event + "/" + s.Group}
		switch {
		case ready && !s.Consuming, !ready && h.Running && s.Joined && !s.Consuming:
			c.err = errors.New("not consuming")
			if !s.Joined {
				c.err = errors.New("not joined")
			}
			if s.LastErr != nil {
				c.err = fmt.Errorf("%w; last error at %s: %w", c.err, s.LastErrAt.UTC().Format(time.RFC3339), s.LastErr)
			}
		}
		checks = append(checks, c)
	}
	return checks
}
