package rabbitmq_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/busline/busline/transports"
	"github.com/busline/busline/transports/rabbitmq"
)

const secret = "s3cr3t-Pa55"

// The password never appears in errors, logs or a printed Config, on the
// bad-URL, connection-refused and auth-failure paths.
func TestPasswordNeverPrinted(t *testing.T) {
	requireBroker(t)
	cases := []struct {
		name, url, want string
	}{
		{"BadURL", "amqp://guest:" + secret + "%zz@127.0.0.1:5672/", "not a valid URL"},
		{"BadScheme", "http://guest:" + secret + "@127.0.0.1:5672/", "scheme must be amqp or amqps"},
		{"ConnectionRefused", "amqp://guest:" + secret + "@127.0.0.1:1/", "is RabbitMQ running"},
		{"AuthFailure", strings.Replace(brokerURL(), "guest:guest@", "guest:"+secret+"@", 1), "check the user and password"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var logs bytes.Buffer
			cfg := rabbitmq.Config{URL: transports.SecretURL(c.url), Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			tr, err := rabbitmq.New(ctx, cfg)
			if err == nil {
				_ = tr.Close()
				t.Fatal("New succeeded, want an error")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not say %q", err, c.want)
			}
			printed := []string{
				err.Error(), fmt.Sprintf("%v", err), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err),
				fmt.Sprintf("%v", cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), cfg.String(),
				fmt.Sprintf("%+v", &cfg), fmt.Sprintf("%s", cfg), fmt.Sprintf("%q", cfg.URL), logs.String(),
				logged(slog.NewJSONHandler, cfg), logged(slog.NewTextHandler, cfg),
			}
			for e := err; e != nil; {
				u, ok := e.(interface{ Unwrap() error })
				if !ok {
					break
				}
				e = u.Unwrap()
				if e != nil {
					printed = append(printed, e.Error())
				}
			}
			for _, p := range printed {
				if strings.Contains(p, secret) {
					t.Errorf("password printed: %s", p)
				}
			}
		})
	}
}

// logged is what handler h writes for a log line holding cfg, as a value
// and as its fields.
func logged[H slog.Handler](h func(w io.Writer, o *slog.HandlerOptions) H, cfg rabbitmq.Config) string {
	var b bytes.Buffer
	slog.New(h(&b, nil)).Info("config", "config", cfg, "url", cfg.URL, "tls", cfg.TLS)
	return b.String()
}
