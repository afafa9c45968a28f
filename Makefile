# busline — `make test` is the whole suite, brokers included; `make test-short`
# needs no broker.
# Every target builds and tests with this toolchain; the go command fetches it
# from the module proxy on first use (go1.26.8 has reachable vulnerabilities).
export GOTOOLCHAIN ?= go1.27.3

GO      ?= go
PKGS    ?= ./...
TIMEOUT ?= 30m

.PHONY: soak help all test test-short vet fmt-check lint vuln bench bench-quick bench-micro brokers quickstart fuzz

all: test

## help: list the targets
help:
	@sed -n 's/^## //p' $(MAKEFILE_LIST)

## test: vet, then every test with -race against the real brokers (started if needed)
test: brokers vet
	$(GO) test -race -count=1 -timeout $(TIMEOUT) $(PKGS)

## test-short: the tests that need no broker
test-short: vet
	$(GO) test -short -race -count=1 $(PKGS)

## vet: gofmt and go vet
vet: fmt-check
	$(GO) vet $(PKGS)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

## lint: vet plus staticcheck
lint: vet
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 $(PKGS)

## soak: the long repetitions the issues measure, not part of make test (20 runs of the Kafka stop/kill scenarios, 10,000-event crash loops, -count=20 of the race-prone cases)
soak: brokers
	BUSLINE_SOAK=1 $(GO) test -race -count=1 -timeout 90m -run 'TestGracefulStopNoDuplicates|TestKillMidStream|TestKillRestartFiveTimes|TestScheduledUnderLoad' ./transports/kafka
	BUSLINE_SOAK=1 $(GO) test -race -count=1 -timeout 60m -run 'TestOrderedAcrossCrashes' ./transports/redis
	$(GO) test -race -count=20 -timeout 60m -run 'TestConformance/Universal/TestTopic' ./transports/kafka
	$(GO) test -race -count=20 -timeout 60m -run 'TestConformance/(Bus|Pipeline)$$/^(KeyOrderedConcurrency|PerKeyOrder|CompetingConsumers|ShutdownIsNotAFailure)$$' ./transports/memory
	$(GO) test -race -count=20 -timeout 60m -run 'TestConformance/(Bus|Pipeline)$$/^(KeyOrderedConcurrency|ShutdownIsNotAFailure)$$' ./transports/redis ./transports/rabbitmq

## vuln: govulncheck over every package, with a database built offline from golang.org/x/vulndb
vuln:
	bash scripts/vuln.sh

## bench: busline (single, batch, keyed, with otelbus) against plain Watermill and the raw clients (pipelined and synchronous) on every transport, 3 runs; writes bench/RESULTS.md (harness: bench/internal/harness)
bench: brokers
	$(GO) run ./bench -runs 3 -out bench/RESULTS.md

## bench-quick: the same in about a minute (smaller sizes, 1 run); prints the table, writes no file
bench-quick: brokers
	$(GO) run ./bench -quick -out ''

## bench-micro: the testing.B benchmarks of every package, the harness's round trips (busline with and without otelbus) among them
bench-micro: brokers
	$(GO) test -run '^$$' -bench . -benchmem -count 3 $(PKGS)

## fuzz: each fuzz target for FUZZTIME (default 60s)
FUZZTIME ?= 60s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./config
	$(GO) test -run '^$$' -fuzz '^FuzzEnvelope$$' -fuzztime $(FUZZTIME) ./bus
	$(GO) test -run '^$$' -fuzz '^FuzzJSONMatchesEncodingJSON$$' -fuzztime $(FUZZTIME) ./bus
	$(GO) test -run '^$$' -fuzz '^FuzzFailure$$' -fuzztime $(FUZZTIME) ./wire

## brokers: make sure RabbitMQ and Redis run on loopback
brokers:
	bash scripts/brokers.sh

## quickstart: run the quickstart on the in-memory transport
quickstart:
	$(GO) run ./examples/quickstart
