// Command observability runs a checkout service instrumented with package
// otelbus: it exports metrics for Prometheus at /metrics (the OpenTelemetry
// Prometheus exporter), serves Kubernetes probes at /livez and /readyz
// (bus.HealthHandler), and writes traces to stdout (stdouttrace). It
// publishes three orders; billing charges two of them and poisons the third
// after its retries and its delayed redelivery, so every metric has
// something to show.
//
// The transport comes from busline.yaml; BUSLINE_TRANSPORT picks the kind:
//
//	go run ./examples/observability                          # memory
//	BUSLINE_TRANSPORT=redis go run ./examples/observability  # Redis on 127.0.0.1:6379
//	curl -s localhost:9464/metrics | grep -E '^(messaging|busline)_'
//
// See README.md for the output.
package main
