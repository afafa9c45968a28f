package rabbitmq_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/busline/busline/transports"
	"github.com/busline/busline/transports/rabbitmq"
)

const secret = "s3cr3t-Pa55"

// The password never appears in errors, logs or a printed Config, on the
// bad-URL, connection-refused and auth-failure paths.
func TestPasswordNeverPrinted(t *testing.T) {
	requireBroker(t)
	t.Parallel()
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

// Every way of printing or encoding a Config shows none of its secrets:
// fmt's verbs, slog's text and JSON handlers, encoding/json, yaml.v3, and
// the registry's effective configuration (busctl config show); and every
// string field that is not a secret type is one known to hold none, so
// that a new password field cannot be added as a plain string.
func TestConfigNeverPrintsSecrets(t *testing.T) {
	t.Parallel()
	const special = "p@ss:w/rd?#%"
	for _, c := range []struct{ name, url, secret string }{
		{"URL", "amqp://app:" + secret + "@rabbit:5672/shop", secret},
		{"TLSURL", "amqps://app:" + secret + "@rabbit:5671/%2F?heartbeat=5", secret},
		{"Unparsable", "amqp://app:" + secret + "%zz@rabbit/", secret},
		{"Escaped", "amqp://app:" + url.QueryEscape(special) + "@rabbit/", special},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := rabbitmq.Config{
				URL: transports.SecretURL(c.url), ConnectionName: "checkout",
				TLS: rabbitmq.TLSConfig{CAFile: "/etc/ca.pem", CertFile: "/etc/c.pem", KeyFile: "/etc/c.key", ServerName: "rabbit"},
			}
			var printed []string
			for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
				printed = append(printed, fmt.Sprintf(verb, cfg), fmt.Sprintf(verb, &cfg), fmt.Sprintf(verb, cfg.URL))
			}
			printed = append(printed, cfg.String(), cfg.GoString(), cfg.URL.String(),
				logged(slog.NewJSONHandler, cfg), logged(slog.NewTextHandler, cfg))
			for _, v := range []any{cfg, &cfg, map[string]any{"rabbitmq": cfg}} {
				j, err := json.Marshal(v)
				if err != nil {
					t.Fatalf("json.Marshal: %v", err)
				}
				y, err := yaml.Marshal(v)
				if err != nil {
					t.Fatalf("yaml.Marshal: %v", err)
				}
				printed = append(printed, string(j), string(y))
			}
			eff, err := transports.EffectiveConfig(rabbitmq.Kind, transports.OpenParams{
				Service: "checkout", Logger: quietLogger(),
				Decode: func(into any) error { *(into.(*rabbitmq.Config)) = cfg; return nil },
			})
			if err != nil && eff == nil {
				t.Fatalf("EffectiveConfig: %v", err)
			}
			y, _ := yaml.Marshal(eff)
			printed = append(printed, fmt.Sprintf("%+v", eff), string(y))
			if err != nil {
				printed = append(printed, err.Error())
			}
			for _, p := range printed {
				for _, s := range []string{c.secret, url.QueryEscape(c.secret), url.PathEscape(c.secret)} {
					if strings.Contains(p, s) {
						t.Errorf("secret %q printed: %s", s, p)
					}
				}
			}
		})
	}

	notSecret := map[string]bool{
		"Auth": true, "QueueType": true, "HeaderPrefix": true, "ConnectionName": true,
		"TLS.CAFile": true, "TLS.CertFile": true, "TLS.KeyFile": true, "TLS.ServerName": true,
	}
	secretTypes := map[reflect.Type]bool{reflect.TypeFor[transports.Secret](): true, reflect.TypeFor[transports.SecretURL](): true}
	var walk func(prefix string, typ reflect.Type)
	walk = func(prefix string, typ reflect.Type) {
		for f := range typ.Fields() {
			name := prefix + f.Name
			switch {
			case secretTypes[f.Type]:
			case f.Type.Kind() == reflect.Struct && strings.HasPrefix(f.Type.PkgPath(), "github.com/busline/busline/"):
				walk(name+".", f.Type)
			case f.Type.Kind() == reflect.String || f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Uint8:
				if !notSecret[name] {
					t.Errorf("Config.%s is a plain %v: make it a transports.Secret (or SecretURL) if it can hold a secret, else list it here as not one", name, f.Type)
				}
			}
		}
	}
	walk("", reflect.TypeFor[rabbitmq.Config]())
}
