// Command go-producer writes one plaintext JSON record per interval to a Kafka topic with franz-go
// and prints each record it sent, one line each, for ./meshcrypt demo to show.
//
// Environment: KAFKA_BOOTSTRAP (required), TOPIC (default meshcrypt-demo), INTERVAL_MS (default 1000),
// COUNT (records to send, 0 = until SIGINT/SIGTERM; default 0).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func envInt(name string, def int) int {
	v := env(name, strconv.Itoa(def))
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		fmt.Fprintf(os.Stderr, "go-producer: %s=%q is not a non-negative number\n", name, v)
		os.Exit(2)
	}
	return n
}

func main() {
	bootstrap := os.Getenv("KAFKA_BOOTSTRAP")
	if bootstrap == "" {
		fmt.Fprintln(os.Stderr, "go-producer: KAFKA_BOOTSTRAP is not set")
		os.Exit(2)
	}
	topic := env("TOPIC", "meshcrypt-demo")
	interval := time.Duration(envInt("INTERVAL_MS", 1000)) * time.Millisecond
	count := envInt("COUNT", 0)

	client, err := kgo.NewClient(
		kgo.SeedBrokers(strings.Split(bootstrap, ",")...),
		kgo.AllowAutoTopicCreation(),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0),
	)
	if err != nil {
		fmt.Fprintf(os.Stderr, "go-producer: %v\n", err)
		os.Exit(1)
	}
	defer client.Close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ticker := time.NewTicker(interval)
	defer ticker.Stop()

	for seq := 1; count == 0 || seq <= count; seq++ {
		key := fmt.Sprintf("go-%d", seq)
		value := fmt.Sprintf(`{"from":"go","seq":%d,"card":"4111-1111-1111-%04d"}`, seq, seq%10000)
		// synchronous: a line is printed only once the broker acknowledged the record
		if err := client.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte(key), Value: []byte(value)}).FirstErr(); err != nil {
			if ctx.Err() != nil {
				return
			}
			fmt.Fprintf(os.Stderr, "go-producer: produce %s: %v\n", key, err)
			os.Exit(1)
		}
		fmt.Printf("sent %s %s\n", key, value)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}
