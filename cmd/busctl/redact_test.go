package main

import "testing"

func TestRedactURL(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, want string }{
		{"amqp://app:s3cret@mq:5672/prod", "amqp://app:xxxxx@mq:5672/prod"},
		{"redis://:pw@cache:6379/0", "redis://:xxxxx@cache:6379/0"},
		{"amqp://u:p%2Fw@mq/", "amqp://u:xxxxx@mq/"},
		// Unescaped passwords: the parser fails or finds another host, so the
		// whole user information goes.
		{"amqp://u:with/slash@mq:5672/", "amqp://xxxxx@mq:5672/"},
		{"amqp://u:p%zz@mq/", "amqp://xxxxx@mq/"},
		{"amqp://u:12#34@mq/", "amqp://xxxxx@mq/"},
		{"amqp://u:12?34@mq/", "amqp://xxxxx@mq/"},
		{"amqp://u:sp ace@mq/", "amqp://xxxxx@mq/"},
		{"amqp://u:a@b@mq/", "amqp://xxxxx@mq/"},
		// No password: unchanged.
		{"amqp://mq:5672/", "amqp://mq:5672/"},
		{"redis://user@cache", "redis://user@cache"},
		{"127.0.0.1:6379", "127.0.0.1:6379"},
		{"not a url", "not a url"},
	} {
		if got := redactURL(c.in); got != c.want {
			t.Errorf("redactURL(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestIsSecretKey(t *testing.T) {
	t.Parallel()
	for k, want := range map[string]bool{
		"password": true, "Password": true, "sasl_password": true, "client-secret": true, "api_token": true,
		"passphrase": true, "credentials": true, "apiKey": true,
		"url": false, "username": false, "key_file": false, "key_prefix": false, "addr": false,
	} {
		if got := isSecretKey(k); got != want {
			t.Errorf("isSecretKey(%q) = %v, want %v", k, got, want)
		}
	}
}
