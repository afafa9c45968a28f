package main

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/busline/busline/bus"
	"github.com/busline/busline/config"
	"github.com/busline/busline/otelbus"
	_ "github.com/busline/busline/transports/all" // every kind busline.yaml may name
)

//go:embed busline.yaml
var defaultConfig []byte

// OrderPlaced is the event.
type OrderPlaced struct {
	OrderID string  `json:"order_id"`
	Total   float64 `json:"total"`
}

// EventName is the wire name.
func (OrderPlaced) EventName() string { return "orders.placed" }

// declined is the order billing cannot charge: it ends in the poison lane.
const declined = "B-2"

func main() {
	addr := flag.String("addr", "127.0.0.1:9464", "address of the /metrics, /livez and /readyz server")
	configPath := flag.String("config", "", "busline YAML file (default: the embedded busline.yaml)")
	flag.Parse()
	data := defaultConfig
	if *configPath != "" {
		var err error
		if data, err = os.ReadFile(*configPath); err != nil {
			fmt.Fprintln(os.Stderr, "observability:", err)
			os.Exit(1)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, data, os.LookupEnv, *addr, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "observability:", err)
		os.Exit(1)
	}
}

// run starts the service, does its work, then serves until ctx is done.
func run(ctx context.Context, yaml []byte, lookupEnv func(string) (string, bool), addr string, traces, out io.Writer) error {
	s, err := start(ctx, yaml, lookupEnv, addr, traces)
	if err != nil {
		return err
	}
	defer s.Close()
	workCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := s.Work(workCtx, out); err != nil {
		return err
	}
	fmt.Fprintf(out, "serving http://%s/metrics, /livez and /readyz; Ctrl-C stops\n", s.Addr)
	<-ctx.Done()
	return nil
}

// service is the instrumented checkout service.
type service struct {
	Addr   string // where the HTTP server listens
	bus    *bus.Bus
	topic  string
	server *http.Server
	served chan error
	tp     *sdktrace.TracerProvider
	mp     *sdkmetric.MeterProvider
	gauges metric.Registration

	closeOnce sync.Once

	mu      sync.Mutex
	charged map[string]bool
	failed  int
	changed chan struct{} // signalled when charged or failed changes
}

// start opens the bus that yaml describes, instruments it, subscribes
// billing and starts the HTTP server and the bus.
func start(ctx context.Context, yaml []byte, lookupEnv func(string) (string, bool), addr string, traces io.Writer) (_ *service, err error) {
	cfg, err := config.Parse(yaml, "busline.yaml", lookupEnv)
	if err != nil {
		return nil, err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s := &service{charged: map[string]bool{}, changed: make(chan struct{}, 1), served: make(chan error, 1)}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()

	// Traces to stdout, synchronously so that they print in order (a real
	// service uses sdktrace.WithBatcher and an OTLP exporter).
	spans, err := stdouttrace.New(stdouttrace.WithWriter(traces))
	if err != nil {
		return nil, err
	}
	s.tp = sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	// Metrics for Prometheus, on a registry of our own.
	registry := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(registry))
	if err != nil {
		return nil, err
	}
	s.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))

	obs, err := otelbus.New(otelbus.WithTracerProvider(s.tp), otelbus.WithMeterProvider(s.mp))
	if err != nil {
		return nil, err
	}
	if s.bus, err = cfg.Open(ctx, logger, config.WithObserver(obs)); err != nil {
		return nil, err
	}
	s.topic = cfg.Topics[OrderPlaced{}.EventName()]
	if err := bus.Subscribe(s.bus, "billing", s.bill); err != nil {
		return nil, err
	}
	if s.gauges, err = otelbus.Gauges(s.bus, otelbus.WithMeterProvider(s.mp)); err != nil {
		return nil, err
	}

	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(registry, promhttp.HandlerOpts{}))
	mux.Handle("/livez", bus.HealthHandler(s.bus))
	mux.Handle("/readyz", bus.HealthHandler(s.bus))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s.Addr = ln.Addr().String()
	s.server = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { s.served <- s.server.Serve(ln) }()

	runErr := make(chan error, 1)
	go func() { runErr <- s.bus.Run(context.Background()) }()
	select {
	case <-s.bus.Running():
	case err := <-runErr:
		return nil, err
	}
	return s, nil
}

// bill charges an order; the declined one fails every time.
func (s *service) bill(ctx context.Context, o OrderPlaced) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer func() {
		select {
		case s.changed <- struct{}{}:
		default:
		}
	}()
	if o.OrderID == declined {
		s.failed++
		return errors.New("card declined")
	}
	s.charged[o.OrderID] = true
	return nil
}

// Work publishes three orders and returns once two were charged and the
// declined one reached the poison lane.
func (s *service) Work(ctx context.Context, out io.Writer) error {
	orders := []OrderPlaced{{"A-1", 12.5}, {declined, 99}, {"C-3", 7}}
	for _, o := range orders {
		if err := bus.Publish(ctx, s.bus, o, bus.WithKey(o.OrderID)); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "checkout: published %d orders on %s (%s)\n", len(orders), s.topic, s.bus.TransportKind())
	lane, err := bus.NewPoisonLane(s.bus.Transport(), s.topic, "billing")
	if err != nil {
		return err
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		s.mu.Lock()
		charged, failed := len(s.charged), s.failed
		s.mu.Unlock()
		// Two immediate attempts, then one more pair after the delayed
		// redelivery: four failures, then the poison lane.
		if charged == 2 && failed >= 4 {
			poisoned, err := lane.List(ctx)
			if err != nil {
				return err
			}
			if len(poisoned) == 1 {
				p := poisoned[0]
				fmt.Fprintf(out, "billing: charged 2 orders; %s failed %d times (%s: %s) and is in the poison lane\n",
					declined, p.Failure.Attempts, p.Failure.Reason, p.Failure.Error)
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for billing (charged %d, failed %d): %w", charged, failed, ctx.Err())
		case <-s.changed:
		case <-tick.C:
		}
	}
}

// Close stops the bus, the server and the providers. It is idempotent.
func (s *service) Close() { s.closeOnce.Do(s.close) }

func (s *service) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if s.gauges != nil {
		_ = s.gauges.Unregister()
	}
	if s.server != nil {
		_ = s.server.Shutdown(ctx)
		<-s.served
	}
	if s.bus != nil {
		_ = s.bus.Close(ctx)
	}
	if s.tp != nil {
		_ = s.tp.Shutdown(ctx)
	}
	if s.mp != nil {
		_ = s.mp.Shutdown(ctx)
	}
}
