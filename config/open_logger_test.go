package config_test

import (
	"context"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/busline/busline/config"
	"github.com/busline/busline/internal/testlog"
	_ "github.com/busline/busline/transports/rabbitmq"
	_ "github.com/busline/busline/transports/redis"
)

// A wrong broker password appears in no log line and no error, on every
// broker that takes one, with the logger config.Open was given.
func TestOpenLogsNoPassword(t *testing.T) {
	if testing.Short() {
		t.Skip("needs RabbitMQ on 127.0.0.1:5672 and Redis on 127.0.0.1:6379 (make brokers)")
	}
	const password = "Wr0ng/p@ss%20word"
	for name, section := range map[string]string{
		"rabbitmq": "rabbitmq: {url: \"amqp://guest:${PW_URL}@127.0.0.1:5672/\", connect_timeout: 2s}",
		"redis":    "redis: {addr: \"127.0.0.1:6379\", username: nobody, password: \"${PW}\", dial_timeout: 2s}",
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv("PW", password)
			t.Setenv("PW_URL", url.UserPassword("", password).String()[1:]) // percent-encoded
			path := writeConfig(t, "service: s\ntransport:\n  kind: "+name+"\n  "+section+"\n")
			var logs testlog.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			b, err := config.Open(ctx, path, config.WithLogger(slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
			if err == nil {
				_ = b.Close(context.Background())
				t.Fatalf("Open with a wrong password succeeded")
			}
			for _, secret := range []string{password, "p@ss", "Wr0ng"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error shows the password: %v", err)
				}
				if strings.Contains(logs.String(), secret) {
					t.Errorf("a log line shows the password:\n%s", logs.String())
				}
			}
			t.Logf("error: %v; %d bytes of logs", err, len(logs.String()))
		})
	}
}
