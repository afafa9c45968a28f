package transports_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/busline/busline/transports"
)

// sampleConfig is shaped like a transport's config section.
type sampleConfig struct {
	URL      transports.SecretURL `json:"url" yaml:"url"`
	User     string               `json:"user" yaml:"user"`
	Password transports.Secret    `json:"password" yaml:"password"`
	Nested   struct {
		Token transports.Secret `json:"token" yaml:"token"`
	} `json:"nested" yaml:"nested"`
	Ptr *transports.Secret `json:"ptr" yaml:"ptr"`
}

// Secrets with the characters that broke URL redaction before.
var secrets = []string{"with/slash", "pa%ss", "h#sh", "qu?ery", "sp ace", "a/b@tail", "s3cr3t"}

func TestSecretsNeverPrinted(t *testing.T) {
	t.Parallel()
	for _, pw := range secrets {
		ptr := transports.Secret(pw + "-ptr")
		c := sampleConfig{URL: transports.SecretURL("amqp://user:" + pw + "@broker:5672/vhost"), User: "user", Password: transports.Secret(pw), Ptr: &ptr}
		c.Nested.Token = transports.Secret(pw + "-token")
		var outs []string
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
			outs = append(outs, fmt.Sprintf(verb, c), fmt.Sprintf(verb, &c), fmt.Sprintf(verb, c.Password), fmt.Sprintf(verb, c.URL))
		}
		outs = append(outs, fmt.Sprint(c), fmt.Sprintln(c.Password, c.URL), c.Password.String(), c.URL.String())
		j, _ := json.Marshal(c)
		y, _ := yaml.Marshal(c)
		outs = append(outs, string(j), string(y))
		for _, h := range []func(*bytes.Buffer) slog.Handler{
			func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
			func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		} {
			var buf bytes.Buffer
			slog.New(h(&buf)).Info("config", "config", c, "password", c.Password, "url", c.URL, "ptr", c.Ptr)
			outs = append(outs, buf.String())
		}
		for _, out := range outs {
			for _, s := range []string{pw, strings.ReplaceAll(pw, "/", "%2F"), "tail"} {
				if strings.Contains(out, s) && !(s == "tail" && pw != "a/b@tail") {
					t.Errorf("secret %q printed as %q in: %s", pw, s, out)
				}
			}
		}
	}
}

func TestSecretReveal(t *testing.T) {
	t.Parallel()
	var c sampleConfig
	if err := yaml.Unmarshal([]byte("url: amqp://u:p%2Fw@h/\npassword: pw\n"), &c); err != nil {
		t.Fatal(err)
	}
	if c.Password.Reveal() != "pw" || c.URL.Reveal() != "amqp://u:p%2Fw@h/" {
		t.Errorf("decoded %q %q, want the values as written", c.Password.Reveal(), c.URL.Reveal())
	}
	if transports.Secret("").String() != "" {
		t.Error("an empty secret prints as something")
	}
}
