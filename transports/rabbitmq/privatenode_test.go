package rabbitmq_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/busline/busline/internal/testcerts"
)

// privateNode is a RabbitMQ node of the tests' own, on other ports than the
// shared broker, that tests may stop and start. It listens for plain AMQP
// on port and for AMQP over TLS on tlsPort, with certificates generated at
// start. Every node has a unique name and free ports, so two test runs on
// one machine never touch each other's nodes.
type privateNode struct {
	name          string
	dir           string
	port, tlsPort int
	distPort      int
	certs         testcerts.Files

	mu     sync.Mutex
	exited chan error // receives rabbitmq-server's exit; nil while stopped
}

// nodeOptions configures a private node.
type nodeOptions struct {
	// consumerTimeout is the node's consumer_timeout; 0 leaves RabbitMQ's
	// default (30 minutes).
	consumerTimeout time.Duration

	// maxMessageSize is the node's max_message_size in bytes; 0 leaves
	// RabbitMQ's default.
	maxMessageSize int
}

var (
	nodeOnce sync.Once
	node     *privateNode
	nodeErr  error
)

// requireRabbitMQServer skips under -short and fails when rabbitmq-server
// is not installed.
func requireRabbitMQServer(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a private RabbitMQ node; skipped under -short")
	}
	if _, err := exec.LookPath("rabbitmq-server"); err != nil {
		t.Fatal("rabbitmq-server not found: install it with `apt-get install rabbitmq-server` (the test starts a private node on free ports)")
	}
}

// startedPrivateNode returns the package's shared private node (default
// settings), starting it on first use; TestMain stops it.
func startedPrivateNode(t *testing.T) *privateNode {
	t.Helper()
	requireRabbitMQServer(t)
	nodeOnce.Do(func() {
		n, err := newPrivateNode(nodeOptions{})
		if err == nil {
			err = n.start()
		}
		node, nodeErr = n, err
	})
	if nodeErr != nil {
		t.Fatalf("private RabbitMQ node: %v", nodeErr)
	}
	return node
}

// ownPrivateNode starts a private node with opts for the test alone; it is
// stopped and removed at the end of the test.
func ownPrivateNode(t *testing.T, opts nodeOptions) *privateNode {
	t.Helper()
	requireRabbitMQServer(t)
	n, err := newPrivateNode(opts)
	if err == nil {
		err = n.start()
	}
	if err != nil {
		t.Fatalf("private RabbitMQ node: %v", err)
	}
	t.Cleanup(func() {
		if err := n.stop(); err != nil {
			t.Errorf("stop private node: %v", err)
		}
		_ = os.RemoveAll(n.dir)
	})
	return n
}

// freePorts returns n distinct TCP ports free on the loopback interface
// now.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func newPrivateNode(opts nodeOptions) (*privateNode, error) {
	dir, err := os.MkdirTemp("", "busline-rabbitmq-node-")
	if err != nil {
		return nil, err
	}
	// rabbitmq-server drops to the rabbitmq user: it must write here.
	if err := os.Chmod(dir, 0o777); err != nil {
		return nil, err
	}
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	n := &privateNode{
		name: fmt.Sprintf("busline-test-%d-%s@localhost", os.Getpid(), uuid.NewString()[:8]),
		dir:  dir, port: ports[0], tlsPort: ports[1], distPort: ports[2],
	}
	n.certs, err = testcerts.Write(dir)
	if err != nil {
		return nil, fmt.Errorf("generate certificates: %w", err)
	}
	conf := fmt.Sprintf(`listeners.tcp.default = 127.0.0.1:%d
listeners.ssl.default = 127.0.0.1:%d
ssl_options.cacertfile = %s
ssl_options.certfile = %s
ssl_options.keyfile = %s
ssl_options.verify = verify_peer
ssl_options.fail_if_no_peer_cert = false
loopback_users = none
auth_mechanisms.1 = PLAIN
auth_mechanisms.2 = AMQPLAIN
auth_mechanisms.3 = EXTERNAL
ssl_cert_login_from = common_name
`, n.port, n.tlsPort, n.certs.CA, n.certs.ServerCert, n.certs.ServerKey)
	if opts.consumerTimeout > 0 {
		conf += fmt.Sprintf("consumer_timeout = %d\n", opts.consumerTimeout.Milliseconds())
	}
	if opts.maxMessageSize > 0 {
		conf += fmt.Sprintf("max_message_size = %d\n", opts.maxMessageSize)
	}
	if err := os.WriteFile(filepath.Join(dir, "rabbitmq.conf"), []byte(conf), 0o644); err != nil {
		return nil, err
	}
	// SASL EXTERNAL (TLS client certificate login) for Config.Auth "external".
	if err := os.WriteFile(filepath.Join(dir, "enabled_plugins"), []byte("[rabbitmq_auth_mechanism_ssl].\n"), 0o644); err != nil {
		return nil, err
	}
	return n, nil
}

