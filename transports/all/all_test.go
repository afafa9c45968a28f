package all_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/busline/busline/transports"
	_ "github.com/busline/busline/transports/all"
)

// TestEffectiveConfigFillsDefaults checks that every built-in transport
// shows its configuration with its defaults filled in, without connecting.
func TestEffectiveConfigFillsDefaults(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"memory", "rabbitmq", "redis", "kafka"} {
		cfg, err := transports.EffectiveConfig(kind, transports.OpenParams{Service: "checkout"})
		if err != nil {
			t.Errorf("%s: %v", kind, err)
			continue
		}
		got := fmt.Sprintf("%#v", cfg)
		want := map[string]string{"memory": "MaxMessageBytes:0", "rabbitmq": "Prefetch:32", "redis": `KeyPrefix:"busline:"`, "kafka": `ClientID:"checkout"`}[kind]
		if !strings.Contains(got, want) {
			t.Errorf("%s: EffectiveConfig = %s, want it to hold the default %s", kind, got, want)
		}
	}
}
