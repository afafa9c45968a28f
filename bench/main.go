package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/busline/busline/bench/internal/harness"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	quick := flag.Bool("quick", false, "one run with small sizes, under 2 minutes")
	transportList := flag.String("transports", strings.Join(harness.AllTransports, ","), "transports to measure, comma-separated")
	wayList := flag.String("ways", strings.Join(harness.AllWays, ","), "ways to measure, comma-separated")
	scenarioList := flag.String("scenarios", strings.Join(harness.AllScenarios, ","), "scenarios to run, comma-separated")
	runs := flag.Int("runs", 0, "runs of each measurement, the table shows the median (default 3, 1 with -quick)")
	size := flag.Int("size", 0, "payload size in bytes (default 256)")
	messages := flag.Int("messages", 0, "messages of each publish and e2e measurement (default 20000, 5000 with -quick)")
	backlog := flag.Int("backlog", 0, "drain backlog (default 50000, 5000 with -quick)")
	publishers := flag.Int("publishers", 0, "publishing goroutines of publish-n, e2e and the backlog (default 64)")
	consumers := flag.Int("consumers", 0, "handler concurrency of every way but in e2e-keyed (default 1)")
	batchPublishers := flag.Int("batch-publishers", 0, "publishing goroutines of publish-batch and e2e-batch (default 8)")
	batchSize := flag.Int("batch-size", 0, "messages per batch call of publish-batch and e2e-batch (default 100)")
	keyedMessages := flag.Int("keyed-messages", 0, "messages of e2e-keyed and e2e-keyed-1 (default 4000, 1000 with -quick)")
	keys := flag.Int("keys", 0, "ordering keys of e2e-keyed and e2e-keyed-1 (default 1000)")
	keyRun := flag.Int("key-run", 0, "messages of one key each publisher sends in a row in e2e-keyed and e2e-keyed-1 (default 4)")
	keyedConcurrency := flag.Int("keyed-concurrency", 0, "handler concurrency of e2e-keyed (default 16)")
	keyedWork := flag.Duration("keyed-work", 0, "how long each handling of e2e-keyed and e2e-keyed-1 takes (default 1ms)")
	maxDuration := flag.Duration("max", 0, "cap of each measurement (default 30s, 4s with -quick)")
	out := flag.String("out", "bench/RESULTS.md", "file the markdown table is written to; empty: none")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	memProfile := flag.String("memprofile", "", "write an allocation profile at the end of the run to this file")
	verbose := flag.Bool("v", true, "print one line per measurement to stderr")
	flag.Parse()

	cfg := harness.Config{}
	if *quick {
		cfg = harness.Quick()
	}
	cfg.Transports = split(*transportList)
	cfg.Ways = split(*wayList)
	cfg.Scenarios = split(*scenarioList)
	setIf(&cfg.Runs, *runs)
	setIf(&cfg.PayloadSize, *size)
	setIf(&cfg.PublishMessages, *messages)
	setIf(&cfg.E2EMessages, *messages)
	setIf(&cfg.Backlog, *backlog)
	setIf(&cfg.Publishers, *publishers)
	setIf(&cfg.Consumers, *consumers)
	setIf(&cfg.BatchPublishers, *batchPublishers)
	setIf(&cfg.BatchSize, *batchSize)
	setIf(&cfg.KeyedMessages, *keyedMessages)
	setIf(&cfg.Keys, *keys)
	setIf(&cfg.KeyRun, *keyRun)
	setIf(&cfg.KeyedConcurrency, *keyedConcurrency)
	if *keyedWork > 0 {
		cfg.KeyedWork = *keyedWork
	}
	if *maxDuration > 0 {
		cfg.MaxDuration = *maxDuration
	}
	if *verbose {
		cfg.Progress = os.Stderr
	}

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer func() { _ = f.Close() }()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	start := time.Now()
	rep, err := harness.Run(ctx, cfg)
	if rep == nil {
		return err
	}
	md := rep.Markdown()
	fmt.Print(md)
	if *out != "" {
		if werr := os.WriteFile(*out, []byte(md), 0o644); werr != nil {
			return werr
		}
		fmt.Fprintf(os.Stderr, "bench: wrote %s in %v\n", *out, time.Since(start).Round(time.Second))
	}
	if *memProfile != "" {
		f, perr := os.Create(*memProfile)
		if perr != nil {
			return perr
		}
		defer func() { _ = f.Close() }()
		if perr := pprof.Lookup("allocs").WriteTo(f, 0); perr != nil {
			return perr
		}
	}
	return err
}

func split(list string) []string {
	var out []string
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func setIf(v *int, flagValue int) {
	if flagValue > 0 {
		*v = flagValue
	}
}