// ctl runs rabbitmqctl against the node and returns its output.
func (n *privateNode) ctl(args ...string) (string, error) {
	out, err := exec.Command("rabbitmqctl", append([]string{"-q", "-n", n.name}, args...)...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("rabbitmqctl %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func (n *privateNode) url() string { return fmt.Sprintf("amqp://guest:guest@127.0.0.1:%d/", n.port) }
func (n *privateNode) tlsURL() string {
	return fmt.Sprintf("amqps://guest:guest@localhost:%d/", n.tlsPort)
}

// start starts the node and waits until it accepts connections.
func (n *privateNode) start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	logf, err := os.OpenFile(filepath.Join(n.dir, "server.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o666)
	if err != nil {
		return err
	}
	cmd := exec.Command("rabbitmq-server")
	cmd.Env = append(os.Environ(),
		"RABBITMQ_NODENAME="+n.name,
		"RABBITMQ_NODE_PORT="+strconv.Itoa(n.port),
		"RABBITMQ_DIST_PORT="+strconv.Itoa(n.distPort),
		"RABBITMQ_MNESIA_BASE="+filepath.Join(n.dir, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(n.dir, "log"),
		"RABBITMQ_CONFIG_FILE="+filepath.Join(n.dir, "rabbitmq.conf"),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+filepath.Join(n.dir, "enabled_plugins"),
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return fmt.Errorf("start rabbitmq-server: %w", err)
	}
	exited := make(chan error, 1)
	n.exited = exited
	go func() { exited <- cmd.Wait(); _ = logf.Close() }()
	deadline := time.Now().Add(90 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", n.port), time.Second)
		if err == nil {
			_ = c.Close()
			break
		}
		select {
		case err := <-exited:
			n.exited = nil
			return fmt.Errorf("rabbitmq-server exited (%v); see %s", err, filepath.Join(n.dir, "server.out"))
		case <-time.After(250 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node %s not listening on %d after 90s; see %s", n.name, n.port, filepath.Join(n.dir, "server.out"))
		}
	}
	if out, err := exec.Command("rabbitmqctl", "-q", "-n", n.name, "await_startup", "--timeout", "60").CombinedOutput(); err != nil {
		return fmt.Errorf("await_startup: %v: %s", err, out)
	}
	return nil
}

// stop stops the node and waits for it to exit.
func (n *privateNode) stop() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	out, err := exec.Command("rabbitmqctl", "-q", "-n", n.name, "stop").CombinedOutput()
	if err != nil {
		return fmt.Errorf("rabbitmqctl stop: %v: %s", err, out)
	}
	if n.exited != nil {
		select {
		case <-n.exited:
		case <-time.After(60 * time.Second):
			return fmt.Errorf("node %s did not exit within 60s of rabbitmqctl stop", n.name)
		}
		n.exited = nil
	}
	return nil
}

// stopPrivateNode stops the private node if a test started it, and removes
// its files.
func stopPrivateNode() {
	if node == nil {
		return
	}
	_ = node.stop()
	_ = os.RemoveAll(node.dir)
}

// Two private nodes started side by side (as by two test runs on one
// machine) get their own names and ports, and starting the second leaves
// the first running.
func TestPrivateNodesIndependent(t *testing.T) {
	t.Parallel()
	a := ownPrivateNode(t, nodeOptions{})
	b := ownPrivateNode(t, nodeOptions{})
	if a.name == b.name || a.port == b.port || a.distPort == b.distPort {
		t.Fatalf("nodes share a name or port: %s:%d/%d and %s:%d/%d", a.name, a.port, a.distPort, b.name, b.port, b.distPort)
	}
	for _, n := range []*privateNode{a, b} {
		if _, err := n.ctl("status"); err != nil {
			t.Errorf("node %s not running after both started: %v", n.name, err)
		}
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", n.port), 5*time.Second)
		if err != nil {
			t.Errorf("node %s: %v", n.name, err)
			continue
		}
		_ = c.Close()
	}
}
