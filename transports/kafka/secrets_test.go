package kafka_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/busline/busline/internal/testcerts"
	"github.com/busline/busline/transports/kafka"
)

// TestConfigHidesSecrets formats a Config that holds every kind of secret
// it can (the SASL password; a tls.Config with a client certificate's
// private key) with every fmt verb, both slog handlers, encoding/json and
// yaml, and finds none of them in the output; the encoders succeed.
func TestConfigHidesSecrets(t *testing.T) {
	t.Parallel()
	const password = "hunter2-S3cret"
	certs, err := testcerts.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(certs.ClientCert, certs.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(certs.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	key, ok := cert.PrivateKey.(*ecdsa.PrivateKey) // %v of a key prints its scalar in decimal
	if !ok {
		t.Fatalf("test key is a %T, want *ecdsa.PrivateKey", cert.PrivateKey)
	}
	keyBytes, err := key.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	scalar := new(big.Int).SetBytes(keyBytes).String()
	secrets := map[string]string{
		"private key (decimal)": scalar,
		"password":              password,
		"private key PEM":       string(bytes.TrimSpace(keyPEM)[40:80]),
		"private key (hex)":     fmt.Sprintf("%x", keyBytes),
	}
	cfg := kafka.Config{
		Brokers:  []string{"k1:9092"},
		ClientID: "checkout",
		SASL:     kafka.SASLConfig{Mechanism: "SCRAM-SHA-512", Username: "checkout", Password: password},
		TLS:      kafka.TLSConfig{CAFile: certs.CA, Config: &tls.Config{Certificates: []tls.Certificate{cert}, ServerName: "kafka"}},
		Logger:   slog.Default(),
	}
	outs := map[string]string{}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		outs["Sprintf "+verb] = fmt.Sprintf(verb, cfg)
		outs["Sprintf "+verb+" of a pointer"] = fmt.Sprintf(verb, &cfg)
		outs["Sprintf "+verb+" of TLSConfig"] = fmt.Sprintf(verb, cfg.TLS)
		outs["Sprintf "+verb+" of SASLConfig"] = fmt.Sprintf(verb, cfg.SASL)
	}
	j, err := json.Marshal(cfg)
	if err != nil {
		t.Errorf("json.Marshal(Config): %v", err)
	}
	outs["json.Marshal"] = string(j)
	y, err := yaml.Marshal(cfg)
	if err != nil {
		t.Errorf("yaml.Marshal(Config): %v", err)
	}
	outs["yaml.Marshal"] = string(y)
	for name, h := range map[string]func(*bytes.Buffer) slog.Handler{
		"slog JSON": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
		"slog text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
	} {
		var buf bytes.Buffer
		slog.New(h(&buf)).Info("config", "config", cfg, "pointer", &cfg, "tls", cfg.TLS, "sasl", cfg.SASL)
		outs[name] = buf.String()
		if strings.Contains(buf.String(), "!ERROR") {
			t.Errorf("%s could not encode the config: %s", name, buf.String())
		}
	}
	for how, out := range outs {
		for what, secret := range secrets {
			if strings.Contains(out, secret) {
				t.Errorf("%s shows the %s: %s", how, what, out)
			}
		}
	}
	// What is not secret is still there to read.
	for _, how := range []string{"Sprintf %v", "json.Marshal", "slog JSON", "slog text"} {
		if !strings.Contains(outs[how], "k1:9092") || !strings.Contains(outs[how], "SCRAM-SHA-512") {
			t.Errorf("%s leaves out the brokers or the mechanism: %s", how, outs[how])
		}
	}
}
