package kafka

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"

	"github.com/IBM/sarama"
)

// scramClient is a SCRAM client (RFC 5802) for Sarama's SASL/SCRAM
// mechanisms, built on the standard library.
type scramClient struct {
	newHash func() hash.Hash

	user, pass  string
	clientNonce string
	clientFirst string // client-first-message-bare
	serverSig   []byte
	step        int
	done        bool
}

var _ sarama.SCRAMClient = (*scramClient)(nil)

func sha256Hash() hash.Hash { return sha256.New() }
func sha512Hash() hash.Hash { return sha512.New() }

func newSCRAMClient(h func() hash.Hash) *scramClient { return &scramClient{newHash: h} }

// Begin starts a conversation; authzID is not supported by Kafka and ignored.
func (c *scramClient) Begin(user, pass, _ string) error {
	nonce := make([]byte, 24)
	if _, err := rand.Read(nonce); err != nil {
		return err
	}
	c.user, c.pass = user, pass
	c.clientNonce = base64.RawStdEncoding.EncodeToString(nonce)
	c.step, c.done = 0, false
	return nil
}

// Step answers the server's challenge.
func (c *scramClient) Step(challenge string) (string, error) {
	c.step++
	switch c.step {
	case 1:
		c.clientFirst = "n=" + scramEscape(c.user) + ",r=" + c.clientNonce
		return "n,," + c.clientFirst, nil
	case 2:
		return c.clientFinal(challenge)
	case 3:
		attrs := scramAttrs(challenge)
		if e, ok := attrs["e"]; ok {
			return "", fmt.Errorf("scram: server rejected the credentials: %s", e)
		}
		sig, err := base64.StdEncoding.DecodeString(attrs["v"])
		if err != nil || subtle.ConstantTimeCompare(sig, c.serverSig) != 1 {
			return "", errors.New("scram: the server's signature does not match: not the expected broker")
		}
		c.done = true
		return "", nil
	default:
		return "", errors.New("scram: unexpected challenge after the conversation ended")
	}
}

// Done reports whether the conversation finished successfully.
func (c *scramClient) Done() bool { return c.done }

func (c *scramClient) clientFinal(serverFirst string) (string, error) {
	attrs := scramAttrs(serverFirst)
	nonce, salt64, iter := attrs["r"], attrs["s"], attrs["i"]
	if !strings.HasPrefix(nonce, c.clientNonce) || nonce == c.clientNonce {
		return "", errors.New("scram: the server's nonce does not extend ours")
	}
	salt, err := base64.StdEncoding.DecodeString(salt64)
	if err != nil {
		return "", fmt.Errorf("scram: bad salt from server: %w", err)
	}
	iterations, err := strconv.Atoi(iter)
	if err != nil || iterations < 1 {
		return "", fmt.Errorf("scram: bad iteration count %q from server", iter)
	}
	salted, err := pbkdf2.Key(c.newHash, c.pass, salt, iterations, c.newHash().Size())
	if err != nil {
		return "", err
	}
	clientKey := c.hmac(salted, "Client Key")
	h := c.newHash()
	h.Write(clientKey)
	storedKey := h.Sum(nil)
	finalBare := "c=biws,r=" + nonce // biws = base64("n,,")
	authMessage := c.clientFirst + "," + serverFirst + "," + finalBare
	clientSig := c.hmac(storedKey, authMessage)
	proof := make([]byte, len(clientKey))
	for i := range clientKey {
		proof[i] = clientKey[i] ^ clientSig[i]
	}
	c.serverSig = c.hmac(c.hmac(salted, "Server Key"), authMessage)
	return finalBare + ",p=" + base64.StdEncoding.EncodeToString(proof), nil
}

func (c *scramClient) hmac(key []byte, msg string) []byte {
	m := hmac.New(c.newHash, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

func scramAttrs(s string) map[string]string {
	out := map[string]string{}
	for _, part := range strings.Split(s, ",") {
		if k, v, ok := strings.Cut(part, "="); ok {
			out[k] = v
		}
	}
	return out
}

func scramEscape(s string) string {
	return strings.NewReplacer("=", "=3D", ",", "=2C").Replace(s)
}
