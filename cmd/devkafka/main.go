package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	port := flag.Int("port", 9092, "TCP port to listen on, on 127.0.0.1")
	partitions := flag.Int("partitions", 3, "partitions of auto-created topics")
	data := flag.String("data", "", "directory to persist data in; empty keeps everything in memory")
	flag.Parse()

	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(*port),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(*partitions),
	}
	if *data != "" {
		opts = append(opts, kfake.DataDir(*data))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		fmt.Fprintf(os.Stderr, "devkafka: %v (is port %d taken? try -port)\n", err, *port)
		os.Exit(1)
	}
	fmt.Printf("devkafka: Kafka protocol on %v; set transport.kafka.brokers (or BUSLINE_KAFKA_BROKERS) to it. Ctrl-C stops.\n", c.ListenAddrs())
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	<-stop
	c.Close()
}
