package main

import (
	"net/url"
	"strings"

	"gopkg.in/yaml.v3"
)

// redacted replaces a secret in config show's output.
const redacted = "xxxxx"

// secretWords mark a key whose value is a secret, however the key is spelt
// (password, Password, sasl_password, client-secret, api_token, ...).
var secretWords = []string{"password", "passwd", "secret", "token", "passphrase", "credential", "apikey"}

// isSecretKey reports whether a mapping key names a secret.
func isSecretKey(k string) bool {
	k = strings.ToLower(strings.NewReplacer("_", "", "-", "", ".", "").Replace(k))
	for _, w := range secretWords {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

// redactNode redacts, in place, every secret in the YAML tree n: the value
// (scalars, lists and mappings alike) of every key that names a secret, and
// the credentials of every URL anywhere, map keys included.
func redactNode(n *yaml.Node) {
	if n == nil {
		return
	}
	switch n.Kind {
	case yaml.ScalarNode:
		n.Value = redactURL(n.Value)
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			redactNode(k)
			if isSecretKey(k.Value) {
				redactAll(v)
			} else {
				redactNode(v)
			}
		}
	default:
		for _, c := range n.Content {
			redactNode(c)
		}
	}
}

// redactAll replaces every non-empty scalar under n.
func redactAll(n *yaml.Node) {
	if n.Kind == yaml.ScalarNode {
		if n.Value != "" {
			n.Value, n.Tag, n.Style = redacted, "!!str", 0
		}
		return
	}
	for _, c := range n.Content {
		redactAll(c)
	}
}

// redactURL hides the credentials of a URL, scheme://user:password@host.
// A password that was not escaped (holding "/", "%", "#", "?" or a space,
// as a ${VAR} may give it) breaks URL parsing or moves the "@" out of the
// authority: whenever the parsed URL does not account for the last "@"
// after the scheme, the whole user information is replaced, keeping only
// the scheme and what follows that "@". A URL without user information
// ("@" nowhere after the scheme) is returned as it is.
func redactURL(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return s
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return s
	}
	u, err := url.Parse(s)
	if err == nil && u.User != nil && strings.HasPrefix(rest[at+1:], u.Host) && u.User.String() == rest[:at] {
		if _, has := u.User.Password(); !has {
			return s // a user name alone
		}
		return u.Redacted()
	}
	return scheme + "://" + redacted + "@" + rest[at+1:]
}
